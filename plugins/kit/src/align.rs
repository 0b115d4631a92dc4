//! Global alignment pieces shared by the aligners (`align-phase`,
//! `align-multipoint`): luminance of a frame, whole-plane sub-pixel shifts,
//! parallel shift measurement against a [`PhaseCorrelator`], and the
//! mean-of-best reference.
//!
//! Everything streams: a parallel task holds one decoded frame at a time, and
//! the reference builder holds one accumulator plus one frame.

use std::sync::atomic::{AtomicU64, Ordering};

use jupiter_plugin_api::frame::FrameSourceExt;
use jupiter_plugin_api::{FrameSourceRef, StageCtx, StageError};

use crate::fft::{PhaseCorrelator, Shift};
use crate::stats::luminance;
use crate::warp::{Interp, RowWindow};

/// Luminance plane (mean of the channels) of frame `i` of the source.
pub fn frame_luminance(frames: &FrameSourceRef, i: usize) -> Result<Vec<f32>, StageError> {
    Ok(luminance(
        &frames.frame(i)?,
        frames.info().channels as usize,
    ))
}

/// Resamples a plane (bicubic, edges replicated) so that
/// `out(x, y) = plane(x + s.dx, y + s.dy)`.
pub fn shifted(plane: &[f32], w: usize, h: usize, s: Shift) -> Vec<f32> {
    let win = RowWindow {
        data: plane,
        y0: 0,
        rows: h,
        width: w,
        channels: 1,
    };
    (0..w * h)
        .map(|i| {
            win.sample(
                (i % w) as f32 + s.dx,
                (i / w) as f32 + s.dy,
                0,
                Interp::Bicubic,
            )
        })
        .collect()
}

/// Measures the shift of the luminance of every frame in `indices` against
/// `pc`, in parallel over frames; reports progress when `report` is set.
pub fn measure_shifts(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    pc: &PhaseCorrelator,
    indices: &[usize],
    report: bool,
) -> Result<Vec<Shift>, StageError> {
    let done = AtomicU64::new(0);
    let n = indices.len() as u64;
    let r = ctx.par_map(indices.len(), |k| -> Result<Shift, StageError> {
        ctx.check_cancelled()?;
        let s = pc.shift_of(&frame_luminance(frames, indices[k])?);
        let d = done.fetch_add(1, Ordering::Relaxed) + 1;
        if report && (d.is_multiple_of(16) || d == n) {
            ctx.progress(d, n);
        }
        Ok(s)
    })?;
    r.into_iter().collect()
}

/// The reference of the global aligners: the mean of the luminance of the
/// best `k` frames of the source (frames `0..k`, the source being ordered
/// best first), each aligned to frame 0 by phase correlation. The result sits
/// where frame 0 is and has about `sqrt(k)` times less noise than one frame.
pub fn mean_of_best(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    k: usize,
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    if info.count == 0 {
        return Err(StageError::invalid_params(
            "no frames to build a reference from",
        ));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let best = frame_luminance(frames, 0)?;
    let k = k.clamp(1, info.count as usize);
    if k == 1 {
        return Ok(best);
    }
    let pc = PhaseCorrelator::new(&best, w, h);
    let idx: Vec<usize> = (1..k).collect();
    let shifts = measure_shifts(ctx, frames, &pc, &idx, false)?;
    let mut acc: Vec<f32> = best;
    for (i, s) in idx.iter().zip(shifts) {
        ctx.check_cancelled()?;
        let moved = shifted(&frame_luminance(frames, *i)?, w, h, s);
        acc.iter_mut().zip(moved).for_each(|(a, m)| *a += m);
    }
    acc.iter_mut().for_each(|a| *a /= k as f32);
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};

    fn blobs(w: usize, h: usize, sx: f32, sy: f32) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - sx, (i / w) as f32 - sy);
                0.4 + 0.3 * (-((x - 20.0).powi(2) + (y - 18.0).powi(2)) / 30.0).exp()
                    + 0.2 * (-((x - 41.0).powi(2) + (y - 30.0).powi(2)) / 12.0).exp()
            })
            .collect()
    }

    #[test]
    fn mean_of_best_sits_on_frame_zero() {
        let (w, h) = (64, 48);
        let shifts = [(0.0, 0.0), (1.5, -1.0), (-2.0, 0.5), (0.7, 2.2)];
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            shifts.iter().map(|&(x, y)| blobs(w, h, x, y)).collect(),
        );
        let be = ThreadBackend::new(2);
        let r = be
            .with_ctx("t", |ctx| mean_of_best(ctx, &frames.as_ref(), 4))
            .unwrap();
        let truth = blobs(w, h, 0.0, 0.0);
        let err = (6..h - 6)
            .flat_map(|y| (6..w - 6).map(move |x| y * w + x))
            .map(|i| (r[i] - truth[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 5e-3, "max error {err}");
    }

    #[test]
    fn shifted_moves_content_back() {
        let (w, h) = (64, 48);
        let a = blobs(w, h, 2.0, -1.0);
        let b = shifted(
            &a,
            w,
            h,
            Shift {
                dx: 2.0,
                dy: -1.0,
                peak: 1.0,
            },
        );
        let truth = blobs(w, h, 0.0, 0.0);
        let err = (4..h - 4)
            .flat_map(|y| (4..w - 4).map(move |x| y * w + x))
            .map(|i| (b[i] - truth[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-4, "max error {err}");
    }
}
