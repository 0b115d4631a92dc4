//! CPU path of the `quality` stage.

use jupiter_kit::{conv, stats};
use jupiter_plugin_api::prelude::*;

use crate::params::{Metric, QualityParams};

/// Sharpness of one plane (no prefilter), ignoring a 1-pixel border.
///
/// Works row by row on slices (the inner loops vectorise); each row's sums
/// are taken in eight `f32` lanes and added to `f64` totals.
pub fn sharpness(plane: &[f32], w: usize, h: usize, metric: Metric) -> f64 {
    if w < 3 || h < 3 {
        return 0.0;
    }
    let (mut s, mut s2) = (0.0f64, 0.0f64);
    let mut v = vec![0.0f32; w - 2];
    for y in 1..h - 1 {
        let up = &plane[(y - 1) * w..y * w];
        let mid = &plane[y * w..(y + 1) * w];
        let dn = &plane[(y + 1) * w..(y + 2) * w];
        match metric {
            Metric::Laplacian => {
                for (x, o) in v.iter_mut().enumerate() {
                    *o = mid[x] + mid[x + 2] + up[x + 1] + dn[x + 1] - 4.0 * mid[x + 1];
                }
            }
            Metric::Tenengrad => {
                for (x, o) in v.iter_mut().enumerate() {
                    let gx =
                        (up[x + 2] + 2.0 * mid[x + 2] + dn[x + 2]) - (up[x] + 2.0 * mid[x] + dn[x]);
                    let gy = (dn[x] + 2.0 * dn[x + 1] + dn[x + 2])
                        - (up[x] + 2.0 * up[x + 1] + up[x + 2]);
                    *o = gx * gx + gy * gy;
                }
            }
        }
        let (rs, rs2) = lane_sums(&v);
        s += rs;
        s2 += rs2;
    }
    let n = ((w - 2) * (h - 2)) as f64;
    match metric {
        Metric::Laplacian => s2 / n - (s / n).powi(2),
        Metric::Tenengrad => s / n,
    }
}

/// Sum and sum of squares of `v`, accumulated in eight `f32` lanes.
fn lane_sums(v: &[f32]) -> (f64, f64) {
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            a[i] += c[i];
            b[i] += c[i] * c[i];
        }
    }
    let (mut s, mut s2) = (
        a.iter().map(|&x| x as f64).sum::<f64>(),
        b.iter().map(|&x| x as f64).sum::<f64>(),
    );
    for &x in rest {
        s += x as f64;
        s2 += (x * x) as f64;
    }
    (s, s2)
}

/// Scores one frame's luminance with the given parameters.
pub fn score_plane(lum: &[f32], w: usize, h: usize, p: &QualityParams) -> f32 {
    // The prefilter runs serially here: frames are already scored in parallel.
    let mut filtered = Vec::new();
    let plane = if p.prefilter_sigma > 0.0 {
        filtered.resize(lum.len(), 0.0);
        conv::separable_serial(
            lum,
            w,
            h,
            &conv::gaussian_kernel(p.prefilter_sigma),
            1,
            &mut filtered,
        );
        &filtered
    } else {
        lum
    };
    let mut s = sharpness(plane, w, h, p.metric);
    if p.normalize {
        let m = stats::mean(lum);
        s /= (m * m).max(1e-12);
    }
    s as f32
}

/// Scores every frame of the source, in parallel over frames.
pub fn score_all(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &QualityParams,
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    let (w, h, c) = info.dims();
    ctx.par_try_map(info.count as usize, 16, |i| {
        let frame = frames.frame(i)?;
        Ok(if c == 1 {
            score_plane(&frame, w, h, p)
        } else {
            score_plane(&stats::luminance(&frame, c), w, h, p)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::MemFrames;
    use jupiter_plugin_api::testing::ThreadBackend;

    fn texture(w: usize, h: usize) -> Vec<f32> {
        (0..w * h)
            .map(|i| 0.5 + 0.3 * (((i % w) as f32 * 0.9).sin() * ((i / w) as f32 * 0.7).cos()))
            .collect()
    }

    #[test]
    fn blur_lowers_the_score_for_both_metrics() {
        let (w, h) = (64, 48);
        let sharp = texture(w, h);
        let be = ThreadBackend::new(2);
        let soft = be
            .with_ctx("t", |ctx| conv::gaussian_blur(ctx, &sharp, w, h, 1.5))
            .unwrap();
        let softer = be
            .with_ctx("t", |ctx| conv::gaussian_blur(ctx, &sharp, w, h, 3.0))
            .unwrap();
        for metric in [Metric::Laplacian, Metric::Tenengrad] {
            let p = QualityParams {
                metric,
                ..Default::default()
            };
            let (a, b, c) = (
                score_plane(&sharp, w, h, &p),
                score_plane(&soft, w, h, &p),
                score_plane(&softer, w, h, &p),
            );
            assert!(a > b && b > c, "{metric:?}: {a} {b} {c}");
        }
    }

    #[test]
    fn normalisation_ignores_brightness() {
        let (w, h) = (32, 32);
        let a = texture(w, h);
        let dim: Vec<f32> = a.iter().map(|v| v * 0.5).collect();
        let p = QualityParams::default();
        let (sa, sd) = (score_plane(&a, w, h, &p), score_plane(&dim, w, h, &p));
        assert!((sa - sd).abs() / sa < 1e-4, "{sa} vs {sd}");
    }

    #[test]
    fn scores_every_frame_in_order() {
        let (w, h) = (32, 24);
        let be = ThreadBackend::new(2);
        let sharp = texture(w, h);
        let soft = be
            .with_ctx("t", |ctx| conv::gaussian_blur(ctx, &sharp, w, h, 2.0))
            .unwrap();
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            vec![soft.clone(), sharp.clone(), soft],
        );
        let scores = be
            .with_ctx("quality", |ctx| {
                score_all(ctx, &frames.as_ref(), &QualityParams::default())
            })
            .unwrap();
        assert_eq!(scores.len(), 3);
        assert!(scores[1] > scores[0] && (scores[0] - scores[2]).abs() < 1e-6);
    }
}
