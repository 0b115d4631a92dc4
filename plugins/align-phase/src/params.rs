//! Parameters of the `align-phase` stage.

jupiter_plugin_api::params! {
    /// `align-phase` parameters (JSON; unknown fields are rejected).
    #[derive(Debug, Clone)]
    pub struct AlignParams {
        /// How many of the best frames are averaged into the reference.
        pub reference_frames: u32 = 10, int(1, 1000), "Best frames averaged into the reference";
        /// Frames whose correlation peak falls below this are reported.
        pub min_peak: f32 = 0.05, float(0.0, 1.0), "Warn about frames whose correlation peak is below this";
        /// `auto`: measure on the region around the object (planet on dark
        /// sky; the whole frame for surface captures); `full`: whole frame.
        pub region: String = "auto".into(), choice(&["auto", "full"]), "Where shifts are measured: auto = the object and a margin (skips empty sky), full = whole frame";
    }
}
