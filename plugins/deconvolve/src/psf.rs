//! Point-spread functions (Gaussian, Moffat), their blur as an operator on
//! a plane (FFT convolution over a mirror-padded copy: no wrap-around at
//! the edges), and the estimate of the PSF width from the image itself.

use std::sync::Arc;

use jupiter_kit::align::fft_size;
use jupiter_kit::fft::{hann_window, row_frequency, Fft2d};
use realfft::num_complex::Complex32;

use crate::params::PsfModel;

/// Gaussian sigma to full width at half maximum.
pub const FWHM_PER_SIGMA: f32 = 2.354_82;

/// A centred, normalised PSF kernel of side `2 · radius + 1`.
#[derive(Debug, Clone)]
pub struct Kernel {
    pub radius: usize,
    pub taps: Vec<f32>,
}

impl Kernel {
    /// The model at width `sigma` (a Moffat of the same FWHM), cut where it
    /// falls below 1e-4 of its peak (at most 64 px from the centre).
    pub fn new(model: PsfModel, sigma: f32) -> Kernel {
        let sigma = sigma.max(0.05);
        let profile = |r2: f32| -> f32 {
            match model {
                PsfModel::Gaussian => (-r2 / (2.0 * sigma * sigma)).exp(),
                PsfModel::Moffat(beta) => {
                    // FWHM = 2 alpha sqrt(2^(1/beta) - 1).
                    let fwhm = FWHM_PER_SIGMA * sigma;
                    let alpha = fwhm / (2.0 * (2f32.powf(1.0 / beta) - 1.0).sqrt());
                    (1.0 + r2 / (alpha * alpha)).powf(-beta)
                }
            }
        };
        let radius = (1..=64)
            .find(|&r| profile((r * r) as f32) < 1e-4)
            .unwrap_or(64);
        let side = 2 * radius + 1;
        let mut taps: Vec<f32> = (0..side * side)
            .map(|i| {
                let (x, y) = (
                    (i % side) as f32 - radius as f32,
                    (i / side) as f32 - radius as f32,
                );
                profile(x * x + y * y)
            })
            .collect();
        let sum: f32 = taps.iter().sum();
        taps.iter_mut().for_each(|t| *t /= sum);
        Kernel { radius, taps }
    }
}

/// The blur by one kernel on `width × height` planes: the plane is padded by
/// mirroring (at least the kernel's radius, so the circular convolution of
/// the FFT never wraps into the result), transformed, multiplied by the
/// kernel's transfer function and cropped back.
pub struct Blur {
    pub width: usize,
    pub height: usize,
    pad: usize,
    fft: Arc<Fft2d>,
    /// The kernel's transfer function, scaled by 1 / (pixels of the padded
    /// plane) so that an inverse transform needs no further scaling.
    otf: Vec<Complex32>,
}

impl Blur {
    pub fn new(kernel: &Kernel, width: usize, height: usize) -> Blur {
        let pad = kernel.radius + 2;
        let (pw, ph) = (fft_size(width + 2 * pad), fft_size(height + 2 * pad));
        let fft = Fft2d::cached(pw, ph);
        let side = 2 * kernel.radius + 1;
        let mut wrapped = vec![0.0f32; pw * ph];
        for (i, t) in kernel.taps.iter().enumerate() {
            let (kx, ky) = (i % side, i / side);
            let x = (kx + pw - kernel.radius) % pw;
            let y = (ky + ph - kernel.radius) % ph;
            wrapped[y * pw + x] += t;
        }
        let scale = 1.0 / (pw * ph) as f32;
        let otf = fft
            .forward(&wrapped)
            .into_iter()
            .map(|c| c * scale)
            .collect();
        Blur {
            width,
            height,
            pad,
            fft,
            otf,
        }
    }

    /// The spatial frequency (cycles/px) of bin `i` of a padded spectrum.
    pub fn frequency(&self, i: usize) -> f64 {
        let (pw, ph, b) = (self.fft.width, self.fft.height, self.fft.bins());
        let (kx, ky) = (i % b, i / b);
        let fy = ky.min(ph - ky) as f64 / ph as f64;
        ((kx as f64 / pw as f64).powi(2) + fy * fy).sqrt()
    }

    /// Pixels of the padded plane (the transforms' unnormalised scale).
    pub fn padded_pixels(&self) -> usize {
        self.fft.width * self.fft.height
    }

    /// The transfer function (scaled), in the layout of [`Fft2d`] spectra.
    pub fn otf(&self) -> &[Complex32] {
        &self.otf
    }

    /// The spectrum of the mirror-padded plane.
    pub fn spectrum(&self, plane: &[f32]) -> Vec<Complex32> {
        self.fft.forward(&self.padded(plane))
    }

    /// A spectrum (already multiplied by whatever filter) back to a plane,
    /// cropped to the original size.
    pub fn plane(&self, spec: Vec<Complex32>) -> Vec<f32> {
        let full = self.fft.inverse(spec);
        let pw = self.fft.width;
        (0..self.height)
            .flat_map(|y| {
                let row = (y + self.pad) * pw + self.pad;
                full[row..row + self.width].to_vec()
            })
            .collect()
    }

    /// The plane convolved with the kernel.
    pub fn apply(&self, plane: &[f32]) -> Vec<f32> {
        let mut spec = self.spectrum(plane);
        spec.iter_mut().zip(&self.otf).for_each(|(s, h)| *s *= h);
        self.plane(spec)
    }

    fn padded(&self, plane: &[f32]) -> Vec<f32> {
        let (pw, ph) = (self.fft.width, self.fft.height);
        let mirror = |i: isize, n: usize| -> usize {
            let n = n as isize;
            let mut i = i;
            // Symmetric reflection (the edge sample repeated), then clamped
            // for paddings larger than the plane.
            if i < 0 {
                i = -i - 1;
            }
            if i >= n {
                i = 2 * n - i - 1;
            }
            i.clamp(0, n - 1) as usize
        };
        let mut out = vec![0.0f32; pw * ph];
        for y in 0..ph {
            let sy = mirror(y as isize - self.pad as isize, self.height);
            for x in 0..pw {
                let sx = mirror(x as isize - self.pad as isize, self.width);
                out[y * pw + x] = plane[sy * self.width + sx];
            }
        }
        out
    }
}

/// The model of a blurred scene's radially averaged power spectrum:
/// `P(f) = exp(ln_a) · f^−alpha · exp(−4π²σ²f²) + floor` (a power-law scene,
/// a Gaussian transfer function, white noise).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumFit {
    pub sigma: f32,
    pub ln_a: f64,
    pub alpha: f64,
    /// The noise power per bin.
    pub floor: f64,
}

impl SpectrumFit {
    /// The scene's own (unblurred, noise-free) power at `f` cycles/px.
    pub fn scene_power(&self, f: f64) -> f64 {
        (self.ln_a - self.alpha * f.max(1e-6).ln()).exp()
    }
}

/// What a spectrum fit takes as known: the blur's width (to fit the scene's
/// power law, for Wiener's noise-to-signal ratio) or the scene's spectral
/// slope (to fit the blur's width).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Known {
    Sigma(f32),
    Alpha(f64),
}

/// The spectral slope of a scene made of edges (a limb, crater rims, belt
/// boundaries): a step's power falls as f^-2 across it, f^-3 once radially
/// averaged. Fixing it takes away the trade between the slope and the blur
/// (both bend the same curve), which made a free fit of both unstable.
pub const EDGE_SLOPE: f64 = 3.0;

/// Fits [`SpectrumFit`] to the plane's radially averaged power spectrum
/// `P(f)`: the noise floor is the median power between 0.4 and 0.5
/// cycles/px (where a PSF of sigma ≥ 1 px has removed the signal); above
/// it, `ln(P − floor) = ln_a − alpha·ln f − 4π²σ²·f²` is fitted by least
/// squares over the bins between `MIN_FREQ` and 0.4 cycles/px that stand
/// 2× above the floor, with `alpha` or `σ` known. `None` when too few bins
/// do, or the fit is not a blur.
pub fn fit_spectrum(
    plane: &[f32],
    width: usize,
    height: usize,
    known: Known,
) -> Option<SpectrumFit> {
    let (bins, power) = radial_power(plane, width, height)?;
    let floor_bins: Vec<f32> = bins
        .iter()
        .zip(&power)
        .filter(|(f, _)| (0.4..=0.5).contains(*f))
        .map(|(_, p)| *p)
        .collect();
    let floor = jupiter_kit::stats::percentile(&floor_bins, 0.5) as f64;
    let lo = MIN_FREQ.max(3.0 / width.min(height) as f32);
    // (ln f, f², ln(P − floor)) of the usable bins.
    let pts: Vec<(f64, f64, f64)> = bins
        .iter()
        .zip(&power)
        .filter(|(f, p)| **f >= lo && **f < 0.4 && **p as f64 > 2.0 * floor)
        .map(|(f, p)| {
            (
                (*f as f64).ln(),
                (*f as f64).powi(2),
                (*p as f64 - floor).ln(),
            )
        })
        .collect();
    if pts.len() < 6 {
        return None;
    }
    let four_pi2 = 4.0 * std::f64::consts::PI.powi(2);
    match known {
        Known::Sigma(s) => {
            // z + 4π²σ²f² = ln_a − alpha·ln f.
            let shifted: Vec<(f64, f64)> = pts
                .iter()
                .map(|&(lf, f2, z)| (lf, z + four_pi2 * (s as f64).powi(2) * f2))
                .collect();
            let [ln_a, slope] = least_squares(&shifted)?;
            Some(SpectrumFit {
                sigma: s,
                ln_a,
                alpha: -slope,
                floor,
            })
        }
        Known::Alpha(alpha) => {
            // z + alpha·ln f = ln_a − 4π²σ²·f².
            let shifted: Vec<(f64, f64)> = pts
                .iter()
                .map(|&(lf, f2, z)| (f2, z + alpha * lf))
                .collect();
            let [ln_a, slope] = least_squares(&shifted)?;
            let sigma2 = -slope / four_pi2;
            (sigma2 > 0.0).then(|| SpectrumFit {
                sigma: sigma2.sqrt() as f32,
                ln_a,
                alpha,
                floor,
            })
        }
    }
}

/// The lowest frequency of the fit (cycles/px): below it a planet's disc
/// and large-scale shading, not the blur, shape the spectrum.
const MIN_FREQ: f32 = 0.04;

/// A PSF width estimated from the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The blur the spectrum shows (PSF and the scene's own finest width).
    pub measured: f32,
    /// The PSF's: `sqrt(measured² − scene_sigma²)`.
    pub sigma: f32,
}

/// Estimates the PSF's Gaussian sigma: [`fit_spectrum`] with the scene's
/// slope [`EDGE_SLOPE`], less `scene_sigma` in quadrature. A scene is not
/// made of points: its sharpest structures (a limb, a crater rim) have a
/// width of their own, which the spectrum adds in quadrature to the PSF's,
/// and deconvolving that too over-sharpens (rings) far more than
/// deconvolving a little less than the PSF costs. `None` when no blur
/// stands above the noise, or it is no wider than the scene's own.
pub fn estimate_sigma(
    plane: &[f32],
    width: usize,
    height: usize,
    scene_sigma: f32,
) -> Option<Estimate> {
    let fit = fit_spectrum(plane, width, height, Known::Alpha(EDGE_SLOPE))?;
    let psf2 = fit.sigma.powi(2) - scene_sigma.powi(2);
    (psf2 > 0.2f32.powi(2)).then(|| Estimate {
        measured: fit.sigma,
        sigma: psf2.sqrt(),
    })
}

/// A normalised 1-D Gaussian of radius `ceil(4σ)`: the separable form of
/// the Gaussian PSF (the 2-D kernel is its outer product).
pub fn gaussian_taps(sigma: f32) -> Vec<f32> {
    let sigma = sigma.max(0.05);
    let r = (4.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= sum);
    k
}

/// Radially averaged power spectrum of the windowed, mean-free plane, in
/// bins of 1 / min(w, h) cycles per pixel: (bin centre frequencies, powers).
fn radial_power(plane: &[f32], width: usize, height: usize) -> Option<(Vec<f32>, Vec<f32>)> {
    if width < 16 || height < 16 {
        return None;
    }
    let mean = plane.iter().map(|&v| v as f64).sum::<f64>() / plane.len() as f64;
    let window = hann_window(width, height);
    let centred: Vec<f32> = plane
        .iter()
        .zip(&window)
        .map(|(v, w)| (v - mean as f32) * w)
        .collect();
    let fft = Fft2d::cached(width, height);
    let spec = fft.forward(&centred);
    let step = 1.0 / width.min(height) as f32;
    let n = (0.71 / step) as usize + 1;
    let (mut sum, mut count) = (vec![0.0f64; n], vec![0usize; n]);
    let b = fft.bins();
    for (i, c) in spec.iter().enumerate() {
        let (kx, ky) = (i % b, i / b);
        let fy = row_frequency(ky, height).abs();
        let f = ((kx as f32 / width as f32).powi(2) + fy * fy).sqrt();
        let k = (f / step).round() as usize;
        if k < n {
            sum[k] += c.norm_sqr() as f64;
            count[k] += 1;
        }
    }
    let (bins, power) = (0..n)
        .filter(|&k| count[k] > 0)
        .map(|k| (k as f32 * step, (sum[k] / count[k] as f64) as f32))
        .unzip();
    Some((bins, power))
}

/// Least squares for `z = c0 + c1·x` over `(x, z)` points.
fn least_squares(pts: &[(f64, f64)]) -> Option<[f64; 2]> {
    let n = pts.len() as f64;
    let (sx, sz) = pts.iter().fold((0.0, 0.0), |(a, b), p| (a + p.0, b + p.1));
    let (mx, mz) = (sx / n, sz / n);
    let (sxx, sxz) = pts.iter().fold((0.0, 0.0), |(a, b), p| {
        (a + (p.0 - mx).powi(2), b + (p.0 - mx) * (p.1 - mz))
    });
    if sxx < 1e-12 {
        return None;
    }
    let c1 = sxz / sxx;
    Some([mz - c1 * mx, c1])
}
