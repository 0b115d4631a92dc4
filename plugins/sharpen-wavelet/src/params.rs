//! Parameters of the `sharpen-wavelet` stage.

use jupiter_plugin_api::{StageError, StageParams};

jupiter_plugin_api::params! {
    /// Parameters (JSON/TOML keys in snake_case).
    #[derive(Debug, Clone, PartialEq)]
    pub struct WaveletParams {
        /// Number of detail layers; layer `j` (1-based) holds scales around `2^j` pixels.
        pub layers: u32 = 6, int(1, 10), "Number of à-trous detail layers (layer j holds scales around 2^j pixels)";
        /// Gain of each detail layer, finest first (1 = unchanged). Missing
        /// entries are 1; entries beyond `layers` are ignored.
        pub gains: Vec<f32> = vec![3.0, 2.0, 1.0, 1.0, 1.0, 1.0], float_list(0.0, 20.0), "Gain per detail layer, finest first (1 = unchanged; missing entries are 1)";
        /// Soft-threshold of each detail layer's coefficients, finest first, in
        /// units of that layer's robust noise sigma (MAD / 0.6745); 0 = off.
        /// Missing entries are 0; entries beyond `layers` are ignored.
        pub thresholds: Vec<f32> = vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.0], float_list(0.0, 20.0), "Noise soft-threshold per layer in units of its MAD noise sigma (0 = off; missing entries are 0)";
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
        self.check_ranges()?;
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
