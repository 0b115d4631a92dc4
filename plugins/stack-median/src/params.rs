//! Parameters of the `stack-median` stage.

use jupiter_plugin_api::Interpolation;

jupiter_plugin_api::params! {
    /// `stack-median` parameters (JSON; unknown fields are rejected).
    #[derive(Debug, Clone, PartialEq)]
    pub struct MedianParams {
        /// Resampling of fractional shifts.
        pub interpolation: Interpolation = Interpolation::Sharp, choice(Interpolation::ALL), "Resampling of fractional shifts: bicubic-sharp (cubic convolution a = -0.75, the most detail), bicubic (Catmull-Rom) or bilinear";
    }
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
        assert_eq!(p.interpolation.as_str(), "bilinear");
        let e = parse_params::<MedianParams>(r#"{"kappa": 2}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams);
    }
}
