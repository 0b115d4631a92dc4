//! Richardson–Lucy and Wiener deconvolution of an image, channel by channel
//! with linked settings (one PSF for all channels, estimated on the
//! luminance when not given; Richardson–Lucy stops for all channels at
//! once).

use jupiter_kit::conv::separable;
use jupiter_kit::stats::{luminance, noise_model, NoiseModel};
use jupiter_plugin_api::prelude::*;

use crate::params::{DeconvolveParams, Method, PsfModel};
use crate::psf::{estimate_sigma, fit_spectrum, gaussian_taps, Blur, Kernel, Known, SpectrumFit};

/// What a run chose and measured, for the log line (and the report).
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub sigma: f32,
    /// The blur the image's spectrum showed, when the width was estimated
    /// (before the scene's own width was taken out).
    pub measured: Option<f32>,
    /// Noise sigma at the image's mean level, averaged over the channels.
    pub noise: f32,
    /// Richardson–Lucy iterations run; 0 for Wiener.
    pub iterations: u32,
}

/// What deconvolving an image takes, measured on the host copy before any
/// path runs: the method, the PSF and its width, each channel's noise.
pub struct Plan {
    pub method: Method,
    pub model: PsfModel,
    pub sigma: f32,
    pub measured: Option<f32>,
    /// The spectrum model (Wiener's noise-to-signal ratio per frequency).
    pub fit: Option<SpectrumFit>,
    pub noise: Vec<NoiseModel>,
    /// Noise sigma at the mean level, averaged over the channels.
    pub noise_sigma: f32,
}

impl Plan {
    /// Measures `image` for `p`; `None` when no PSF is given and none can be
    /// estimated (too small, or no blur above the noise and the scene's own
    /// width).
    pub fn new(image: &Image, p: &DeconvolveParams) -> Result<Option<Plan>, StageError> {
        let (method, model) = p.resolve()?;
        let (w, h, ch) = image.dims();
        let lum = luminance(&image.data, ch);
        let (sigma, measured) = if p.sigma > 0.0 {
            (p.sigma, None)
        } else {
            match estimate_sigma(&lum, w, h, p.scene_sigma) {
                Some(e) => (e.sigma.min(8.0), Some(e.measured)),
                None => return Ok(None),
            }
        };
        let fit = (method == Method::Wiener)
            .then(|| fit_spectrum(&lum, w, h, Known::Sigma(sigma)))
            .flatten();
        let noise: Vec<NoiseModel> = planes(image)
            .iter()
            .map(|pl| noise_model(pl, w, h))
            .collect();
        let noise_sigma = planes(image)
            .iter()
            .zip(&noise)
            .map(|(pl, m)| m.variance(mean(pl)).sqrt())
            .sum::<f32>()
            / ch as f32;
        Ok(Some(Plan {
            method,
            model,
            sigma,
            measured,
            fit,
            noise,
            noise_sigma,
        }))
    }

    /// What was applied, after `iterations`.
    pub fn applied(&self, iterations: u32) -> Applied {
        Applied {
            sigma: self.sigma,
            measured: self.measured,
            noise: self.noise_sigma,
            iterations,
        }
    }
}

fn mean(v: &[f32]) -> f32 {
    (v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64) as f32
}

/// The channel planes of an interleaved image.
pub fn planes(image: &Image) -> Vec<Vec<f32>> {
    let ch = image.channels as usize;
    (0..ch)
        .map(|c| image.data.iter().skip(c).step_by(ch).copied().collect())
        .collect()
}

fn interleave(planes: &[Vec<f32>], w: usize, h: usize) -> Image {
    let ch = planes.len();
    let mut data = vec![0.0f32; w * h * ch];
    for (c, plane) in planes.iter().enumerate() {
        for (i, v) in plane.iter().enumerate() {
            data[i * ch + c] = *v;
        }
    }
    Image::from_vec(w as u32, h as u32, ch as u32, data)
}

/// Deconvolves the image on the CPU; returns it and what was applied. When
/// no PSF is given and none can be estimated, the image comes back
/// unchanged with `None`.
pub fn deconvolve(
    ctx: &StageCtx,
    image: Image,
    p: &DeconvolveParams,
) -> Result<(Image, Option<Applied>), StageError> {
    match Plan::new(&image, p)? {
        Some(plan) => {
            let (out, iterations) = run(ctx, &image, &plan, p)?;
            Ok((out, Some(plan.applied(iterations))))
        }
        None => Ok((image, None)),
    }
}

/// Runs a measured plan on the CPU.
pub fn run(
    ctx: &StageCtx,
    image: &Image,
    plan: &Plan,
    p: &DeconvolveParams,
) -> Result<(Image, u32), StageError> {
    let (w, h, _) = image.dims();
    let planes = planes(image);
    let psf = Psf::new(plan.model, plan.sigma, w, h);
    match plan.method {
        Method::RichardsonLucy => {
            let (out, it) = richardson_lucy(ctx, &psf, &planes, &plan.noise, p.iterations, p.stop)?;
            Ok((interleave(&out, w, h), it))
        }
        Method::Wiener => {
            let blur = match &psf {
                Psf::Fft(b) => b,
                Psf::Separable(..) => &Blur::new(&Kernel::new(plan.model, plan.sigma), w, h),
            };
            let out = ctx.par_map(planes.len(), |c| {
                let noise = plan.noise[c].variance(mean(&planes[c])).sqrt();
                wiener(blur, &planes[c], noise, p.wiener_k, plan.fit.as_ref())
            })?;
            Ok((interleave(&out, w, h), 0))
        }
    }
}

/// The blur by the PSF: a Gaussian separably (two passes of `2·ceil(4σ)+1`
/// taps, edges replicated: the same arithmetic as the GPU path), any other
/// model by FFT over a mirror-padded plane.
pub enum Psf {
    Separable(Vec<f32>, usize, usize),
    Fft(Blur),
}

impl Psf {
    pub fn new(model: PsfModel, sigma: f32, w: usize, h: usize) -> Psf {
        match model {
            PsfModel::Gaussian => Psf::Separable(gaussian_taps(sigma), w, h),
            PsfModel::Moffat(_) => Psf::Fft(Blur::new(&Kernel::new(model, sigma), w, h)),
        }
    }

    /// The plane convolved with the PSF.
    pub fn apply(&self, ctx: &StageCtx, plane: &[f32]) -> Result<Vec<f32>, StageError> {
        match self {
            Psf::Separable(taps, w, h) => {
                let mut out = vec![0.0f32; plane.len()];
                separable(ctx, plane, *w, *h, taps, 1, &mut out)?;
                Ok(out)
            }
            Psf::Fft(b) => Ok(b.apply(plane)),
        }
    }
}

/// Richardson–Lucy's constants, from the range of all the channels'
/// samples: the lift that makes the data positive (RL multiplies), the
/// floor of its divisions, and the floor of the noise variance (so that a
/// noiseless sample does not weigh without bound).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lift {
    pub offset: f32,
    pub div_floor: f32,
    pub var_floor: f32,
}

impl Lift {
    pub fn new(planes: &[Vec<f32>]) -> Lift {
        let (lo, hi) = planes
            .iter()
            .flatten()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let eps = 1e-3 * (hi - lo).max(1e-6);
        Lift {
            offset: if lo < eps { eps - lo } else { 0.0 },
            div_floor: eps * 1e-3,
            var_floor: eps * eps,
        }
    }

    /// Each sample's inverse noise variance at its level.
    pub fn inverse_variance(&self, plane: &[f32], noise: &NoiseModel) -> Vec<f32> {
        plane
            .iter()
            .map(|&v| 1.0 / noise.variance(v).max(self.var_floor))
            .collect()
    }
}

/// Richardson–Lucy: `u ← u · K ⊛ (d / K ⊛ u)` (the kernel is symmetric, so
/// correlating with it is convolving), from `u = d`, on every channel at
/// once, until the re-blurred estimate's residual, each sample's square
/// over the noise variance at its level, falls to `stop` on average over
/// all samples (the discrepancy principle: going further fits the noise)
/// or after `max_iter` iterations. The data are lifted to be positive first
/// (RL multiplies; this also keeps it from digging a dark ring below a
/// black sky at a planet's limb), and lowered again after. Returns the
/// estimates and the iterations run.
pub fn richardson_lucy(
    ctx: &StageCtx,
    psf: &Psf,
    planes: &[Vec<f32>],
    noise: &[NoiseModel],
    max_iter: u32,
    stop: f32,
) -> Result<(Vec<Vec<f32>>, u32), StageError> {
    let lift = Lift::new(planes);
    let (offset, div_floor) = (lift.offset, lift.div_floor);
    let data: Vec<Vec<f32>> = planes
        .iter()
        .map(|d| d.iter().map(|v| v + offset).collect())
        .collect();
    let inv_var: Vec<Vec<f32>> = planes
        .iter()
        .zip(noise)
        .map(|(d, m)| lift.inverse_variance(d, m))
        .collect();
    let samples = planes.iter().map(Vec::len).sum::<usize>().max(1) as f64;
    let mut u = data.clone();
    let mut done = 0;
    for _ in 0..max_iter {
        ctx.check_cancelled()?;
        let est: Vec<Vec<f32>> = u
            .iter()
            .map(|x| psf.apply(ctx, x))
            .collect::<Result<_, _>>()?;
        if stop > 0.0 {
            let resid: f64 = (0..data.len())
                .map(|c| weighted_residual(&data[c], &est[c], &inv_var[c]))
                .sum();
            if resid / samples <= stop as f64 {
                break;
            }
        }
        for c in 0..data.len() {
            let ratio: Vec<f32> = data[c]
                .iter()
                .zip(&est[c])
                .map(|(a, b)| a / b.max(div_floor))
                .collect();
            let corr = psf.apply(ctx, &ratio)?;
            u[c].iter_mut().zip(&corr).for_each(|(v, k)| *v *= k);
        }
        done += 1;
    }
    u.iter_mut().flatten().for_each(|v| *v -= offset);
    Ok((u, done))
}

/// `Σ (d − e)² / var`, in f64.
pub fn weighted_residual(d: &[f32], e: &[f32], inv_var: &[f32]) -> f64 {
    d.iter()
        .zip(e)
        .zip(inv_var)
        .map(|((a, b), iv)| ((a - b) as f64).powi(2) * *iv as f64)
        .sum()
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
        let psnr = |v: &[f32]| psnr_interior(v, &truth, w, h, 1, MARGIN);
        let mut last = psnr(&d);
        let be = jupiter_plugin_api::testing::ThreadBackend::new(2);
        let psf = Psf::new(PsfModel::Gaussian, 1.5, w, h);
        for iters in [5, 20, 80] {
            let none = NoiseModel {
                read: 0.0,
                shot: 0.0,
            };
            let (u, run) = be.with_ctx("rl", |ctx| {
                richardson_lucy(ctx, &psf, std::slice::from_ref(&d), &[none], iters, 0.0).unwrap()
            });
            assert_eq!(run, iters);
            let p = psnr(&u[0]);
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

    /// With the PSF estimated from the image: the width within 25 %, and
    /// ≥ 2 dB (measured: 1.13, 1.42, 1.85 px on the planet blurred by 1,
    /// 1.5, 2 px; 0.99, 1.44, 1.87 on the surface; +2.6 to +8.9 dB).
    #[test]
    fn the_estimated_psf_recovers_2_db() {
        let (w, h) = SIZE;
        for (scene, sigma, truth, d) in cases() {
            let e = crate::psf::estimate_sigma(&d, w, h, DeconvolveParams::default().scene_sigma)
                .expect("a blur above the noise");
            eprintln!(
                "{scene:?} σ {sigma}: measured {:.3}, PSF {:.3}",
                e.measured, e.sigma
            );
            assert!(
                (e.sigma - sigma).abs() <= 0.25 * sigma,
                "{scene:?} σ {sigma}: estimated {:.3}",
                e.sigma
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
