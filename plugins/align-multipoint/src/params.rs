//! Parameters of the `align-multipoint` stage.

use jupiter_plugin_api::{ParamSpec, StageError};
use serde::Deserialize;

/// Where alignment points go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A grid over the whole frame (Moon, Sun, large planets filling the
    /// frame); featureless or dark points are skipped.
    Surface,
    /// Only points on the planet's disc (found by a brightness threshold on
    /// the reference); the sky around it keeps the global alignment.
    Planet,
}

/// Parameters of `align-multipoint` (all optional; defaults suit a typical
/// lunar/solar surface capture).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MultipointParams {
    /// `surface` or `planet` (see [`Mode`]).
    pub mode: String,
    /// Side of an alignment point's square patch in pixels; 0 = automatic
    /// (from the frame size in surface mode, from the disc size in planet mode).
    pub ap_size: u32,
    /// Distance between neighbouring alignment points; 0 = half the size.
    pub ap_step: u32,
    /// Fraction of the frames kept at each alignment point (the locally sharpest).
    pub keep: f32,
    /// How many of the best frames are averaged into the reference.
    pub reference_frames: u32,
    /// Largest local shift (pixels, on top of the global shift) accepted at
    /// an alignment point; larger measurements are treated as failures.
    pub search: f32,
    /// Local measurements whose correlation peak is below this are failures.
    pub min_peak: f32,
    /// A local shift further than this (pixels) and than 5 × the frame's
    /// typical deviation from the median of its neighbours is an outlier and
    /// replaced by that median.
    pub outlier: f32,
    /// Surface mode: points darker than this fraction of the reference's
    /// bright level are skipped.
    pub min_brightness: f32,
    /// Points with less structure (RMS gradient of the reference patch) than
    /// this fraction of the 90th percentile over all points are skipped.
    pub min_structure: f32,
    /// Planet mode: the disc is where the reference exceeds the background by
    /// this fraction of (bright level - background).
    pub disc_threshold: f32,
    /// The warp field handed to the stacker has this many nodes per grid
    /// step (cubic interpolation of the measured points), so that the
    /// stacker's bilinear interpolation follows the distortion closely.
    pub field_refine: u32,
    /// Times the reference is rebuilt from its frames resampled under their
    /// measured local fields (sharper than the globally aligned mean, which
    /// the frames' distortions smear); 0 = keep the globally aligned mean.
    pub reference_iterations: u32,
    /// Measurement passes per frame: the second and later ones resample the
    /// frame under the field measured so far and measure the residual.
    pub passes: u32,
    /// Subtract each point's mean local shift over all frames, so that the
    /// stack has the mean (undistorted) geometry rather than the reference's.
    pub recentre: bool,
}

impl Default for MultipointParams {
    fn default() -> Self {
        MultipointParams {
            mode: "surface".into(),
            ap_size: 0,
            ap_step: 0,
            keep: 0.5,
            reference_frames: 10,
            search: 5.0,
            min_peak: 0.05,
            outlier: 1.5,
            min_brightness: 0.05,
            min_structure: 0.1,
            disc_threshold: 0.25,
            field_refine: 2,
            passes: 2,
            reference_iterations: 1,
            recentre: true,
        }
    }
}

impl MultipointParams {
    /// The parsed mode; `InvalidParams` for an unknown name.
    pub fn mode(&self) -> Result<Mode, StageError> {
        match self.mode.as_str() {
            "surface" => Ok(Mode::Surface),
            "planet" => Ok(Mode::Planet),
            other => Err(StageError::invalid_params(format!(
                "mode must be surface or planet, not '{other}'"
            ))),
        }
    }

    /// Checks every value against the ranges of [`specs`] (the host checks
    /// them too; a plugin called directly gets the same errors).
    pub fn validate(&self) -> Result<Mode, StageError> {
        let mode = self.mode()?;
        let bad = |name: &str, v: String, range: &str| {
            Err(StageError::invalid_params(format!(
                "{name} = {v} is out of range ({range})"
            )))
        };
        if self.ap_size != 0 && !(16..=512).contains(&self.ap_size) {
            return bad(
                "ap_size",
                self.ap_size.to_string(),
                "0 = auto, or 16 ..= 512",
            );
        }
        if self.ap_step != 0 && !(4..=512).contains(&self.ap_step) {
            return bad(
                "ap_step",
                self.ap_step.to_string(),
                "0 = half the size, or 4 ..= 512",
            );
        }
        let floats = [
            ("keep", self.keep, 0.01, 1.0),
            ("search", self.search, 0.5, 64.0),
            ("min_peak", self.min_peak, 0.0, 1.0),
            ("outlier", self.outlier, 0.1, 64.0),
            ("min_brightness", self.min_brightness, 0.0, 1.0),
            ("min_structure", self.min_structure, 0.0, 1.0),
            ("disc_threshold", self.disc_threshold, 0.01, 0.99),
        ];
        for (name, v, lo, hi) in floats {
            if !v.is_finite() || v < lo || v > hi {
                return bad(name, v.to_string(), &format!("{lo} ..= {hi}"));
            }
        }
        if self.reference_iterations > 4 {
            return bad(
                "reference_iterations",
                self.reference_iterations.to_string(),
                "0 ..= 4",
            );
        }
        if !(1..=4).contains(&self.passes) {
            return bad("passes", self.passes.to_string(), "1 ..= 4");
        }
        if !(1..=4).contains(&self.field_refine) {
            return bad("field_refine", self.field_refine.to_string(), "1 ..= 4");
        }
        if !(1..=1000).contains(&self.reference_frames) {
            return bad(
                "reference_frames",
                self.reference_frames.to_string(),
                "1 ..= 1000",
            );
        }
        Ok(mode)
    }
}

/// The manifest's description of the parameters.
pub fn specs() -> Vec<ParamSpec> {
    let d = MultipointParams::default();
    vec![
        ParamSpec::choice("mode", &d.mode, &["surface", "planet"], "surface: AP grid over the frame; planet: only APs touching the disc (or a moon)"),
        ParamSpec::int("ap_size", d.ap_size as i64, 0, 512, "Alignment point patch size in px (0 = auto; else at least 16)"),
        ParamSpec::int("ap_step", d.ap_step as i64, 0, 512, "Distance between alignment points in px (0 = half the size; else at least 4)"),
        ParamSpec::float("keep", d.keep as f64, 0.01, 1.0, "Fraction of frames kept per alignment point (the locally sharpest)"),
        ParamSpec::int("reference_frames", d.reference_frames as i64, 1, 1000, "Best frames averaged into the reference"),
        ParamSpec::float("search", d.search as f64, 0.5, 64.0, "Largest local shift in px accepted at an alignment point"),
        ParamSpec::float("min_peak", d.min_peak as f64, 0.0, 1.0, "Local measurements with a weaker correlation peak are failures"),
        ParamSpec::float("outlier", d.outlier as f64, 0.1, 64.0, "Local shifts further (px, and than 5× the typical deviation) from their neighbours' median are replaced by it"),
        ParamSpec::float("min_brightness", d.min_brightness as f64, 0.0, 1.0, "Surface mode: skip points darker than this fraction of the bright level"),
        ParamSpec::float("min_structure", d.min_structure as f64, 0.0, 1.0, "Skip points with less structure than this fraction of the 90th percentile"),
        ParamSpec::float("disc_threshold", d.disc_threshold as f64, 0.01, 0.99, "Planet mode: measure points touching where the reference > background + this × (bright − background)"),
        ParamSpec::int("field_refine", d.field_refine as i64, 1, 4, "Warp field nodes per AP step (cubic interpolation between measured points)"),
        ParamSpec::int("reference_iterations", d.reference_iterations as i64, 0, 4, "Rebuilds of the reference from its frames dewarped by their measured fields"),
        ParamSpec::int("passes", d.passes as i64, 1, 4, "Measurement passes (later ones measure the residual after dewarping the frame)"),
        ParamSpec::bool("recentre", d.recentre, "Stack in the mean geometry of all frames instead of the reference's"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::parse_params;

    #[test]
    fn defaults_parse_and_validate() {
        let p: MultipointParams = parse_params("").unwrap();
        assert_eq!(p, MultipointParams::default());
        assert_eq!(p.validate().unwrap(), Mode::Surface);
        let p: MultipointParams = parse_params(r#"{"mode":"planet","ap_size":48}"#).unwrap();
        assert_eq!(p.validate().unwrap(), Mode::Planet);
        assert_eq!(p.ap_size, 48);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(parse_params::<MultipointParams>(r#"{"ap_sise":48}"#).is_err());
        for bad in [
            r#"{"mode":"moon"}"#,
            r#"{"ap_size":8}"#,
            r#"{"keep":0}"#,
            r#"{"search":-1}"#,
            r#"{"reference_frames":0}"#,
        ] {
            let p: MultipointParams = parse_params(bad).unwrap();
            let e = p.validate().unwrap_err();
            assert_eq!(
                e.kind,
                jupiter_plugin_api::ErrorKind::InvalidParams,
                "{bad}"
            );
        }
    }

    #[test]
    fn specs_match_the_defaults() {
        let d = MultipointParams::default();
        let s = specs();
        assert_eq!(s.len(), 15);
        let keep = s.iter().find(|p| p.name.as_str() == "keep").unwrap();
        assert_eq!(keep.default.as_str(), d.keep.to_string());
    }
}
