//! # stack-median: exact per-pixel median of the aligned frames
//!
//! For each band of output rows, every frame's rows are resampled under its
//! warp (bicubic by default) and gathered pixel-major (all samples of a pixel
//! contiguous, [`jupiter_kit::tile`]); the median of each pixel is then found
//! by selection (`select_nth_unstable_by`), not by sorting. An even number of
//! samples gives the mean of the two middle values. Samples whose warp-field
//! weight is 0 are left out.
//!
//! Memory: the output image plus, per running band, `N × band` samples (see
//! [`cpu::stack`]); the frame set is never copied. [`cpu::stack_reference`]
//! is the naive gather-and-sort reference the fast path is tested (and
//! benchmarked, `cargo run --release -p jupiter-bench -- median`) against.
//!
//! With a GPU offered by the host (and only global shifts), [`gpu::stack`]
//! computes the same median on the device (see `shaders/stack_median.wgsl`).

pub mod cpu;
pub mod gpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `stack-median` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const StackMedian: StackFn<params::MedianParams> = StackFn {
    info: StageInfo::new(
        "stack-median",
        env!("CARGO_PKG_VERSION"),
        "Exact per-pixel median of the aligned frames (rejects satellites, hot pixels, cosmic rays)",
    )
    .with_gpu(),
    run: |ctx, frames, req, p| match ctx.gpu() {
        Some(g) if gpu::supports(req) => gpu::stack(ctx, &g, frames, req, p),
        _ => cpu::stack(ctx, frames, req, p),
    },
};

export_plugin!(StackMedian);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_a_stack_stage_with_its_params() {
        let kind = StageKind::Stack;
        jupiter_plugin_api::testing::check_manifest(
            &StackMedian,
            "stack-median",
            kind,
            true,
            &["interpolation"],
        );
    }
}
