//! Parameters of the `sharpen-wavelet` stage.

use jupiter_plugin_api::{ParamSpec, StageError};
use serde::Deserialize;

/// Allowed number of wavelet layers.
pub const LAYERS_RANGE: (u32, u32) = (1, 10);
/// Allowed per-layer gain.
pub const GAIN_RANGE: (f32, f32) = (0.0, 20.0);
/// Allowed per-layer noise threshold, in units of the layer's noise sigma.
pub const THRESHOLD_RANGE: (f32, f32) = (0.0, 20.0);

/// Parameters (JSON/TOML keys in snake_case).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WaveletParams {
    /// Number of detail layers; layer `j` (1-based) holds scales around `2^j` pixels.
    pub layers: u32,
    /// Gain of each detail layer, finest first (1 = unchanged). Missing
    /// entries are 1; entries beyond `layers` are ignored.
    pub gains: Vec<f32>,
    /// Soft-threshold of each detail layer's coefficients, finest first, in
    /// units of that layer's robust noise sigma (MAD / 0.6745); 0 = off.
    /// Missing entries are 0; entries beyond `layers` are ignored.
    pub thresholds: Vec<f32>,
}

impl Default for WaveletParams {
    fn default() -> Self {
        WaveletParams {
            layers: 6,
            gains: vec![3.0, 2.0, 1.0, 1.0, 1.0, 1.0],
            thresholds: vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
        }
    }
}

/// Gains and thresholds resolved to exactly one entry per layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSettings {
    pub gains: Vec<f32>,
    pub thresholds: Vec<f32>,
}

impl WaveletParams {
    /// Checks every value against its allowed range and resolves the lists to
    /// one entry per layer. Returns the settings and, when a list had
    /// non-neutral entries beyond `layers`, a warning to log.
    pub fn resolve(&self) -> Result<(LayerSettings, Option<String>), StageError> {
        let (lo, hi) = LAYERS_RANGE;
        if !(lo..=hi).contains(&self.layers) {
            return Err(StageError::invalid_params(format!(
                "`layers` must be within {lo} ..= {hi} (got {})",
                self.layers
            )));
        }
        check_list("gains", &self.gains, GAIN_RANGE)?;
        check_list("thresholds", &self.thresholds, THRESHOLD_RANGE)?;
        let n = self.layers as usize;
        let pad = |v: &[f32], neutral: f32| -> Vec<f32> {
            (0..n)
                .map(|i| v.get(i).copied().unwrap_or(neutral))
                .collect()
        };
        let mut ignored = Vec::new();
        if self.gains.iter().skip(n).any(|&g| g != 1.0) {
            ignored.push("gains");
        }
        if self.thresholds.iter().skip(n).any(|&t| t != 0.0) {
            ignored.push("thresholds");
        }
        let warning = (!ignored.is_empty()).then(|| {
            format!(
                "entries of {} beyond layer {n} are ignored (layers = {n})",
                ignored.join(" and ")
            )
        });
        Ok((
            LayerSettings {
                gains: pad(&self.gains, 1.0),
                thresholds: pad(&self.thresholds, 0.0),
            },
            warning,
        ))
    }
}

fn check_list(name: &str, values: &[f32], (lo, hi): (f32, f32)) -> Result<(), StageError> {
    for (i, v) in values.iter().enumerate() {
        if !(*v >= lo && *v <= hi) {
            return Err(StageError::invalid_params(format!(
                "`{name}` entry {} (layer {}) must be within {lo} ..= {hi} (got {v})",
                i,
                i + 1
            )));
        }
    }
    Ok(())
}

/// The manifest's parameter list (kept next to the struct and its defaults).
pub fn specs() -> Vec<ParamSpec> {
    let d = WaveletParams::default();
    let list = |v: &[f32]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
    vec![
        ParamSpec::int(
            "layers",
            d.layers as i64,
            LAYERS_RANGE.0 as i64,
            LAYERS_RANGE.1 as i64,
            "Number of à-trous detail layers (layer j holds scales around 2^j pixels)",
        ),
        ParamSpec::float_list(
            "gains",
            &list(&d.gains),
            GAIN_RANGE.0 as f64,
            GAIN_RANGE.1 as f64,
            "Gain per detail layer, finest first (1 = unchanged; missing entries are 1)",
        ),
        ParamSpec::float_list(
            "thresholds",
            &list(&d.thresholds),
            THRESHOLD_RANGE.0 as f64,
            THRESHOLD_RANGE.1 as f64,
            "Noise soft-threshold per layer in units of its MAD noise sigma (0 = off; missing entries are 0)",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::{parse_params, ErrorKind};

    #[test]
    fn defaults_resolve_and_lists_are_padded() {
        let (s, warn) = WaveletParams::default().resolve().unwrap();
        assert_eq!(s.gains.len(), 6);
        assert!(warn.is_none());
        let p: WaveletParams =
            parse_params(r#"{"layers": 8, "gains": [3.0], "thresholds": []}"#).unwrap();
        let (s, _) = p.resolve().unwrap();
        assert_eq!(s.gains, vec![3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]);
        assert_eq!(s.thresholds, vec![0.0; 8]);
    }

    #[test]
    fn fewer_layers_than_default_lists_warns() {
        let p: WaveletParams = parse_params(r#"{"layers": 1}"#).unwrap();
        let (s, warn) = p.resolve().unwrap();
        assert_eq!(s.gains, vec![3.0]);
        assert!(warn.unwrap().contains("gains"));
    }

    #[test]
    fn bad_values_are_rejected_with_the_parameter_name() {
        for (json, name) in [
            (r#"{"layers": 0}"#, "layers"),
            (r#"{"layers": 11}"#, "layers"),
            (r#"{"gains": [1.0, -0.5]}"#, "gains"),
            (r#"{"thresholds": [25.0]}"#, "thresholds"),
        ] {
            let p: WaveletParams = parse_params(json).unwrap();
            let e = p.resolve().unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams);
            assert!(e.message.contains(name), "{json}: {}", e.message);
        }
        let e = parse_params::<WaveletParams>(r#"{"gain": [1.0]}"#).unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams);
    }
}
