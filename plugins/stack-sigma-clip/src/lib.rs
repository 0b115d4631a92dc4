//! # stack-sigma-clip: iterative kappa-sigma clipping of the aligned frames
//!
//! For each band of output rows, every frame's rows are resampled under its
//! warp and gathered pixel-major ([`jupiter_kit::tile`]), as `stack-median`
//! does. Per output sample, samples further than `kappa_low`/`kappa_high`
//! standard deviations below/above the median are rejected, repeatedly (up to
//! `max_iterations`, never keeping fewer than `min_frames`); the result is the
//! mean of the kept samples (`clip`) or the mean of all samples clamped to the
//! final bounds (`winsorize`). Samples whose warp-field weight is 0 are left
//! out.
//!
//! Memory: the output image plus, per running band, `N × band` samples (see
//! [`cpu::stack`]); the frame set is never copied.

pub mod cpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `stack-sigma-clip` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const StackSigmaClip: StackFn<params::SigmaClipParams> = StackFn {
    info: StageInfo::new(
        "stack-sigma-clip",
        env!("CARGO_PKG_VERSION"),
        "Mean of the aligned frames after iterative kappa-sigma clipping (or winsorizing) per pixel",
    ),
    run: cpu::stack,
};

export_plugin!(StackSigmaClip);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_names_a_stack_stage_with_its_params() {
        let params = [
            "interpolation",
            "kappa_low",
            "kappa_high",
            "max_iterations",
            "min_frames",
            "mode",
        ];
        jupiter_plugin_api::testing::check_manifest(
            &StackSigmaClip,
            "stack-sigma-clip",
            StageKind::Stack,
            false,
            &params,
        );
    }
}
