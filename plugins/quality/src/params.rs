//! Parameters of the `quality` stage.

use jupiter_plugin_api::ParamSpec;
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

/// Parameters (JSON/TOML keys in snake_case).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QualityParams {
    pub metric: Metric,
    /// Gaussian prefilter sigma in pixels (0 = none).
    pub prefilter_sigma: f32,
    /// Divide by the squared mean brightness.
    pub normalize: bool,
}

impl Default for QualityParams {
    fn default() -> Self {
        QualityParams {
            metric: Metric::Laplacian,
            prefilter_sigma: 1.0,
            normalize: true,
        }
    }
}

/// The manifest's parameter list (kept next to the struct and its defaults).
pub fn specs() -> Vec<ParamSpec> {
    let d = QualityParams::default();
    vec![
        ParamSpec::choice(
            "metric",
            "laplacian",
            &["laplacian", "tenengrad"],
            "Sharpness metric",
        ),
        ParamSpec::float(
            "prefilter_sigma",
            d.prefilter_sigma as f64,
            0.0,
            5.0,
            "Gaussian prefilter against noise, pixels (0 = off)",
        ),
        ParamSpec::bool(
            "normalize",
            d.normalize,
            "Divide the score by the squared mean brightness",
        ),
    ]
}
