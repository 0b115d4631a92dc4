//! The band driver of per-pixel GPU stackers: frames shifted into a
//! frame-major band on the device (from the frames the host keeps there, or
//! decoded and uploaded batch by batch), then reduced per pixel.

use jupiter_plugin_api::frame::FrameSourceExt;
use jupiter_plugin_api::gpu::helpers::Buffers;
use jupiter_plugin_api::{DeviceFrames, GpuBuffer, GpuServiceBox, StageError};

use super::{read_batch, shift_frames, write_slots, FrameSlot, ShiftGeometry, SLOT_WORDS};

/// A per-pixel reduction over the frames of one band: `(tile, out, npix, n,
/// out_offset)` reduces the `n` frames of the frame-major `tile`
/// (`tile[f * npix + i]`) into `out[out_offset + i]`.
pub type BandKernel<'a> =
    dyn FnMut(GpuBuffer, GpuBuffer, usize, usize, usize) -> Result<(), StageError> + 'a;

/// A per-pixel stack of the frames under global shifts, on the GPU: what
/// `kit::tile::stack_bands` is to the CPU stackers, with the reduction
/// (median, clipped mean, …) given as a kernel per band.
///
/// The image is processed in bands of rows sized so that the aligned band of
/// every frame fits `budget_words` (frame-major). For each band, the frames'
/// source rows (band ± the largest vertical shift + 3 rows of interpolation
/// margin) are decoded on the CPU in parallel batches, uploaded one batch per
/// write (or read where the host keeps the frames on the device), shifted
/// into the band buffer on the device, and `reduce` is run on the band.
/// Returns the device buffer holding the `w × h × c` result.
pub fn stack_bands_on_device(
    ctx: &jupiter_plugin_api::StageCtx,
    gpu: &GpuServiceBox,
    frames: &jupiter_plugin_api::FrameSourceRef,
    warps: &[jupiter_plugin_api::FrameWarp],
    interp: u32,
    budget_words: usize,
    reduce: &mut BandKernel,
) -> Result<GpuBuffer, StageError> {
    let info = frames.info();
    let n = info.count as usize;
    jupiter_plugin_api::check_warps(&info, warps.len())?;
    let (w, h, c) = info.dims();
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
        let geometry = band_geometry((w, h, c), interp, (y0, rows), (sy0, srows));
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
        reduce(tile, out, rows * row, n, y0 * row)?;
        ctx.progress((b + 1) as u64, bands as u64);
    }
    gpu.synchronize().into_result()?;
    bufs.keep(out);
    Ok(out)
}

/// The shift geometry of output rows `y0 .. y0 + rows` of a `w × h × c`
/// image, read from source rows `src_y0 .. src_y0 + src_rows`.
fn band_geometry(
    (width, height, channels): (usize, usize, usize),
    interp: u32,
    (y0, rows): (usize, usize),
    (src_y0, src_rows): (usize, usize),
) -> ShiftGeometry {
    ShiftGeometry {
        width,
        height,
        channels,
        interp,
        y0,
        rows,
        src_y0,
        src_rows,
    }
}
