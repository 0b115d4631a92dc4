//! CPU path of `sharpen-wavelet`.

use jupiter_kit::conv::{self, B3_SPLINE};
use jupiter_plugin_api::prelude::*;

use crate::params::LayerSettings;

/// Samples per parallel task of the per-pixel passes.
const CHUNK: usize = 16 * 1024;

/// MAD-to-sigma factor of a normal distribution.
const MAD_TO_SIGMA: f32 = 0.6745;

/// Soft thresholding: shrinks `d` towards 0 by `t` (values within `±t` become 0).
#[inline]
pub fn soft(d: f32, t: f32) -> f32 {
    if t <= 0.0 {
        d
    } else if d > t {
        d - t
    } else if d < -t {
        d + t
    } else {
        0.0
    }
}

/// One smoothing step of the à-trous transform: `next = B3 ⊛ cur`, taps
/// `2^level` pixels apart.
fn smooth(
    ctx: &StageCtx,
    cur: &[f32],
    w: usize,
    h: usize,
    level: usize,
    next: &mut [f32],
) -> Result<(), StageError> {
    conv::separable(ctx, cur, w, h, &B3_SPLINE, 1 << level, next)
}

/// The à-trous decomposition of one plane: `layers` detail planes (finest
/// first) and the residual, such that `residual + Σ details = plane`.
pub fn decompose(
    ctx: &StageCtx,
    plane: &[f32],
    w: usize,
    h: usize,
    layers: usize,
) -> Result<(Vec<Vec<f32>>, Vec<f32>), StageError> {
    let mut cur = plane.to_vec();
    let mut details = Vec::with_capacity(layers);
    for j in 0..layers {
        let mut next = vec![0.0; cur.len()];
        smooth(ctx, &cur, w, h, j, &mut next)?;
        details.push(cur.iter().zip(&next).map(|(c, n)| c - n).collect());
        cur = next;
    }
    Ok((details, cur))
}

/// Robust noise sigma of a detail layer `cur - next`: median(|d|) / 0.6745.
/// `scratch` (same length) receives |d| and is reordered.
fn noise_sigma(
    ctx: &StageCtx,
    cur: &[f32],
    next: &[f32],
    scratch: &mut [f32],
) -> Result<f32, StageError> {
    ctx.par_chunks_mut(scratch, CHUNK, |c, s| {
        let base = c * CHUNK;
        for (i, v) in s.iter_mut().enumerate() {
            *v = (cur[base + i] - next[base + i]).abs();
        }
    })?;
    if scratch.is_empty() {
        return Ok(0.0);
    }
    let k = scratch.len() / 2;
    let (_, median, _) = scratch.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    Ok(*median / MAD_TO_SIGMA)
}

/// Sharpens one plane: `residual + Σ gain_j · soft(detail_j, threshold_j · sigma_j)`.
///
/// Memory: four planes (current and next smoothing, output, |detail| scratch
/// when a threshold is set) plus the convolution's temporary plane.
/// `on_layer(j, sigma)` is called after each layer (sigma = 0 when the
/// layer's threshold is off and no noise estimate was made).
pub fn sharpen_plane(
    ctx: &StageCtx,
    plane: &[f32],
    w: usize,
    h: usize,
    s: &LayerSettings,
    mut on_layer: impl FnMut(usize, f32),
) -> Result<Vec<f32>, StageError> {
    let n = plane.len();
    let mut cur = plane.to_vec();
    let mut next = vec![0.0f32; n];
    let mut out = vec![0.0f32; n];
    let mut scratch = Vec::new();
    for (j, (&gain, &thr)) in s.gains.iter().zip(&s.thresholds).enumerate() {
        smooth(ctx, &cur, w, h, j, &mut next)?;
        let sigma = if thr > 0.0 {
            scratch.resize(n, 0.0);
            noise_sigma(ctx, &cur, &next, &mut scratch)?
        } else {
            0.0
        };
        let t = thr * sigma;
        let (c, nx) = (&cur, &next);
        ctx.par_chunks_mut(&mut out, CHUNK, |k, o| {
            let base = k * CHUNK;
            for (i, ov) in o.iter_mut().enumerate() {
                *ov += gain * soft(c[base + i] - nx[base + i], t);
            }
        })?;
        std::mem::swap(&mut cur, &mut next);
        on_layer(j, sigma);
    }
    // `cur` is now the residual (the coarsest smoothing).
    let r = &cur;
    ctx.par_chunks_mut(&mut out, CHUNK, |k, o| {
        let base = k * CHUNK;
        for (i, ov) in o.iter_mut().enumerate() {
            *ov += r[base + i];
        }
    })?;
    Ok(out)
}

/// Sharpens an interleaved image, each channel with the same settings.
/// Non-finite input samples are treated as 0 (and reported).
pub fn sharpen(ctx: &StageCtx, image: Image, s: &LayerSettings) -> Result<Image, StageError> {
    if image.data.len() != image.len() {
        return Err(StageError::unsupported(
            "image pixels are not in host memory: the CPU path reads host memory, so the host must download the image first",
        ));
    }
    if image.is_empty() {
        return Ok(image);
    }
    let (w, h, ch) = image.dims();
    let mut data = image.data.into_vec();
    let bad = data.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        ctx.warn(&format!("{bad} non-finite input samples treated as 0"));
        data.iter_mut()
            .filter(|v| !v.is_finite())
            .for_each(|v| *v = 0.0);
    }
    let layers = s.gains.len();
    let total = (layers * ch) as u64;
    let mut channel = 0usize;
    let out = conv::per_channel(&data, ch, |plane| {
        let k = channel;
        channel += 1;
        sharpen_plane(ctx, plane, w, h, s, |j, sigma| {
            if sigma > 0.0 {
                ctx.log(
                    LogLevel::Debug,
                    &format!(
                        "channel {k} layer {}: noise sigma {sigma:.3e}, threshold {:.3e}",
                        j + 1,
                        sigma * s.thresholds[j]
                    ),
                );
            }
            ctx.progress((k * layers + j + 1) as u64, total);
        })
    })?;
    Ok(Image::from_vec(
        image.width,
        image.height,
        image.channels,
        out,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::WaveletParams;
    use jupiter_kit::stats::psnr;
    use jupiter_plugin_api::testing::ThreadBackend;

    /// A deterministic uniform generator in [0, 1) (the test kit's one RNG).
    fn rng(seed: u64) -> impl FnMut() -> f32 {
        let mut r = jupiter_testkit::Rng::new(seed);
        move || r.uniform_f32()
    }

    /// A sharp synthetic planet: a limb-darkened disc with latitude bands of
    /// several widths, two thin belts, a few small spots (2-4 px) and a moon
    /// shadow, on a black sky.
    fn planet(w: usize, h: usize) -> Vec<f32> {
        let (cx, cy, r) = (w as f32 * 0.5, h as f32 * 0.5, w.min(h) as f32 * 0.4);
        let spots = [
            (0.3f32, -0.2f32, 3.5f32, 0.35f32),
            (-0.4, 0.3, 2.0, -0.3),
            (0.1, 0.45, 2.5, 0.3),
            (-0.2, -0.5, 4.0, -0.25),
        ];
        let mut v = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = ((x as f32 + 0.5 - cx) / r, (y as f32 + 0.5 - cy) / r);
                let rr = dx * dx + dy * dy;
                if rr > 1.0 {
                    continue;
                }
                let mu = (1.0 - rr).sqrt();
                let lat = dy * r; // pixels from the equator
                let mut b = 0.55
                    + 0.12 * (lat * 0.35).sin()
                    + 0.08 * (lat * 0.9 + 0.5).sin()
                    + 0.05 * (lat * 1.7).cos();
                if (lat - 9.0).abs() < 1.0 || (lat + 14.0).abs() < 1.5 {
                    b -= 0.18;
                }
                for (sx, sy, sr, a) in spots {
                    let (ex, ey) = ((dx - sx) * r, (dy - sy) * r);
                    if ex * ex + ey * ey < sr * sr {
                        b += a;
                    }
                }
                if ((dx + 0.15) * r).powi(2) + ((dy - 0.1) * r).powi(2) < 9.0 {
                    b = 0.05;
                }
                v[y * w + x] = b * (0.4 + 0.6 * mu);
            }
        }
        v
    }

    fn max_err(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn layers_sum_back_to_the_input() {
        let (w, h) = (61, 47);
        let mut r = rng(7);
        let img: Vec<f32> = planet(w, h).iter().map(|v| v + 0.05 * r()).collect();
        let be = ThreadBackend::new(3);
        be.with_ctx("sharpen-wavelet", |ctx| {
            let (details, residual) = decompose(ctx, &img, w, h, 6).unwrap();
            let mut sum = residual.clone();
            for d in &details {
                sum.iter_mut().zip(d).for_each(|(s, v)| *s += v);
            }
            let e = max_err(&sum, &img);
            assert!(e <= 1e-5, "decomposition: max error {e}");
            // The stage itself with neutral settings is the identity.
            let s = LayerSettings {
                gains: vec![1.0; 6],
                thresholds: vec![0.0; 6],
            };
            let out = sharpen_plane(ctx, &img, w, h, &s, |_, _| {}).unwrap();
            let e = max_err(&out, &img);
            assert!(e <= 1e-5, "unit gains: max error {e}");
        });
    }

    /// Blurs the truth (gaussian sigma 1.5), optionally adds uniform noise in `±noise`,
    /// sharpens with the defaults; returns (PSNR blurred, PSNR sharpened).
    fn blur_then_sharpen(noise: f32) -> (f64, f64) {
        let (w, h) = (160, 144);
        let truth = planet(w, h);
        let be = ThreadBackend::new(3);
        be.with_ctx("sharpen-wavelet", |ctx| {
            let mut r = rng(42);
            let blurred: Vec<f32> = conv::gaussian_blur(ctx, &truth, w, h, 1.5)
                .unwrap()
                .into_iter()
                .map(|v| v + noise * (r() - 0.5) * 2.0)
                .collect();
            let (s, _) = WaveletParams::default().resolve().unwrap();
            let img = Image::from_vec(w as u32, h as u32, 1, blurred.clone());
            let out = sharpen(ctx, img, &s).unwrap();
            assert!(out.data.iter().all(|v| v.is_finite()));
            (psnr(&blurred, &truth), psnr(&out.data, &truth))
        })
    }

    #[test]
    fn defaults_sharpen_a_blurred_planet() {
        let (before, after) = blur_then_sharpen(0.0);
        eprintln!("noise-free: PSNR blurred {before:.2} dB, sharpened {after:.2} dB");
        assert!(
            after > before + 1.5,
            "PSNR blurred {before:.2} dB -> sharpened {after:.2} dB (wanted a gain of > 1.5 dB)"
        );
    }

    #[test]
    fn defaults_sharpen_a_blurred_noisy_planet() {
        let (before, after) = blur_then_sharpen(0.01);
        eprintln!("noise ±0.01: PSNR blurred {before:.2} dB, sharpened {after:.2} dB");
        assert!(after > before + 1.0, "PSNR blurred+noise {before:.2} dB -> sharpened {after:.2} dB (wanted a gain of > 1 dB)");
    }

    #[test]
    fn rgb_channels_share_the_settings() {
        let (w, h) = (33, 29);
        let mono = planet(w, h);
        let rgb: Vec<f32> = mono.iter().flat_map(|&v| [v, v, v]).collect();
        let be = ThreadBackend::new(2);
        let (s, _) = WaveletParams::default().resolve().unwrap();
        be.with_ctx("sharpen-wavelet", |ctx| {
            let out = sharpen(ctx, Image::from_vec(w as u32, h as u32, 3, rgb), &s).unwrap();
            let m = sharpen(ctx, Image::from_vec(w as u32, h as u32, 1, mono), &s).unwrap();
            for (p, v) in out.data.chunks_exact(3).zip(m.data.iter()) {
                assert_eq!(p[0], p[1]);
                assert_eq!(p[1], p[2]);
                assert!((p[0] - v).abs() <= 1e-6);
            }
        });
    }

    #[test]
    fn odd_tiny_and_non_finite_inputs_do_not_panic() {
        let be = ThreadBackend::new(2);
        let (s, _) = WaveletParams::default().resolve().unwrap();
        be.with_ctx("sharpen-wavelet", |ctx| {
            for (w, h) in [(1, 1), (1, 7), (5, 1), (3, 2)] {
                let img = Image::from_vec(w, h, 1, (0..w * h).map(|i| i as f32 * 0.1).collect());
                let out = sharpen(ctx, img, &s).unwrap();
                assert!(out.data.iter().all(|v| v.is_finite()));
            }
            let img = Image::from_vec(2, 2, 1, vec![f32::NAN, 0.5, f32::INFINITY, 0.2]);
            let out = sharpen(ctx, img, &s).unwrap();
            assert!(out.data.iter().all(|v| v.is_finite()));
            assert!(sharpen(ctx, Image::new(0, 0, 3), &s).unwrap().is_empty());
        });
    }

    #[test]
    fn soft_threshold_shrinks_towards_zero() {
        assert_eq!(soft(0.5, 0.25), 0.25);
        assert_eq!(soft(-0.5, 0.25), -0.25);
        assert_eq!(soft(0.125, 0.25), 0.0);
        assert_eq!(soft(-0.7, 0.0), -0.7);
    }
}
