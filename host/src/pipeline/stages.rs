//! One function per stage of the pipeline. Each calls its plugin through the
//! ABI (with the CPU re-run when a GPU path fails), times it for the report,
//! stops on Ctrl-C and validates what the stage returned.

use std::time::Instant;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RStr, RVec};
use anyhow::Result;
use jupiter_plugin_api::{
    AlignRequest, Alignment, FrameSource, FrameSource_TO, Image, StackRequest, StageError,
};

use super::checks::{
    bad_output, check_finite, check_image, check_stacked, download, with_cpu_fallback, RunError,
};
use super::report::StageTiming;
use super::resolve::ResolvedStage;
use crate::backend::HostBackend;
use crate::config::Selection;
use crate::frames::CaptureFrames;

/// Calls stages for one run and collects their timings.
pub struct StageRunner<'a> {
    pub backend: &'a HostBackend,
    pub timings: Vec<StageTiming>,
}

impl<'a> StageRunner<'a> {
    pub fn new(backend: &'a HostBackend) -> StageRunner<'a> {
        StageRunner {
            backend,
            timings: Vec::new(),
        }
    }

    /// Runs `call` as stage `label` (progress bar, CPU re-run after a GPU
    /// failure), then stops if the run was cancelled meanwhile.
    fn call<T>(
        &self,
        stage: &ResolvedStage,
        label: &str,
        call: impl FnMut() -> RResult<T, StageError>,
    ) -> Result<T> {
        self.backend.begin_stage(label);
        let out = with_cpu_fallback(self.backend, stage.stage, call);
        self.backend.end_stage();
        out
    }

    /// Records the time of a stage begun at `t`.
    fn time(&mut self, stage: &ResolvedStage, label: &str, t: Instant) {
        let m = &stage.stage.manifest;
        self.timings.push(StageTiming {
            stage: label.into(),
            plugin: m.name.to_string(),
            version: m.version.to_string(),
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    /// An error when the run was cancelled (Ctrl-C).
    pub fn cancelled(&self) -> Result<()> {
        if self.backend.is_cancelled() {
            Err(RunError::Cancelled.into())
        } else {
            Ok(())
        }
    }

    /// Scores every frame: one finite score per frame.
    pub fn quality(&mut self, stage: &ResolvedStage, all: &CaptureFrames) -> Result<Vec<f32>> {
        let t = Instant::now();
        let n = all.indices.len();
        let scores = self.call(stage, "quality", || {
            (stage.stage.module.quality())(
                RStr::from(stage.name()),
                self.backend.as_ref(),
                all.source(),
                RStr::from(stage.params.as_str()),
            )
        });
        let scores: Vec<f32> = scores?.into_vec();
        self.cancelled()?;
        if scores.len() != n {
            return Err(bad_output(
                stage.stage,
                format!("{} scores for {n} frames", scores.len()),
            ));
        }
        if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
            return Err(bad_output(
                stage.stage,
                format!("score of frame {i} is {}", scores[i]),
            ));
        }
        self.time(stage, "quality", t);
        Ok(scores)
    }

    /// Aligns the selected frames: one finite warp per frame.
    pub fn align<F: FrameSource>(
        &mut self,
        stage: &ResolvedStage,
        frames: &F,
        scores: &RVec<f32>,
    ) -> Result<Alignment> {
        let t = Instant::now();
        let req = AlignRequest {
            scores: scores.clone(),
        };
        let alignment = self.call(stage, "align", || {
            (stage.stage.module.align())(
                RStr::from(stage.name()),
                self.backend.as_ref(),
                FrameSource_TO::from_ptr(frames, TD_Opaque),
                &req,
                RStr::from(stage.params.as_str()),
            )
        })?;
        self.cancelled()?;
        let keep = frames.info().count as usize;
        if alignment.warps.len() != keep {
            return Err(bad_output(
                stage.stage,
                format!("{} warps for {keep} frames", alignment.warps.len()),
            ));
        }
        if let Some(i) = alignment
            .warps
            .iter()
            .position(|w| !w.dx.is_finite() || !w.dy.is_finite())
        {
            return Err(bad_output(
                stage.stage,
                format!("shift of frame {i} is not finite"),
            ));
        }
        self.time(stage, "align", t);
        Ok(alignment)
    }

    /// Stacks the aligned frames into one image of the frames' size; with
    /// `download_now` (nothing runs after it on the device) it comes back
    /// in host memory. The capture's device copy is given up either way.
    pub fn stack(
        &mut self,
        stage: &ResolvedStage,
        frames: &CaptureFrames,
        req: &StackRequest,
        download_now: bool,
    ) -> Result<Image> {
        let t = Instant::now();
        let stacked = self.call(stage, "stack", || {
            (stage.stage.module.stack())(
                RStr::from(stage.name()),
                self.backend.as_ref(),
                frames.source(),
                req,
                RStr::from(stage.params.as_str()),
            )
        });
        if let Some(d) = &frames.device {
            d.finish();
        }
        let stacked = stacked?;
        self.cancelled()?;
        let info = jupiter_plugin_api::FrameSource::info(frames);
        check_stacked(
            stage.stage,
            &stacked,
            info.width,
            info.height,
            info.channels,
        )?;
        let stacked = if download_now {
            download(self.backend, stacked)?
        } else {
            stacked
        };
        check_finite(stage.stage, &stacked.data)?;
        self.time(stage, "stack", t);
        Ok(stacked)
    }

    /// Runs the post stages in order. A GPU-resident image stays on the
    /// device between GPU-capable stages and is downloaded before a CPU-only one.
    pub fn post(&mut self, stages: &[ResolvedStage], mut image: Image) -> Result<Image> {
        for stage in stages {
            image = self.post_stage(stage, image)?;
        }
        Ok(image)
    }

    fn post_stage(&mut self, stage: &ResolvedStage, image: Image) -> Result<Image> {
        let t = Instant::now();
        let backend = self.backend;
        let (w, h) = (image.width, image.height);
        let input = if !stage.stage.manifest.gpu || backend.gpu_service().is_none() {
            download(backend, image)?
        } else {
            image
        };
        let mut retry_input: Option<Image> = None;
        let out = self.call(stage, stage.name(), || {
            // A retry after a GPU failure gets the input in host memory.
            let arg = match &retry_input {
                None => {
                    retry_input = Some(input.clone());
                    input.clone()
                }
                Some(i) => download(backend, i.clone()).unwrap_or_else(|_| i.clone()),
            };
            (stage.stage.module.process())(
                RStr::from(stage.name()),
                backend.as_ref(),
                arg,
                RStr::from(stage.params.as_str()),
            )
        })?;
        free_replaced(backend, &input, &out);
        self.cancelled()?;
        check_image(stage.stage, &out, w, h, None)?;
        self.time(stage, "post", t);
        Ok(out)
    }
}

/// The input's device buffer belongs to the host: freed once a stage has
/// replaced it with another.
fn free_replaced(backend: &HostBackend, input: &Image, out: &Image) {
    if let (Some(a), b) = (
        input.device.as_ref().into_option(),
        out.device.as_ref().into_option(),
    ) {
        if b != Some(a) {
            if let Some(g) = backend.gpu_service() {
                g.destroy_buffer(*a);
            }
        }
    }
}

/// The frames to keep, best first (ties in capture order).
pub fn select(scores: &[f32], selection: Selection) -> Vec<usize> {
    let keep = selection.count_of(scores.len());
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(keep);
    order
}
