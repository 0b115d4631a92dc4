//! Parameters of the `stack-sigma-clip` stage.

use jupiter_plugin_api::{ParamSpec, StageError};
use serde::Deserialize;

/// `stack-sigma-clip` parameters (JSON; unknown fields are rejected).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SigmaClipParams {
    /// `bicubic` or `bilinear` resampling of fractional shifts.
    pub interpolation: String,
    /// Reject samples below `median - kappa_low × sigma` (0.1 ..= 10).
    pub kappa_low: f32,
    /// Reject samples above `median + kappa_high × sigma` (0.1 ..= 10).
    pub kappa_high: f32,
    /// Clipping passes at most (0 = plain mean); stops earlier once a pass
    /// rejects nothing.
    pub max_iterations: u32,
    /// Never keep fewer samples than this (a pass that would is not applied).
    pub min_frames: u32,
    /// `clip` (mean of the kept samples) or `winsorize` (mean of all samples
    /// clamped to the final bounds).
    pub mode: String,
}

impl Default for SigmaClipParams {
    fn default() -> Self {
        SigmaClipParams {
            interpolation: "bicubic".into(),
            kappa_low: 2.5,
            kappa_high: 2.5,
            max_iterations: 5,
            min_frames: 3,
            mode: "clip".into(),
        }
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
        for (name, k) in [
            ("kappa_low", self.kappa_low),
            ("kappa_high", self.kappa_high),
        ] {
            if !(0.1..=10.0).contains(&k) {
                return Err(StageError::invalid_params(format!(
                    "{name} must be within 0.1 ..= 10, not {k}"
                )));
            }
        }
        if self.max_iterations > 100 {
            return Err(StageError::invalid_params(format!(
                "max_iterations must be at most 100, not {}",
                self.max_iterations
            )));
        }
        if self.min_frames < 1 {
            return Err(StageError::invalid_params("min_frames must be at least 1"));
        }
        let mode = match self.mode.as_str() {
            "clip" => Mode::Clip,
            "winsorize" => Mode::Winsorize,
            other => {
                return Err(StageError::invalid_params(format!(
                    "mode must be clip or winsorize, not '{other}'"
                )))
            }
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

/// The manifest's description of [`SigmaClipParams`].
pub fn specs() -> Vec<ParamSpec> {
    let d = SigmaClipParams::default();
    vec![
        ParamSpec::choice(
            "interpolation",
            &d.interpolation,
            &["bicubic", "bilinear"],
            "Resampling of fractional shifts",
        ),
        ParamSpec::float(
            "kappa_low",
            d.kappa_low as f64,
            0.1,
            10.0,
            "Reject samples this many sigmas below the median",
        ),
        ParamSpec::float(
            "kappa_high",
            d.kappa_high as f64,
            0.1,
            10.0,
            "Reject samples this many sigmas above the median",
        ),
        ParamSpec::int(
            "max_iterations",
            d.max_iterations as i64,
            0,
            100,
            "Clipping passes at most (stops when a pass rejects nothing)",
        ),
        ParamSpec::int(
            "min_frames",
            d.min_frames as i64,
            1,
            100_000,
            "Never keep fewer samples per pixel than this",
        ),
        ParamSpec::choice(
            "mode",
            &d.mode,
            &["clip", "winsorize"],
            "clip: mean of kept samples; winsorize: outliers replaced by the bounds",
        ),
    ]
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
