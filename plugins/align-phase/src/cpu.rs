//! CPU path of `align-phase`.

use jupiter_kit::align::{mean_of_best, measure_shifts, Roi};
use jupiter_kit::fft::PhaseCorrelator;
use jupiter_plugin_api::prelude::*;

use crate::params::AlignParams;

/// The mean of the best `k` frames, each aligned to frame 0 (see
/// [`jupiter_kit::align::mean_of_best`], shared with `align-multipoint`).
pub fn reference_plane(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    k: usize,
) -> Result<Vec<f32>, StageError> {
    mean_of_best(ctx, frames, k)
}

/// Aligns every frame of the source (best first) to the mean-of-best reference.
pub fn align(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &AlignParams,
) -> Result<Alignment, StageError> {
    let info = frames.info();
    if info.count == 0 {
        return Err(StageError::invalid_params("no frames to align"));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let reference = reference_plane(ctx, frames, p.reference_frames as usize)?;
    let roi = if p.region == "auto" {
        Roi::around_object(&reference, w, h)
    } else {
        Roi::full(w, h)
    };
    if roi != Roi::full(w, h) {
        ctx.log(
            LogLevel::Debug,
            &format!(
                "measuring shifts on the {}×{} region at ({}, {}) around the object",
                roi.w, roi.h, roi.x0, roi.y0
            ),
        );
    }
    let pc = PhaseCorrelator::new(&roi.crop(&reference, w), roi.w, roi.h);
    let all: Vec<usize> = (0..info.count as usize).collect();
    let shifts = measure_shifts(ctx, frames, &pc, roi, &all, true)?;
    let weak = shifts.iter().filter(|s| s.peak < p.min_peak).count();
    if weak > 0 {
        ctx.warn(&format!(
            "{weak} of {} frames correlate weakly with the reference (peak < {})",
            shifts.len(),
            p.min_peak
        ));
    }
    Ok(Alignment {
        warps: shifts
            .iter()
            .map(|s| FrameWarp::shift(s.dx, s.dy))
            .collect(),
        reference: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};

    fn disc(w: usize, h: usize, sx: f32, sy: f32) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = (
                    (i % w) as f32 - w as f32 / 2.0 - sx,
                    (i / w) as f32 - h as f32 / 2.0 - sy,
                );
                let r = (x * x + y * y).sqrt();
                let body = 1.0 / (1.0 + ((r - 20.0) / 1.2).exp());
                body * (0.6 + 0.3 * (y * 0.5).sin())
            })
            .collect()
    }

    #[test]
    fn recovers_known_shifts_with_a_mean_reference() {
        let (w, h) = (80, 64);
        let truth = [
            (0.0, 0.0),
            (1.5, -0.5),
            (-2.25, 3.0),
            (0.3, 0.7),
            (4.0, -3.6),
            (-0.8, -1.1),
        ];
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            truth.iter().map(|&(x, y)| disc(w, h, x, y)).collect(),
        );
        let be = ThreadBackend::new(2);
        let p = AlignParams {
            reference_frames: 3,
            ..Default::default()
        };
        let a = be
            .with_ctx("align-phase", |ctx| align(ctx, &frames.as_ref(), &p))
            .unwrap();
        // The reference sits where frame 0 is (up to the small bias of averaging).
        for (warp, (x, y)) in a.warps.iter().zip(truth) {
            assert!(
                (warp.dx - x).abs() < 0.1 && (warp.dy - y).abs() < 0.1,
                "want ({x},{y}) got ({},{})",
                warp.dx,
                warp.dy
            );
        }
    }
}
