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
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `align-phase` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const AlignPhase: AlignFn<params::AlignParams> = AlignFn {
    info: StageInfo::new(
        "align-phase",
        env!("CARGO_PKG_VERSION"),
        "Global sub-pixel alignment by FFT phase correlation against a mean-of-best reference",
    )
    .with_gpu(),
    run: |ctx, frames, _req, p| {
        if let Some(g) = ctx.gpu() {
            if let Some(dev) = frames.on_device()? {
                if let Some(a) = gpu::align(ctx, &g, frames, &dev, p)? {
                    return Ok(a);
                }
            }
        }
        cpu::align(ctx, frames, p)
    },
};

export_plugin!(AlignPhase);
