//! GPU path of `stack-drizzle`: the frames go to the device a batch at a
//! time (decoded on the CPU in parallel, one write per batch, as
//! `stack-mean`'s warp-field path), their global shifts and alignment-point
//! grids in the same tables (`kit::gpu::warp_tables`); one dispatch of
//! `shaders/drizzle.wgsl` per batch adds every drop to the output sums. The
//! sums come back once at the end for the hole filling and the coverage
//! figures, which run on the CPU.
//!
//! Memory: one batch of frames on the host and the device, plus the
//! output's sums (`out_w · out_h · (channels + 1)` words).

use jupiter_kit::gpu::{dispatch, for_warp_batches, shaders, DrizzleP};
use jupiter_plugin_api::gpu::helpers::{download, groups, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::GpuServiceBox;

use crate::cpu::Drizzled;
use crate::geometry::Geometry;
use crate::params::DrizzleParams;

/// Words of frame data uploaded per batch (128 MiB).
pub const BATCH_WORDS: usize = 1 << 25;

/// Drizzles on the device; returns the sums normalised, with the weights.
pub fn drizzle(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    req: &StackRequest,
    g: &Geometry,
    p: &DrizzleParams,
) -> Result<Drizzled, StageError> {
    let info = frames.info();
    let weights = crate::cpu::frame_weights(frames, req, p)?;
    let (w, h, c) = info.dims();
    let out_px = g.out_w * g.out_h;
    let mut bufs = Buffers::new(gpu);
    let acc = bufs.zeroed(out_px * c)?;
    let wsum = bufs.zeroed(out_px)?;
    let warps = &req.alignment.warps;
    for_warp_batches(
        ctx,
        gpu,
        &mut bufs,
        frames,
        warps,
        &weights,
        BATCH_WORDS,
        |b| {
            let u = DrizzleP {
                width: w as u32,
                height: h as u32,
                channels: c as u32,
                count: b.count as u32,
                out_w: g.out_w as u32,
                out_h: g.out_h as u32,
                sx: g.sx,
                sy: g.sy,
                pixfrac: g.pixfrac,
                ..Default::default()
            };
            let groups2 = [groups(g.out_w, 16), groups(g.out_h, 16), 1];
            let bindings = [b.src, acc, wsum, b.table, b.grids];
            dispatch(
                gpu,
                shaders::DRIZZLE,
                "drizzle_accumulate",
                &bindings,
                &u,
                groups2,
            )
        },
    )?;
    let sums = download(gpu, acc, out_px * c)?;
    let weight = download(gpu, wsum, out_px)?;
    let data = sums
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let ws = weight[k / c];
            if ws > 0.0 {
                s / ws
            } else {
                0.0
            }
        })
        .collect();
    Ok(Drizzled { data, weight })
}
