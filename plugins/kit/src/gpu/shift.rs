//! Resampling frames on the device: whole-batch shifts (`shift.wgsl`), warp
//! fields (`stack_warp.wgsl`), accumulation of resident frames, and the
//! parallel decode of a batch of rows for upload.

use jupiter_plugin_api::gpu::helpers::{groups, run, write, Buffers, Uniforms};
use jupiter_plugin_api::{DeviceFrames, GpuBuffer, GpuServiceBox, StageError};

use super::shaders;
use super::uniforms::{dispatch, uniforms, ShiftP, StackWarpP};

/// Geometry shared by the frames of a shift batch (see `shaders/shift.wgsl`).
#[derive(Debug, Clone, Copy)]
pub struct ShiftGeometry {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    /// 0 bilinear, 1 bicubic (Catmull-Rom).
    pub interp: u32,
    /// Output rows `y0 .. y0 + rows`.
    pub y0: usize,
    pub rows: usize,
    /// Each frame's source holds frame rows `src_y0 .. src_y0 + src_rows`.
    pub src_y0: usize,
    pub src_rows: usize,
}

impl ShiftGeometry {
    /// Whole `w × h × c` frames in and out.
    pub fn whole(w: usize, h: usize, c: usize, interp: u32) -> ShiftGeometry {
        ShiftGeometry {
            width: w,
            height: h,
            channels: c,
            interp,
            y0: 0,
            rows: h,
            src_y0: 0,
            src_rows: h,
        }
    }
}

/// One frame of a shift batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct FrameSlot {
    pub dx: f32,
    pub dy: f32,
    /// Weight in `shift_accumulate`.
    pub weight: f32,
    /// Word offset of this frame's source rows in `src`.
    pub src_offset: usize,
    /// Word offset of this frame's output rows in `dst` (`shift_frames`).
    pub dst_offset: usize,
}

/// Frames per dispatch of [`accumulate_resident`].
const RESIDENT_BATCH: usize = 4096;

/// Adds frames the host keeps on the device into `acc` (`width × rows ×
/// channels` of `g`): `acc += Σ weight · frame(x + dx, y + dy)` over
/// `items` = (frame index, dx, dy, weight), one `shift_accumulate` dispatch
/// per device buffer the frames lie in (and per [`RESIDENT_BATCH`] frames),
/// in buffer order. `progress(done)` after each dispatch.
pub fn accumulate_resident(
    gpu: &GpuServiceBox,
    dev: &DeviceFrames,
    g: &ShiftGeometry,
    items: &[(usize, f32, f32, f32)],
    acc: GpuBuffer,
    mut progress: impl FnMut(usize) -> Result<(), StageError>,
) -> Result<(), StageError> {
    let len = g.width * g.height * g.channels;
    let mut bufs = Buffers::new(gpu);
    let table = bufs.zeroed(items.len().clamp(1, RESIDENT_BATCH) * SLOT_WORDS)?;
    let index: Vec<usize> = items.iter().map(|t| t.0).collect();
    let order = dev.in_buffer_order(&index, len);
    let mut done = 0;
    for (buf, first, count) in DeviceFrames::runs(&order) {
        for part in order[first..first + count].chunks(RESIDENT_BATCH) {
            let slots: Vec<FrameSlot> = part
                .iter()
                .map(|s| {
                    let (_, dx, dy, weight) = items[s.pos];
                    FrameSlot {
                        dx,
                        dy,
                        weight,
                        src_offset: s.offset,
                        dst_offset: 0,
                    }
                })
                .collect();
            write_slots(gpu, table, &slots)?;
            shift_accumulate(gpu, buf, acc, table, g, part.len())?;
            done += part.len();
            progress(done)?;
        }
    }
    Ok(())
}

/// Words per [`FrameSlot`] in the device's frame table.
pub const SLOT_WORDS: usize = 8;

/// Writes the frame table of a batch into `table` (`SLOT_WORDS` words each).
pub fn write_slots(
    gpu: &GpuServiceBox,
    table: GpuBuffer,
    slots: &[FrameSlot],
) -> Result<(), StageError> {
    let mut words = Vec::with_capacity(slots.len() * SLOT_WORDS);
    for s in slots {
        words.extend_from_slice(&[
            s.dx,
            s.dy,
            s.weight,
            f32::from_bits(s.src_offset as u32),
            f32::from_bits(s.dst_offset as u32),
            0.0,
            0.0,
            0.0,
        ]);
    }
    write(gpu, table, 0, &words)
}

fn shift_uniforms(g: &ShiftGeometry, count: usize) -> Uniforms {
    uniforms(&ShiftP {
        width: g.width as u32,
        height: g.height as u32,
        channels: g.channels as u32,
        interp: g.interp,
        y0: g.y0 as u32,
        rows: g.rows as u32,
        src_y0: g.src_y0 as u32,
        src_rows: g.src_rows as u32,
        count: count as u32,
        ..Default::default()
    })
}

/// Resamples the `count` frames of a batch into `dst`, each at its slot's
/// `dst_offset` (one dispatch for the whole batch).
pub fn shift_frames(
    gpu: &GpuServiceBox,
    src: GpuBuffer,
    dst: GpuBuffer,
    table: GpuBuffer,
    g: &ShiftGeometry,
    count: usize,
) -> Result<(), StageError> {
    let z = (count * g.channels) as u32;
    run(
        gpu,
        shaders::SHIFT,
        "shift_frames",
        &[src, dst, table],
        &shift_uniforms(g, count),
        [groups(g.width, 16), groups(g.rows, 16), z],
    )
}

/// `acc += Σ_k weight_k · shifted frame k` over the batch (one dispatch).
pub fn shift_accumulate(
    gpu: &GpuServiceBox,
    src: GpuBuffer,
    acc: GpuBuffer,
    table: GpuBuffer,
    g: &ShiftGeometry,
    count: usize,
) -> Result<(), StageError> {
    run(
        gpu,
        shaders::SHIFT,
        "shift_accumulate",
        &[src, acc, table],
        &shift_uniforms(g, count),
        [groups(g.width, 16), groups(g.rows, 16), g.channels as u32],
    )
}

/// Words per frame in the warp table of `shaders/stack_warp.wgsl`.
pub const WARP_SLOT_WORDS: usize = 12;

/// Builds the warp table and the concatenated grids of a batch: for each
/// frame its global shift, weight, source offset, and its field (a frame
/// without one gets a 1×1 grid of zero shift and weight 1).
pub fn warp_tables(
    warps: &[&jupiter_plugin_api::FrameWarp],
    weights: &[f32],
    frame_len: usize,
) -> (Vec<f32>, Vec<f32>) {
    let offsets: Vec<usize> = (0..warps.len()).map(|k| k * frame_len).collect();
    warp_tables_at(warps, weights, &offsets)
}

/// [`warp_tables`] with each frame's word offset in the source buffer
/// given (frames the host keeps on the device lie where it put them).
pub fn warp_tables_at(
    warps: &[&jupiter_plugin_api::FrameWarp],
    weights: &[f32],
    offsets: &[usize],
) -> (Vec<f32>, Vec<f32>) {
    let mut table = Vec::with_capacity(warps.len() * WARP_SLOT_WORDS);
    let mut grids = Vec::new();
    for (k, (w, &weight)) in warps.iter().zip(weights).enumerate() {
        let offset = grids.len() as u32;
        let (cols, rows, x0, y0, sx, sy) = match w.dense_field().as_deref() {
            Some(f) => {
                grids.extend_from_slice(&f.dx);
                grids.extend_from_slice(&f.dy);
                grids.extend_from_slice(&f.weight);
                (f.cols, f.rows, f.x0, f.y0, f.step_x, f.step_y)
            }
            None => {
                grids.extend_from_slice(&[0.0, 0.0, 1.0]);
                (1, 1, 0.0, 0.0, 1.0, 1.0)
            }
        };
        table.extend_from_slice(&[
            w.dx,
            w.dy,
            weight,
            f32::from_bits(offsets[k] as u32),
            f32::from_bits(offset),
            f32::from_bits(cols),
            f32::from_bits(rows),
            0.0,
            x0,
            y0,
            sx,
            sy,
        ]);
    }
    (table, grids)
}

/// Frames per dispatch of [`warp_accumulate_resident`] (each pixel loops
/// over them).
const WARP_FRAMES: usize = 256;

/// [`warp_accumulate`] over frames the host keeps on the device: frame `i`
/// under `warps[i]` with weight `weights[i]` (frames of weight 0 skipped),
/// one dispatch per device buffer and [`WARP_FRAMES`] frames, in buffer
/// order; the tables are written into two buffers of `bufs` (kept until
/// the caller's work is done). `progress(done, total)` after each
/// dispatch. Returns the bindings of the last dispatch (for
/// [`warp_normalize`]).
#[allow(clippy::too_many_arguments)]
pub fn warp_accumulate_resident(
    gpu: &GpuServiceBox,
    bufs: &mut Buffers,
    dev: &DeviceFrames,
    (w, h, c): (usize, usize, usize),
    warps: &[jupiter_plugin_api::FrameWarp],
    weights: &[f32],
    [acc, wsum]: [GpuBuffer; 2],
    interp: u32,
    mut progress: impl FnMut(usize, usize) -> Result<(), StageError>,
) -> Result<[GpuBuffer; 5], StageError> {
    let len = w * h * c;
    let used: Vec<usize> = (0..warps.len()).filter(|&i| weights[i] > 0.0).collect();
    let grid_words = |i: &usize| {
        warps[*i].field.as_ref().into_option().map_or(3, |f| {
            let (c, r) = f.dense_dims();
            3 * (c * r) as usize
        })
    };
    let max_grid = used.iter().map(grid_words).max().unwrap_or(3);
    let table = bufs.zeroed(WARP_FRAMES * WARP_SLOT_WORDS)?;
    let grids = bufs.zeroed(WARP_FRAMES * max_grid)?;
    let order = dev.in_buffer_order(&used, len);
    // (No frame at all: the normalisation still needs distinct buffers.)
    let mut all = [grids, acc, wsum, table, grids];
    let mut done = 0;
    for (buf, first, count) in DeviceFrames::runs(&order) {
        for chunk in order[first..first + count].chunks(WARP_FRAMES) {
            let ws: Vec<&jupiter_plugin_api::FrameWarp> =
                chunk.iter().map(|s| &warps[s.index]).collect();
            let wts: Vec<f32> = chunk.iter().map(|s| weights[s.index]).collect();
            let offsets: Vec<usize> = chunk.iter().map(|s| s.offset).collect();
            let (t, g) = warp_tables_at(&ws, &wts, &offsets);
            write(gpu, table, 0, &t)?;
            write(gpu, grids, 0, &g)?;
            all = [buf, acc, wsum, table, grids];
            warp_accumulate(gpu, all, (w, h, c), interp, chunk.len())?;
            done += chunk.len();
            progress(done, used.len())?;
        }
    }
    Ok(all)
}

/// `acc += Σ_k w_k · fw_k(x, y) · frame_k(x + dx_k(x, y), y + dy_k(x, y))` and
/// `wsum += Σ_k w_k · fw_k(x, y)` over a batch under warp fields (one dispatch).
#[allow(clippy::too_many_arguments)]
pub fn warp_accumulate(
    gpu: &GpuServiceBox,
    [src, acc, wsum, table, grids]: [GpuBuffer; 5],
    (w, h, c): (usize, usize, usize),
    interp: u32,
    count: usize,
) -> Result<(), StageError> {
    dispatch(
        gpu,
        shaders::STACK_WARP,
        "warp_accumulate",
        &[src, acc, wsum, table, grids],
        &StackWarpP {
            width: w as u32,
            height: h as u32,
            channels: c as u32,
            interp,
            count: count as u32,
            ..Default::default()
        },
        [groups(w, 16), groups(h, 16), 1],
    )
}

/// `acc /= wsum` per pixel (0 where no frame contributed).
pub fn warp_normalize(
    gpu: &GpuServiceBox,
    bufs: [GpuBuffer; 5],
    (w, h, c): (usize, usize, usize),
) -> Result<(), StageError> {
    dispatch(
        gpu,
        shaders::STACK_WARP,
        "normalize",
        &bufs,
        &StackWarpP {
            width: w as u32,
            height: h as u32,
            channels: c as u32,
            ..Default::default()
        },
        [groups(w, 16), groups(h, 16), 1],
    )
}

/// The device buffers a batch of warped frames lies in: the frames, their
/// warp table and grids (`shaders/stack_warp.wgsl`'s and `drizzle.wgsl`'s
/// bindings 0, 3 and 4).
#[derive(Clone, Copy)]
pub struct WarpBatch {
    pub src: GpuBuffer,
    pub table: GpuBuffer,
    pub grids: GpuBuffer,
    /// Frames in this batch.
    pub count: usize,
}

/// Streams every frame to the device with its warp, as many at a time as
/// `batch_words` of frame data allow: decoded on the CPU in parallel, one
/// write per batch, the tables from [`warp_tables`]; `each` runs the
/// kernels on one batch. The buffers live in `bufs` (the caller's, so that
/// queued work finishes before they go).
#[allow(clippy::too_many_arguments)]
pub fn for_warp_batches(
    ctx: &jupiter_plugin_api::StageCtx,
    gpu: &GpuServiceBox,
    bufs: &mut jupiter_plugin_api::gpu::helpers::Buffers,
    frames: &jupiter_plugin_api::FrameSourceRef,
    warps: &[jupiter_plugin_api::FrameWarp],
    weights: &[f32],
    batch_words: usize,
    mut each: impl FnMut(WarpBatch) -> Result<(), StageError>,
) -> Result<(), StageError> {
    let info = frames.info();
    let (n, len, h) = (info.count as usize, info.frame_len(), info.height as usize);
    let batch = (batch_words / len.max(1)).clamp(1, n.max(1));
    let grid_words = |wp: &jupiter_plugin_api::FrameWarp| {
        wp.field.as_ref().into_option().map_or(3, |f| {
            let (c, r) = f.dense_dims();
            3 * (c * r) as usize
        })
    };
    let max_grid = warps.iter().map(grid_words).max().unwrap_or(3);
    let src = bufs.zeroed(batch * len)?;
    let table = bufs.zeroed(batch * WARP_SLOT_WORDS)?;
    let grids = bufs.zeroed(batch * max_grid)?;
    let mut staging = vec![0.0f32; batch * len];
    for start in (0..n).step_by(batch) {
        ctx.check_cancelled()?;
        let count = batch.min(n - start);
        read_batch(ctx, frames, start, count, (0, h), &mut staging)?;
        write(gpu, src, 0, &staging[..count * len])?;
        let ws: Vec<&jupiter_plugin_api::FrameWarp> = warps[start..start + count].iter().collect();
        let (t, g) = warp_tables(&ws, &weights[start..start + count], len);
        write(gpu, table, 0, &t)?;
        write(gpu, grids, 0, &g)?;
        each(WarpBatch {
            src,
            table,
            grids,
            count,
        })?;
        ctx.progress((start + count) as u64, n as u64);
    }
    Ok(())
}

/// Decodes rows `y0 .. y0 + rows` of frames `start .. start + count` into
/// consecutive blocks of `staging`, in parallel through the backend.
pub fn read_batch(
    ctx: &jupiter_plugin_api::StageCtx,
    frames: &jupiter_plugin_api::FrameSourceRef,
    start: usize,
    count: usize,
    (y0, rows): (usize, usize),
    staging: &mut [f32],
) -> Result<(), StageError> {
    let block = rows * frames.info().row_len();
    ctx.par_try_chunks_mut(&mut staging[..count * block], block, |k, chunk| {
        frames
            .read_rows(start + k, y0, rows, chunk.into())
            .into_result()
    })
}
