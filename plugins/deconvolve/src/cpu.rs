//! Richardson–Lucy and Wiener deconvolution of an image, channel by channel
//! with linked settings (one PSF for all channels, estimated on the
//! luminance when not given).

use jupiter_kit::stats::{luminance, noise_sigma};
use jupiter_plugin_api::prelude::*;

use crate::params::{DeconvolveParams, Method};
use crate::psf::{fit_spectrum_with, Blur, Kernel, SpectrumFit};

/// What a run chose and measured, for the log line (and the report).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub sigma: f32,
    pub estimated: bool,
    /// Mean noise sigma over the channels.
    pub noise: f32,
    /// Richardson–Lucy iterations run (most over the channels); 0 for Wiener.
    pub iterations: u32,
}

/// Deconvolves the image; returns it and what was applied. When no PSF is
/// given and none can be estimated (too small, or no blur above the
/// noise), the image comes back unchanged with `None`.
pub fn deconvolve(
    ctx: &StageCtx,
    image: Image,
    p: &DeconvolveParams,
) -> Result<(Image, Option<Applied>), StageError> {
    let (method, model) = p.resolve()?;
    let (w, h, ch) = image.dims();
    let given = (p.sigma > 0.0).then_some(p.sigma);
    // The spectrum model: to estimate the width, and Wiener's noise-to-signal
    // ratio per frequency (not needed for Richardson–Lucy with a given width).
    let fit = (given.is_none() || method == Method::Wiener)
        .then(|| fit_spectrum_with(&luminance(&image.data, ch), w, h, given))
        .flatten();
    let (sigma, estimated) = match (p.sigma, fit) {
        (s, _) if s > 0.0 => (s, false),
        (_, Some(f)) => (f.sigma.clamp(0.3, 8.0), true),
        (_, None) => return Ok((image, None)),
    };
    let blur = Blur::new(&Kernel::new(model, sigma), w, h);
    let planes: Vec<Vec<f32>> = (0..ch)
        .map(|c| image.data.iter().skip(c).step_by(ch).copied().collect())
        .collect();
    let results = ctx.par_map(ch, |c| {
        let noise = noise_sigma(&planes[c], w, h);
        let (out, iterations) = match method {
            Method::RichardsonLucy => {
                richardson_lucy(&blur, &planes[c], noise, p.iterations, p.stop)
            }
            Method::Wiener => (
                wiener(&blur, &planes[c], noise, p.wiener_k, fit.as_ref()),
                0,
            ),
        };
        (out, noise, iterations)
    })?;
    let mut data = vec![0.0f32; image.data.len()];
    for (c, (plane, _, _)) in results.iter().enumerate() {
        for (i, v) in plane.iter().enumerate() {
            data[i * ch + c] = *v;
        }
    }
    let applied = Applied {
        sigma,
        estimated,
        noise: results.iter().map(|r| r.1).sum::<f32>() / ch as f32,
        iterations: results.iter().map(|r| r.2).max().unwrap_or(0),
    };
    Ok((
        Image::from_vec(w as u32, h as u32, ch as u32, data),
        Some(applied),
    ))
}

/// Richardson–Lucy: `u ← u · K ⊛ (d / K ⊛ u)` (the kernel is symmetric, so
/// correlating with it is convolving), from `u = d`, until the re-blurred
/// estimate's mean squared residual falls to `stop ·` the noise variance
/// (the discrepancy principle: going further fits the noise) or after
/// `max_iter` iterations. The data are lifted to be positive first (RL
/// multiplies), and lowered again after. Returns the estimate and the
/// iterations run.
pub fn richardson_lucy(
    blur: &Blur,
    d: &[f32],
    noise: f32,
    max_iter: u32,
    stop: f32,
) -> (Vec<f32>, u32) {
    let (lo, hi) = d
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    let eps = 1e-3 * (hi - lo).max(1e-6);
    let offset = if lo < eps { eps - lo } else { 0.0 };
    let data: Vec<f32> = d.iter().map(|v| v + offset).collect();
    let target = (stop as f64) * (noise as f64).powi(2);
    let mut u = data.clone();
    let mut done = 0;
    for _ in 0..max_iter {
        let est = blur.apply(&u);
        if stop > 0.0 {
            let resid = data
                .iter()
                .zip(&est)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum::<f64>()
                / data.len() as f64;
            if resid <= target {
                break;
            }
        }
        let ratio: Vec<f32> = data
            .iter()
            .zip(&est)
            .map(|(a, b)| a / b.max(eps * 1e-3))
            .collect();
        let corr = blur.apply(&ratio);
        u.iter_mut().zip(&corr).for_each(|(v, c)| *v *= c);
        done += 1;
    }
    u.iter_mut().for_each(|v| *v -= offset);
    (u, done)
}

/// Wiener: `Û = D̂ · H* / (|H|² + K(f))` over the mirror-padded plane, with
/// `K` the noise-to-signal power ratio: `k` when given (> 0), else per
/// frequency from the image's spectrum model (noise floor over the scene's
/// power-law power), else the measured noise variance over the plane's.
pub fn wiener(blur: &Blur, d: &[f32], noise: f32, k: f32, fit: Option<&SpectrumFit>) -> Vec<f32> {
    let constant = if k > 0.0 {
        k as f64
    } else {
        let mean = d.iter().map(|&v| v as f64).sum::<f64>() / d.len() as f64;
        let var = d.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d.len() as f64;
        ((noise as f64).powi(2) / var.max(1e-12)).max(1e-5)
    };
    let ratio = |i: usize| match fit {
        Some(f) if k <= 0.0 => f.floor / f.scene_power(blur.frequency(i)),
        _ => constant,
    };
    let n = blur.padded_pixels() as f32;
    let mut spec = blur.spectrum(d);
    for (i, (s, h)) in spec.iter_mut().zip(blur.otf()).enumerate() {
        let hn = h * n;
        *s *= hn.conj() / ((hn.norm_sqr() + ratio(i) as f32) * n);
    }
    blur.plane(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::PsfModel;
    use jupiter_kit::stats::psnr_interior;
    use jupiter_testkit::capture::{render, Scene};
    use jupiter_testkit::rng::Rng;

    const MARGIN: usize = 8;

    /// The truth, blurred by a Gaussian of `sigma` (the blur model itself)
    /// and with white noise of `noise` added.
    fn observed(
        scene: Scene,
        (w, h): (usize, usize),
        sigma: f32,
        noise: f32,
    ) -> (Vec<f32>, Vec<f32>) {
        let truth = render(scene, w, h, 1, 0.0, 0.0);
        let blurred = Blur::new(&Kernel::new(PsfModel::Gaussian, sigma), w, h).apply(&truth);
        let mut rng = Rng::new(17);
        let d = blurred.iter().map(|v| v + noise * rng.gauss()).collect();
        (truth, d)
    }

    #[test]
    fn the_blur_is_a_convolution_with_mirrored_edges() {
        let (w, h) = (23, 17);
        let plane = jupiter_testkit::rng::noise(3, w * h);
        let k = Kernel::new(PsfModel::Moffat(2.5), 1.2);
        let got = Blur::new(&k, w, h).apply(&plane);
        let r = k.radius as isize;
        let side = 2 * k.radius + 1;
        let mirror = |i: isize, n: usize| -> usize {
            let n = n as isize;
            (if i < 0 {
                -i - 1
            } else if i >= n {
                2 * n - i - 1
            } else {
                i
            })
            .clamp(0, n - 1) as usize
        };
        for y in 0..h {
            for x in 0..w {
                let mut want = 0.0f64;
                for ky in -r..=r {
                    for kx in -r..=r {
                        let t = k.taps[(ky + r) as usize * side + (kx + r) as usize] as f64;
                        let (sx, sy) = (mirror(x as isize - kx, w), mirror(y as isize - ky, h));
                        want += t * plane[sy * w + sx] as f64;
                    }
                }
                let d = (got[y * w + x] as f64 - want).abs();
                assert!(d < 1e-5, "({x}, {y}): {} vs {want}", got[y * w + x]);
            }
        }
    }

    #[test]
    fn richardson_lucy_converges_towards_the_truth_without_noise() {
        let (w, h) = (96, 80);
        let (truth, d) = observed(Scene::Lunar, (w, h), 1.5, 0.0);
        let blur = Blur::new(&Kernel::new(PsfModel::Gaussian, 1.5), w, h);
        let psnr = |v: &[f32]| psnr_interior(v, &truth, w, h, 1, MARGIN);
        let mut last = psnr(&d);
        for iters in [5, 20, 80] {
            let (u, run) = richardson_lucy(&blur, &d, 0.0, iters, 0.0);
            assert_eq!(run, iters);
            let p = psnr(&u);
            assert!(
                p > last,
                "{iters} iterations: {p:.2} dB, fewer: {last:.2} dB"
            );
            last = p;
        }
        assert!(
            last >= psnr(&d) + 5.0,
            "{last:.2} dB vs blurred {:.2} dB",
            psnr(&d)
        );
    }

    #[test]
    fn wiener_is_its_closed_form_on_a_cosine() {
        // A cosine of frequency f (cycles/px) blurred by a Gaussian is scaled
        // by H = exp(-2π²σ²f²); Wiener scales it by H / (H² + k) more, so
        // away from the edges the result is H² / (H² + k) of the cosine.
        let (w, h, sigma, k) = (128usize, 64usize, 1.2f32, 0.01f32);
        let f = 8.0 / 128.0;
        let cosine: Vec<f32> = (0..w * h)
            .map(|i| (2.0 * std::f32::consts::PI * f * (i % w) as f32).cos())
            .collect();
        let blur = Blur::new(&Kernel::new(PsfModel::Gaussian, sigma), w, h);
        let out = wiener(&blur, &blur.apply(&cosine), 0.0, k, None);
        let hf = (-2.0 * std::f32::consts::PI.powi(2) * sigma * sigma * f * f).exp();
        let gain = hf * hf / (hf * hf + k);
        for y in 16..h - 16 {
            for x in 24..w - 24 {
                let (got, want) = (out[y * w + x], gain * cosine[y * w + x]);
                assert!((got - want).abs() < 0.01, "({x}, {y}): {got} vs {want}");
            }
        }
    }

    const SIZE: (usize, usize) = (256, 224);

    /// Planet and surface, each blurred by σ 1, 1.5 and 2 px with noise at a
    /// typical stack's level: (scene, σ, truth, observed).
    fn cases() -> Vec<(Scene, f32, Vec<f32>, Vec<f32>)> {
        let mut out = Vec::new();
        for scene in [Scene::Planet, Scene::Lunar] {
            for sigma in [1.0f32, 1.5, 2.0] {
                let (truth, d) = observed(scene, SIZE, sigma, 0.002);
                out.push((scene, sigma, truth, d));
            }
        }
        out
    }

    /// The stage's CPU path on one observed plane.
    fn run(d: &[f32], p: &DeconvolveParams) -> (Image, Option<Applied>) {
        let image = Image::from_vec(SIZE.0 as u32, SIZE.1 as u32, 1, d.to_vec());
        let be = jupiter_plugin_api::testing::ThreadBackend::new(2);
        be.with_ctx("deconvolve", |ctx| deconvolve(ctx, image, p).unwrap())
    }

    /// The target for an estimated PSF (≥ 2 dB on every case, and
    /// the width within 20 %). Not met yet: the power-spectrum fit reads the
    /// planet's σ 1.5 and 2 blurs as 0.68 and 1.01 px (its disc shapes the
    /// spectrum where the blur should), and the lunar ones 15–34 % wide (the
    /// rendered surface has its own smoothness).
    #[test]
    #[ignore = "PSF estimation does not meet its target yet (see the doc comment)"]
    fn the_estimated_psf_recovers_2_db() {
        let (w, h) = SIZE;
        for (scene, sigma, truth, d) in cases() {
            let s = crate::psf::estimate_sigma(&d, w, h).expect("a blur above the noise");
            assert!(
                (s - sigma).abs() <= 0.2 * sigma,
                "{scene:?} σ {sigma}: estimated {s:.3}"
            );
            let (out, _) = run(&d, &DeconvolveParams::default());
            let base = psnr_interior(&d, &truth, w, h, 1, MARGIN);
            let e = psnr_interior(&out.data, &truth, w, h, 1, MARGIN);
            assert!(
                e >= base + 2.0,
                "{scene:?} σ {sigma}: {e:.2} vs {base:.2} dB"
            );
        }
    }

    #[test]
    fn deconvolution_recovers_a_known_blur() {
        let (w, h) = SIZE;
        for (scene, sigma, truth, d) in cases() {
            let psnr = |v: &[f32]| psnr_interior(v, &truth, w, h, 1, MARGIN);
            let with = |method: &str| {
                let p = DeconvolveParams {
                    sigma,
                    method: method.into(),
                    ..Default::default()
                };
                run(&d, &p)
            };
            let (rl, wi) = (with("rl"), with("wiener"));
            let (base, r, w_) = (psnr(&d), psnr(&rl.0.data), psnr(&wi.0.data));
            eprintln!(
                "{scene:?} σ {sigma}: blurred {base:.2} dB, Richardson-Lucy {r:.2} dB ({} iterations), Wiener {w_:.2} dB",
                rl.1.as_ref().unwrap().iterations
            );
            assert!(
                r >= base + 3.0,
                "{scene:?} σ {sigma}: Richardson-Lucy {r:.2} vs {base:.2} dB"
            );
            assert!(
                w_ >= base + 2.0,
                "{scene:?} σ {sigma}: Wiener {w_:.2} vs {base:.2} dB"
            );
        }
    }
}
