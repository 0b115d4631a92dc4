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

/// The `stack-mean` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const StackMean: StackFn<params::MeanParams> = StackFn {
    info: StageInfo::new(
        "stack-mean",
        env!("CARGO_PKG_VERSION"),
        "Mean of the aligned frames, optionally weighted by frame quality",
    )
    .with_gpu(),
    run: |ctx, frames, req, p| match ctx.gpu() {
        Some(g) if gpu::supports(req) => gpu::stack(ctx, &g, frames, req, p),
        Some(g) => gpu::stack_warped(ctx, &g, frames, req, p),
        None => cpu::stack(ctx, frames, req, p),
    },
};

export_plugin!(StackMean);
