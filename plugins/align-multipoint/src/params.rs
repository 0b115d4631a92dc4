//! Parameters of the `align-multipoint` stage.

use jupiter_plugin_api::{StageError, StageParams};

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

jupiter_plugin_api::params! {
    /// Parameters of `align-multipoint` (all optional; defaults suit a typical
    /// lunar/solar surface capture).
    #[derive(Debug, Clone, PartialEq)]
    pub struct MultipointParams {
        /// `auto`, `surface` or `planet` (see [`Mode`]); `auto` decides from
        /// the reference frame ([`crate::grid::detect_mode`]).
        pub mode: String = "auto".into(), choice(&["auto", "surface", "planet"]), "auto: from the reference (a disc on dark sky is a planet); surface: AP grid over the frame; planet: only APs touching the disc (or a moon)";
        /// Side of an alignment point's square patch in pixels; 0 = automatic
        /// (from the frame size in surface mode, from the disc size in planet mode).
        pub ap_size: u32 = 0, int_or_zero(16, 512), "Alignment point patch size in px (0 = auto; else at least 16)";
        /// Distance between neighbouring alignment points; 0 = half the size.
        pub ap_step: u32 = 0, int_or_zero(4, 512), "Distance between alignment points in px (0 = half the size; else at least 4)";
        /// With `ap_step = 0`: points per automatic step (half the size);
        /// 2 = twice as dense. Finer output grids (drizzle) need the finer
        /// field: `--drizzle N` sets it to N.
        pub density: f32 = 1.0, float(1.0, 4.0), "With ap_step = 0: alignment points per automatic step (2 = twice as dense; --drizzle N sets N)";
        /// Fraction of the frames kept at each alignment point (the locally
        /// sharpest); 0 = automatic: at each point the count whose stack is
        /// predicted closest to the sharpest frame's detail, noise included
        /// ([`crate::field::auto_count`]).
        pub keep: f32 = 0.0, float_or_zero(0.01, 1.0), "Fraction of frames kept per alignment point (the locally sharpest); 0 = automatic, from the local sharpness and the measured noise";
        /// How many of the best frames are averaged into the reference.
        pub reference_frames: u32 = 10, int(1, 1000), "Best frames averaged into the reference";
        /// Largest local shift (pixels, on top of the global shift) accepted at
        /// an alignment point; larger measurements are treated as failures.
        pub search: f32 = 5.0, float(0.5, 64.0), "Largest local shift in px accepted at an alignment point";
        /// Local measurements whose correlation peak is below this are failures.
        pub min_peak: f32 = 0.05, float(0.0, 1.0), "Local measurements with a weaker correlation peak are failures";
        /// A local shift further than this (pixels) and than 5 × the frame's
        /// typical deviation from the median of its neighbours is an outlier and
        /// replaced by that median.
        pub outlier: f32 = 1.5, float(0.1, 64.0), "Local shifts further (px, and than 5× the typical deviation) from their neighbours' median are replaced by it";
        /// Surface mode: points darker than this fraction of the reference's
        /// bright level are skipped.
        pub min_brightness: f32 = 0.05, float(0.0, 1.0), "Surface mode: skip points darker than this fraction of the bright level";
        /// Points with less structure (RMS gradient of the reference patch) than
        /// this fraction of the 90th percentile over all points are skipped.
        pub min_structure: f32 = 0.1, float(0.0, 1.0), "Skip points with less structure than this fraction of the 90th percentile";
        /// Planet mode: the disc is where the reference exceeds the background by
        /// this fraction of (bright level - background).
        pub disc_threshold: f32 = 0.25, float(0.01, 0.99), "Planet mode: measure points touching where the reference > background + this × (bright − background)";
        /// The warp field handed to the stacker has this many nodes per grid
        /// step (cubic interpolation of the measured points), so that the
        /// stacker's bilinear interpolation follows the distortion closely.
        pub field_refine: u32 = 2, int(1, 4), "Warp field nodes per AP step (cubic interpolation between measured points)";
        /// Times the reference is rebuilt from its frames resampled under their
        /// measured local fields (sharper than the globally aligned mean, which
        /// the frames' distortions smear); 0 = keep the globally aligned mean.
        pub reference_iterations: u32 = 1, int(0, 4), "Rebuilds of the reference from its frames dewarped by their measured fields";
        /// The rebuild's fields come from at most about this many points:
        /// past it, from every second (fourth, …) point in each direction. On
        /// a large sensor (thousands of points) measuring the reference
        /// frames everywhere was a third of the run, while the mean of ten
        /// frames needs their distortion only on the scale of the seeing.
        pub reference_points: u32 = 1500, int_or_zero(16, 1_000_000), "The reference rebuild measures at most about this many points, thinning the grid by 2, 4, … in each direction past it (0 = all)";
        /// Surface mode with the automatic step: where the reference frames'
        /// local shifts (measured for the rebuild) have an RMS below this
        /// (px), the distortion is too small for half-overlapping points to
        /// add anything: the points go a whole size apart (a quarter as
        /// many) and the globally aligned mean stays the reference. On the
        /// lunar captures (RMS 0.08–0.14 px) the stacks changed by −0.01 to
        /// +0.01 dB and a 6000×4000 run took a third less time; the
        /// strong-seeing ones (RMS 1.8 px) keep the dense grid.
        pub sparse_rms: f32 = 0.25, float(0.0, 10.0), "Surface mode, automatic step: below this local-shift RMS (px) on the reference frames, points a whole size apart and the reference not rebuilt (0 = never)";
        /// Measurement passes per frame: the second and later ones resample the
        /// frame under the field measured so far and measure the residual.
        pub passes: u32 = 2, int(1, 4), "Measurement passes (later ones measure the residual after dewarping the frame)";
        /// How the passes after the first measure the residual: a gradient
        /// (Lucas–Kanade) fit, a few operations per pixel, with the phase
        /// correlation where the residual is beyond its range; or the phase
        /// correlation at every point.
        pub refine: String = "gradient".into(), choice(&["gradient", "correlation"]), "Later passes: gradient (a Lucas-Kanade fit per point, fast) or correlation (a phase correlation per point)";
        /// Subtract each point's mean local shift over all frames, so that the
        /// stack has the mean (undistorted) geometry rather than the reference's.
        pub recentre: bool = true, bool, "Stack in the mean geometry of all frames instead of the reference's";
    }
}

impl Mode {
    /// The mode's parameter value.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Surface => "surface",
            Mode::Planet => "planet",
        }
    }
}

impl MultipointParams {
    /// The parsed mode, `None` for `auto`; `InvalidParams` for an unknown name.
    pub fn mode(&self) -> Result<Option<Mode>, StageError> {
        match self.mode.as_str() {
            "auto" => Ok(None),
            "surface" => Ok(Some(Mode::Surface)),
            "planet" => Ok(Some(Mode::Planet)),
            other => Err(StageError::invalid_params(format!(
                "mode must be auto, surface or planet, not '{other}'"
            ))),
        }
    }

    /// Checks every value against its declared range (the host checks
    /// them too; a plugin called directly gets the same errors) and parses
    /// the mode (`None`: automatic).
    pub fn validate(&self) -> Result<Option<Mode>, StageError> {
        self.check_ranges()?;
        self.mode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::parse_params;

    #[test]
    fn defaults_parse_and_validate() {
        let p: MultipointParams = parse_params("").unwrap();
        assert_eq!(p, MultipointParams::default());
        assert_eq!(p.validate().unwrap(), None);
        let p: MultipointParams = parse_params(r#"{"mode":"surface"}"#).unwrap();
        assert_eq!(p.validate().unwrap(), Some(Mode::Surface));
        let p: MultipointParams = parse_params(r#"{"mode":"planet","ap_size":48}"#).unwrap();
        assert_eq!(p.validate().unwrap(), Some(Mode::Planet));
        assert_eq!(p.ap_size, 48);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(parse_params::<MultipointParams>(r#"{"ap_sise":48}"#).is_err());
        for bad in [
            r#"{"mode":"moon"}"#,
            r#"{"ap_size":8}"#,
            r#"{"keep":0.001}"#,
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
        let s = MultipointParams::specs();
        assert_eq!(s.len(), 19);
        let keep = s.iter().find(|p| p.name.as_str() == "keep").unwrap();
        assert_eq!(keep.default.as_str().parse::<f32>().unwrap(), d.keep);
        // 0 (automatic) is within the range the manifest shows: the host
        // reads it to decide what `--select auto` passes on.
        assert_eq!(keep.min.into_option(), Some(0.0));
    }
}
