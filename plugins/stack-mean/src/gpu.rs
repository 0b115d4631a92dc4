//! GPU paths of `stack-mean`. Global shifts ([`stack`]): when the host keeps
//! the capture on the device the frames are read there (no upload);
//! otherwise they are decoded on the CPU in parallel, uploaded a batch
//! at a time (one write per batch). One dispatch of
//! `shaders/shift.wgsl`'s `shift_accumulate` adds the whole batch, each frame
//! resampled with the CPU path's bicubic or bilinear weights, into the sum.
//! The result stays on the device for the next GPU-capable stage.
//!
//! Warp fields from multi-point alignment ([`stack_warped`]): the same
//! batches through `shaders/stack_warp.wgsl`, which interpolates each frame's
//! alignment-point grid per pixel and keeps a per-pixel weight sum; frames
//! the host keeps on the device are read there (no decode or upload).
//!
//! Memory: one batch of frames ([`BATCH_WORDS`]) on the host and on the
//! device, plus the sum (and the weight sum and grids for warp fields).

use jupiter_kit::gpu::{
    accumulate_resident, for_warp_batches, read_batch, scale, shift_accumulate, warp_accumulate,
    warp_accumulate_resident, warp_normalize, write_slots, FrameSlot, ShiftGeometry, SLOT_WORDS,
};
use jupiter_plugin_api::gpu::helpers::{write, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{DeviceFrames, GpuBuffer, GpuServiceBox};

use crate::cpu::frame_weights;
use crate::params::MeanParams;

/// Words of frame data uploaded per batch (128 MiB).
pub const BATCH_WORDS: usize = 1 << 25;

/// True when the request has only global shifts ([`stack`]); otherwise
/// [`stack_warped`] handles it.
pub fn supports(req: &StackRequest) -> bool {
    req.alignment.warps.iter().all(|w| w.field.is_none())
}

/// Checks the request; returns the frame count, the shader's interpolation
/// code (0 bilinear, 1 bicubic) and the frame weights.
fn prepare(
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MeanParams,
) -> Result<(usize, u32, Vec<f32>), StageError> {
    let n = frames.info().count as usize;
    req.check(&frames.info())?;
    let interp = p.interpolation.shader_code();
    Ok((n, interp, frame_weights(&req.scores, n, p)))
}

/// Stacks on the GPU; the image returned is device-resident.
pub fn stack(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MeanParams,
) -> Result<Image, StageError> {
    let info = frames.info();
    let (n, interp, weights) = prepare(frames, req, p)?;
    let total: f64 = weights.iter().map(|&w| w as f64).sum();
    if total <= 0.0 {
        return Err(StageError::invalid_params("all frame weights are zero"));
    }
    let (w, h, c) = info.dims();
    let len = info.frame_len();
    let geometry = ShiftGeometry::whole(w, h, c, interp);
    if let Some(dev) = frames.on_device()? {
        return stack_resident(ctx, gpu, &dev, req, &weights, total, &geometry, info);
    }
    // Frames per upload: as many as fit the batch budget.
    let batch = (BATCH_WORDS / len.max(1)).clamp(1, n);
    let mut bufs = Buffers::new(gpu);
    let (src, acc, table) = (
        bufs.zeroed(batch * len)?,
        bufs.zeroed(len)?,
        bufs.zeroed(batch * SLOT_WORDS)?,
    );
    let mut staging = vec![0.0f32; batch * len];
    for start in (0..n).step_by(batch) {
        ctx.check_cancelled()?;
        let count = batch.min(n - start);
        read_batch(ctx, frames, start, count, (0, h), &mut staging)?;
        write(gpu, src, 0, &staging[..count * len])?;
        let slots: Vec<FrameSlot> = (0..count)
            .map(|k| {
                let warp = &req.alignment.warps[start + k];
                FrameSlot {
                    dx: warp.dx,
                    dy: warp.dy,
                    weight: weights[start + k],
                    src_offset: k * len,
                    dst_offset: 0,
                }
            })
            .collect();
        write_slots(gpu, table, &slots)?;
        shift_accumulate(gpu, src, acc, table, &geometry, count)?;
        ctx.progress((start + count) as u64, n as u64);
    }
    finish(gpu, &mut bufs, acc, total, info)
}

/// Divides the weighted sum by the total weight and leaves it on the device
/// as the stacked image.
fn finish(
    gpu: &GpuServiceBox,
    bufs: &mut Buffers,
    acc: GpuBuffer,
    total: f64,
    info: FrameInfo,
) -> Result<Image, StageError> {
    scale(gpu, acc, info.frame_len(), (1.0 / total) as f32)?;
    gpu.synchronize().into_result()?;
    bufs.keep(acc);
    Ok(Image::on_device(
        info.width,
        info.height,
        info.channels,
        acc,
    ))
}

/// [`stack`] over frames the host keeps on the device: no upload, one
/// `shift_accumulate` dispatch per device buffer the frames lie in.
#[allow(clippy::too_many_arguments)]
fn stack_resident(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    dev: &DeviceFrames,
    req: &StackRequest,
    weights: &[f32],
    total: f64,
    geometry: &ShiftGeometry,
    info: FrameInfo,
) -> Result<Image, StageError> {
    let n = info.count as usize;
    let mut bufs = Buffers::new(gpu);
    let acc = bufs.zeroed(info.frame_len())?;
    let items: Vec<(usize, f32, f32, f32)> = (0..n)
        .map(|i| {
            let w = &req.alignment.warps[i];
            (i, w.dx, w.dy, weights[i])
        })
        .collect();
    accumulate_resident(gpu, dev, geometry, &items, acc, |done| {
        ctx.progress(done as u64, n as u64);
        ctx.check_cancelled()
    })?;
    finish(gpu, &mut bufs, acc, total, info)
}

/// The GPU path under warp fields (multi-point alignment): per-pixel shifts
/// and weights from each frame's alignment-point grid, interpolated on the
/// device (`shaders/stack_warp.wgsl`); the mean is `Σ w·sample / Σ w` per
/// pixel, as on the CPU. The image returned is device-resident.
pub fn stack_warped(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MeanParams,
) -> Result<Image, StageError> {
    let info = frames.info();
    let (_, interp, weights) = prepare(frames, req, p)?;
    let (w, h, c) = info.dims();
    let mut bufs = Buffers::new(gpu);
    let acc = bufs.zeroed(info.frame_len())?;
    let wsum = bufs.zeroed(w * h)?;
    let mut all = [acc; 5];
    if let Some(dev) = frames.on_device()? {
        let warps = &req.alignment.warps;
        all = warp_accumulate_resident(
            gpu,
            &mut bufs,
            &dev,
            (w, h, c),
            warps,
            &weights,
            [acc, wsum],
            interp,
            |done, total| {
                ctx.progress(done as u64, total as u64);
                ctx.check_cancelled()
            },
        )?;
        warp_normalize(gpu, all, (w, h, c))?;
        gpu.synchronize().into_result()?;
        bufs.keep(acc);
        return Ok(Image::on_device(
            info.width,
            info.height,
            info.channels,
            acc,
        ));
    }
    for_warp_batches(
        ctx,
        gpu,
        &mut bufs,
        frames,
        &req.alignment.warps,
        &weights,
        BATCH_WORDS,
        |b| {
            all = [b.src, acc, wsum, b.table, b.grids];
            warp_accumulate(gpu, all, (w, h, c), interp, b.count)
        },
    )?;
    warp_normalize(gpu, all, (w, h, c))?;
    gpu.synchronize().into_result()?;
    bufs.keep(acc);
    Ok(Image::on_device(
        info.width,
        info.height,
        info.channels,
        acc,
    ))
}
