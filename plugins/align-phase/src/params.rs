//! Parameters of the `align-phase` stage.

use jupiter_plugin_api::ParamSpec;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlignParams {
    /// How many of the best frames are averaged into the reference.
    pub reference_frames: u32,
    /// Frames whose correlation peak falls below this are reported.
    pub min_peak: f32,
    /// `auto`: measure on the region around the object (planet on dark
    /// sky; the whole frame for surface captures); `full`: whole frame.
    pub region: String,
}

impl Default for AlignParams {
    fn default() -> Self {
        AlignParams {
            reference_frames: 10,
            min_peak: 0.05,
            region: "auto".into(),
        }
    }
}

pub fn specs() -> Vec<ParamSpec> {
    let d = AlignParams::default();
    vec![
        ParamSpec::int(
            "reference_frames",
            d.reference_frames as i64,
            1,
            1000,
            "Best frames averaged into the reference",
        ),
        ParamSpec::float(
            "min_peak",
            d.min_peak as f64,
            0.0,
            1.0,
            "Warn about frames whose correlation peak is below this",
        ),
        ParamSpec::choice(
            "region",
            &d.region,
            &["auto", "full"],
            "Where shifts are measured: auto = the object and a margin (skips empty sky), full = whole frame",
        ),
    ]
}
