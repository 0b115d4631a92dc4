//! Parameters of the `stack-drizzle` stage.

jupiter_plugin_api::params! {
    /// `stack-drizzle` parameters (JSON; unknown fields are rejected).
    #[derive(Debug, Clone)]
    pub struct DrizzleParams {
        /// Output pixels per input pixel along each axis.
        pub scale: f32 = 2.0, float(1.0, 4.0), "Output pixels per input pixel along each axis (1.5, 2 and 3 are the usual choices)";
        /// Side of each input pixel's drop, as a fraction of the pixel.
        pub pixfrac: f32 = 0.5, float(0.1, 1.0), "Side of each input pixel's drop as a fraction of the pixel (smaller: sharper, needs more frames)";
        /// Weight each frame by `(score / best score) ^ weight_power`.
        pub quality_weighting: bool = false, bool, "Weight frames by their quality score";
        pub weight_power: f32 = 1.0, float(0.0, 8.0), "Exponent applied to the relative score";
        /// `image`, or `weights`: the coverage (each output pixel's summed
        /// drop weight over the median's), to see where drops landed.
        pub output: String = "image".into(), choice(&["image", "weights"]), "image, or weights: the coverage map (summed drop weight / its median) instead of the image";
    }
}
