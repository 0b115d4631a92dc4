//! # align-phase: global alignment by FFT phase correlation
//!
//! Builds a low-noise reference (the mean of the best few frames, each aligned
//! to the best one), then measures every frame's sub-pixel displacement
//! against it by phase correlation (Hann window, partially whitened
//! cross-power spectrum with a gaussian low-pass, gaussian peak fit, one
//! refinement pass). FFT plans are created once per frame size and shared
//! (`jupiter_kit::fft`). Frames are measured in parallel through the backend,
//! or on the GPU (`gpu.rs`) when the host keeps the capture there.

pub mod cpu;
pub mod gpu;
pub mod gpu_pc;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `align-phase` stage.
pub struct AlignPhase;

impl Stage for AlignPhase {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "align-phase",
            env!("CARGO_PKG_VERSION"),
            StageKind::Align,
            "Global sub-pixel alignment by FFT phase correlation against a mean-of-best reference",
            params::AlignParams::specs(),
        )
        .with_gpu()
    }

    fn align(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        _req: &AlignRequest,
        params: &str,
    ) -> Result<Alignment, StageError> {
        let p = params::AlignParams::parse(params)?;
        if let Some(g) = ctx.gpu() {
            if let Some(dev) = frames.on_device()? {
                if let Some(a) = gpu::align(ctx, &g, frames, &dev, &p)? {
                    return Ok(a);
                }
            }
        }
        cpu::align(ctx, frames, &p)
    }
}

export_plugin!(AlignPhase);
