//! # quality: per-frame sharpness scores
//!
//! Scores every frame of a capture so the host can keep the sharpest. Two
//! metrics: variance of the Laplacian (default) and Tenengrad (mean squared
//! Sobel gradient). An optional light gaussian prefilter keeps sensor noise
//! from looking like detail; scores are normalised by the frame's mean
//! brightness squared, so thin cloud or transparency changes do not decide
//! which frames are kept. Frames are scored in parallel through the backend,
//! or on the GPU (`gpu.rs`) when the host keeps the capture there.

pub mod cpu;
pub mod gpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `quality` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const Quality: QualityFn<params::QualityParams> = QualityFn {
    info: StageInfo::new(
        "quality",
        env!("CARGO_PKG_VERSION"),
        "Frame sharpness: variance of Laplacian or Tenengrad, with optional noise prefilter",
    )
    .with_gpu(),
    run: |ctx, frames, p| {
        if let Some(g) = ctx.gpu() {
            if gpu::supports(&frames.info(), p) {
                if let Some(dev) = frames.on_device()? {
                    return gpu::score_all(ctx, &g, frames, &dev, p);
                }
            }
        }
        cpu::score_all(ctx, frames, p)
    },
};

export_plugin!(Quality);
