//! GPU path of `align-phase`: the reference (mean of the best frames) has
//! its few shifts measured, and its frames resampled and summed, on the
//! device; then every frame's shift is measured on the device by
//! [`jupiter_kit::gpu::phase_corr::GpuCorrelator`] (the CPU path's arithmetic) over
//! the frames the host keeps there; four numbers per frame come back.

use jupiter_kit::align::{measure_region, Roi};
use jupiter_kit::fft::Shift;
use jupiter_kit::gpu::phase_corr::GpuCorrelator;
use jupiter_kit::gpu::{accumulate_resident, ShiftGeometry};
use jupiter_plugin_api::gpu::helpers::{download, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{DeviceFrames, GpuServiceBox};

use crate::cpu;
use crate::params::AlignParams;

/// Aligns on the device; `None` when the region's size is one the GPU
/// transform does not handle (the caller measures on the CPU).
pub fn align(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    dev: &DeviceFrames,
    p: &AlignParams,
) -> Result<Option<Alignment>, StageError> {
    let info = frames.info();
    let t0 = std::time::Instant::now();
    // The reference's few shifts are measured on the device too.
    let measure = |crop: &[f32], roi: Roi, idx: &[usize]| -> Result<Vec<Shift>, StageError> {
        match GpuCorrelator::new(gpu, crop, roi, idx.len())? {
            Some(gc) => gc.measure(ctx, info, dev, idx),
            None => measure_region(ctx, frames, crop, roi, idx, false),
        }
    };
    // ... and its frames added there (resampled as on the CPU).
    let (w, h, c) = info.dims();
    let geometry = ShiftGeometry::whole(w, h, c, 1);
    let sum = |items: &[(usize, Shift)]| -> Result<Option<Vec<f32>>, StageError> {
        let mut bufs = Buffers::new(gpu);
        let acc = bufs.zeroed(info.frame_len())?;
        let items: Vec<_> = items.iter().map(|&(i, s)| (i, s.dx, s.dy, 1.0)).collect();
        accumulate_resident(gpu, dev, &geometry, &items, acc, |_| ctx.check_cancelled())?;
        download(gpu, acc, info.frame_len()).map(Some)
    };
    let (reference, roi) = cpu::prepare_with(ctx, frames, p, Some((&measure, &sum)))?;
    ctx.log(
        LogLevel::Debug,
        &format!("reference built in {:.3} s", t0.elapsed().as_secs_f64()),
    );
    let Some(gc) = GpuCorrelator::new(gpu, &roi.crop(&reference, w), roi, info.count as usize)?
    else {
        ctx.log(
            LogLevel::Debug,
            &format!(
                "the {}×{} region has a size the GPU transform does not handle; measuring on the CPU",
                roi.w, roi.h
            ),
        );
        let shifts = cpu::measure(ctx, frames, &reference, roi)?;
        return Ok(Some(cpu::finish(ctx, &shifts, p)));
    };
    let all: Vec<usize> = (0..info.count as usize).collect();
    let shifts = gc.measure(ctx, info, dev, &all)?;
    ctx.progress(info.count as u64, info.count as u64);
    Ok(Some(cpu::finish(ctx, &shifts, p)))
}
