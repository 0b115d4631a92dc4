//! CPU vs GPU parity of every GPU kernel, in process, on synthetic frames
//! (mono and RGB, odd sizes, image edges). Runs with `--features gpu`; in CI
//! on Mesa's lavapipe, where a missing adapter fails the test.
//! Tolerances are absolute, on data in [0, 1] (full scale = 1).
#![cfg(feature = "gpu")]

use jupiter_host::backend::cpu::HostBackend;
use jupiter_plugin_api::testing::MemFrames;
use jupiter_plugin_api::*;
use jupiter_tests::*;

fn ctx(be: &HostBackend) -> StageCtx<'_> {
    StageCtx { backend: be.as_ref(), stage: "parity".into() }
}

/// A textured image with sharp edges touching the borders.
fn texture(w: usize, h: usize, c: usize, seed: u32) -> Vec<f32> {
    (0..w * h * c)
        .map(|i| {
            let p = i / c;
            let (x, y, k) = ((p % w) as f32, (p / w) as f32, (i % c) as f32);
            let v = 0.5 + 0.3 * ((x * 0.37 + k + seed as f32).sin() * (y * 0.23 - k).cos()) + if (x as usize / 7 + y as usize / 5) % 2 == 0 { 0.1 } else { -0.1 };
            v.clamp(0.0, 1.0)
        })
        .collect()
}

fn host_data(ctx: &StageCtx, img: Image) -> Vec<f32> {
    ctx.to_host(img).unwrap().data.into_vec()
}

#[test]
fn stack_mean_gpu_matches_cpu() {
    let Some(gpu_be) = gpu_backend() else { return };
    let cpu_be = cpu_backend();
    for (w, h, c) in [(33usize, 21usize, 1usize), (40, 17, 3)] {
        let frames: Vec<Vec<f32>> = (0..7).map(|k| texture(w, h, c, k)).collect();
        let mem = MemFrames::new(w as u32, h as u32, c as u32, frames);
        let warps: Vec<FrameWarp> = (0..7).map(|k| FrameWarp::shift(k as f32 * 0.63 - 2.0, 1.7 - k as f32 * 0.41)).collect();
        let req = StackRequest { alignment: Alignment { warps: warps.into(), reference: 0 }, scores: (0..7).map(|k| 1.0 + k as f32).collect() };
        for p in [
            jupiter_plugin_stack_mean::params::MeanParams::default(),
            jupiter_plugin_stack_mean::params::MeanParams { interpolation: "bilinear".into(), quality_weighting: true, weight_power: 1.5 },
        ] {
            let cpu = jupiter_plugin_stack_mean::cpu::stack(&ctx(&cpu_be), &mem.as_ref(), &req, &p).unwrap();
            let g = ctx(&gpu_be);
            let gpu = jupiter_plugin_stack_mean::gpu::stack(&g, &g.gpu().unwrap(), &mem.as_ref(), &req, &p).unwrap();
            assert!(gpu.device.is_some(), "the stack should stay on the device");
            let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
            assert!(d <= 1e-4, "{w}×{h}×{c} {:?}: max |cpu - gpu| = {d:e}", p.interpolation);
        }
    }
}

#[test]
fn wavelet_gpu_matches_cpu() {
    let Some(gpu_be) = gpu_backend() else { return };
    let cpu_be = cpu_backend();
    use jupiter_plugin_sharpen_wavelet::params::LayerSettings;
    for (w, h, c) in [(45usize, 31usize, 1usize), (38, 27, 3)] {
        let img = Image::from_vec(w as u32, h as u32, c as u32, texture(w, h, c, 3));
        for s in [
            LayerSettings { gains: vec![1.0; 6], thresholds: vec![0.0; 6] },
            LayerSettings { gains: vec![3.0, 2.0, 1.2, 1.0, 0.8, 1.0], thresholds: vec![0.5, 0.3, 0.0, 0.0, 0.0, 0.0] },
        ] {
            let cpu = jupiter_plugin_sharpen_wavelet::cpu::sharpen(&ctx(&cpu_be), img.clone(), &s).unwrap();
            let g = ctx(&gpu_be);
            let gpu = jupiter_plugin_sharpen_wavelet::gpu::sharpen(&g, &g.gpu().unwrap(), img.clone(), &s).unwrap();
            let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
            // Gains up to 3 amplify float rounding of 6 layers of convolution.
            assert!(d <= 1e-4, "{w}×{h}×{c} gains {:?}: max |cpu - gpu| = {d:e}", s.gains);
        }
    }
}

#[test]
fn radix_select_is_exact() {
    let Some(gpu_be) = gpu_backend() else { return };
    let g = ctx(&gpu_be);
    let gpu = g.gpu().unwrap();
    let v: Vec<f32> = (0..10_001).map(|i| ((i * 7919) % 10_007) as f32 / 777.0 - 6.0).collect();
    let buf = jupiter_plugin_api::gpu::helpers::upload(&gpu, &v).unwrap();
    let mut sorted = v.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    for k in [0, 1, 5000, 9999, 10_000] {
        let got = jupiter_kit::gpu::kth_smallest(&gpu, jupiter_kit::gpu::SelectOf::Values(buf), v.len(), 1, 0, k).unwrap();
        assert_eq!(got, Some(sorted[k]), "k = {k}");
    }
    gpu.destroy_buffer(buf);
}
