//! Small image statistics shared by several plugins and the tests.

/// Luminance plane of an interleaved image (mean of its channels).
pub fn luminance(data: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return data.to_vec();
    }
    if channels == 3 {
        // The common case, written out (the same sum order as below).
        return data
            .chunks_exact(3)
            .map(|p| (p[0] + p[1] + p[2]) / 3.0)
            .collect();
    }
    data.chunks_exact(channels)
        .map(|p| p.iter().sum::<f32>() / channels as f32)
        .collect()
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

/// Mean of a slice (0 for an empty one).
pub fn mean(values: &[f32]) -> f64 {
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

/// The noise standard deviation of a plane, robust to its detail: the
/// median absolute response of the Laplacian-like kernel
/// [1 −2 1; −2 4 −2; 1 −2 1] (zero on smooth gradients; 6σ of standard
/// deviation on white noise), over at most about 200 000 pixels.
pub fn noise_sigma(plane: &[f32], w: usize, h: usize) -> f32 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let stride = ((w - 2) * (h - 2) / 200_000).max(1);
    let at = |x: usize, y: usize| plane[y * w + x];
    let responses: Vec<f32> = (0..(w - 2) * (h - 2))
        .step_by(stride)
        .map(|i| {
            let (x, y) = (i % (w - 2) + 1, i / (w - 2) + 1);
            let corners = at(x - 1, y - 1) + at(x + 1, y - 1) + at(x - 1, y + 1) + at(x + 1, y + 1);
            let edges = at(x, y - 1) + at(x - 1, y) + at(x + 1, y) + at(x, y + 1);
            (corners - 2.0 * edges + 4.0 * at(x, y)).abs()
        })
        .collect();
    percentile(&responses, 0.5) / (0.6745 * 6.0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
