//! The pipeline a run executes: every stage of the spec looked up in the
//! registry with its parameters validated against the stage's manifest,
//! before any frame is read.

use anyhow::Result;
use jupiter_plugin_api::{Backend, LogLevel, StageKind};

use crate::backend::HostBackend;
use crate::config::{
    auto_pool, validate_params, PipelineSpec, Selection, StageChoice, AUTO_GLOBAL, FALLBACK_ALIGNER,
};
use crate::registry::{is_image_stage, LoadedStage, Registry};

/// One stage ready to call: its plugin and its validated parameters (JSON).
pub struct ResolvedStage<'r> {
    pub stage: &'r LoadedStage,
    pub params: String,
}

impl<'r> ResolvedStage<'r> {
    fn new(stage: &'r LoadedStage, choice: &StageChoice) -> Result<ResolvedStage<'r>> {
        validate_params(&stage.manifest, &choice.params)?;
        Ok(ResolvedStage {
            stage,
            params: serde_json::to_string(&choice.params)?,
        })
    }

    /// The stage's name (as its manifest gives it).
    pub fn name(&self) -> &str {
        self.stage.manifest.name.as_str()
    }
}

/// quality → select → align → stack → post, each stage resolved.
pub struct Pipeline<'r> {
    pub quality: ResolvedStage<'r>,
    pub select: Selection,
    pub align: ResolvedStage<'r>,
    pub stack: ResolvedStage<'r>,
    /// Image stages run in order on the stack (may be empty).
    pub post: Vec<ResolvedStage<'r>>,
}

impl<'r> Pipeline<'r> {
    /// Resolves every stage of `spec` and validates its parameters; errors
    /// name the pipeline file when the spec came from one.
    pub fn resolve(
        reg: &'r Registry,
        spec: &PipelineSpec,
        backend: &HostBackend,
    ) -> Result<Pipeline<'r>> {
        Self::resolve_all(reg, spec, backend).map_err(|e| match &spec.source {
            Some(file) => e.context(format!("pipeline {}", file.display())),
            None => e,
        })
    }

    fn resolve_all(
        reg: &'r Registry,
        spec: &PipelineSpec,
        backend: &HostBackend,
    ) -> Result<Pipeline<'r>> {
        let stage =
            |choice: &StageChoice, kind| ResolvedStage::new(reg.get(&choice.plugin, kind)?, choice);
        Ok(Pipeline {
            quality: stage(&spec.quality, StageKind::Quality)?,
            select: spec.select,
            align: stage(
                &default_align_or_fallback(reg, spec, backend),
                StageKind::Align,
            )?,
            stack: stage(&spec.stack, StageKind::Stack)?,
            post: resolve_post(reg, spec, backend)?,
        })
    }
}

/// The spec's aligner; when it is the built-in default and its plugin is not
/// installed, global alignment with the same parameters, with a warning.
fn default_align_or_fallback(
    reg: &Registry,
    spec: &PipelineSpec,
    backend: &HostBackend,
) -> StageChoice {
    if !spec.default_align || reg.stages.contains_key(&spec.align.plugin) {
        return spec.align.clone();
    }
    backend.message(&format!(
        "warning: the default aligner '{}' is not installed; using {FALLBACK_ALIGNER} (global alignment)",
        spec.align.plugin
    ));
    StageChoice {
        plugin: FALLBACK_ALIGNER.into(),
        ..spec.align.clone()
    }
}

/// The post stages; a missing stage of the built-in default post-processing
/// is skipped with a warning, any other missing stage is an error.
fn resolve_post<'r>(
    reg: &'r Registry,
    spec: &PipelineSpec,
    backend: &HostBackend,
) -> Result<Vec<ResolvedStage<'r>>> {
    let mut out = Vec::new();
    for choice in &spec.post {
        if spec.default_post && !reg.stages.contains_key(&choice.plugin) {
            backend.message(&format!(
                "warning: default post-processing stage '{}' is not installed; skipped",
                choice.plugin
            ));
            continue;
        }
        out.push(ResolvedStage::image_stage(reg, choice)?);
    }
    Ok(out)
}

impl<'r> ResolvedStage<'r> {
    /// An image → image stage (sharpen or filter) with validated parameters;
    /// an error names the stage when it is missing or of another kind.
    pub fn image_stage(reg: &'r Registry, choice: &StageChoice) -> Result<ResolvedStage<'r>> {
        let kind = reg
            .stages
            .get(&choice.plugin)
            .map(|s| s.manifest.kind)
            .filter(|&k| is_image_stage(k))
            .unwrap_or(StageKind::Filter);
        ResolvedStage::new(reg.get(&choice.plugin, kind)?, choice)
    }
}

impl Pipeline<'_> {
    /// The selection to apply to `total` frames, `--select auto` made a
    /// share of them (said in one line): [`auto_pool`] when the aligner
    /// chooses its own frames at each point (it declares `keep` with 0
    /// meaning automatic, and `keep` is 0), else [`AUTO_GLOBAL`]. Other
    /// selections are the user's and stay.
    pub fn selection(&self, total: usize, backend: &HostBackend) -> Selection {
        resolve_selection(self.select, &self.align, total, backend)
    }
}

fn resolve_selection(
    select: Selection,
    align: &ResolvedStage,
    total: usize,
    backend: &HostBackend,
) -> Selection {
    if select != Selection::Auto {
        return select;
    }
    let declares = align
        .stage
        .manifest
        .params
        .iter()
        .any(|p| p.name.as_str() == "keep" && p.min.into_option() == Some(0.0));
    let params: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&align.params).unwrap_or_default();
    let automatic = declares
        && params
            .get("keep")
            .and_then(|v| v.as_f64())
            .is_none_or(|k| k == 0.0);
    let share = if automatic {
        auto_pool(total)
    } else {
        AUTO_GLOBAL
    };
    backend.log(
        LogLevel::Info,
        format!(
            "select auto: the sharpest {:.0}% of the frames go to {}{}",
            100.0 * share,
            align.name(),
            if automatic {
                ", which keeps at each point the frames its noise and sharpness call for"
            } else {
                ""
            }
        )
        .as_str()
        .into(),
    );
    Selection::Percent(100.0 * share)
}
