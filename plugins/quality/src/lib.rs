//! # quality: per-frame sharpness scores
//!
//! Scores every frame of a capture so the host can keep the sharpest. Two
//! metrics: variance of the Laplacian (default) and Tenengrad (mean squared
//! Sobel gradient). An optional light gaussian prefilter keeps sensor noise
//! from looking like detail; scores are normalised by the frame's mean
//! brightness squared, so thin cloud or transparency changes do not decide
//! which frames are kept. Frames are scored in parallel through the backend.

pub mod cpu;
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
            params::specs(),
        )
    }

    fn quality(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        params: &str,
    ) -> Result<Vec<f32>, StageError> {
        let p: params::QualityParams = parse_params(params)?;
        cpu::score_all(ctx, frames, &p)
    }
}

export_plugin!(Quality);
