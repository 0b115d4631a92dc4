//! # stack-drizzle: a true drizzle onto a finer grid
//!
//! Small planets are often imaged undersampled. Drizzle (Fruchter & Hook)
//! recovers resolution from the frames' sub-pixel offsets: each input pixel
//! is a drop of `pixfrac` × its side, placed in the reference through the
//! frame's alignment — the global shift, or the multi-point warp field with
//! its per-point weights — and added to every pixel of an output grid
//! `scale` times finer with the area of their overlap as weight (exact
//! square overlap, not point sampling; see `geometry.rs`). Quality weights
//! and the aligner's per-point weights multiply in. An output pixel no drop
//! reached is filled from its neighbours; `output = "weights"` returns the
//! coverage map instead of the image, and the log says how much was filled.
//!
//! `jupiter-host run --drizzle 2` is `--stacker stack-drizzle --set
//! stack.scale=2`. The CPU path streams frames band by band like
//! `stack-mean`; with a GPU, `gpu.rs` accumulates on the device.

pub mod cpu;
pub mod geometry;
pub mod gpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

use crate::geometry::Geometry;

/// The `stack-drizzle` stage.
#[allow(non_upper_case_globals)]
pub const StackDrizzle: StackFn<params::DrizzleParams> = StackFn {
    info: StageInfo::new(
        "stack-drizzle",
        env!("CARGO_PKG_VERSION"),
        "Drizzle onto a grid `scale` times finer: square drops of `pixfrac`, exact overlap areas, under global or multi-point alignment",
    )
    .with_gpu(),
    run: |ctx, frames, req, p| {
        p.check_ranges()?;
        let info = frames.info();
        let g = Geometry::new(info.width as usize, info.height as usize, p.scale, p.pixfrac);
        let mut d = match ctx.gpu() {
            Some(gpu) => gpu::drizzle(ctx, &gpu, frames, req, &g, p)?,
            None => cpu::drizzle(ctx, frames, req, &g, p)?,
        };
        finish(ctx, &mut d, &g, info.channels as usize, p)
    },
};

/// Fills the holes, logs the coverage and returns the image (or the
/// coverage map).
fn finish(
    ctx: &StageCtx,
    d: &mut cpu::Drizzled,
    g: &Geometry,
    ch: usize,
    p: &params::DrizzleParams,
) -> Result<Image, StageError> {
    let covered: Vec<f32> = d.weight.iter().copied().filter(|&w| w > 0.0).collect();
    let median = jupiter_kit::stats::percentile(&covered, 0.5).max(f32::MIN_POSITIVE);
    let low = jupiter_kit::stats::percentile(&covered, 0.01) / median;
    let holes = cpu::fill_holes(&mut d.data, &d.weight, g.out_w, g.out_h, ch);
    ctx.info(&format!(
        "drizzle ×{:.2} (pixfrac {}): {}×{}; coverage (summed drop weight over its median) 1st percentile {low:.2}; {holes} pixels ({:.2} %) reached by no drop, filled from their neighbours",
        g.sx,
        p.pixfrac,
        g.out_w,
        g.out_h,
        100.0 * holes as f64 / (g.out_w * g.out_h) as f64
    ));
    let (w, h) = (g.out_w as u32, g.out_h as u32);
    Ok(match p.output.as_str() {
        "weights" => Image::from_vec(w, h, 1, d.weight.iter().map(|x| x / median).collect()),
        _ => Image::from_vec(w, h, ch as u32, std::mem::take(&mut d.data)),
    })
}

export_plugin!(StackDrizzle);
