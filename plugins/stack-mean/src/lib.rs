//! # stack-mean: (optionally quality-weighted) mean of the aligned frames
//!
//! Frames stream from the frame source band by band: for each band of output
//! rows, every selected frame's needed input rows are decoded, resampled under
//! its warp (bicubic by default) and accumulated. Peak memory is the output
//! image plus, per worker thread, one band of accumulators and one band of
//! decoded input rows — never the frame set.
//!
//! With a GPU offered by the host, `gpu.rs` does the same on the device
//! (global shifts, or warp fields from multi-point alignment) and leaves the
//! result there.

pub mod cpu;
pub mod gpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `stack-mean` stage.
pub struct StackMean;

impl Stage for StackMean {
    fn manifest(&self) -> Manifest {
        Manifest {
            gpu: true,
            ..Manifest::new(
                "stack-mean",
                env!("CARGO_PKG_VERSION"),
                StageKind::Stack,
                "Mean of the aligned frames, optionally weighted by frame quality",
                params::MeanParams::specs(),
            )
        }
    }

    fn stack(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        req: &StackRequest,
        params: &str,
    ) -> Result<Image, StageError> {
        let p = params::MeanParams::parse(params)?;
        match ctx.gpu() {
            Some(g) if gpu::supports(req) => gpu::stack(ctx, &g, frames, req, &p),
            Some(g) => gpu::stack_warped(ctx, &g, frames, req, &p),
            None => cpu::stack(ctx, frames, req, &p),
        }
    }
}

export_plugin!(StackMean);
