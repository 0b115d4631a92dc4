//! Parameters of the `stack-mean` stage.

use jupiter_plugin_api::ParamSpec;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MeanParams {
    /// `bicubic` or `bilinear` resampling of fractional shifts.
    pub interpolation: String,
    /// Weight each frame by `(score / best score) ^ weight_power`.
    pub quality_weighting: bool,
    pub weight_power: f32,
}

impl Default for MeanParams {
    fn default() -> Self {
        MeanParams {
            interpolation: "bicubic".into(),
            quality_weighting: false,
            weight_power: 1.0,
        }
    }
}

pub fn specs() -> Vec<ParamSpec> {
    let d = MeanParams::default();
    vec![
        ParamSpec::choice(
            "interpolation",
            &d.interpolation,
            &["bicubic", "bilinear"],
            "Resampling of fractional shifts",
        ),
        ParamSpec::bool(
            "quality_weighting",
            d.quality_weighting,
            "Weight frames by their quality score",
        ),
        ParamSpec::float(
            "weight_power",
            d.weight_power as f64,
            0.0,
            8.0,
            "Exponent applied to the relative score",
        ),
    ]
}
