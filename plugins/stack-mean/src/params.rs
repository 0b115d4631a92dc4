//! Parameters of the `stack-mean` stage.

use jupiter_plugin_api::Interpolation;

jupiter_plugin_api::params! {
    /// `stack-mean` parameters (JSON; unknown fields are rejected).
    #[derive(Debug, Clone)]
    pub struct MeanParams {
        /// Resampling of fractional shifts.
        pub interpolation: Interpolation = Interpolation::Sharp, choice(Interpolation::ALL), "Resampling of fractional shifts: bicubic-sharp (cubic convolution a = -0.75, the most detail), bicubic (Catmull-Rom) or bilinear";
        /// Weight each frame by `(score / best score) ^ weight_power`.
        pub quality_weighting: bool = false, bool, "Weight frames by their quality score";
        pub weight_power: f32 = 1.0, float(0.0, 8.0), "Exponent applied to the relative score";
    }
}
