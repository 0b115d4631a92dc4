//! GPU building blocks shared by the plugins' GPU paths, over the host's
//! `GpuService` (WGSL from `shaders/`, buffers by id): separable convolution,
//! sub-pixel shift, accumulation, and exact k-th-value selection by a radix
//! histogram (the host reads back only 256 counts per pass).

use jupiter_plugin_api::frame::FrameSourceExt;
use jupiter_plugin_api::gpu::helpers::{groups, run, Buffers, Uniforms};
use jupiter_plugin_api::{DeviceFrames, GpuBuffer, GpuServiceBox, StageError};

/// WGSL sources, embedded at build time from `shaders/`.
pub mod shaders {
    pub const SHIFT: &str = include_str!("../../../shaders/shift.wgsl");
    pub const STACK_MEAN: &str = include_str!("../../../shaders/stack_mean.wgsl");
    pub const STACK_MEDIAN: &str = include_str!("../../../shaders/stack_median.wgsl");
    pub const SCALE: &str = include_str!("../../../shaders/scale.wgsl");
    pub const CONV: &str = include_str!("../../../shaders/conv_separable.wgsl");
    pub const SELECT_HIST: &str = include_str!("../../../shaders/select_hist.wgsl");
    pub const WAVELET: &str = include_str!("../../../shaders/wavelet.wgsl");
    pub const PIXEL_OPS: &str = include_str!("../../../shaders/pixel_ops.wgsl");
    pub const UNSHARP: &str = include_str!("../../../shaders/unsharp.wgsl");
    pub const STACK_WARP: &str = include_str!("../../../shaders/stack_warp.wgsl");
    pub const QUALITY: &str = include_str!("../../../shaders/quality.wgsl");
    pub const DECODE: &str = include_str!("../../../shaders/decode.wgsl");
    pub const PHASE_CORR: &str = include_str!("../../../shaders/phase_corr.wgsl");

    /// Every shader with its file name (for validation tests).
    pub const ALL: &[(&str, &str)] = &[
        ("shift.wgsl", SHIFT),
        ("stack_mean.wgsl", STACK_MEAN),
        ("stack_median.wgsl", STACK_MEDIAN),
        ("scale.wgsl", SCALE),
        ("conv_separable.wgsl", CONV),
        ("select_hist.wgsl", SELECT_HIST),
        ("wavelet.wgsl", WAVELET),
        ("pixel_ops.wgsl", PIXEL_OPS),
        ("unsharp.wgsl", UNSHARP),
        ("stack_warp.wgsl", STACK_WARP),
        ("quality.wgsl", QUALITY),
        ("decode.wgsl", DECODE),
        ("phase_corr.wgsl", PHASE_CORR),
    ];
}

/// Workgroups for a 1-D pass over `n` items with groups of `size`, split
/// over y when more than 65535 groups are needed (shaders index
/// `gid.x + gid.y * 65535 * size`).
pub fn groups_1d(n: usize, size: usize) -> [u32; 3] {
    let g = n.div_ceil(size).max(1);
    if g <= 65535 {
        [g as u32, 1, 1]
    } else {
        [65535, g.div_ceil(65535) as u32, 1]
    }
}

/// `acc += weight * x` over `n` samples.
pub fn accumulate(
    gpu: &GpuServiceBox,
    x: GpuBuffer,
    acc: GpuBuffer,
    n: usize,
    weight: f32,
) -> Result<(), StageError> {
    let u = Uniforms::new().u32(n as u32).u32(0).f32(weight).f32(0.0);
    run(
        gpu,
        shaders::STACK_MEAN,
        "accumulate",
        &[x, acc],
        &u,
        groups_1d(n, 256),
    )
}

/// `data *= s` over `n` samples.
pub fn scale(gpu: &GpuServiceBox, data: GpuBuffer, n: usize, s: f32) -> Result<(), StageError> {
    let u = Uniforms::new().u32(n as u32).u32(0).f32(s).f32(0.0);
    run(gpu, shaders::SCALE, "scale", &[data], &u, groups_1d(n, 256))
}

/// Separable convolution of an interleaved `w × h × c` buffer: `src` → `dst`
/// (x pass into `tmp`, then y pass), taps `dilation` apart, edges replicated.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    gpu: &GpuServiceBox,
    src: GpuBuffer,
    tmp: GpuBuffer,
    dst: GpuBuffer,
    (w, h, c): (usize, usize, usize),
    kernel: &[f32],
    dilation: usize,
) -> Result<(), StageError> {
    let mut bufs = Buffers::new(gpu);
    let taps = bufs.upload(kernel)?;
    let u = Uniforms::new()
        .u32(w as u32)
        .u32(h as u32)
        .u32(c as u32)
        .u32((kernel.len() / 2) as u32)
        .u32(dilation.max(1) as u32);
    let g = [groups(w, 16), groups(h, 16), c as u32];
    run(gpu, shaders::CONV, "conv_x", &[src, tmp, taps], &u, g)?;
    run(gpu, shaders::CONV, "conv_y", &[tmp, dst, taps], &u, g)
}

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
    jupiter_plugin_api::gpu::helpers::write(gpu, table, 0, &words)
}

fn shift_uniforms(g: &ShiftGeometry, count: usize) -> Uniforms {
    Uniforms::new()
        .u32(g.width as u32)
        .u32(g.height as u32)
        .u32(g.channels as u32)
        .u32(g.interp)
        .u32(g.y0 as u32)
        .u32(g.rows as u32)
        .u32(g.src_y0 as u32)
        .u32(g.src_rows as u32)
        .u32(count as u32)
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
    let mut table = Vec::with_capacity(warps.len() * WARP_SLOT_WORDS);
    let mut grids = Vec::new();
    for (k, (w, &weight)) in warps.iter().zip(weights).enumerate() {
        let offset = grids.len() as u32;
        let (cols, rows, x0, y0, sx, sy) = match w.field.as_ref().into_option() {
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
            f32::from_bits((k * frame_len) as u32),
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
    let u = Uniforms::new()
        .u32(w as u32)
        .u32(h as u32)
        .u32(c as u32)
        .u32(interp)
        .u32(count as u32);
    run(
        gpu,
        shaders::STACK_WARP,
        "warp_accumulate",
        &[src, acc, wsum, table, grids],
        &u,
        [groups(w, 16), groups(h, 16), 1],
    )
}

/// `acc /= wsum` per pixel (0 where no frame contributed).
pub fn warp_normalize(
    gpu: &GpuServiceBox,
    bufs: [GpuBuffer; 5],
    (w, h, c): (usize, usize, usize),
) -> Result<(), StageError> {
    let u = Uniforms::new()
        .u32(w as u32)
        .u32(h as u32)
        .u32(c as u32)
        .u32(0)
        .u32(0);
    run(
        gpu,
        shaders::STACK_WARP,
        "normalize",
        &bufs,
        &u,
        [groups(w, 16), groups(h, 16), 1],
    )
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
    let error = std::sync::Mutex::new(None);
    ctx.par_chunks_mut(&mut staging[..count * block], block, |k, chunk| {
        if let Err(e) = frames
            .read_rows(start + k, y0, rows, chunk.into())
            .into_result()
        {
            error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get_or_insert(e);
        }
    })?;
    match error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Order-preserving key of an `f32` (as in `select_hist.wgsl`).
#[cfg(test)]
fn key(x: f32) -> u32 {
    let u = x.to_bits();
    if u & 0x8000_0000 != 0 {
        !u
    } else {
        u | 0x8000_0000
    }
}

fn unkey(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7fff_ffff)
    } else {
        f32::from_bits(!k)
    }
}

/// What to select from.
#[derive(Debug, Clone, Copy)]
pub enum SelectOf {
    /// The values `a[i * stride + offset]`.
    Values(GpuBuffer),
    /// `|a[j] - b[j]|` at `j = i * stride + offset`.
    AbsDiff(GpuBuffer, GpuBuffer),
}

/// The exact `k`-th smallest (0-based) of `count` strided values (NaNs skipped),
/// by four 8-bit radix passes; `None` when fewer than `k + 1` values exist.
pub fn kth_smallest(
    gpu: &GpuServiceBox,
    of: SelectOf,
    count: usize,
    stride: usize,
    offset: usize,
    k: usize,
) -> Result<Option<f32>, StageError> {
    let (a, b, mode) = match of {
        SelectOf::Values(a) => (a, a, 0u32),
        SelectOf::AbsDiff(a, b) => (a, b, 1u32),
    };
    let mut bufs = Buffers::new(gpu);
    let hist = bufs.zeroed(256)?;
    let zeros = [0.0f32; 256];
    let (mut prefix, mut mask, mut k) = (0u32, 0u32, k as u64);
    for pass in 0..4 {
        let shift = 24 - 8 * pass;
        jupiter_plugin_api::gpu::helpers::write(gpu, hist, 0, &zeros)?;
        let u = Uniforms::new()
            .u32(count as u32)
            .u32(stride as u32)
            .u32(offset as u32)
            .u32(mode)
            .u32(shift)
            .u32(prefix)
            .u32(mask)
            .u32(0);
        run(
            gpu,
            shaders::SELECT_HIST,
            "histogram",
            &[a, b, hist],
            &u,
            groups_1d(count, 256),
        )?;
        let counts = jupiter_plugin_api::gpu::helpers::download(gpu, hist, 256)?;
        let counts: Vec<u64> = counts.iter().map(|c| c.to_bits() as u64).collect();
        let mut bin = None;
        for (i, c) in counts.iter().enumerate() {
            if k < *c {
                bin = Some(i as u32);
                break;
            }
            k -= c;
        }
        let Some(bin) = bin else { return Ok(None) };
        prefix |= bin << shift;
        mask |= 0xff << shift;
    }
    Ok(Some(unkey(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let v = [-3.5f32, -1.0, -0.0, 0.0, 1e-30, 0.5, 2.0, 1e30];
        for w in v.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} {}", w[0], w[1]);
        }
        for x in v {
            assert_eq!(unkey(key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn one_d_groups_split_over_y() {
        assert_eq!(groups_1d(1000, 256), [4, 1, 1]);
        let g = groups_1d(65536 * 256, 256);
        assert_eq!(g, [65535, 2, 1]);
    }
}

#[cfg(test)]
mod validation {
    use super::shaders::ALL;

    /// Every WGSL file parses and validates with naga (no GPU needed), and
    /// starts with the comment naming its bindings and workgroup size.
    #[test]
    fn every_shader_parses_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
        let on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
        for name in &on_disk {
            assert!(
                ALL.iter().any(|(n, _)| n == name),
                "{name} is not in kit::gpu::shaders::ALL"
            );
        }
        for (name, src) in ALL {
            assert!(src.starts_with("// "), "{name}: must start with a comment");
            let head: String = src
                .lines()
                .take_while(|l| l.starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                head.contains("Bindings") && head.contains("Workgroup"),
                "{name}: header must name its bindings and workgroup size"
            );
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
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
    let u = Uniforms::new()
        .u32(npix as u32)
        .u32(n as u32)
        .u32(out_offset as u32)
        .u32(0);
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

/// Exact per-pixel median of the frames under global shifts, on the GPU.
///
/// The image is processed in bands of rows sized so that the aligned band of
/// every frame fits `budget_words` (frame-major). For each band, the frames'
/// source rows (band ± the largest vertical shift + 3 rows of interpolation
/// margin) are decoded on the CPU in parallel batches, uploaded one batch per
/// write (or read where the host keeps the frames on the device), shifted
/// into the band buffer on the device, and the band's median is taken.
/// Returns the device buffer holding the `w × h × c` result.
pub fn median_stack(
    ctx: &jupiter_plugin_api::StageCtx,
    gpu: &GpuServiceBox,
    frames: &jupiter_plugin_api::FrameSourceRef,
    warps: &[jupiter_plugin_api::FrameWarp],
    interp: u32,
    budget_words: usize,
) -> Result<GpuBuffer, StageError> {
    let info = frames.info();
    let n = info.count as usize;
    if n == 0 || warps.len() != n {
        return Err(StageError::invalid_params(
            "no frames to stack, or warps do not match frames",
        ));
    }
    let (w, h, c) = (
        info.width as usize,
        info.height as usize,
        info.channels as usize,
    );
    let row = w * c;
    let max_dy = warps.iter().map(|wp| wp.dy.abs()).fold(0.0f32, f32::max);
    if !max_dy.is_finite() {
        return Err(StageError::invalid_params("non-finite shift"));
    }
    let margin = max_dy.ceil() as usize + 3;
    let band = (budget_words / (n * row)).clamp(1, h);
    let src_rows_max = (band + 2 * margin).min(h);
    let batch = ((budget_words / 4) / (src_rows_max * row)).clamp(1, n);
    let mut bufs = Buffers::new(gpu);
    let out = bufs.zeroed(h * row)?;
    let tile = bufs.zeroed(n * band * row)?;
    let bands = h.div_ceil(band);
    // Frames the host keeps on the device are shifted straight from there
    // (whole frames as the source: the same samples, as the uploaded rows'
    // margin covers every tap), one dispatch per device buffer they lie in;
    // otherwise each band's rows are decoded and uploaded batch by batch.
    enum Source {
        Resident(Vec<jupiter_plugin_api::DeviceSlot>),
        Upload(GpuBuffer, Vec<f32>),
    }
    let mut source = match frames.on_device()? {
        Some(dev) => Source::Resident(dev.in_buffer_order(&(0..n).collect::<Vec<_>>(), h * row)),
        None => Source::Upload(
            bufs.zeroed(batch * src_rows_max * row)?,
            vec![0.0f32; batch * src_rows_max * row],
        ),
    };
    let table = bufs.zeroed(n * SLOT_WORDS)?;
    for (b, y0) in (0..h).step_by(band).enumerate() {
        let rows = band.min(h - y0);
        let (sy0, srows) = match source {
            Source::Resident(_) => (0, h),
            Source::Upload(..) => {
                let sy0 = y0.saturating_sub(margin);
                (sy0, (y0 + rows + margin).min(h) - sy0)
            }
        };
        let geometry = ShiftGeometry {
            width: w,
            height: h,
            channels: c,
            interp,
            y0,
            rows,
            src_y0: sy0,
            src_rows: srows,
        };
        let slot = |i: usize, src_offset: usize| FrameSlot {
            dx: warps[i].dx,
            dy: warps[i].dy,
            weight: 1.0,
            src_offset,
            dst_offset: i * rows * row,
        };
        match &mut source {
            Source::Resident(order) => {
                ctx.check_cancelled()?;
                for (buf, first, count) in DeviceFrames::runs(order) {
                    let slots: Vec<FrameSlot> = order[first..first + count]
                        .iter()
                        .map(|s| slot(s.index, s.offset))
                        .collect();
                    write_slots(gpu, table, &slots)?;
                    shift_frames(gpu, buf, tile, table, &geometry, count)?;
                }
            }
            Source::Upload(src, staging) => {
                for start in (0..n).step_by(batch) {
                    ctx.check_cancelled()?;
                    let count = batch.min(n - start);
                    read_batch(ctx, frames, start, count, (sy0, srows), staging)?;
                    let words = &staging[..count * srows * row];
                    jupiter_plugin_api::gpu::helpers::write(gpu, *src, 0, words)?;
                    let slots: Vec<FrameSlot> = (0..count)
                        .map(|k| slot(start + k, k * srows * row))
                        .collect();
                    write_slots(gpu, table, &slots)?;
                    shift_frames(gpu, *src, tile, table, &geometry, count)?;
                }
            }
        }
        median_kernel(gpu, tile, out, rows * row, n, y0 * row)?;
        ctx.progress((b + 1) as u64, bands as u64);
    }
    gpu.synchronize().into_result()?;
    bufs.keep(out);
    Ok(out)
}
