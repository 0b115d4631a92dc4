//! GPU path of `stack-median` (global shifts only; warp fields and their
//! per-pixel weights use the CPU path). Bands of rows are gathered frame-major
//! on the device (shifted by `shaders/shift.wgsl` from the frames the host
//! keeps there, or from rows decoded on the CPU and uploaded in batches), then each pixel's median is taken by
//! `shaders/stack_median.wgsl`: an in-register insertion sort up to 64 frames,
//! an exact 4-bit radix selection above. The result stays on the device.

use jupiter_kit::gpu::{groups_1d, shaders, stack_bands_on_device, uniforms, StackMedianP};
use jupiter_plugin_api::gpu::helpers::run;
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{GpuBuffer, GpuServiceBox};

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
    Ok(Image::on_device(
        info.width,
        info.height,
        info.channels,
        buf,
    ))
}

/// Exact per-pixel median of the frames under global shifts, on the GPU:
/// the kit's band driver with the median kernel; returns the device buffer
/// holding the `w × h × c` result.
pub fn median_stack(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    warps: &[FrameWarp],
    interp: u32,
    budget_words: usize,
) -> Result<GpuBuffer, StageError> {
    stack_bands_on_device(
        ctx,
        gpu,
        frames,
        warps,
        interp,
        budget_words,
        &mut |tile, out, npix, n, offset| median_kernel(gpu, tile, out, npix, n, offset),
    )
}

/// Per-pixel median over `n` frames of a frame-major tile (`tile[f * npix + i]`)
/// into `out[out_offset + i]`: in-register insertion sort for n ≤ 64, exact
/// 4-bit radix selection above (`shaders/stack_median.wgsl`).
pub fn median_kernel(
    gpu: &GpuServiceBox,
    tile: GpuBuffer,
    out: GpuBuffer,
    npix: usize,
    n: usize,
    out_offset: usize,
) -> Result<(), StageError> {
    let u = uniforms(&StackMedianP {
        npix: npix as u32,
        n: n as u32,
        out_offset: out_offset as u32,
        _pad: 0,
    });
    let entry = if n <= 64 {
        "median_sort"
    } else {
        "median_select"
    };
    run(
        gpu,
        shaders::STACK_MEDIAN,
        entry,
        &[tile, out],
        &u,
        groups_1d(npix, 64),
    )
}

/// Words of device memory the median stack may use for its frame tile.
pub const MEDIAN_TILE_BUDGET_WORDS: usize = 1 << 26;
