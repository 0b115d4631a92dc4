//! CPU paths of `stack-sigma-clip`: the fast pixel-major path used by the
//! stage (in-place partitioning, selection for the median) and a simple
//! reference (new vectors, full sorts) it is tested against.
//!
//! The per-pixel rule, shared by both: start with all kept samples (weight
//! `> 0`); each pass computes the centre (median: the middle value, or the mean
//! of the two middle values), the population standard deviation `sigma` of
//! the samples still kept, and the bounds `[centre − kappa_low·sigma, centre +
//! kappa_high·sigma]`. The pass keeps the samples within the bounds, unless it
//! would keep all of them (converged) or fewer than `min_frames` (not applied);
//! both end the loop, as do `sigma = 0` and `max_iterations` passes. `clip`
//! returns the mean of the kept samples; `winsorize` the mean of all samples
//! clamped to the bounds of the last applied pass (the plain mean when no pass
//! was applied). A pixel with no sample gives 0.

use jupiter_kit::tile::{median_in_place, median_sorted, naive_stack, stack_bands};
use jupiter_plugin_api::prelude::*;

use crate::params::{ClipConfig, Mode, SigmaClipParams};

/// Stacks the source under the alignment with kappa-sigma clipping per output
/// sample (see the module docs for the rule).
///
/// Memory bound: the output (`W·H·C` floats) plus, per running band (at most
/// one per worker thread), `N·R·W·C` pixel-major samples and `O(R·W·C)`
/// resampling buffers, where `N` is the frame count and `R` the band's rows
/// ([`jupiter_kit::tile::band_rows`]). The frame set is never copied.
pub fn stack(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &SigmaClipParams,
) -> Result<Image, StageError> {
    let cfg = p.config()?;
    stack_bands(ctx, frames, &req.alignment.warps, p.interpolation, |v| {
        clip_in_place(v, &cfg)
    })
}

/// The reference: every frame resampled whole, each output sample's kept
/// samples gathered into a new `Vec` and reduced by [`clip_reference`].
/// Holds all aligned frames: for tests only.
pub fn stack_reference(
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &SigmaClipParams,
) -> Result<Image, StageError> {
    let cfg = p.config()?;
    naive_stack(frames, &req.alignment.warps, p.interpolation, |v| {
        clip_reference(&v, &cfg)
    })
}

/// Mean and population standard deviation (two passes, in `f64`).
fn mean_sd(v: &[f32]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
    let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The clipped value of one output sample's samples `v`, which it reorders:
/// the kept samples are moved to the front of `v` pass by pass (no
/// allocation), the median is found by selection.
pub fn clip_in_place(v: &mut [f32], cfg: &ClipConfig) -> f32 {
    let m = v.len();
    if m == 0 {
        return 0.0;
    }
    let mut k = m;
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    for _ in 0..cfg.max_iterations {
        let (_, sd) = mean_sd(&v[..k]);
        if sd <= 0.0 || !sd.is_finite() {
            break;
        }
        let centre = median_in_place(&mut v[..k]) as f64;
        let (l, h) = (centre - cfg.kappa_low * sd, centre + cfg.kappa_high * sd);
        let inside = |x: f32| (l..=h).contains(&(x as f64));
        let kept = v[..k].iter().filter(|&&x| inside(x)).count();
        if kept == k || kept < cfg.min_frames {
            break;
        }
        let mut j = 0;
        for i in 0..k {
            if inside(v[i]) {
                v.swap(i, j);
                j += 1;
            }
        }
        k = kept;
        (lo, hi) = (l, h);
    }
    let mean = match cfg.mode {
        Mode::Clip => v[..k].iter().map(|&x| x as f64).sum::<f64>() / k as f64,
        Mode::Winsorize => v.iter().map(|&x| (x as f64).clamp(lo, hi)).sum::<f64>() / m as f64,
    };
    mean as f32
}

/// The clipped value of `samples` by the rule in the module docs, written
/// plainly: a new vector per pass, the median by a full sort.
pub fn clip_reference(samples: &[f32], cfg: &ClipConfig) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut kept = samples.to_vec();
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    for _ in 0..cfg.max_iterations {
        let (_, sd) = mean_sd(&kept);
        if sd <= 0.0 || !sd.is_finite() {
            break;
        }
        let centre = median_sorted(&kept) as f64;
        let (l, h) = (centre - cfg.kappa_low * sd, centre + cfg.kappa_high * sd);
        let next: Vec<f32> = kept
            .iter()
            .copied()
            .filter(|&x| x as f64 >= l && x as f64 <= h)
            .collect();
        if next.len() == kept.len() || next.len() < cfg.min_frames {
            break;
        }
        kept = next;
        lo = l;
        hi = h;
    }
    let mean = match cfg.mode {
        Mode::Clip => kept.iter().map(|&x| x as f64).sum::<f64>() / kept.len() as f64,
        Mode::Winsorize => {
            samples
                .iter()
                .map(|&x| (x as f64).max(lo).min(hi))
                .sum::<f64>()
                / samples.len() as f64
        }
    };
    mean as f32
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
    use jupiter_plugin_api::WarpField;
    use jupiter_testkit::frames::Rng;

    fn run(mem: &MemFrames, req: &StackRequest, p: &SigmaClipParams) -> Result<Image, StageError> {
        let be = ThreadBackend::new(3);
        be.with_ctx("stack-sigma-clip", |ctx| stack(ctx, &mem.as_ref(), req, p))
    }

    fn cfg(p: &SigmaClipParams) -> ClipConfig {
        p.config().unwrap()
    }

    /// Nine samples near 0.5 and one far outlier.
    fn with_outlier() -> Vec<f32> {
        vec![0.50, 0.52, 0.48, 0.51, 0.49, 0.50, 0.53, 0.47, 0.50, 1.0]
    }

    #[test]
    fn clip_rejects_an_outlier_and_winsorize_clamps_it() {
        let v = with_outlier();
        let clip = cfg(&SigmaClipParams::default());
        let c = clip_reference(&v, &clip);
        assert!((c - 0.5).abs() < 1e-6, "clipped mean {c}");
        assert_eq!(clip_in_place(&mut v.clone(), &clip), c);
        let win = cfg(&SigmaClipParams {
            mode: "winsorize".into(),
            ..Default::default()
        });
        let wz = clip_reference(&v, &win);
        // The outlier is replaced by the upper bound: above the clipped mean,
        // well below the plain mean (0.55).
        assert!(wz > c + 1e-4 && wz < 0.54, "winsorized mean {wz}");
        assert!((clip_in_place(&mut v.clone(), &win) - wz).abs() < 1e-6);
    }

    #[test]
    fn min_frames_and_zero_iterations_leave_the_plain_mean() {
        let v = with_outlier();
        let plain = v.iter().sum::<f32>() / v.len() as f32;
        for p in [
            SigmaClipParams {
                max_iterations: 0,
                ..Default::default()
            },
            SigmaClipParams {
                min_frames: 10,
                ..Default::default()
            },
        ] {
            assert!((clip_reference(&v, &cfg(&p)) - plain).abs() < 1e-6);
            assert!((clip_in_place(&mut v.clone(), &cfg(&p)) - plain).abs() < 1e-6);
        }
        // Identical samples: sigma 0, nothing to clip.
        assert_eq!(
            clip_in_place(&mut [0.25; 5], &cfg(&SigmaClipParams::default())),
            0.25
        );
        assert_eq!(
            clip_in_place(&mut [], &cfg(&SigmaClipParams::default())),
            0.0
        );
    }

    #[test]
    fn per_pixel_fast_rule_equals_the_reference() {
        let mut rng = Rng::new(5);
        let params = [
            SigmaClipParams::default(),
            SigmaClipParams {
                mode: "winsorize".into(),
                ..Default::default()
            },
            SigmaClipParams {
                kappa_low: 1.0,
                kappa_high: 1.5,
                max_iterations: 20,
                min_frames: 2,
                ..Default::default()
            },
            SigmaClipParams {
                kappa_low: 0.5,
                kappa_high: 0.5,
                mode: "winsorize".into(),
                ..Default::default()
            },
        ];
        for m in 0..60 {
            let v: Vec<f32> = (0..m)
                .map(|_| {
                    if rng.uniform_f32() < 0.15 {
                        rng.uniform_f32()
                    } else {
                        0.4 + 0.05 * rng.gauss()
                    }
                })
                .collect();
            for p in &params {
                let c = cfg(p);
                let (a, b) = (clip_in_place(&mut v.clone(), &c), clip_reference(&v, &c));
                assert!((a - b).abs() <= 1e-6, "{m} samples, {p:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn fast_path_equals_the_reference_stack() {
        let mut rng = Rng::new(9);
        let (w, h) = (21, 35);
        for (n, ch, mode) in [
            (1, 1, "clip"),
            (4, 3, "winsorize"),
            (12, 1, "clip"),
            (25, 3, "clip"),
            (25, 1, "winsorize"),
        ] {
            let frames: Vec<Vec<f32>> = (0..n)
                .map(|_| {
                    (0..w * h * ch)
                        .map(|_| {
                            if rng.uniform_f32() < 0.1 {
                                1.0
                            } else {
                                0.3 + 0.05 * rng.gauss()
                            }
                        })
                        .collect()
                })
                .collect();
            let mem = MemFrames::new(w as u32, h as u32, ch as u32, frames);
            let warps: Vec<FrameWarp> = (0..n)
                .map(|i| {
                    let (dx, dy) = (rng.range_f32(-1.5, 1.5), rng.range_f32(-1.5, 1.5));
                    if i % 4 != 3 {
                        return FrameWarp::shift(dx, dy);
                    }
                    // A field that drops this frame on the left part of the image.
                    let values = [vec![0.3, -0.2], vec![0.1, 0.4], vec![0.0, 1.0]];
                    let field = WarpField::new((2, 1), (5.0, 0.0), (10.0, 1.0), values);
                    FrameWarp::with_field(dx, dy, field)
                })
                .collect();
            let req = StackRequest::new(warps);
            let p = SigmaClipParams {
                mode: mode.into(),
                ..Default::default()
            };
            let fast = run(&mem, &req, &p).unwrap();
            let reference = stack_reference(&mem.as_ref(), &req, &p).unwrap();
            let err = jupiter_testkit::reference::max_abs_diff(&fast.data, &reference.data);
            assert!(
                err <= 1e-5,
                "{n} frames, {ch} channels, {mode}: max difference {err}"
            );
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        jupiter_testkit::reference::stack_contract_errors(
            &crate::StackSigmaClip,
            "stack-sigma-clip",
        );
        let mem = MemFrames::new(4, 4, 1, vec![vec![0.0; 16]; 2]);
        let bad = SigmaClipParams {
            mode: "median".into(),
            ..Default::default()
        };
        assert_eq!(
            run(
                &mem,
                &StackRequest::new(vec![FrameWarp::shift(0.0, 0.0); 2]),
                &bad
            )
            .unwrap_err()
            .kind,
            ErrorKind::InvalidParams
        );
    }

    #[test]
    fn sigma_clip_beats_the_mean_on_frames_with_artifacts() {
        jupiter_testkit::reference::beats_the_mean_on_artifacts(|mem, req| {
            ["clip", "winsorize"]
                .map(|mode| {
                    let p = SigmaClipParams {
                        mode: mode.into(),
                        ..Default::default()
                    };
                    (format!("sigma-clip ({mode})"), run(mem, req, &p).unwrap())
                })
                .into()
        });
    }
}
