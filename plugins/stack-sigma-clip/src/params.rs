//! Parameters of the `stack-sigma-clip` stage.

use jupiter_plugin_api::{Interpolation, StageError, StageParams};

jupiter_plugin_api::params! {
    /// `stack-sigma-clip` parameters (JSON; unknown fields are rejected).
    #[derive(Debug, Clone, PartialEq)]
    pub struct SigmaClipParams {
        /// Resampling of fractional shifts.
        pub interpolation: Interpolation = Interpolation::Sharp, choice(Interpolation::ALL), "Resampling of fractional shifts: bicubic-sharp (cubic convolution a = -0.75, the most detail), bicubic (Catmull-Rom) or bilinear";
        /// Reject samples below `median - kappa_low × sigma`.
        pub kappa_low: f32 = 2.5, float(0.1, 10.0), "Reject samples this many sigmas below the median";
        /// Reject samples above `median + kappa_high × sigma`.
        pub kappa_high: f32 = 2.5, float(0.1, 10.0), "Reject samples this many sigmas above the median";
        /// Clipping passes at most (0 = plain mean); stops earlier once a pass
        /// rejects nothing.
        pub max_iterations: u32 = 5, int(0, 100), "Clipping passes at most (stops when a pass rejects nothing)";
        /// Never keep fewer samples than this (a pass that would is not applied).
        pub min_frames: u32 = 3, int(1, 100_000), "Never keep fewer samples per pixel than this";
        /// `clip` (mean of the kept samples) or `winsorize` (mean of all samples
        /// clamped to the final bounds).
        pub mode: String = "clip".into(), choice(&["clip", "winsorize"]), "clip: mean of kept samples; winsorize: outliers replaced by the bounds";
    }
}

/// What happens to rejected samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Left out of the mean.
    Clip,
    /// Replaced by the nearest clipping bound.
    Winsorize,
}

/// Validated clipping settings, as the per-pixel code uses them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipConfig {
    pub kappa_low: f64,
    pub kappa_high: f64,
    pub max_iterations: u32,
    pub min_frames: usize,
    pub mode: Mode,
}

impl SigmaClipParams {
    /// Checks the ranges and parses `mode`, with an `InvalidParams` error.
    pub fn config(&self) -> Result<ClipConfig, StageError> {
        self.check_ranges()?;
        let mode = match self.mode.as_str() {
            "winsorize" => Mode::Winsorize,
            _ => Mode::Clip,
        };
        Ok(ClipConfig {
            kappa_low: self.kappa_low as f64,
            kappa_high: self.kappa_high as f64,
            max_iterations: self.max_iterations,
            min_frames: self.min_frames as usize,
            mode,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::{parse_params, ErrorKind};

    #[test]
    fn defaults_validate_and_bad_values_are_rejected() {
        let d: SigmaClipParams = parse_params("{}").unwrap();
        assert_eq!(d, SigmaClipParams::default());
        let c = d.config().unwrap();
        assert_eq!(
            (
                c.kappa_low,
                c.kappa_high,
                c.max_iterations,
                c.min_frames,
                c.mode
            ),
            (2.5, 2.5, 5, 3, Mode::Clip)
        );
        let w: SigmaClipParams = parse_params(r#"{"mode": "winsorize", "kappa_high": 3}"#).unwrap();
        assert_eq!(w.config().unwrap().mode, Mode::Winsorize);
        assert_eq!(
            parse_params::<SigmaClipParams>(r#"{"sigma": 2}"#)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidParams
        );
        for bad in [
            r#"{"mode": "median"}"#,
            r#"{"kappa_low": 0}"#,
            r#"{"kappa_high": 11}"#,
            r#"{"min_frames": 0}"#,
            r#"{"max_iterations": 1000}"#,
        ] {
            let p: SigmaClipParams = parse_params(bad).unwrap();
            assert_eq!(
                p.config().unwrap_err().kind,
                ErrorKind::InvalidParams,
                "{bad}"
            );
        }
    }
}
