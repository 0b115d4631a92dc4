//! Parameters of the `stack-median` stage.

use jupiter_plugin_api::ParamSpec;
use serde::Deserialize;

/// `stack-median` parameters (JSON; unknown fields are rejected).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MedianParams {
    /// `bicubic` or `bilinear` resampling of fractional shifts.
    pub interpolation: String,
}

impl Default for MedianParams {
    fn default() -> Self {
        MedianParams {
            interpolation: "bicubic".into(),
        }
    }
}

/// The manifest's description of [`MedianParams`].
pub fn specs() -> Vec<ParamSpec> {
    let d = MedianParams::default();
    vec![ParamSpec::choice(
        "interpolation",
        &d.interpolation,
        &["bicubic", "bilinear"],
        "Resampling of fractional shifts",
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::{parse_params, ErrorKind};

    #[test]
    fn defaults_and_unknown_fields() {
        assert_eq!(
            parse_params::<MedianParams>("").unwrap(),
            MedianParams::default()
        );
        let p: MedianParams = parse_params(r#"{"interpolation": "bilinear"}"#).unwrap();
        assert_eq!(p.interpolation, "bilinear");
        let e = parse_params::<MedianParams>(r#"{"kappa": 2}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams);
    }
}
