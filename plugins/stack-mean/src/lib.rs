//! # stack-mean: (optionally quality-weighted) mean of the aligned frames
//!
//! Frames stream from the frame source band by band: for each band of output
//! rows, every selected frame's needed input rows are decoded, resampled under
//! its warp (bicubic by default) and accumulated. Peak memory is the output
//! image plus, per worker thread, one band of accumulators and one band of
//! decoded input rows — never the frame set.

pub mod cpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `stack-mean` stage.
pub struct StackMean;

impl Stage for StackMean {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "stack-mean",
            env!("CARGO_PKG_VERSION"),
            StageKind::Stack,
            "Mean of the aligned frames, optionally weighted by frame quality",
            params::specs(),
        )
    }

    fn stack(&self, ctx: &StageCtx, frames: &FrameSourceRef, req: &StackRequest, params: &str) -> Result<Image, StageError> {
        let p: params::MeanParams = parse_params(params)?;
        cpu::stack(ctx, frames, req, &p)
    }
}

export_plugin!(StackMean);
