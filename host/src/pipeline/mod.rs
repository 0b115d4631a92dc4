//! Runs one capture through the stages:
//!
//! ```text
//! capture ─▶ quality ─▶ select ─▶ align ─▶ stack ─▶ post… ─▶ write
//!  (frames)   scores     best N    warps    image    image    TIFF/PNG/FITS
//! ```
//!
//! [`run`] reads as that diagram: [`Pipeline`] holds the resolved stages
//! (`resolve.rs`), [`StageRunner`] has one function per stage (`stages.rs`),
//! and `checks.rs` holds what the host verifies of every stage's result
//! (sizes, counts, finite values), with errors that name the plugin, its
//! file and the stage; `meta.rs` what the output records of the run.

mod checks;
pub mod html;
mod meta;
mod report;
mod resolve;
mod stages;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use abi_stable::std_types::RVec;
use anyhow::{bail, Result};
use jupiter_plugin_api::{Image, StackRequest};

pub use checks::{download, RunError};
pub use report::{peak_rss_mb, ApSummary, Report, StageTiming};
pub use resolve::{Pipeline, ResolvedStage};
pub use stages::{select, StageRunner};

use crate::backend::HostBackend;
use crate::config::PipelineSpec;
use crate::derotate::{self, Derotation};
use crate::frames::{Capture, CaptureFrames, CaptureOnDevice};
use crate::io::calibrate::Calibration;
use crate::io::capture;
use crate::io::ser::OpenOptions;
use crate::io::write::{check_output, write_image, OutputMeta};
use crate::registry::Registry;

/// What the runs of one command share: the plugins, the backend and, on a
/// GPU run, the store that keeps each capture on the device (one for the
/// whole batch, so that device buffers are reused from capture to capture).
pub struct Session<'a> {
    pub registry: &'a Registry,
    pub backend: &'a HostBackend,
    pub store: Option<Arc<CaptureOnDevice>>,
}

impl<'a> Session<'a> {
    /// A session over `backend` as it is now (call after the device is set up).
    pub fn new(registry: &'a Registry, backend: &'a HostBackend) -> Session<'a> {
        let store = backend.gpu_service().map(|g| {
            Arc::new(CaptureOnDevice::new(
                g.clone(),
                backend.cancel_flag(),
                backend.pool_threads(),
            ))
        });
        Session {
            registry,
            backend,
            store,
        }
    }
}

impl Drop for Session<'_> {
    /// Frees the device memory the store kept for a next capture.
    fn drop(&mut self) {
        if let Some(s) = &self.store {
            s.release();
        }
    }
}

/// What a run produced.
pub struct RunOutput {
    pub report: Report,
    /// The stack before post-processing (when `keep_stacked` was asked).
    pub stacked: Option<Image>,
    /// The best frame, decoded (when `keep_stacked` was asked).
    pub best: Option<Image>,
    /// The final image (written to `report.output`).
    pub image: Image,
    /// What the output records (date, frames, observer, pipeline).
    pub meta: OutputMeta,
}

/// Inputs of one run.
pub struct RunRequest<'a> {
    pub input: &'a Path,
    pub output: PathBuf,
    pub spec: &'a PipelineSpec,
    pub open: OpenOptions,
    pub force: bool,
    pub png8: bool,
    /// The device description for the report.
    pub device: String,
    /// Keep a host copy of the plain stack in the output (costs a download on the GPU path).
    pub keep_stacked: bool,
    /// The capture a batch runs next: on a GPU run it is uploaded while
    /// this one is aligned and stacked.
    pub next: Option<&'a Path>,
    /// The masters of `spec.calibration`, built once for a batch
    /// ([`prepare_calibration`]).
    pub calibration: Option<Arc<Calibration>>,
}

/// Builds the masters a pipeline's calibration names (once for a batch);
/// `None` when it names none. Each master is checked against `first` (the
/// batch's first capture) before its frames are combined, so that a
/// mismatch is reported before any long work; a `first` that does not
/// open is left to its own run to report.
pub fn prepare_calibration(
    spec: &PipelineSpec,
    open: OpenOptions,
    first: Option<&Path>,
    backend: &HostBackend,
) -> Result<Option<Arc<Calibration>>> {
    let opts = capture::OpenOptions {
        ser: open,
        bayer: spec.bayer,
        demosaic: spec.demosaic,
    };
    if spec.calibration.is_empty() {
        return Ok(None);
    }
    let first = first.and_then(|p| capture::CaptureFile::open(p, opts).ok());
    let cal = Calibration::prepare(&spec.calibration, opts, first.as_ref())?;
    if let Some(c) = cal.as_ref().filter(|_| !backend.quiet) {
        for line in c.describe() {
            backend.message(&line);
        }
    }
    crate::timeline::mark("calibration masters built");
    Ok(cal)
}

/// Runs the whole pipeline on one capture and writes the result.
pub fn run(session: &Session, req: &RunRequest) -> Result<RunOutput> {
    let t0 = Instant::now();
    session.backend.take_messages();
    let pipeline = Pipeline::resolve(session.registry, req.spec, session.backend)?;
    check_output(&req.output, req.png8, req.force)?;
    let capture = open_capture(session, req)?;
    let times = derotate::check(&req.spec.derotate, &capture.file)?;
    let mut stages = StageRunner::new(session.backend);

    let scores = stages.quality(
        &pipeline.quality,
        &capture.frames((0..capture.len()).collect()),
    )?;
    capture.upload_ahead(req.next, open_options(req), req.calibration.as_ref());
    let selected = select(&scores, pipeline.selection(scores.len(), session.backend));
    let frames = capture.frames(selected.clone());
    let sel_scores: RVec<f32> = selected.iter().map(|&i| scores[i]).collect();
    let mut derotation = match &times {
        Some(t) => Some(prepare_derotation(session.backend, req, &frames, t)?),
        None => None,
    };
    // What the report keeps of the aligner's warps is taken before they go
    // to the stacker (a copy of every frame's field would double the
    // alignment's memory on long captures).
    let (shifts, alignment_points, stack_alignment) = match &mut derotation {
        Some(d) => {
            let a = stages.align(&pipeline.align, &d.frames(&frames), &sel_scores)?;
            let composed = d.compose(&a);
            let summary = session.backend.install(|| ApSummary::of(&a.warps));
            (shifts_of(&a), summary, composed)
        }
        None => {
            let a = stages.align(&pipeline.align, &frames, &sel_scores)?;
            let summary = session.backend.install(|| ApSummary::of(&a.warps));
            (shifts_of(&a), summary, a)
        }
    };
    let stack_req = StackRequest {
        alignment: stack_alignment,
        scores: sel_scores,
    };
    let stacked = stages.stack(
        &pipeline.stack,
        &frames,
        &stack_req,
        pipeline.post.is_empty(),
    )?;
    let (stacked, image) = keep_stacked(session.backend, stacked, req.keep_stacked)?;
    let image = stages.post(&pipeline.post, image)?;
    stages.cancelled()?;
    let image = finish_image(session.backend, image)?;
    let mut meta = meta::output_meta(&capture.file, &selected, &pipeline);
    // A derotated image shows the planet at the derotation's reference
    // time (the same instant when the frames carry timestamps; with --fps
    // the capture's own rate may differ).
    if let Some(t) = derotation.as_ref().and_then(|d| d.reference_ticks) {
        meta.date_obs = Some(t);
    }
    write_image(&image, &req.output, (req.png8, req.force), &meta)?;
    crate::timeline::mark("output written");

    let (w, h, c) = capture.dims();
    let report = Report {
        input: req.input.display().to_string(),
        output: req.output.display().to_string(),
        width: w as usize,
        height: h as usize,
        channels: c as usize,
        output_width: image.width as usize,
        output_height: image.height as usize,
        scale: image.width as f64 / w as f64,
        frames: capture.len(),
        warnings: capture.file.warnings().to_vec(),
        messages: session.backend.take_messages(),
        pipeline: req.spec.clone(),
        scores,
        selected,
        shifts,
        timings: stages.timings,
        total_seconds: t0.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
        device: req.device.clone(),
        alignment_points,
        calibration: capture.file.calibration().map(|c| c.summary().clone()),
        derotation: derotation.map(|d| d.summary),
    };
    let best = match (req.keep_stacked, report.selected.first()) {
        (true, Some(&i)) => Some(best_frame(&capture, i)?),
        _ => None,
    };
    Ok(RunOutput {
        report,
        stacked,
        best,
        image,
        meta,
    })
}

/// Each frame's global shift, for the report.
fn shifts_of(alignment: &jupiter_plugin_api::Alignment) -> Vec<[f32; 2]> {
    alignment.warps.iter().map(|w| [w.dx, w.dy]).collect()
}

/// Fits the derotation to the selected frames and says what it found.
fn prepare_derotation(
    backend: &HostBackend,
    req: &RunRequest,
    frames: &CaptureFrames,
    times: &derotate::FrameTimes,
) -> Result<Derotation> {
    let d = Derotation::prepare(&req.spec.derotate, frames, times, backend)?;
    crate::timeline::mark("derotation fitted");
    for line in d.describe() {
        if !backend.quiet || line.starts_with("warning") {
            backend.message(&line);
        }
    }
    Ok(d)
}

/// Opens the capture (on a GPU run into the session's store: uploaded at
/// the first stage that asks for it, or already while the previous capture
/// of a batch was aligned) and shows its warnings.
fn open_capture(session: &Session, req: &RunRequest) -> Result<Capture> {
    let capture = Capture::open(
        req.input,
        open_options(req),
        session.store.as_ref(),
        req.calibration.as_ref(),
    )?;
    crate::timeline::mark("capture opened");
    if let Some(c) = capture
        .file
        .calibration()
        .filter(|_| !session.backend.quiet)
    {
        session.backend.message(&c.describe());
    }
    for w in capture.file.warnings() {
        session
            .backend
            .message(&format!("warning: {}: {w}", req.input.display()));
    }
    Ok(capture)
}

/// How to open the request's captures: its SER options and the pipeline's
/// Bayer pattern (`--bayer`, the `bayer` key) and demosaic (`--demosaic`).
fn open_options(req: &RunRequest) -> capture::OpenOptions {
    capture::OpenOptions {
        ser: req.open,
        bayer: req.spec.bayer,
        demosaic: req.spec.demosaic,
    }
}

/// Frame `index` of the capture, decoded.
fn best_frame(capture: &Capture, index: usize) -> Result<Image> {
    let (w, h, c) = capture.dims();
    Ok(Image::from_vec(w, h, c, capture.file.decode_frame(index)?))
}

/// The plain stack, kept in host memory only when asked for, and the image
/// the post stages start from.
fn keep_stacked(
    backend: &HostBackend,
    stacked: Image,
    keep: bool,
) -> Result<(Option<Image>, Image)> {
    if !keep {
        return Ok((None, stacked));
    }
    let image = download(backend, stacked)?;
    Ok((Some(image.clone()), image))
}

/// The final image in host memory, refused if it holds NaN or infinity.
fn finish_image(backend: &HostBackend, image: Image) -> Result<Image> {
    let image = download(backend, image)?;
    if let Some(i) = image.data.iter().position(|v| !v.is_finite()) {
        bail!(
            "the final image has a non-finite value ({}) at sample {i}",
            image.data[i]
        );
    }
    crate::timeline::mark("image downloaded");
    Ok(image)
}
