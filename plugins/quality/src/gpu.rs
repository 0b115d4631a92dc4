//! GPU path of the `quality` stage, over frames the host keeps on the device
//! ([`FrameSourceExt::on_device`]): one dispatch of `shaders/quality.wgsl`
//! scores a batch of frames tile by tile (32×32 tiles for prefilter radii up
//! to 7, else 16×16) (luminance, prefilter, metric and
//! sums fused, so nothing but 3 sums per tile is written), a second adds each
//! frame's tiles, and only 3 numbers per frame come back. The score itself is
//! finished on the CPU in `f64`, by the same formula as [`crate::cpu`].

use jupiter_kit::conv::gaussian_kernel;
use jupiter_kit::gpu::{shaders, uniforms, QualityP};
use jupiter_plugin_api::gpu::helpers::{download_at, groups, run, write, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{DeviceFrames, GpuServiceBox};

use crate::cpu::Plane;
use crate::params::{Metric, QualityParams};

/// Largest prefilter radius the kernel's tile holds (sigma 5 → radius 15).
pub const MAX_RADIUS: usize = 15;
/// Largest prefilter radius of 32×32 tiles (16×16 above it).
pub const MAX_RADIUS_32: usize = 7;
/// Words of per-tile sums per batch.
const PARTIAL_WORDS: usize = 1 << 24;

/// True when this path can score the frames (on the device, sizes the
/// kernel handles); otherwise the CPU path runs.
pub fn supports(info: &FrameInfo, p: &QualityParams) -> bool {
    info.width >= 3
        && info.height >= 3
        && gaussian_kernel(p.prefilter_sigma).len() / 2 <= MAX_RADIUS
}

/// The score of one frame from its totals (sum and sum of squares of the
/// metric over the interior pixels, sum of the luminance), as in
/// [`crate::cpu::sharpness`] and [`crate::cpu::score_plane`].
pub fn finish(s: f64, s2: f64, lum_sum: f64, w: usize, h: usize, p: &QualityParams) -> f32 {
    let n = ((w - 2) * (h - 2)) as f64;
    let mut v = match p.metric {
        Metric::Laplacian => s2 / n - (s / n).powi(2),
        Metric::Tenengrad => s / n,
    };
    if p.normalize {
        let m = lum_sum / (w * h) as f64;
        v /= (m * m).max(1e-12);
    }
    v as f32
}

/// Scores every frame of the source on the device.
pub fn score_all(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    dev: &DeviceFrames,
    p: &QualityParams,
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    let (fw, fh, c) = info.dims();
    let n = info.count as usize;
    let len = info.frame_len();
    // Scored on what the CPU path scores: the luminance, its cells, or
    // the mosaic's cells (read from the demosaiced frames' own colours).
    let plane = Plane::of(frames, p);
    let (w, h) = plane.dims((fw, fh));
    let p = &plane.params(p);
    let pattern = frames.mosaic().into_option().unwrap_or(0);
    let kernel = gaussian_kernel(p.prefilter_sigma);
    // 32×32 tiles where the apron fits the kernel's workgroup memory.
    let tile = if kernel.len() / 2 <= MAX_RADIUS_32 {
        32
    } else {
        16
    };
    let (tx, ty) = (w.div_ceil(tile), h.div_ceil(tile));
    let tiles = tx * ty;
    let batch = (PARTIAL_WORDS / (3 * tiles)).clamp(1, 65535).min(n.max(1));
    let mut bufs = Buffers::new(gpu);
    let taps = bufs.upload(&kernel)?;
    let partial = bufs.zeroed(batch * tiles * 3 + batch * 3)?;
    let list = bufs.zeroed(batch)?;
    let totals = batch * tiles * 3;
    let all: Vec<usize> = (0..n).collect();
    let order = dev.in_buffer_order(&all, len);
    let mut scores = vec![0.0f32; n];
    let mut done = 0;
    for chunk in order.chunks(batch) {
        ctx.check_cancelled()?;
        let offsets: Vec<f32> = chunk
            .iter()
            .map(|s| f32::from_bits(s.offset as u32))
            .collect();
        write(gpu, list, 0, &offsets)?;
        // One dispatch per device buffer the batch's frames lie in.
        for (buf, first, count) in DeviceFrames::runs(chunk) {
            let u = uniforms(&QualityP {
                width: w as u32,
                height: h as u32,
                channels: c as u32,
                radius: (kernel.len() / 2) as u32,
                metric: matches!(p.metric, Metric::Tenengrad) as u32,
                tiles_x: tx as u32,
                tiles_y: ty as u32,
                count: count as u32,
                out_base: first as u32,
                totals: totals as u32,
                tile: tile as u32,
                cells: match plane {
                    Plane::Full => 0,
                    Plane::MosaicCells => 1,
                    Plane::Cells => 2,
                },
                pattern,
                stride: fw as u32,
                _a: 0,
                _b: 0,
            });
            let bindings = [buf, list, partial, taps];
            run(
                gpu,
                shaders::QUALITY,
                "tiles",
                &bindings,
                &u,
                [tx as u32, ty as u32, count as u32],
            )?;
            run(
                gpu,
                shaders::QUALITY,
                "reduce",
                &bindings,
                &u,
                [groups(count, 1), 1, 1],
            )?;
        }
        let sums = download_at(gpu, partial, totals, 3 * chunk.len())?;
        for (s, t) in chunk.iter().zip(sums.chunks_exact(3)) {
            scores[s.pos] = finish(t[0] as f64, t[1] as f64, t[2] as f64, w, h, p);
        }
        done += chunk.len();
        ctx.progress(done as u64, n as u64);
    }
    Ok(scores)
}
