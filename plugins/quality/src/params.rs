//! Parameters of the `quality` stage.

use jupiter_plugin_api::ChoiceValue;
use serde::Deserialize;

/// Sharpness metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// Variance of the 4-neighbour Laplacian.
    Laplacian,
    /// Mean squared Sobel gradient magnitude.
    Tenengrad,
}

impl Metric {
    /// The names, in the order the manifest lists them.
    pub const ALL: &'static [&'static str] = &["laplacian", "tenengrad"];
}

impl ChoiceValue for Metric {
    fn choice_name(&self) -> &str {
        match self {
            Metric::Laplacian => "laplacian",
            Metric::Tenengrad => "tenengrad",
        }
    }
}

jupiter_plugin_api::params! {
    /// Parameters (JSON/TOML keys in snake_case).
    #[derive(Debug, Clone)]
    pub struct QualityParams {
        pub metric: Metric = Metric::Laplacian, choice(Metric::ALL), "Sharpness metric";
        /// Gaussian prefilter sigma in pixels (0 = none).
        pub prefilter_sigma: f32 = 1.0, float(0.0, 5.0), "Gaussian prefilter against noise, pixels (0 = off)";
        /// Divide by the squared mean brightness.
        pub normalize: bool = true, bool, "Divide the score by the squared mean brightness";
        /// Frames scored on 2×2 cells of pixels (see `cpu::Plane`).
        pub cells: bool = true, bool, "Score frames on 2×2 cells of pixels, at half resolution (a quarter of the work; a raw colour capture's cells are its mosaic's measured samples, (R + 2G + B)/4); off: every pixel of the (demosaiced) luminance";
    }
}
