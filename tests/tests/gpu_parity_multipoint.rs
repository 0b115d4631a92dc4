//! CPU vs GPU parity of `align-multipoint`'s point measurements
//! (`plugins/align-multipoint/src/gpu.rs`, `shaders/point_measure.wgsl`):
//! the whole aligner run twice on the same frames, once on the CPU and
//! once with the frames on the device (the reference, the scan and the
//! measurement step there), on captures with a known smooth local
//! distortion. Runs with `--features gpu`; in CI on Mesa's lavapipe,
//! where a missing adapter fails the test.
//!
//! Tolerance: every warp-field node and global shift within 1e-3 px of the
//! CPU's (the device's DFTs and sums round differently from realfft and
//! the CPU's f64 sums, and the rebuilt reference with them; the
//! differences measured on lavapipe are 9e-6 … 6e-5 px), and the same
//! weights.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_plugin_align_multipoint::cpu::align_with_summary;
use jupiter_plugin_align_multipoint::params::MultipointParams;
use jupiter_plugin_api::testing::MemFrames;
use jupiter_plugin_api::*;
use jupiter_tests::*;

/// A smooth texture at real coordinates (values in 0.1 … 0.9).
fn scene(x: f32, y: f32) -> f32 {
    0.5 + 0.18 * (x * 0.21).sin() * (y * 0.17).cos()
        + 0.12 * ((x + 1.7 * y) * 0.11).sin()
        + 0.1 * (-((x - 50.0).powi(2) + (y - 40.0).powi(2)) / 200.0).exp()
}

/// `n` frames of `w × h × c`: the scene under a global shift and a smooth
/// local distortion of up to ~1.5 px that changes from frame to frame,
/// with a little seeded noise.
fn distorted_frames(w: usize, h: usize, c: usize, n: usize) -> MemFrames {
    let frames = (0..n)
        .map(|k| {
            let a = k as f32 * 0.9;
            let (gx, gy) = (1.3 * (a * 0.7).sin(), -0.8 * (a * 0.5).cos());
            let mut rng = 0x9e37_79b9u32.wrapping_mul(k as u32 + 1);
            let mut f = Vec::with_capacity(w * h * c);
            for y in 0..h {
                for x in 0..w {
                    let (xf, yf) = (x as f32, y as f32);
                    let dx = gx + 1.2 * ((xf * 0.05 + a).sin() * (yf * 0.04).cos());
                    let dy = gy + 1.0 * ((yf * 0.06 - a).cos() * (xf * 0.03).sin());
                    let v = scene(xf - dx, yf - dy);
                    for ch in 0..c {
                        rng ^= rng << 13;
                        rng ^= rng >> 17;
                        rng ^= rng << 5;
                        let noise = (rng as f32 / u32::MAX as f32 - 0.5) * 0.01;
                        f.push(v * (1.0 - 0.1 * ch as f32) + noise);
                    }
                }
            }
            f
        })
        .collect();
    MemFrames::new(w as u32, h as u32, c as u32, frames)
}

/// The largest difference between two runs' global shifts and warp-field
/// nodes; their weights must agree.
fn compare(cpu: &[FrameWarp], gpu: &[FrameWarp]) -> f32 {
    assert_eq!(cpu.len(), gpu.len());
    let mut worst = 0.0f32;
    for (i, (a, b)) in cpu.iter().zip(gpu).enumerate() {
        worst = worst.max((a.dx - b.dx).abs()).max((a.dy - b.dy).abs());
        let (fa, fb) = (
            &a.dense_field().expect("cpu field"),
            &b.dense_field().expect("gpu field"),
        );
        assert_eq!(fa.weight, fb.weight, "frame {i}: weights differ");
        for (x, y) in fa
            .dx
            .iter()
            .zip(fb.dx.iter())
            .chain(fa.dy.iter().zip(fb.dy.iter()))
        {
            worst = worst.max((x - y).abs());
        }
    }
    worst
}

/// Binned first estimates (points of 40 and 42 px: transforms of 20 and
/// 21) and unbinned ones (24 px), mono and RGB, frames over several device
/// buffers.
fn point_measurements_on_the_gpu_match_the_cpu() {
    let (gpu_be, cpu_be) = backends();
    let cases = [
        (120usize, 96usize, 1usize, 40u32, "gradient"),
        (100, 84, 3, 24, "gradient"),
        // An odd transform side (42 binned: 21), the mirrored half spectrum.
        (126, 100, 1, 42, "gradient"),
        // Every later-pass residual by correlation: the CPU fallback.
        (120, 96, 1, 40, "correlation"),
    ];
    for (w, h, c, size, refine) in cases {
        let mut mem = distorted_frames(w, h, c, 12);
        let p = MultipointParams {
            ap_size: size,
            mode: "surface".into(),
            refine: refine.into(),
            ..Default::default()
        };
        let (cpu, cs) = align_with_summary(&stage_ctx(&cpu_be), &mem.as_ref(), &p).unwrap();
        assert!(!cs.on_device);
        let g = stage_ctx(&gpu_be);
        mem.upload(&g.gpu().unwrap(), 5).unwrap();
        let (gpu, gs) = align_with_summary(&g, &mem.as_ref(), &p).unwrap();
        assert!(gs.on_device, "{w}×{h}×{c}: the device path did not run");
        assert!(
            gs.scan_on_device,
            "{w}×{h}×{c}: the scan did not run on the device"
        );
        assert_eq!(cs.grid, gs.grid);
        assert!(cs.grid.active_count() > 4, "{w}×{h}: too few points");
        assert!(cs.rms_local > 0.3, "{w}×{h}: no local distortion measured");
        let worst = compare(&cpu.warps, &gpu.warps);
        assert!(
            worst <= 1e-3,
            "{w}×{h}×{c} size {size} {refine}: nodes differ by {worst} px"
        );
        eprintln!(
            "{w}×{h}×{c} size {size} {refine}: max node difference {worst:e} px, {} measured",
            gs.measured
        );
        assert_eq!(cs.measured, gs.measured);
    }
}

jupiter_tests::gpu_main!(gpu: [point_measurements_on_the_gpu_match_the_cpu]);
