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

/// The `quality` stage.
pub struct Quality;

impl Stage for Quality {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "quality",
            env!("CARGO_PKG_VERSION"),
            StageKind::Quality,
            "Frame sharpness: variance of Laplacian or Tenengrad, with optional noise prefilter",
            params::QualityParams::specs(),
        )
        .with_gpu()
    }

    fn quality(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        params: &str,
    ) -> Result<Vec<f32>, StageError> {
        let p = params::QualityParams::parse(params)?;
        if let Some(g) = ctx.gpu() {
            if gpu::supports(&frames.info(), &p) {
                if let Some(dev) = frames.on_device()? {
                    return gpu::score_all(ctx, &g, frames, &dev, &p);
                }
            }
        }
        cpu::score_all(ctx, frames, &p)
    }
}

export_plugin!(Quality);
