//! Small image statistics shared by several plugins and the tests.

/// Luminance plane of an interleaved image (mean of its channels).
pub fn luminance(data: &[f32], channels: usize) -> Vec<f32> {
    jupiter_plugin_api::channel_mean(data, channels)
}

/// The `q`-quantile (0..=1) of `values`, by selection (values are copied).
pub fn percentile(values: &[f32], q: f64) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (_, x, _) = v.select_nth_unstable_by(k, |a, b| a.total_cmp(b));
    *x
}

/// `Σ a·b` over the common length, in eight `f32` lanes (vectorises; a
/// plain iterator sum is one serial chain of additions).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    crate::simd::wide(
        #[inline(always)]
        || {
            let n = a.len().min(b.len());
            let (a, b) = (&a[..n], &b[..n]);
            let mut lanes = [0.0f32; 8];
            let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
            let rest: f32 = ca
                .remainder()
                .iter()
                .zip(cb.remainder())
                .map(|(x, y)| x * y)
                .sum();
            for (x, y) in ca.zip(cb) {
                for i in 0..8 {
                    lanes[i] += x[i] * y[i];
                }
            }
            lanes.iter().sum::<f32>() + rest
        },
    )
}

/// Mean of a slice (0 for an empty one).
pub fn mean(values: &[f32]) -> f64 {
    crate::simd::wide(
        #[inline(always)]
        || {
            if values.is_empty() {
                return 0.0;
            }
            // Eight f32 lanes per block of 4096 values (vectorises), blocks summed in f64.
            let mut total = 0.0f64;
            for block in values.chunks(4096) {
                let mut lanes = [0.0f32; 8];
                let chunks = block.chunks_exact(8);
                let rest: f32 = chunks.remainder().iter().sum();
                for c in chunks {
                    for i in 0..8 {
                        lanes[i] += c[i];
                    }
                }
                total += lanes.iter().map(|&v| v as f64).sum::<f64>() + rest as f64;
            }
            total / values.len() as f64
        },
    )
}

/// Peak signal-to-noise ratio in dB of `a` against `truth`, for a peak of 1.0.
pub fn psnr(a: &[f32], truth: &[f32]) -> f64 {
    assert_eq!(a.len(), truth.len());
    let mse = a
        .iter()
        .zip(truth)
        .map(|(x, y)| ((x - y) as f64).powi(2))
        .sum::<f64>()
        / a.len() as f64;
    if mse == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (1.0 / mse).log10()
}

/// PSNR (dB, peak 1) of `a` against `truth` over the interior, `margin` pixels
/// away from every edge (where resampling replicates edge pixels).
pub fn psnr_interior(
    a: &[f32],
    truth: &[f32],
    w: usize,
    h: usize,
    ch: usize,
    margin: usize,
) -> f64 {
    let (mut se, mut n) = (0.0f64, 0usize);
    for y in margin..h.saturating_sub(margin) {
        for x in margin..w.saturating_sub(margin) {
            for c in 0..ch {
                let i = (y * w + x) * ch + c;
                se += ((a[i] - truth[i]) as f64).powi(2);
                n += 1;
            }
        }
    }
    if se == 0.0 {
        return f64::INFINITY;
    }
    10.0 * (n as f64 / se).log10()
}

/// [`psnr_interior`] after fitting each channel of `a` to the truth by a
/// gain and an offset (least squares over the same interior): for images
/// whose scale is not the truth's, such as a stretched output.
pub fn psnr_fitted(a: &[f32], truth: &[f32], w: usize, h: usize, ch: usize, margin: usize) -> f64 {
    psnr_interior(
        &fitted_to(a, truth, w, h, ch, margin),
        truth,
        w,
        h,
        ch,
        margin,
    )
}

/// `a` with each channel mapped by the gain and offset that best fit it to
/// the truth (least squares over the interior `margin` px from the edges).
pub fn fitted_to(
    a: &[f32],
    truth: &[f32],
    w: usize,
    h: usize,
    ch: usize,
    margin: usize,
) -> Vec<f32> {
    let mut fitted = a.to_vec();
    let inside = |i: usize| {
        let (x, y) = ((i / ch) % w, (i / ch) / w);
        x >= margin && y >= margin && x + margin < w && y + margin < h
    };
    for c in 0..ch {
        let idx: Vec<usize> = (c..a.len()).step_by(ch).filter(|&i| inside(i)).collect();
        let n = idx.len().max(1) as f64;
        let (ma, mt) = idx.iter().fold((0.0, 0.0), |s, &i| {
            (s.0 + a[i] as f64 / n, s.1 + truth[i] as f64 / n)
        });
        let (sat, saa) = idx.iter().fold((0.0, 0.0), |s, &i| {
            let da = a[i] as f64 - ma;
            (s.0 + da * (truth[i] as f64 - mt), s.1 + da * da)
        });
        let gain = if saa > 0.0 { sat / saa } else { 0.0 };
        for i in (c..a.len()).step_by(ch) {
            fitted[i] = (mt + gain * (a[i] as f64 - ma)) as f32;
        }
    }
    fitted
}

/// The noise standard deviation of a plane, robust to its detail: the
/// median absolute response of the Laplacian-like kernel
/// [1 −2 1; −2 4 −2; 1 −2 1] (zero on smooth gradients; 6σ of standard
/// deviation on white noise), over at most about 200 000 pixels.
pub fn noise_sigma(plane: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let responses: Vec<f32> = laplacian_samples(plane, w, h)
        .into_iter()
        .map(|s| s.1)
        .collect();
    percentile(&responses, 0.5) / (0.6745 * 6.0)
}

/// `(3×3 mean, |Laplacian-like response|)` at every pixel off the border
/// (a stride keeps it to about 200 000): [`noise_sigma`]'s kernel.
fn laplacian_samples(plane: &[f32], w: usize, h: usize) -> Vec<(f32, f32)> {
    let stride = ((w - 2) * (h - 2) / 200_000).max(1);
    let at = |x: usize, y: usize| plane[y * w + x];
    (0..(w - 2) * (h - 2))
        .step_by(stride)
        .map(|i| {
            let (x, y) = (i % (w - 2) + 1, i / (w - 2) + 1);
            let corners = at(x - 1, y - 1) + at(x + 1, y - 1) + at(x - 1, y + 1) + at(x + 1, y + 1);
            let edges = at(x, y - 1) + at(x - 1, y) + at(x + 1, y) + at(x, y + 1);
            let level = (corners + edges + at(x, y)) / 9.0;
            (level, (corners - 2.0 * edges + 4.0 * at(x, y)).abs())
        })
        .collect()
}

/// Per-frame stacking weights: all 1, or `(score / best score) ^ power`
/// when `on` (and one score per frame is there).
pub fn quality_weights(scores: &[f32], n: usize, on: bool, power: f32) -> Vec<f32> {
    if !on || scores.len() != n {
        return vec![1.0; n];
    }
    let max = scores.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return vec![1.0; n];
    }
    scores
        .iter()
        .map(|s| (s.max(0.0) / max).powf(power))
        .collect()
}

/// Signal-dependent noise: the variance of a sample of level `v` is
/// `read + shot · max(v, 0)` (read noise plus photon noise, which a stack
/// keeps in proportion). A planet's dark sky and its bright disc differ in
/// noise by orders of magnitude, so one figure for the whole image (what
/// [`noise_sigma`] gives, the median: the sky's where the sky is most of the
/// frame) misjudges the disc.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NoiseModel {
    pub read: f32,
    pub shot: f32,
}

impl NoiseModel {
    /// The variance at level `v`.
    #[inline]
    pub fn variance(&self, v: f32) -> f32 {
        self.read + self.shot * v.max(0.0)
    }
}

/// Fits [`NoiseModel`] to a plane: the pixels (at most about 200 000) are
/// sorted by their 3×3 mean into 16 bins of equal count; each bin's noise
/// variance is [`noise_sigma`]'s robust Laplacian estimate over its pixels;
/// a least-squares line through (level, variance) gives `read` and `shot`,
/// both kept ≥ 0 (a line with a negative intercept is refitted through the
/// origin; one with a negative slope becomes the bins' median variance).
pub fn noise_model(plane: &[f32], w: usize, h: usize) -> NoiseModel {
    if w < 3 || h < 3 {
        return NoiseModel {
            read: 0.0,
            shot: 0.0,
        };
    }
    let mut samples = laplacian_samples(plane, w, h);
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    const BINS: usize = 16;
    let per = (samples.len() / BINS).max(1);
    let points: Vec<(f64, f64)> = samples
        .chunks(per)
        .filter(|c| c.len() * 2 >= per)
        .map(|c| {
            let level = c[c.len() / 2].0 as f64;
            let r: Vec<f32> = c.iter().map(|s| s.1).collect();
            let sigma = percentile(&r, 0.5) as f64 / (0.6745 * 6.0);
            (level, sigma * sigma)
        })
        .collect();
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
    let (sxy, sxx) = points.iter().fold((0.0, 0.0), |a, p| {
        (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx).powi(2))
    });
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let (read, shot) = if slope <= 0.0 {
        let v: Vec<f32> = points.iter().map(|p| p.1 as f32).collect();
        (percentile(&v, 0.5) as f64, 0.0)
    } else if my - slope * mx < 0.0 {
        let (sxy0, sxx0) = points
            .iter()
            .fold((0.0, 0.0), |a, p| (a.0 + p.0 * p.1, a.1 + p.0 * p.0));
        (0.0, (sxy0 / sxx0.max(1e-30)).max(0.0))
    } else {
        (my - slope * mx, slope)
    };
    NoiseModel {
        read: read as f32,
        shot: shot as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..40).map(|i| (i as f32 * 0.11).cos()).collect();
        let want: f64 = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (*x as f64) * (*y as f64))
            .sum();
        assert!(
            (dot(&a, &b) as f64 - want).abs() < 1e-5,
            "{} vs {want}",
            dot(&a, &b)
        );
        assert_eq!(dot(&[], &b), 0.0);
    }

    #[test]
    fn percentile_of_ramp() {
        let v: Vec<f32> = (0..101).map(|i| i as f32).collect();
        assert_eq!(percentile(&v, 0.0), 0.0);
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
    }

    #[test]
    fn psnr_of_known_error() {
        let t = vec![0.5f32; 100];
        let a = vec![0.6f32; 100];
        assert!((psnr(&a, &t) - 20.0).abs() < 1e-3);
        assert!(psnr(&t, &t).is_infinite());
    }

    #[test]
    fn luminance_averages_channels() {
        let l = luminance(&[0.3, 0.6, 0.9, 0.0, 0.0, 0.3], 3);
        assert!((l[0] - 0.6).abs() < 1e-6 && (l[1] - 0.1).abs() < 1e-6);
    }

    #[test]
    fn the_noise_model_separates_read_and_shot_noise() {
        // A smooth ramp 0..1 with noise of variance 1e-6 + 4e-4 · level.
        let (w, h) = (400, 300);
        let mut state = 7u64;
        let mut gauss = || {
            let mut u = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 11) as f64 / (1u64 << 53) as f64
            };
            let (a, b) = (u().max(1e-12), u());
            ((-2.0 * a.ln()).sqrt() * (2.0 * std::f64::consts::PI * b).cos()) as f32
        };
        let plane: Vec<f32> = (0..w * h)
            .map(|i| {
                let v = (i % w) as f32 / w as f32;
                v + (1e-6 + 4e-4 * v).sqrt() * gauss()
            })
            .collect();
        let m = noise_model(&plane, w, h);
        assert!((m.shot - 4e-4).abs() < 0.4e-4, "{m:?}");
        assert!(m.read < 2e-5, "{m:?}");
        assert!((m.variance(0.5) - 2.01e-4).abs() < 0.2e-4, "{m:?}");
    }

    #[test]
    fn the_fitted_psnr_ignores_gain_and_offset() {
        let truth: Vec<f32> = (0..400).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let scaled: Vec<f32> = truth.iter().map(|v| 0.2 + 3.0 * v).collect();
        assert!(psnr_fitted(&scaled, &truth, 20, 20, 1, 2) > 100.0);
        let noisy: Vec<f32> = truth
            .iter()
            .enumerate()
            .map(|(i, v)| v + if i % 2 == 0 { 0.01 } else { -0.01 })
            .collect();
        let p = psnr_fitted(&noisy, &truth, 20, 20, 1, 2);
        assert!((p - 40.0).abs() < 0.5, "{p}");
    }
}
