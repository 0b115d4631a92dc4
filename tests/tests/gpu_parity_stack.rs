//! CPU vs GPU parity of the stacking kernels (shift + mean) and the radix select, in process, on synthetic frames (mono
//! and RGB, odd sizes, image edges). Runs with `--features gpu`; in CI on
//! Mesa's lavapipe, where a missing adapter fails the test. Tolerances are
//! absolute, on data in [0, 1] (full scale = 1); each test states its own.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_host::backend::HostBackend;
use jupiter_plugin_api::testing::MemFrames;
use jupiter_plugin_api::*;
use jupiter_plugin_stack_mean::gpu as mean_gpu;
use jupiter_tests::*;

fn stack_mean_gpu_matches_cpu() {
    let be = backends();
    for (w, h, c) in [(33usize, 21usize, 1usize), (40, 17, 3)] {
        let mem = texture_frames((w, h, c), 7, 0);
        let warps = linear_shifts(7, (-2.0, 0.63), (1.7, -0.41));
        mean_parity(&be, &mem, warps, 1.5, mean_gpu::stack);
    }
}

fn radix_select_is_exact() {
    let gpu_be = gpu_only();
    let g = stage_ctx(&gpu_be);
    let gpu = g.gpu().unwrap();
    let v: Vec<f32> = (0..10_001)
        .map(|i| ((i * 7919) % 10_007) as f32 / 777.0 - 6.0)
        .collect();
    let buf = jupiter_plugin_api::gpu::helpers::upload(&gpu, &v).unwrap();
    let mut sorted = v.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    for k in [0, 1, 5000, 9999, 10_000] {
        let got = jupiter_kit::gpu::kth_smallest(
            &gpu,
            jupiter_kit::gpu::SelectOf::Values(buf),
            v.len(),
            1,
            0,
            k,
        )
        .unwrap();
        assert_eq!(got, Some(sorted[k]), "k = {k}");
    }
    gpu.destroy_buffer(buf);
}

/// Naive reference: per pixel, gather the resampled samples and sort.
fn median_reference(mem: &MemFrames, warps: &[FrameWarp]) -> Vec<f32> {
    let info = mem.info;
    let len = info.frame_len();
    let aligned: Vec<Vec<f32>> = warps
        .iter()
        .enumerate()
        .map(|(i, wp)| {
            let mut out = vec![0.0; len];
            let mut scratch = Vec::new();
            jupiter_kit::warp::warped_rows(
                &mem.as_ref(),
                i,
                wp,
                jupiter_kit::warp::Interp::Bicubic,
                0,
                info.height as usize,
                &mut out,
                None,
                &mut scratch,
            )
            .unwrap();
            out
        })
        .collect();
    (0..len)
        .map(|p| {
            let v: Vec<f32> = aligned.iter().map(|f| f[p]).collect();
            jupiter_kit::tile::median_sorted(&v)
        })
        .collect()
}

fn median_gpu_matches_the_naive_median() {
    let gpu_be = gpu_only();
    // 7 and 8 frames take the in-register sort, 70 and 71 the radix selection;
    // a tiny tile budget forces several bands.
    for (w, h, c, n, budget) in [
        (23usize, 19usize, 1usize, 7usize, 1usize << 20),
        (17, 13, 3, 8, 2000),
        (21, 11, 1, 70, 5000),
        (9, 15, 3, 71, 1 << 20),
    ] {
        let mem = texture_frames((w, h, c), n, 0);
        let warps = scattered_shifts(n, (7, 11, 0.37, -2.0), (5, 9, 0.41, -1.6));
        let want = median_reference(&mem, &warps);
        let g = stage_ctx(&gpu_be);
        let gpu = g.gpu().unwrap();
        let buf = jupiter_plugin_stack_median::gpu::median_stack(
            &g,
            &gpu,
            &mem.as_ref(),
            &warps,
            1,
            budget,
        )
        .unwrap();
        let got = jupiter_plugin_api::gpu::helpers::download(&gpu, buf, want.len()).unwrap();
        gpu.destroy_buffer(buf);
        let d = max_abs_diff(&want, &got);
        assert!(
            d <= 1e-5,
            "{w}×{h}×{c}, {n} frames: max |cpu - gpu| = {d:e}"
        );
    }
}

/// Multi-point warp fields with per-point weights (some 0): the GPU mean
/// equals the CPU mean within 1e-4 (f32 sums on the device, f64 on the CPU),
/// with the frames uploaded by the stacker and with them kept on the device.
fn stack_mean_with_warp_fields_gpu_matches_cpu() {
    let be = backends();
    for (w, h, c, n) in [(41usize, 29usize, 1usize, 6usize), (30, 33, 3, 5)] {
        let mem = texture_frames((w, h, c), n, 0);
        let (cols, rows) = (4usize, 3usize);
        let warps: Vec<FrameWarp> = (0..n)
            .map(|k| {
                let g = cols * rows;
                let dx = (0..g).map(|i| ((i + k) as f32 * 0.9).sin() * 1.3).collect();
                let dy = (0..g).map(|i| ((i * 2 + k) as f32 * 0.7).cos()).collect();
                // Frame k is dropped at some points: weight 0 there.
                let weight = (0..g)
                    .map(|i| if (i + k) % 4 == 0 { 0.0 } else { 1.0 })
                    .collect();
                let field =
                    WarpField::new((cols, rows), (4.0, 3.5), (11.0, 12.0), [dx, dy, weight]);
                let mut wp = FrameWarp::shift(0.3 * k as f32 - 0.7, 0.5 - 0.2 * k as f32);
                if k != 2 {
                    wp.field = Some(field).into(); // frame 2 has a global shift only
                }
                wp
            })
            .collect();
        mean_parity(&be, &mem, warps.clone(), 1.0, mean_gpu::stack_warped);
        // The same frames kept on the device (two buffers): read there.
        let mut resident = texture_frames((w, h, c), n, 0);
        resident.upload(be.0.gpu_service().unwrap(), 3).unwrap();
        mean_parity(&be, &resident, warps, 1.0, mean_gpu::stack_warped);
    }
}

jupiter_tests::gpu_main!(gpu: [stack_mean_gpu_matches_cpu, radix_select_is_exact, median_gpu_matches_the_naive_median, stack_mean_with_warp_fields_gpu_matches_cpu]);

/// A GPU mean stacker's signature (resident shifts, or warp fields).
type GpuMean = fn(
    &StageCtx,
    &GpuServiceBox,
    &FrameSourceRef,
    &StackRequest,
    &jupiter_plugin_stack_mean::params::MeanParams,
) -> Result<Image, StageError>;

/// The GPU mean `gpu_stack` equals the CPU mean within 1e-4 for the default
/// parameters and a bilinear quality-weighted mean (`weight_power`), and
/// leaves its stack on the device.
fn mean_parity(
    (gpu_be, cpu_be): &(HostBackend, HostBackend),
    mem: &MemFrames,
    warps: Vec<FrameWarp>,
    weight_power: f32,
    gpu_stack: GpuMean,
) {
    let info = mem.as_ref().info();
    let (w, h, c) = info.dims();
    let req = scored_request(warps);
    for p in mean_params(weight_power) {
        let cpu =
            jupiter_plugin_stack_mean::cpu::stack(&stage_ctx(cpu_be), &mem.as_ref(), &req, &p)
                .unwrap();
        let g = stage_ctx(gpu_be);
        let gpu = gpu_stack(&g, &g.gpu().unwrap(), &mem.as_ref(), &req, &p).unwrap();
        assert!(gpu.device.is_some(), "the stack should stay on the device");
        let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
        assert!(
            d <= 1e-4,
            "{w}×{h}×{c} {:?}: max |cpu - gpu| = {d:e}",
            p.interpolation
        );
    }
}

/// The default mean and a bilinear, quality-weighted one.
fn mean_params(weight_power: f32) -> [jupiter_plugin_stack_mean::params::MeanParams; 2] {
    [
        Default::default(),
        jupiter_plugin_stack_mean::params::MeanParams {
            interpolation: Interpolation::Bilinear,
            quality_weighting: true,
            weight_power,
        },
    ]
}
