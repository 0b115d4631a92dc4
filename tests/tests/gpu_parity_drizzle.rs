//! CPU vs GPU parity of `stack-drizzle`, in process: mono and RGB frames of
//! odd sizes, global sub-pixel shifts and warp fields with per-point
//! weights (some zero), scales 1.5, 2 and 3, pixfrac 0.5 and 1. Runs with
//! `--features gpu`; in CI on Mesa's lavapipe, where a missing adapter
//! fails the test. Tolerance: absolute on values in [0, 1] (the CPU sums in
//! f64, the GPU in f32) and, on the weights, relative to the largest.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_plugin_api::*;
use jupiter_plugin_stack_drizzle::{cpu, geometry::Geometry, gpu, params::DrizzleParams};
use jupiter_tests::*;

/// A warp field over `w × h` whose shifts vary smoothly and whose weight is
/// 0 on one node.
fn field(w: usize, h: usize, k: usize) -> WarpField {
    let (cols, rows) = (4, 3);
    let (sx, sy) = ((w - 1) as f32 / 3.0, (h - 1) as f32 / 2.0);
    let n = cols * rows;
    let dx = (0..n).map(|i| 0.3 * ((i + k) as f32 * 0.7).sin()).collect();
    let dy = (0..n)
        .map(|i| 0.25 * ((i * 2 + k) as f32 * 0.5).cos())
        .collect();
    let wt = (0..n)
        .map(|i| {
            if i == (k % n) {
                0.0
            } else {
                0.5 + 0.5 * ((i + k) % 3) as f32 / 2.0
            }
        })
        .collect();
    WarpField::new((cols, rows), (0.0, 0.0), (sx, sy), [dx, dy, wt])
}

fn drizzle_gpu_matches_cpu() {
    let (gpu_be, cpu_be) = backends();
    for (w, h, c) in [(37usize, 29usize, 1usize), (30, 23, 3)] {
        let frames = texture_frames((w, h, c), 6, 7);
        let shifts = scattered_shifts(6, (3, 5, 0.37, -0.8), (2, 7, 0.29, -0.9));
        let fields: Vec<FrameWarp> = shifts
            .iter()
            .enumerate()
            .map(|(k, s)| FrameWarp::with_field(s.dx, s.dy, field(w, h, k)))
            .collect();
        for warps in [shifts, fields] {
            let req =
                StackRequest::new(warps.clone()).with_scores(vec![1.0, 0.9, 0.8, 0.7, 0.6, 0.5]);
            for (scale, pixfrac) in [(2.0f32, 0.5f32), (1.5, 1.0), (3.0, 0.5)] {
                let p = DrizzleParams {
                    scale,
                    pixfrac,
                    quality_weighting: true,
                    ..Default::default()
                };
                let g = Geometry::new(w, h, scale, pixfrac);
                let src = frames.as_ref();
                let a = cpu::drizzle(&stage_ctx(&cpu_be), &src, &req, &g, &p).unwrap();
                let gctx = stage_ctx(&gpu_be);
                let b = gpu::drizzle(&gctx, &gctx.gpu().unwrap(), &src, &req, &g, &p).unwrap();
                let dv = max_abs_diff(&a.data, &b.data);
                // Relative to the largest weight: an overlap of a few 1e-6
                // at a drop's edge is rounded differently in f32.
                let top = a.weight.iter().copied().fold(0.0f32, f32::max);
                let dw = max_abs_diff(&a.weight, &b.weight) / top;
                let fielded = warps[0].field.is_some();
                assert!(dv <= 1e-5 && dw <= 1e-5, "{w}×{h}×{c} scale {scale} pixfrac {pixfrac} field {fielded}: |Δvalue| {dv:e}, relative |Δweight| {dw:e}");
                assert!(a.weight.iter().filter(|&&x| x > 0.0).count() > g.out_w * g.out_h / 2);
            }
        }
    }
}

jupiter_tests::gpu_main!(gpu: [drizzle_gpu_matches_cpu]);
