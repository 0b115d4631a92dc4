//! CPU vs GPU parity of the à-trous wavelet, in process, on synthetic frames (mono
//! and RGB, odd sizes, image edges). Runs with `--features gpu`; in CI on
//! Mesa's lavapipe, where a missing adapter fails the test. Tolerances are
//! absolute, on data in [0, 1] (full scale = 1); each test states its own.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_plugin_api::*;
use jupiter_tests::*;

fn wavelet_gpu_matches_cpu() {
    let (gpu_be, cpu_be) = backends();
    use jupiter_plugin_sharpen_wavelet::params::LayerSettings;
    for (w, h, c) in [(45usize, 31usize, 1usize), (38, 27, 3)] {
        let img = Image::from_vec(w as u32, h as u32, c as u32, texture(w, h, c, 3));
        for s in [
            LayerSettings {
                gains: vec![1.0; 6],
                thresholds: vec![0.0; 6],
            },
            LayerSettings {
                gains: vec![3.0, 2.0, 1.2, 1.0, 0.8, 1.0],
                thresholds: vec![0.5, 0.3, 0.0, 0.0, 0.0, 0.0],
            },
        ] {
            let cpu =
                jupiter_plugin_sharpen_wavelet::cpu::sharpen(&stage_ctx(&cpu_be), img.clone(), &s)
                    .unwrap();
            let g = stage_ctx(&gpu_be);
            let gpu = jupiter_plugin_sharpen_wavelet::gpu::sharpen(
                &g,
                &g.gpu().unwrap(),
                img.clone(),
                &s,
            )
            .unwrap();
            let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
            // Gains up to 3 amplify float rounding of 6 layers of convolution.
            assert!(
                d <= 1e-4,
                "{w}×{h}×{c} gains {:?}: max |cpu - gpu| = {d:e}",
                s.gains
            );
        }
    }
}

jupiter_tests::gpu_main!(gpu: [wavelet_gpu_matches_cpu]);
