//! # stack-trimmed-mean: a third-party stacker for jupiter
//!
//! For every output pixel, the samples of all aligned frames at that pixel are
//! sorted and the `trim` fraction at each end is either dropped (trimmed mean)
//! or clamped to the nearest kept value (winsorized mean, `winsorize = true`)
//! before averaging. Satellites, cosmic rays, hot pixels and the odd
//! badly-aligned frame fall into the trimmed tails.
//!
//! Frames stream band by band (like jupiter's own `stack-mean`): for each band
//! of output rows, every frame's needed input rows are read from the host,
//! resampled under the frame's warp (bilinear) and stored pixel-major (all
//! samples of one pixel side by side), so memory is bounded by the band, not
//! by the capture. Bands run in parallel on the host's thread pool through
//! `ctx.par_chunks_mut`; the stage checks for cancellation between frames.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use jupiter_plugin_api::prelude::*;
use serde::Deserialize;

/// The stage's parameters (JSON from the host, validated against the manifest).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrimParams {
    /// Fraction of the samples cut at each end.
    pub trim: f32,
    /// Clamp the tails to the nearest kept sample instead of dropping them.
    pub winsorize: bool,
}

impl Default for TrimParams {
    fn default() -> Self {
        TrimParams {
            trim: 0.1,
            winsorize: false,
        }
    }
}

/// Memory for one band's samples (per running band).
const BAND_BYTES: usize = 32 << 20;

/// The `stack-trimmed-mean` stage.
pub struct TrimmedMean;

impl Stage for TrimmedMean {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "stack-trimmed-mean",
            env!("CARGO_PKG_VERSION"),
            StageKind::Stack,
            "Trimmed or winsorized mean of the aligned frames (third-party example)",
            vec![
                ParamSpec::float(
                    "trim",
                    0.1,
                    0.0,
                    0.45,
                    "Fraction of samples cut at each end of every pixel's distribution",
                ),
                ParamSpec::bool(
                    "winsorize",
                    false,
                    "Clamp the tails to the nearest kept sample instead of dropping them",
                ),
            ],
        )
    }

    fn stack(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        req: &StackRequest,
        params: &str,
    ) -> Result<Image, StageError> {
        let p: TrimParams = parse_params(params)?;
        if !(0.0..=0.45).contains(&p.trim) {
            return Err(StageError::invalid_params(format!(
                "trim = {} is outside 0 ..= 0.45",
                p.trim
            )));
        }
        stack(ctx, frames, req, &p)
    }
}

export_plugin!(TrimmedMean);

/// The robust mean of `v` (reordered in place).
pub fn trimmed_mean(v: &mut [f32], trim: f32, winsorize: bool) -> f32 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    v.sort_unstable_by(f32::total_cmp);
    let k = ((n as f32 * trim).floor() as usize).min((n - 1) / 2);
    let kept = &v[k..n - k];
    let mut sum: f64 = kept.iter().map(|&x| x as f64).sum();
    let mut count = kept.len();
    if winsorize && k > 0 {
        sum += k as f64 * (kept[0] as f64 + kept[kept.len() - 1] as f64);
        count += 2 * k;
    }
    (sum / count as f64) as f32
}

/// The total shift and weight of a warp at pixel `(x, y)`, its field as
/// interpolated (`field`: the warp's [`FrameWarp::dense_field`]).
fn shift_at(warp: &FrameWarp, field: Option<&WarpField>, x: f32, y: f32) -> (f32, f32, f32) {
    match field {
        Some(f) => {
            let (dx, dy, w) = f.sample(x, y);
            (warp.dx + dx, warp.dy + dy, w)
        }
        None => (warp.dx, warp.dy, 1.0),
    }
}

/// Stacks the source under the alignment, band by band.
pub fn stack(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &TrimParams,
) -> Result<Image, StageError> {
    let info = frames.info();
    let n = info.count as usize;
    req.check(&info)?;
    let (w, h, ch, rl) = (
        info.width as usize,
        info.height as usize,
        info.channels as usize,
        info.row_len(),
    );
    // As many rows per band as fit the memory budget (at least one).
    let band_rows = (BAND_BYTES / (rl * n * 4).max(1)).clamp(1, 32).min(h);
    let bands = h.div_ceil(band_rows) as u64;
    let mut out = Image::new(info.width, info.height, info.channels);
    let done = AtomicU64::new(0);
    let error = Mutex::new(None);
    ctx.par_chunks_mut(out.data.as_mut_slice(), band_rows * rl, |b, band| {
        let y0 = b * band_rows;
        let rows = band.len() / rl;
        // samples[(px * ch + c) * n + i]: frame-contiguous per pixel and channel.
        let mut samples = vec![0.0f32; rows * rl * n];
        let mut valid = vec![false; rows * w * n];
        let mut input = Vec::new();
        for (i, warp) in req.alignment.warps.iter().enumerate() {
            if ctx.backend.cancelled() {
                return;
            }
            // The input rows this band needs from frame i.
            let field = warp.dense_field();
            let shifts: Vec<(f32, f32, f32)> = (0..rows * w)
                .map(|px| {
                    let (x, y) = ((px % w) as f32, (y0 + px / w) as f32);
                    shift_at(warp, field.as_deref(), x, y)
                })
                .collect();
            let (lo, hi) = shifts
                .iter()
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), s| {
                    (lo.min(s.1), hi.max(s.1))
                });
            let first = ((y0 as f32 + lo).floor() as isize).clamp(0, h as isize - 1) as usize;
            let last = (((y0 + rows - 1) as f32 + hi).ceil() as isize + 1).clamp(0, h as isize - 1)
                as usize;
            input.resize((last + 1 - first) * rl, 0.0);
            if let Err(e) = frames
                .read_rows(i, first, last + 1 - first, input.as_mut_slice().into())
                .into_result()
            {
                error.lock().unwrap().get_or_insert(e);
                return;
            }
            for (px, &(dx, dy, wt)) in shifts.iter().enumerate() {
                let (x, y) = ((px % w) as f32 + dx, (y0 + px / w) as f32 + dy);
                // Samples from outside the frame, or where the aligner gave no weight, are missing.
                if wt <= 0.0 || x < 0.0 || y < 0.0 || x > (w - 1) as f32 || y > (h - 1) as f32 {
                    continue;
                }
                let (x0, y0i) = (x.floor() as usize, y.floor() as usize);
                let (x1, y1) = ((x0 + 1).min(w - 1), (y0i + 1).min(h - 1));
                let (tx, ty) = (x - x0 as f32, y - y0i as f32);
                if y0i < first || y1 > last {
                    continue; // cannot happen: the rows were chosen to cover the shifts
                }
                let at = |xx: usize, yy: usize, c: usize| input[(yy - first) * rl + xx * ch + c];
                for c in 0..ch {
                    let top = at(x0, y0i, c) * (1.0 - tx) + at(x1, y0i, c) * tx;
                    let bottom = at(x0, y1, c) * (1.0 - tx) + at(x1, y1, c) * tx;
                    samples[(px * ch + c) * n + i] = top * (1.0 - ty) + bottom * ty;
                }
                valid[px * n + i] = true;
            }
        }
        let mut buf = Vec::with_capacity(n);
        for px in 0..rows * w {
            for c in 0..ch {
                buf.clear();
                let s = &samples[(px * ch + c) * n..(px * ch + c + 1) * n];
                buf.extend(
                    s.iter()
                        .zip(&valid[px * n..(px + 1) * n])
                        .filter(|(_, v)| **v)
                        .map(|(x, _)| *x),
                );
                band[px * ch + c] = trimmed_mean(&mut buf, p.trim, p.winsorize);
            }
        }
        ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, bands);
    })?;
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};

    fn request(shifts: &[(f32, f32)]) -> StackRequest {
        StackRequest::new(
            shifts
                .iter()
                .map(|&(dx, dy)| FrameWarp::shift(dx, dy))
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn trimmed_and_winsorized_means() {
        let mut v = vec![5.0, 1.0, 100.0, 2.0, 3.0, 4.0, -50.0, 6.0, 7.0, 8.0];
        assert_eq!(trimmed_mean(&mut v.clone(), 0.0, false), 8.6);
        // 10 samples, trim 0.1: one cut at each end.
        assert_eq!(trimmed_mean(&mut v.clone(), 0.1, false), 4.5);
        // Winsorized: the tails become 1 and 8.
        assert_eq!(trimmed_mean(&mut v, 0.1, true), (1.0 + 36.0 + 8.0) / 10.0);
        assert_eq!(trimmed_mean(&mut [3.0], 0.45, false), 3.0);
        assert_eq!(trimmed_mean(&mut [], 0.2, false), 0.0);
    }

    #[test]
    fn outliers_are_cut_and_shifts_undone() {
        let (w, h) = (23usize, 19usize);
        let base = |x: f32, y: f32| 0.2 + 0.01 * x + 0.02 * y;
        // Ten frames of a ramp displaced by integer shifts; frame 3 has a hot pixel.
        let shifts: Vec<(f32, f32)> = (0..10).map(|i| ((i % 3) as f32, (i % 2) as f32)).collect();
        let frames: Vec<Vec<f32>> = shifts
            .iter()
            .enumerate()
            .map(|(i, &(dx, dy))| {
                (0..w * h)
                    .map(|p| {
                        let (x, y) = ((p % w) as f32, (p / w) as f32);
                        if i == 3 && p == 5 * w + 7 {
                            1.0
                        } else {
                            base(x - dx, y - dy)
                        }
                    })
                    .collect()
            })
            .collect();
        let mem = MemFrames::new(w as u32, h as u32, 1, frames);
        let be = ThreadBackend::new(3);
        let p = TrimParams {
            trim: 0.2,
            winsorize: false,
        };
        let img = be
            .with_ctx("stack-trimmed-mean", |ctx| {
                stack(ctx, &mem.as_ref(), &request(&shifts), &p)
            })
            .unwrap();
        // Inside the area every frame covers, the stack is the unshifted ramp, hot pixel gone.
        for y in 0..h - 1 {
            for x in 0..w - 2 {
                let got = img.data[y * w + x];
                assert!(
                    (got - base(x as f32, y as f32)).abs() < 1e-5,
                    "({x},{y}): {got}"
                );
            }
        }
    }

    #[test]
    fn bands_and_threads_do_not_change_the_result() {
        let (w, h, n) = (17usize, 40usize, 6usize);
        let frames: Vec<Vec<f32>> = (0..n)
            .map(|k| {
                (0..w * h * 3)
                    .map(|i| ((i * (k + 5)) % 23) as f32 / 23.0)
                    .collect()
            })
            .collect();
        let mem = MemFrames::new(w as u32, h as u32, 3, frames);
        let req = request(&[
            (0.5, -0.25),
            (0.0, 0.0),
            (-1.5, 2.0),
            (0.25, 0.75),
            (3.0, 1.0),
            (0.0, -2.5),
        ]);
        let p = TrimParams {
            trim: 0.2,
            winsorize: true,
        };
        let one = ThreadBackend::new(1)
            .with_ctx("s", |ctx| stack(ctx, &mem.as_ref(), &req, &p))
            .unwrap();
        let four = ThreadBackend::new(4)
            .with_ctx("s", |ctx| stack(ctx, &mem.as_ref(), &req, &p))
            .unwrap();
        assert_eq!(one.data, four.data);
        assert!(one
            .data
            .iter()
            .all(|v| v.is_finite() && (0.0..=1.0).contains(v)));
    }

    #[test]
    fn parameters_are_checked() {
        let mem = MemFrames::new(2, 2, 1, vec![vec![0.5; 4]]);
        let be = ThreadBackend::new(1);
        let run = |params: &str| {
            be.with_ctx("s", |ctx| {
                TrimmedMean.stack(ctx, &mem.as_ref(), &request(&[(0.0, 0.0)]), params)
            })
        };
        assert_eq!(
            run("{\"trim\": 0.6}").unwrap_err().kind,
            ErrorKind::InvalidParams
        );
        assert_eq!(
            run("{\"trimm\": 0.1}").unwrap_err().kind,
            ErrorKind::InvalidParams
        );
        assert_eq!(run("").unwrap().data[0], 0.5);
    }
}
