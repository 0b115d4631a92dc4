//! Parameter descriptions. Parameters cross the boundary as JSON text; the
//! manifest describes each one so the host can validate and document them.

use abi_stable::std_types::{ROption, RString, RVec};
use abi_stable::StableAbi;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::StageError;

/// The type of a parameter value.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Float,
    Int,
    Bool,
    Text,
    /// One of `choices`.
    Choice,
    /// A list of floats, each within `min..=max`.
    FloatList,
}

impl ParamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ParamKind::Float => "float",
            ParamKind::Int => "integer",
            ParamKind::Bool => "bool",
            ParamKind::Text => "text",
            ParamKind::Choice => "choice",
            ParamKind::FloatList => "list of floats",
        }
    }
}

/// One parameter of a stage: name, type, default (as JSON), range, doc.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: RString,
    pub kind: ParamKind,
    /// The default value as JSON text.
    pub default: RString,
    pub min: ROption<f64>,
    pub max: ROption<f64>,
    /// Allowed values for `Choice`.
    pub choices: RVec<RString>,
    pub doc: RString,
}

impl ParamSpec {
    fn base(name: &str, kind: ParamKind, default: String, doc: &str) -> ParamSpec {
        ParamSpec {
            name: name.into(),
            kind,
            default: default.into(),
            min: ROption::RNone,
            max: ROption::RNone,
            choices: RVec::new(),
            doc: doc.into(),
        }
    }
    /// A float in `min..=max`.
    pub fn float(name: &str, default: f64, min: f64, max: f64, doc: &str) -> ParamSpec {
        ParamSpec {
            min: ROption::RSome(tidy(min)),
            max: ROption::RSome(tidy(max)),
            ..Self::base(name, ParamKind::Float, json(default), doc)
        }
    }
    /// An integer in `min..=max`.
    pub fn int(name: &str, default: i64, min: i64, max: i64, doc: &str) -> ParamSpec {
        ParamSpec {
            min: ROption::RSome(min as f64),
            max: ROption::RSome(max as f64),
            ..Self::base(name, ParamKind::Int, default.to_string(), doc)
        }
    }
    /// A boolean.
    pub fn bool(name: &str, default: bool, doc: &str) -> ParamSpec {
        Self::base(name, ParamKind::Bool, default.to_string(), doc)
    }
    /// Free text.
    pub fn text(name: &str, default: &str, doc: &str) -> ParamSpec {
        Self::base(
            name,
            ParamKind::Text,
            serde_json::to_string(default).unwrap(),
            doc,
        )
    }
    /// One of a fixed set of names.
    pub fn choice(name: &str, default: &str, choices: &[&str], doc: &str) -> ParamSpec {
        ParamSpec {
            choices: choices.iter().map(|c| RString::from(*c)).collect(),
            ..Self::base(
                name,
                ParamKind::Choice,
                serde_json::to_string(default).unwrap(),
                doc,
            )
        }
    }
    /// A list of floats, each in `min..=max`.
    pub fn float_list(name: &str, default: &[f64], min: f64, max: f64, doc: &str) -> ParamSpec {
        ParamSpec {
            min: ROption::RSome(tidy(min)),
            max: ROption::RSome(tidy(max)),
            ..Self::base(
                name,
                ParamKind::FloatList,
                serde_json::to_string(&default.iter().map(|v| tidy(*v)).collect::<Vec<_>>())
                    .unwrap(),
                doc,
            )
        }
    }
    /// A human-readable range, e.g. `0 ..= 10` or `one of mean, median`.
    pub fn range_text(&self) -> String {
        match self.kind {
            ParamKind::Choice => format!(
                "one of {}",
                self.choices
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ParamKind::Bool => "true or false".into(),
            ParamKind::Text => "any text".into(),
            _ => match (self.min, self.max) {
                (ROption::RSome(a), ROption::RSome(b)) => format!("{a} ..= {b}"),
                (ROption::RSome(a), ROption::RNone) => format!(">= {a}"),
                (ROption::RNone, ROption::RSome(b)) => format!("<= {b}"),
                _ => "any value".into(),
            },
        }
    }
}

fn json(v: f64) -> String {
    serde_json::to_string(&tidy(v)).unwrap()
}

/// Drops the noise of an `f32 as f64` conversion (0.05f32 → 0.05, not
/// 0.05000000074505806) so manifests read as written.
fn tidy(v: f64) -> f64 {
    let short = (v as f32).to_string().parse::<f64>().unwrap_or(v);
    if (short - v).abs() <= f32::EPSILON as f64 * v.abs().max(1.0) {
        short
    } else {
        v
    }
}

/// Parses a stage's JSON parameters into its serde struct (which should use
/// `#[serde(deny_unknown_fields, default)]`), with an `InvalidParams` error.
pub fn parse_params<T: DeserializeOwned>(json: &str) -> Result<T, StageError> {
    let text = if json.trim().is_empty() { "{}" } else { json };
    serde_json::from_str(text).map_err(|e| StageError::invalid_params(e.to_string()))
}

/// A stage's parameter struct, as [`params!`](crate::params!) declares it:
/// every field is declared once (name, type, default, range or choices,
/// doc), and this trait gives the manifest's specs and the range checks
/// from that one declaration.
pub trait StageParams: DeserializeOwned + Default {
    /// The manifest's description of every field, in declaration order.
    fn specs() -> Vec<ParamSpec>;
    /// Checks every field against its declared range or choices; the
    /// error (`InvalidParams`) names the key and the allowed range. The host
    /// checks the same ranges against the specs before calling the stage;
    /// a plugin called directly gets the same refusals.
    fn check_ranges(&self) -> Result<(), StageError>;
    /// Parses the stage's JSON parameters (empty = all defaults, unknown
    /// keys refused) and checks the ranges: the one way a stage reads them.
    fn parse(json: &str) -> Result<Self, StageError> {
        let p: Self = parse_params(json)?;
        p.check_ranges()?;
        Ok(p)
    }
}

/// A value of a `choice` parameter: a name out of a fixed list. Implemented
/// by `String` (checked against the declared list) and by enums that
/// deserialize themselves (such as [`Interpolation`]).
pub trait ChoiceValue {
    /// The name of this value as it is written in the parameters.
    fn choice_name(&self) -> &str;
}

impl ChoiceValue for String {
    fn choice_name(&self) -> &str {
        self
    }
}

/// How fractional shifts are resampled, as every stacker's `interpolation`
/// parameter names it. One type for the parameter, the CPU resampler and
/// the GPU kernels, so that the name, its parsing and the kernels' code are
/// written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interpolation {
    /// 2×2 taps; slightly softening.
    Bilinear,
    /// 4×4 Catmull-Rom taps: exact on lines and quadratics, so the
    /// measurement paths resample with it; softens fine detail a little.
    Bicubic,
    /// 4×4 cubic-convolution taps with `a = −0.75` (OpenCV's
    /// `INTER_CUBIC`): passes more of the detail between a quarter and half
    /// the sampling rate than Catmull-Rom, at a position error of at most
    /// 0.03 px on a ramp. The stackers' default: stacks +0.2 to +1.2 dB on
    /// the `--ceiling` captures (BENCHMARKS "Frame budget").
    Sharp,
}

impl Interpolation {
    /// The names, in the order the manifests list them.
    pub const ALL: &'static [&'static str] = &["bicubic-sharp", "bicubic", "bilinear"];

    /// The parameter name of this choice.
    pub fn as_str(self) -> &'static str {
        match self {
            Interpolation::Bilinear => "bilinear",
            Interpolation::Bicubic => "bicubic",
            Interpolation::Sharp => "bicubic-sharp",
        }
    }

    /// Parses `bilinear` / `bicubic` / `bicubic-sharp`, with an
    /// `InvalidParams` error otherwise.
    pub fn parse(s: &str) -> Result<Interpolation, StageError> {
        match s {
            "bilinear" => Ok(Interpolation::Bilinear),
            "bicubic" => Ok(Interpolation::Bicubic),
            "bicubic-sharp" => Ok(Interpolation::Sharp),
            other => Err(StageError::invalid_params(format!(
                "interpolation must be bilinear, bicubic or bicubic-sharp, not '{other}'"
            ))),
        }
    }

    /// The value the GPU kernels take for this choice (`interp` in
    /// `shaders/shift.wgsl`, `stack_warp.wgsl` and the median gather):
    /// 0 bilinear, 1 bicubic, 2 bicubic-sharp.
    pub fn shader_code(self) -> u32 {
        match self {
            Interpolation::Bilinear => 0,
            Interpolation::Bicubic => 1,
            Interpolation::Sharp => 2,
        }
    }
}

impl std::str::FromStr for Interpolation {
    type Err = StageError;
    fn from_str(s: &str) -> Result<Self, StageError> {
        Interpolation::parse(s)
    }
}

impl ChoiceValue for Interpolation {
    fn choice_name(&self) -> &str {
        self.as_str()
    }
}

impl<'de> Deserialize<'de> for Interpolation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Interpolation::parse(&name).map_err(|e| serde::de::Error::custom(e.message))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolation_names_parse_and_shader_codes() {
        for name in Interpolation::ALL {
            let i: Interpolation = serde_json::from_str(&format!("\"{name}\"")).unwrap();
            assert_eq!(i.as_str(), *name);
        }
        assert_eq!(Interpolation::Bilinear.shader_code(), 0);
        assert_eq!(Interpolation::Bicubic.shader_code(), 1);
        assert_eq!(Interpolation::Sharp.shader_code(), 2);
        let e = serde_json::from_str::<Interpolation>("\"nearest\"").unwrap_err();
        assert!(
            e.to_string()
                .contains("bilinear, bicubic or bicubic-sharp, not 'nearest'"),
            "{e}"
        );
        assert!("cubic".parse::<Interpolation>().is_err());
    }
}
