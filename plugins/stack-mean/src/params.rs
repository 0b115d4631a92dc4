//! Parameters of the `stack-mean` stage.

use jupiter_plugin_api::Interpolation;

jupiter_plugin_api::params! {
    /// `stack-mean` parameters (JSON; unknown fields are rejected).
    #[derive(Debug, Clone)]
    pub struct MeanParams {
        /// Resampling of fractional shifts.
        pub interpolation: Interpolation = Interpolation::Bicubic, choice(Interpolation::ALL), "Resampling of fractional shifts";
        /// Weight each frame by `(score / best score) ^ weight_power`.
        pub quality_weighting: bool = false, bool, "Weight frames by their quality score";
        pub weight_power: f32 = 1.0, float(0.0, 8.0), "Exponent applied to the relative score";
    }
}
