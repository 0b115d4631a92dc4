//! CPU vs GPU parity of `deconvolve` (Richardson–Lucy with a Gaussian PSF,
//! the GPU path), in process, on blurred synthetic images (mono and RGB, odd
//! sizes), with a given and an estimated PSF width, with and without the
//! stopping rule. Runs with `--features gpu`; in CI on Mesa's lavapipe,
//! where a missing adapter fails the test. Tolerance: absolute, on data in
//! [0, 1]; the iteration counts must be equal.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use jupiter_plugin_api::*;
use jupiter_plugin_deconvolve::params::DeconvolveParams;
use jupiter_tests::*;

/// A texture blurred by a Gaussian of sigma 1.3 with a little noise.
fn blurred(w: usize, h: usize, c: usize) -> Image {
    let t = texture(w, h, c, 5);
    let taps = jupiter_plugin_deconvolve::psf::gaussian_taps(1.3);
    let mut out = vec![0.0f32; t.len()];
    for ch in 0..c {
        let plane: Vec<f32> = t.iter().skip(ch).step_by(c).copied().collect();
        let mut b = vec![0.0f32; plane.len()];
        jupiter_kit::conv::separable_serial(&plane, w, h, &taps, 1, &mut b);
        let noise = jupiter_testkit::rng::noise(11 + ch as u64, b.len());
        for (i, v) in b.iter().enumerate() {
            out[i * c + ch] = v + 0.002 * noise[i];
        }
    }
    Image::from_vec(w as u32, h as u32, c as u32, out)
}

fn deconvolve_gpu_matches_cpu() {
    let (gpu_be, cpu_be) = backends();
    for (w, h, c) in [(97usize, 81usize, 1usize), (90, 77, 3)] {
        let img = blurred(w, h, c);
        for p in [
            DeconvolveParams {
                sigma: 1.3,
                ..Default::default()
            },
            DeconvolveParams {
                sigma: 1.3,
                stop: 0.0,
                iterations: 30,
                ..Default::default()
            },
            DeconvolveParams::default(),
        ] {
            let (cpu, a_cpu) =
                jupiter_plugin_deconvolve::cpu::deconvolve(&stage_ctx(&cpu_be), img.clone(), &p)
                    .unwrap();
            let g = stage_ctx(&gpu_be);
            let (gpu, a_gpu) = jupiter_plugin_deconvolve::deconvolve(&g, img.clone(), &p).unwrap();
            assert!(
                gpu.device.is_some(),
                "the GPU path leaves the image on the device"
            );
            let (a_cpu, a_gpu) = (a_cpu.unwrap(), a_gpu.unwrap());
            assert_eq!(a_cpu, a_gpu, "{w}×{h}×{c} {p:?}");
            let d = max_abs_diff(&cpu.data, &host_data(&g, gpu));
            // Up to 50 iterations of two blurs, a division and a product
            // each, in f32 on both sides.
            assert!(
                d <= 2e-4,
                "{w}×{h}×{c} {p:?}: max |cpu - gpu| = {d:e} after {} iterations",
                a_cpu.iterations
            );
            eprintln!(
                "{w}×{h}×{c} sigma {:.2}: {} iterations, max |cpu - gpu| {d:.1e}",
                a_cpu.sigma, a_cpu.iterations
            );
        }
    }
}

jupiter_tests::gpu_main!(gpu: [deconvolve_gpu_matches_cpu]);
