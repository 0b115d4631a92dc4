//! CPU path of `align-phase`.

use jupiter_kit::align::{
    mean_of_best, mean_of_best_measured, measure_region, MeasureFn, Roi, SumFn,
};
use jupiter_kit::fft::Shift;
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

/// The reference (mean of the best frames) and the region shifts are
/// measured on, shared by the CPU and GPU paths.
pub fn prepare(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &AlignParams,
) -> Result<(Vec<f32>, Roi), StageError> {
    prepare_with(ctx, frames, p, None)
}

/// [`prepare`], with the reference frames' shifts measured by `device.0`
/// and the frames added by `device.1` when given (see
/// [`jupiter_kit::align::mean_of_best_measured`]).
pub fn prepare_with(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &AlignParams,
    device: Option<(&MeasureFn, &SumFn)>,
) -> Result<(Vec<f32>, Roi), StageError> {
    let info = frames.info();
    if info.count == 0 {
        return Err(StageError::invalid_params("no frames to align"));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let k = p.reference_frames as usize;
    let reference = match device {
        Some((m, sum)) => mean_of_best_measured(ctx, frames, k, m, Some(sum), &mut |_| {})?,
        None => reference_plane(ctx, frames, k)?,
    };
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
    Ok((reference, roi))
}

/// Every frame's shift, measured on the CPU against the region `roi` of `reference`.
pub fn measure(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    reference: &[f32],
    roi: Roi,
) -> Result<Vec<Shift>, StageError> {
    let w = frames.info().width as usize;
    let all: Vec<usize> = (0..frames.info().count as usize).collect();
    measure_region(ctx, frames, &roi.crop(reference, w), roi, &all, true)
}

/// The alignment from the measured shifts (warns about weak correlations).
pub fn finish(ctx: &StageCtx, shifts: &[Shift], p: &AlignParams) -> Alignment {
    let weak = shifts.iter().filter(|s| s.peak < p.min_peak).count();
    if weak > 0 {
        ctx.warn(&format!(
            "{weak} of {} frames correlate weakly with the reference (peak < {})",
            shifts.len(),
            p.min_peak
        ));
    }
    Alignment {
        warps: shifts
            .iter()
            .map(|s| FrameWarp::shift(s.dx, s.dy))
            .collect(),
        reference: 0,
    }
}

/// Aligns every frame of the source (best first) to the mean-of-best reference.
pub fn align(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &AlignParams,
) -> Result<Alignment, StageError> {
    let (reference, roi) = prepare(ctx, frames, p)?;
    let shifts = measure(ctx, frames, &reference, roi)?;
    Ok(finish(ctx, &shifts, p))
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
