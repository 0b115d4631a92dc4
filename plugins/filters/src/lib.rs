//! # filters: image → image operations after stacking and sharpening
//!
//! One library exporting several `Filter` stages, one module each (params,
//! CPU path and tests side by side):
//!
//! - [`gaussian_blur`] (`gaussian-blur`): separable gaussian convolution of
//!   every channel, borders replicating the edge pixel.
//! - [`unsharp_mask`] (`unsharp-mask`): `in + amount · (in − blur)` wherever
//!   `|in − blur|` exceeds a threshold.
//! - [`gamma`] (`gamma`): `max(in, 0) ^ (1 / gamma)`.
//! - [`brightness_contrast`] (`brightness-contrast`):
//!   `(in − 0.5) · contrast + 0.5 + brightness`.
//! - [`stretch`] (`stretch`): black and white points at percentiles of all
//!   samples, mapped to 0 and 1 and clamped, then PixInsight's midtone
//!   transfer function `MTF_m(x) = (m − 1) x / ((2m − 1) x − m)`.
//! - [`rgb_align`] (`rgb-align`): atmospheric-dispersion correction. The
//!   shifts of R and B against G are measured by phase correlation
//!   (`jupiter_kit::fft::PhaseCorrelator`, sub-pixel) and undone by bicubic
//!   resampling; mono images pass through.
//!
//! Only `stretch` clamps its output; the others may leave values outside
//! `[0, 1]` for a later stretch. Convolutions run through `jupiter_kit::conv`
//! and per-sample passes through `StageCtx::par_chunks_mut`, so all the work
//! runs on the host's pool. When the host offers a GPU, every stage but
//! `rgb-align` runs on the device instead (`gpu.rs`), leaving the image there. Parameters are validated before any work, and an
//! out-of-range value is an `InvalidParams` error naming the parameter.

pub mod brightness_contrast;
pub mod common;
pub mod gamma;
pub mod gaussian_blur;
pub mod gpu;
pub mod rgb_align;
pub mod stretch;
pub mod unsharp_mask;

use jupiter_plugin_api::prelude::*;

pub use brightness_contrast::BrightnessContrast;
pub use gamma::Gamma;
pub use gaussian_blur::GaussianBlur;
pub use rgb_align::RgbAlign;
pub use stretch::Stretch;
pub use unsharp_mask::UnsharpMask;

export_plugin!(
    GaussianBlur,
    UnsharpMask,
    Gamma,
    BrightnessContrast,
    Stretch,
    RgbAlign
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_has_a_unique_name_and_the_filter_kind() {
        let stages: [&dyn Stage; 6] = [
            &GaussianBlur,
            &UnsharpMask,
            &Gamma,
            &BrightnessContrast,
            &Stretch,
            &RgbAlign,
        ];
        let names: Vec<String> = stages
            .iter()
            .map(|s| s.manifest().name.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "gaussian-blur",
                "unsharp-mask",
                "gamma",
                "brightness-contrast",
                "stretch",
                "rgb-align"
            ]
        );
        for s in stages {
            let m = s.manifest();
            assert_eq!(m.kind, StageKind::Filter);
            assert!(!m.params.is_empty());
        }
    }
}
