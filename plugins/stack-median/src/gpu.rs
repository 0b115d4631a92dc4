//! GPU path of `stack-median` (global shifts only; warp fields and their
//! per-pixel weights use the CPU path). Bands of rows are gathered frame-major
//! on the device (shifted by `shaders/shift.wgsl` from the frames the host
//! keeps there, or from rows decoded on the CPU and uploaded in batches), then each pixel's median is taken by
//! `shaders/stack_median.wgsl`: an in-register insertion sort up to 64 frames,
//! an exact 4-bit radix selection above. The result stays on the device.

use jupiter_kit::gpu::{median_stack, MEDIAN_TILE_BUDGET_WORDS};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::GpuServiceBox;

use crate::params::MedianParams;

/// True when the GPU path can handle this request.
pub fn supports(req: &StackRequest) -> bool {
    req.alignment.warps.iter().all(|w| w.field.is_none())
}

/// Stacks on the GPU; the image returned is device-resident.
pub fn stack(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MedianParams,
) -> Result<Image, StageError> {
    let interp = p.interpolation.shader_code();
    let info = frames.info();
    let buf = median_stack(
        ctx,
        gpu,
        frames,
        &req.alignment.warps,
        interp,
        MEDIAN_TILE_BUDGET_WORDS,
    )?;
    Ok(Image {
        width: info.width,
        height: info.height,
        channels: info.channels,
        data: RVec::new(),
        device: Some(buf).into(),
    })
}
