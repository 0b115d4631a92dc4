//! The pipeline description: a TOML file (optional), defaults, and CLI
//! overrides (`--stacker`, `--select`, `--set stage.param=value`).
//!
//! ```toml
//! version = 1
//! backend = "auto"          # auto | cpu | gpu
//! select = "auto"           # auto (default), a percentage or a frame count
//! bayer = "RGGB"            # raw mosaic captures whose file does not say (optional)
//! demosaic = "mhc"          # mhc (default) | bilinear: how Bayer mosaics become RGB
//!
//! [derotate]                # optional: stack a turning planet at mid-capture
//! body = "jupiter"          # jupiter | jupiter1 | saturn | mars (or period_hours = 9.925)
//! pole_angle = 15.0         # degrees from up, counter-clockwise (fitted when absent)
//!
//! [calibration]             # optional; paths relative to this file
//! dark = "darks.ser"        # a capture (combined) or a master image
//! flat = "flats.ser"
//! flat_dark = "flatdarks.ser"
//! bias = "bias.fits"
//! combine = "median"        # median | sigma-clip
//! hot_pixels = true         # default: on whenever a master is given
//!
//! [quality]
//! plugin = "quality"
//! params = { metric = "laplacian" }
//!
//! [align]
//! plugin = "align-multipoint"
//!
//! [stack]
//! plugin = "stack-median"
//!
//! [[post]]                  # any number, run in order
//! plugin = "sharpen-wavelet"
//! params = { gains = [1.8, 1.5, 1.2, 1.0, 1.0, 1.0] }
//!
//! [[post]]
//! plugin = "stretch"
//! ```

use std::path::Path;

use anyhow::{bail, Context, Result};
use jupiter_plugin_api::{Manifest, ParamKind};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::backend::BackendChoice;
use crate::derotate::DerotationSpec;
use crate::io::calibrate::CalibrationSpec;
use crate::io::debayer::{BayerPattern, Demosaic};

/// The pipeline file as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFile {
    pub version: Option<u32>,
    pub backend: Option<BackendChoice>,
    pub select: Option<String>,
    pub bayer: Option<String>,
    pub demosaic: Option<String>,
    pub calibration: Option<CalibrationSpec>,
    pub derotate: Option<DerotationSpec>,
    pub quality: Option<StageEntry>,
    pub align: Option<StageEntry>,
    pub stack: Option<StageEntry>,
    pub post: Option<Vec<StageEntry>>,
}

/// One stage in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageEntry {
    pub plugin: String,
    #[serde(default)]
    pub params: toml::Table,
}

/// How many frames to keep.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub enum Selection {
    /// The run decides: the host keeps [`auto_pool`] of the frames and a
    /// multi-point aligner keeps, at each point, the count whose stack it
    /// predicts best from the local sharpness and the measured noise
    /// ([`AUTO_GLOBAL`] with an aligner that keeps every frame).
    Auto,
    Percent(f64),
    Count(usize),
}

/// The largest share of the frames (best first) the host passes on under
/// `--select auto` to an aligner that chooses its frames per point (it
/// declares a `keep` parameter whose 0 means automatic, and it is 0): the
/// pool each point takes its own best from (a point's sharpest frames are
/// not always the globally sharpest). See [`auto_pool`].
pub const AUTO_POOL: f64 = 0.5;

/// Frames the automatic pool holds at least (within [`AUTO_GLOBAL`] …
/// [`AUTO_POOL`] of the capture): on the 160-frame captures of BENCHMARKS
/// "Frame budget" a pool of 40 frames (25 %) instead of 80 cost 0.3–0.45 dB
/// under strong seeing, while on the 1000-frame planet and the 500-frame
/// lunar surface 25 % (250 and 125 frames) scored the same as 50 % or
/// better, in 20–30 % less time.
pub const AUTO_POOL_FRAMES: usize = 100;

/// The share of `total` frames [`auto_pool`] passes to a per-point
/// aligner: [`AUTO_POOL_FRAMES`] of them, but at least [`AUTO_GLOBAL`] and
/// at most [`AUTO_POOL`].
pub fn auto_pool(total: usize) -> f64 {
    (AUTO_POOL_FRAMES as f64 / total.max(1) as f64).clamp(AUTO_GLOBAL, AUTO_POOL)
}

/// The share kept under `--select auto` when the aligner keeps every frame
/// it is given (global alignment: nothing chooses after the host).
pub const AUTO_GLOBAL: f64 = 0.25;

impl Selection {
    /// Parses `auto`, `25%` or `300`.
    pub fn parse(s: &str) -> Result<Selection> {
        let s = s.trim();
        if s == "auto" {
            return Ok(Selection::Auto);
        }
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p
                .trim()
                .parse()
                .with_context(|| format!("select: '{s}' is not a percentage"))?;
            if !(v > 0.0 && v <= 100.0) {
                bail!("select: {v}% is outside 0% < p <= 100%");
            }
            Ok(Selection::Percent(v))
        } else {
            let n: usize = s.parse().with_context(|| {
                format!("select: '{s}' is neither a percentage (25%) nor a frame count (300)")
            })?;
            if n == 0 {
                bail!("select: at least one frame must be kept");
            }
            Ok(Selection::Count(n))
        }
    }
    /// Frames kept out of `total` (at least 1, at most `total`).
    pub fn count_of(self, total: usize) -> usize {
        let n = match self {
            Selection::Auto => (total as f64 * AUTO_GLOBAL).round() as usize,
            Selection::Percent(p) => (total as f64 * p / 100.0).round() as usize,
            Selection::Count(n) => n,
        };
        n.clamp(1, total.max(1))
    }
}

/// A stage choice with its parameters (JSON object, validated against the manifest).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StageChoice {
    pub plugin: String,
    pub params: Map<String, Value>,
}

impl StageChoice {
    pub fn new(plugin: &str) -> StageChoice {
        StageChoice {
            plugin: plugin.into(),
            params: Map::new(),
        }
    }
    fn from_entry(e: &StageEntry) -> Result<StageChoice> {
        let v = serde_json::to_value(&e.params)?;
        let Value::Object(params) = v else {
            bail!("params of '{}' must be a table", e.plugin)
        };
        Ok(StageChoice {
            plugin: e.plugin.clone(),
            params,
        })
    }
}

/// The resolved pipeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PipelineSpec {
    pub backend: BackendChoice,
    pub select: Selection,
    /// The Bayer pattern of a raw-mosaic capture whose file does not carry
    /// one (AVI, PNG/TIFF sequences, FITS without `BAYERPAT`, SER marked
    /// mono): `--bayer` or the `bayer` key; overrides the file's pattern.
    pub bayer: Option<BayerPattern>,
    /// How Bayer mosaics are demosaiced (`--demosaic`, the `demosaic` key):
    /// MHC by default, bilinear on request.
    pub demosaic: Demosaic,
    /// Darks, flats, bias and hot pixels (`--dark` …, the `[calibration]`
    /// table); empty: the frames are used as they are.
    pub calibration: CalibrationSpec,
    /// Derotation of a turning planet (`--derotate`, the `[derotate]`
    /// table); off unless a body or a period is given.
    pub derotate: DerotationSpec,
    pub quality: StageChoice,
    pub align: StageChoice,
    /// True when `align` is the built-in default (when its plugin is not
    /// installed, the global [`FALLBACK_ALIGNER`] runs instead, with a warning).
    pub default_align: bool,
    pub stack: StageChoice,
    pub post: Vec<StageChoice>,
    /// True when `post` is the built-in default (missing default stages are then skipped with a warning).
    pub default_post: bool,
    /// The pipeline file this came from, for error messages.
    #[serde(skip)]
    pub source: Option<std::path::PathBuf>,
}

/// The aligner when the pipeline names none: alignment points, their mode
/// (planet or surface) chosen from the capture; it falls back to global
/// alignment by itself when no point has structure.
pub const DEFAULT_ALIGNER: &str = "align-multipoint";

/// The default aligner's stand-in when its plugin is not installed: global
/// alignment (also the fast path for previews, `--aligner align-phase`).
pub const FALLBACK_ALIGNER: &str = "align-phase";

/// Post-processing run when the pipeline names none: deconvolution with the
/// PSF estimated from the stack (it adapts to whatever blur the stack has;
/// fixed wavelet gains over-sharpen a sharp stack), then a display stretch.
pub const DEFAULT_POST: &[&str] = &["deconvolve", "stretch"];

impl Default for PipelineSpec {
    fn default() -> Self {
        PipelineSpec {
            backend: BackendChoice::Auto,
            select: Selection::Auto,
            bayer: None,
            demosaic: Demosaic::default(),
            calibration: CalibrationSpec::default(),
            derotate: DerotationSpec::default(),
            quality: StageChoice::new("quality"),
            align: StageChoice::new(DEFAULT_ALIGNER),
            default_align: true,
            stack: StageChoice::new("stack-mean"),
            post: DEFAULT_POST.iter().map(|p| StageChoice::new(p)).collect(),
            default_post: true,
            source: None,
        }
    }
}

impl PipelineSpec {
    /// Reads a pipeline file over the defaults.
    pub fn from_file(path: &Path) -> Result<PipelineSpec> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read the pipeline file", path.display()))?;
        let file: PipelineFile = toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))?;
        let mut spec = PipelineSpec {
            source: Some(path.to_path_buf()),
            ..PipelineSpec::default()
        };
        if let Some(v) = file.version {
            if v != 1 {
                bail!(
                    "{}: pipeline version {v} is not supported (this jupiter reads version 1)",
                    path.display()
                );
            }
        }
        if let Some(b) = file.backend {
            spec.backend = b;
        }
        if let Some(s) = &file.select {
            spec.select = Selection::parse(s).with_context(|| path.display().to_string())?;
        }
        if let Some(b) = &file.bayer {
            spec.bayer = Some(parse_bayer(b).with_context(|| path.display().to_string())?);
        }
        if let Some(d) = &file.demosaic {
            spec.demosaic = parse_demosaic(d).with_context(|| path.display().to_string())?;
        }
        if let Some(c) = &file.calibration {
            spec.calibration = c.clone();
            // Masters named relative to the pipeline file are found beside it.
            if let Some(dir) = path.parent() {
                spec.calibration.resolve_paths(dir);
            }
        }
        if let Some(d) = &file.derotate {
            d.check().with_context(|| path.display().to_string())?;
            spec.derotate = d.clone();
        }
        if let Some(e) = &file.quality {
            spec.quality = StageChoice::from_entry(e)?;
        }
        if let Some(e) = &file.align {
            spec.align = StageChoice::from_entry(e)?;
            spec.default_align = false;
        }
        if let Some(e) = &file.stack {
            spec.stack = StageChoice::from_entry(e)?;
        }
        if let Some(post) = &file.post {
            spec.post = post
                .iter()
                .map(StageChoice::from_entry)
                .collect::<Result<_>>()?;
            spec.default_post = false;
        }
        Ok(spec)
    }

    /// Applies `--set stage.param=value`; `stage` is quality, align, stack, or a post stage's plugin name.
    pub fn apply_set(&mut self, assignment: &str) -> Result<()> {
        let (key, value) = assignment
            .split_once('=')
            .with_context(|| format!("--set '{assignment}': expected stage.param=value"))?;
        let (stage, param) = key
            .trim()
            .split_once('.')
            .with_context(|| format!("--set '{assignment}': expected stage.param=value"))?;
        let value = parse_value(value.trim());
        let target = match stage {
            "derotate" => return self.derotate.set(param.trim(), &value),
            "quality" => &mut self.quality,
            "align" => &mut self.align,
            "stack" => &mut self.stack,
            name => match self.post.iter_mut().find(|p| p.plugin == name) {
                Some(p) => p,
                None => bail!(
                    "--set '{assignment}': no stage '{stage}' in the pipeline (use quality, align, stack, derotate or one of: {})",
                    self.post.iter().map(|p| p.plugin.as_str()).collect::<Vec<_>>().join(", ")
                ),
            },
        };
        target.params.insert(param.to_string(), value);
        Ok(())
    }
}

impl Selection {
    /// The selection as a pipeline file writes it (`25%` or `300`).
    pub fn to_text(self) -> String {
        match self {
            Selection::Auto => "auto".into(),
            Selection::Percent(p) => format!("{p}%"),
            Selection::Count(n) => n.to_string(),
        }
    }
}

impl StageChoice {
    /// The stage as a pipeline-file table: `plugin` and, when set, `params`.
    fn to_table(&self) -> Result<toml::Table> {
        let mut t = toml::Table::new();
        t.insert("plugin".into(), toml::Value::String(self.plugin.clone()));
        if !self.params.is_empty() {
            let params = toml::Value::try_from(&self.params)
                .with_context(|| format!("parameters of '{}'", self.plugin))?;
            t.insert("params".into(), params);
        }
        Ok(t)
    }
}

impl PipelineSpec {
    /// The spec as a pipeline file that [`PipelineSpec::from_file`] reads
    /// back to the same stages and parameters. With `stacking` false only
    /// the post-processing is written (the stacking stays whatever the
    /// later run chooses).
    pub fn to_toml(&self, stacking: bool) -> Result<String> {
        // Section by section, so the file reads in pipeline order.
        let section = |key: &str, v: toml::Value| -> Result<String> {
            let mut t = toml::Table::new();
            t.insert(key.into(), v);
            Ok(toml::to_string(&t)?)
        };
        let mut out = String::from("# jupiter pipeline (run --pipeline FILE)\nversion = 1\n");
        if stacking {
            out += &section("select", toml::Value::String(self.select.to_text()))?;
            if let Some(b) = self.bayer {
                out += &section("bayer", toml::Value::String(b.short_name().into()))?;
            }
            if self.demosaic != Demosaic::default() {
                let name = toml::Value::String(self.demosaic.name().into());
                out += &section("demosaic", name)?;
            }
            if !self.calibration.is_empty() {
                out += "\n";
                out += &section(
                    "calibration",
                    toml::Value::try_from(&self.calibration).context("the calibration")?,
                )?;
            }
            if self.derotate.is_on() {
                out += "\n";
                out += &section(
                    "derotate",
                    toml::Value::try_from(&self.derotate).context("the derotation")?,
                )?;
            }
            for (key, stage) in [
                ("quality", &self.quality),
                ("align", &self.align),
                ("stack", &self.stack),
            ] {
                out += "\n";
                out += &section(key, toml::Value::Table(stage.to_table()?))?;
            }
        }
        let post = self
            .post
            .iter()
            .map(|s| s.to_table().map(toml::Value::Table))
            .collect::<Result<Vec<_>>>()?;
        out += "\n";
        out += &section("post", toml::Value::Array(post))?;
        Ok(out)
    }
}

/// A demosaic method as `--demosaic` and the `demosaic` key spell it.
pub fn parse_demosaic(text: &str) -> Result<Demosaic> {
    Demosaic::parse(text)
        .ok_or_else(|| anyhow::anyhow!("demosaic: '{text}' is not a method (bilinear or mhc)"))
}

/// A Bayer pattern as `--bayer` and the `bayer` key spell it.
pub fn parse_bayer(text: &str) -> Result<BayerPattern> {
    BayerPattern::parse(text).with_context(|| {
        format!("bayer: '{text}' is not a Bayer pattern (RGGB, GRBG, GBRG or BGGR)")
    })
}

/// A CLI value as TOML (numbers, booleans, arrays, quoted strings), else plain text.
pub fn parse_value(text: &str) -> Value {
    toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .and_then(|t| t.get("v").cloned())
        .and_then(|v| serde_json::to_value(v).ok())
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// Checks parameters against a stage's manifest: known keys, types, ranges.
pub fn validate_params(manifest: &Manifest, params: &Map<String, Value>) -> Result<()> {
    let stage = manifest.name.as_str();
    for (key, value) in params {
        let Some(spec) = manifest.params.iter().find(|p| p.name.as_str() == key) else {
            let known: Vec<&str> = manifest.params.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "unknown parameter '{key}' for stage '{stage}' (its parameters: {})",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            );
        };
        let range = spec.range_text();
        let bad = |what: &str| {
            anyhow::anyhow!(
                "parameter '{key}' of stage '{stage}' {what} (expected {}, {range}; got {value})",
                spec.kind.as_str()
            )
        };
        let in_range = |x: f64| {
            spec.min.into_option().is_none_or(|m| x >= m)
                && spec.max.into_option().is_none_or(|m| x <= m)
        };
        match spec.kind {
            ParamKind::Float => {
                let x = value.as_f64().ok_or_else(|| bad("has the wrong type"))?;
                if !in_range(x) {
                    return Err(bad("is out of range"));
                }
            }
            ParamKind::Int => {
                let x = value.as_i64().ok_or_else(|| bad("has the wrong type"))?;
                if !in_range(x as f64) {
                    return Err(bad("is out of range"));
                }
            }
            ParamKind::Bool => {
                value.as_bool().ok_or_else(|| bad("has the wrong type"))?;
            }
            ParamKind::Text => {
                value.as_str().ok_or_else(|| bad("has the wrong type"))?;
            }
            ParamKind::Choice => {
                let s = value.as_str().ok_or_else(|| bad("has the wrong type"))?;
                if !spec.choices.iter().any(|c| c.as_str() == s) {
                    return Err(bad("is not one of the choices"));
                }
            }
            ParamKind::FloatList => {
                let list = value.as_array().ok_or_else(|| bad("has the wrong type"))?;
                for v in list {
                    let x = v.as_f64().ok_or_else(|| bad("has a non-number element"))?;
                    if !in_range(x) {
                        return Err(bad("has an element out of range"));
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_automatic_pool_holds_a_hundred_frames_within_a_quarter_and_a_half() {
        assert_eq!(auto_pool(160), AUTO_POOL);
        assert_eq!(auto_pool(200), 0.5);
        assert!((auto_pool(300) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(auto_pool(1000), AUTO_GLOBAL);
        assert_eq!(auto_pool(40_000), AUTO_GLOBAL);
        assert_eq!(auto_pool(0), AUTO_POOL);
    }
    use jupiter_plugin_api::{ParamSpec, StageKind};

    #[test]
    fn selection_parses_and_clamps() {
        assert_eq!(Selection::parse("25%").unwrap().count_of(200), 50);
        assert_eq!(Selection::parse("10").unwrap().count_of(5), 5);
        assert_eq!(Selection::parse("0.1%").unwrap().count_of(100), 1);
        assert!(Selection::parse("150%").is_err());
        assert!(Selection::parse("abc").is_err());
    }

    #[test]
    fn set_overrides_and_typed_values() {
        let mut s = PipelineSpec::default();
        s.apply_set("stack.kappa=2.5").unwrap();
        s.apply_set("deconvolve.iterations=20").unwrap();
        s.apply_set("quality.metric=tenengrad").unwrap();
        assert_eq!(s.stack.params["kappa"], serde_json::json!(2.5));
        assert_eq!(s.post[0].params["iterations"], serde_json::json!(20));
        assert_eq!(s.quality.params["metric"], serde_json::json!("tenengrad"));
        assert!(s
            .apply_set("nosuch.x=1")
            .unwrap_err()
            .to_string()
            .contains("no stage 'nosuch'"));
    }

    #[test]
    fn to_toml_reads_back_to_the_same_pipeline() {
        let mut s = PipelineSpec::default();
        s.select = Selection::Count(300);
        s.apply_set("stack.kappa=2.5").unwrap();
        s.apply_set("deconvolve.sigma=1.25").unwrap();
        s.apply_set("deconvolve.iterations=20").unwrap();
        s.apply_set("stretch.midtone=0.4").unwrap();
        s.post.insert(0, StageChoice::new("sharpen-wavelet"));
        s.apply_set("sharpen-wavelet.gains=[1.5, 1.0]").unwrap();
        let path =
            std::env::temp_dir().join(format!("jupiter-to-toml-{}.toml", std::process::id()));
        for stacking in [true, false] {
            std::fs::write(&path, s.to_toml(stacking).unwrap()).unwrap();
            let back = PipelineSpec::from_file(&path).unwrap();
            assert_eq!(
                serde_json::to_value(&back.post).unwrap(),
                serde_json::to_value(&s.post).unwrap()
            );
            let same = |a: &PipelineSpec| {
                serde_json::to_value((&a.select, &a.quality, &a.align, &a.stack)).unwrap()
            };
            assert_eq!(same(&back) == same(&s), stacking);
            assert!(!back.default_post);
        }
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn calibration_and_bayer_are_written_back_and_relative_masters_found_beside_the_file() {
        let dir = std::env::temp_dir().join(format!("jupiter-cfg-cal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p.toml");
        std::fs::write(
            &p,
            "bayer = \"GRBG\"\n[calibration]\ndark = \"darks.ser\"\nflat = \"/data/flat.fits\"\ncombine = \"sigma-clip\"\nhot_pixels = false\n",
        )
        .unwrap();
        let s = PipelineSpec::from_file(&p).unwrap();
        let c = &s.calibration;
        assert_eq!(c.dark.as_deref(), Some(dir.join("darks.ser").as_path()));
        assert_eq!(c.flat.as_deref(), Some(Path::new("/data/flat.fits")));
        assert_eq!(c.combine, crate::io::calibrate::Combine::SigmaClip);
        assert!(!c.hot_pixels_on());
        std::fs::write(&p, s.to_toml(true).unwrap()).unwrap();
        let back = PipelineSpec::from_file(&p).unwrap();
        assert_eq!(back.calibration, s.calibration);
        assert_eq!(back.bayer, Some(BayerPattern::Grbg));
        std::fs::write(&p, "[calibration]\ndrak = \"x.ser\"\n").unwrap();
        let e = format!("{:#}", PipelineSpec::from_file(&p).unwrap_err());
        assert!(e.contains("drak"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_demosaic_key_is_read_written_back_and_checked() {
        let dir = std::env::temp_dir().join(format!("jupiter-cfg-dm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p.toml");
        assert_eq!(PipelineSpec::default().demosaic, Demosaic::Mhc);
        std::fs::write(&p, "demosaic = \"Bilinear\"\n").unwrap();
        let s = PipelineSpec::from_file(&p).unwrap();
        assert_eq!(s.demosaic, Demosaic::Bilinear);
        std::fs::write(&p, s.to_toml(true).unwrap()).unwrap();
        assert_eq!(
            PipelineSpec::from_file(&p).unwrap().demosaic,
            Demosaic::Bilinear
        );
        std::fs::write(&p, "demosaic = \"vng\"\n").unwrap();
        let e = format!("{:#}", PipelineSpec::from_file(&p).unwrap_err());
        assert!(e.contains("bilinear or mhc"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn file_with_typo_names_the_key() {
        let dir = std::env::temp_dir().join(format!("jupiter-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("p.toml");
        std::fs::write(&p, "select = \"10%\"\n[stak]\nplugin = \"stack-mean\"\n").unwrap();
        let e = format!("{:#}", PipelineSpec::from_file(&p).unwrap_err());
        assert!(e.contains("stak") && e.contains("p.toml"), "{e}");
        std::fs::write(&p, "backend = \"cpu\"\n[stack]\nplugin = \"stack-median\"\n[[post]]\nplugin = \"gamma\"\nparams = { gamma = 1.2 }\n").unwrap();
        let s = PipelineSpec::from_file(&p).unwrap();
        assert_eq!(s.stack.plugin, "stack-median");
        assert_eq!(s.post.len(), 1);
        assert_eq!(s.backend, BackendChoice::Cpu);
    }

    #[test]
    fn params_are_checked_against_the_manifest() {
        let m = Manifest::new(
            "s",
            "1",
            StageKind::Stack,
            "",
            vec![
                ParamSpec::float("k", 2.0, 0.0, 10.0, ""),
                ParamSpec::choice("mode", "a", &["a", "b"], ""),
            ],
        );
        let ok: Map<String, Value> = serde_json::from_str(r#"{"k": 3, "mode": "b"}"#).unwrap();
        validate_params(&m, &ok).unwrap();
        let e = validate_params(&m, &serde_json::from_str(r#"{"k": 30}"#).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("'k'") && e.contains("0 ..= 10"), "{e}");
        let e = validate_params(&m, &serde_json::from_str(r#"{"kk": 1}"#).unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown parameter 'kk'") && e.contains("k, mode"),
            "{e}"
        );
        let e = validate_params(&m, &serde_json::from_str(r#"{"mode": "c"}"#).unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("one of a, b"), "{e}");
    }
}
