//! GPU path of `stack-mean` (global shifts only; frames with a warp field use
//! the CPU path). Frames are decoded on the CPU in parallel batches, uploaded
//! one at a time, shifted on the device (`shaders/shift.wgsl`, same bicubic or
//! bilinear weights as the CPU) and accumulated (`shaders/stack_mean.wgsl`).
//! The result stays on the device for the next GPU-capable stage.
//!
//! Device memory: three frame buffers (upload, shifted, sum). Host memory:
//! one batch of decoded frames (`2 × threads`).

use jupiter_kit::gpu::{accumulate, scale, shift, ShiftJob};
use jupiter_kit::warp::Interp;
use jupiter_plugin_api::gpu::helpers::{write, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::GpuServiceBox;

use crate::cpu::frame_weights;
use crate::params::MeanParams;

/// True when the GPU path can handle this request.
pub fn supports(req: &StackRequest) -> bool {
    req.alignment.warps.iter().all(|w| w.field.is_none())
}

/// Stacks on the GPU; the image returned is device-resident.
pub fn stack(ctx: &StageCtx, gpu: &GpuServiceBox, frames: &FrameSourceRef, req: &StackRequest, p: &MeanParams) -> Result<Image, StageError> {
    let info = frames.info();
    let n = info.count as usize;
    if n == 0 || req.alignment.warps.len() != n {
        return Err(StageError::invalid_params("no frames to stack, or warps do not match frames"));
    }
    let interp = match Interp::parse(&p.interpolation)? {
        Interp::Bilinear => 0,
        Interp::Bicubic => 1,
    };
    let weights = frame_weights(&req.scores, n, p);
    let total: f64 = weights.iter().map(|&w| w as f64).sum();
    if total <= 0.0 {
        return Err(StageError::invalid_params("all frame weights are zero"));
    }
    let (w, h, c) = (info.width as usize, info.height as usize, info.channels as usize);
    let len = info.frame_len();
    let mut bufs = Buffers::new(gpu);
    let (src, aligned, acc) = (bufs.zeroed(len)?, bufs.zeroed(len)?, bufs.zeroed(len)?);
    let batch = (ctx.threads() * 2).max(1);
    for start in (0..n).step_by(batch) {
        ctx.check_cancelled()?;
        let end = (start + batch).min(n);
        let decoded = ctx.par_map(end - start, |k| frames.frame(start + k))?;
        for (k, frame) in decoded.into_iter().enumerate() {
            let i = start + k;
            write(gpu, src, 0, &frame?)?;
            let warp = &req.alignment.warps[i];
            let job = ShiftJob {
                width: w,
                height: h,
                channels: c,
                interp,
                dx: warp.dx,
                dy: warp.dy,
                y0: 0,
                rows: h,
                src_y0: 0,
                src_rows: h,
                dst_offset: 0,
                src_offset: 0,
            };
            shift(gpu, src, aligned, &job)?;
            accumulate(gpu, aligned, acc, len, weights[i])?;
        }
        ctx.progress(end as u64, n as u64);
    }
    scale(gpu, acc, len, (1.0 / total) as f32)?;
    gpu.synchronize().into_result()?;
    bufs.keep(acc);
    Ok(Image { width: info.width, height: info.height, channels: info.channels, data: RVec::new(), device: Some(acc).into() })
}
