//! CPU vs GPU parity of the filters (convolution, unsharp, pixel operations, stretch), in process, on synthetic frames (mono
//! and RGB, odd sizes, image edges). Runs with `--features gpu`; in CI on
//! Mesa's lavapipe, where a missing adapter fails the test. Tolerances are
//! absolute, on data in [0, 1] (full scale = 1); each test states its own.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_plugin_api::*;
use jupiter_tests::*;

fn filters_gpu_match_cpu() {
    use jupiter_plugin_filters::*;
    let (gpu_be, cpu_be) = backends();
    let stages: [(&dyn Stage, &str); 7] = [
        (&GaussianBlur, r#"{"sigma": 1.7}"#),
        (
            &UnsharpMask,
            r#"{"radius": 1.2, "amount": 1.5, "threshold": 0.02}"#,
        ),
        (&Gamma, r#"{"gamma": 2.2}"#),
        (
            &BrightnessContrast,
            r#"{"brightness": 0.05, "contrast": 1.3}"#,
        ),
        (
            &Stretch,
            r#"{"black_percentile": 1.0, "white_percentile": 99.0, "midtone": 0.3}"#,
        ),
        (&Stretch, "{}"),
        (&GaussianBlur, r#"{"sigma": 0}"#),
    ];
    for (w, h, c) in [(31usize, 19usize, 1usize), (24, 37, 3)] {
        // Values slightly outside [0, 1], as after sharpening.
        let data: Vec<f32> = texture(w, h, c, 9).iter().map(|v| v * 1.2 - 0.1).collect();
        let img = Image::from_vec(w as u32, h as u32, c as u32, data);
        for (stage, params) in stages {
            let name = stage.manifest().name;
            assert!(stage.manifest().gpu, "{name} should declare its GPU path");
            let cpu = stage
                .process(&stage_ctx(&cpu_be), img.clone(), params)
                .unwrap();
            let g = stage_ctx(&gpu_be);
            let gpu = stage.process(&g, img.clone(), params).unwrap();
            assert!(
                gpu.device.is_some(),
                "{name}: result should stay on the device"
            );
            let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
            // pow() on the GPU is exp2(y·log2 x): a few ulps; everything else is the same arithmetic.
            assert!(
                d <= 1e-5,
                "{name} {params} on {w}×{h}×{c}: max |cpu - gpu| = {d:e}"
            );
        }
    }
}

jupiter_tests::gpu_main!(gpu: [filters_gpu_match_cpu]);
