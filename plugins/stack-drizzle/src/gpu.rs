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

use jupiter_kit::gpu::{dispatch, read_batch, shaders, warp_tables, DrizzleP};
use jupiter_kit::stats::quality_weights;
use jupiter_plugin_api::gpu::helpers::{download, groups, write, Buffers};
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
    req.check(&info)?;
    let n = info.count as usize;
    let weights = quality_weights(&req.scores, n, p.quality_weighting, p.weight_power);
    let (w, h, c) = info.dims();
    let len = info.frame_len();
    let batch = (BATCH_WORDS / len.max(1)).clamp(1, n);
    let grid_words = |wp: &FrameWarp| {
        wp.field
            .as_ref()
            .into_option()
            .map_or(3, |f| 3 * (f.cols * f.rows) as usize)
    };
    let max_grid = req
        .alignment
        .warps
        .iter()
        .map(grid_words)
        .max()
        .unwrap_or(3);
    let out_px = g.out_w * g.out_h;
    let mut bufs = Buffers::new(gpu);
    let src = bufs.zeroed(batch * len)?;
    let acc = bufs.zeroed(out_px * c)?;
    let wsum = bufs.zeroed(out_px)?;
    let table = bufs.zeroed(batch * jupiter_kit::gpu::WARP_SLOT_WORDS)?;
    let grids = bufs.zeroed(batch * max_grid)?;
    let mut staging = vec![0.0f32; batch * len];
    for start in (0..n).step_by(batch) {
        ctx.check_cancelled()?;
        let count = batch.min(n - start);
        read_batch(ctx, frames, start, count, (0, h), &mut staging)?;
        write(gpu, src, 0, &staging[..count * len])?;
        let warps: Vec<&FrameWarp> = req.alignment.warps[start..start + count].iter().collect();
        let (t, gr) = warp_tables(&warps, &weights[start..start + count], len);
        write(gpu, table, 0, &t)?;
        write(gpu, grids, 0, &gr)?;
        let u = DrizzleP {
            width: w as u32,
            height: h as u32,
            channels: c as u32,
            count: count as u32,
            out_w: g.out_w as u32,
            out_h: g.out_h as u32,
            sx: g.sx,
            sy: g.sy,
            pixfrac: g.pixfrac,
            ..Default::default()
        };
        let groups2 = [groups(g.out_w, 16), groups(g.out_h, 16), 1];
        dispatch(
            gpu,
            shaders::DRIZZLE,
            "drizzle_accumulate",
            &[src, acc, wsum, table, grids],
            &u,
            groups2,
        )?;
        ctx.progress((start + count) as u64, n as u64);
    }
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
