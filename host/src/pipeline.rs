//! Runs the stages in order: quality → select → align → stack → post → write.
//!
//! The host validates what each stage returns (sizes, counts, finite values)
//! and turns failures into errors that name the plugin, its file and the stage.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSliceMut, RStr, RVec};
use anyhow::{bail, Result};
use jupiter_plugin_api::{
    AlignRequest, Alignment, DeviceFrames, ErrorKind, FrameInfo, FrameSource, FrameSourceRef,
    FrameSource_TO, Image, StackRequest, StageError, StageKind,
};
use serde::Serialize;

use crate::backend::cpu::HostBackend;
use crate::config::{validate_params, PipelineSpec, StageChoice};
use crate::device_frames::CaptureOnDevice;
use crate::io::ser::{OpenOptions, SerFile};
use crate::io::write::write_image;
use crate::registry::{LoadedStage, Registry};

/// How many frames ahead of a stage's reads the host asks the kernel to read
/// the same rows (covers the frames the other workers hold).
const READ_AHEAD: usize = 8;

/// Frames of a SER file served to stages, through an index map (the
/// selection, best first). Decoding happens on demand, from the memory map.
pub struct SerFrames {
    pub ser: Arc<SerFile>,
    pub indices: Vec<usize>,
    /// The capture on the GPU (GPU runs only).
    pub device: Option<Arc<CaptureOnDevice>>,
}

impl FrameSource for SerFrames {
    fn info(&self) -> FrameInfo {
        FrameInfo {
            width: self.ser.width() as u32,
            height: self.ser.height() as u32,
            channels: self.ser.channels() as u32,
            count: self.indices.len() as u32,
        }
    }

    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        let info = self.info();
        let Some(&frame) = self.indices.get(index) else {
            return RResult::RErr(StageError::internal(format!(
                "frame {index} requested, the source has {}",
                info.count
            )));
        };
        if y0
            .checked_add(rows)
            .is_none_or(|e| e > info.height as usize)
            || out.len() != rows * info.row_len()
        {
            return RResult::RErr(StageError::internal(format!(
                "read_rows({index}, {y0}, {rows}) with a buffer of {} samples on {}×{}×{} frames",
                out.len(),
                info.width,
                info.height,
                info.channels
            )));
        }
        // Stages walk the frames in order (in parallel, whole or band by
        // band): read the same rows of a frame further on ahead of them.
        if let Some(&next) = self.indices.get(index + READ_AHEAD) {
            self.ser.prefetch_rows(next, y0, rows);
        }
        // Never let a panic cross back into the plugin.
        match catch_unwind(AssertUnwindSafe(|| {
            self.ser.decode_rows(frame, y0, rows, &mut out)
        })) {
            Ok(Ok(())) => RResult::ROk(()),
            Ok(Err(e)) => RResult::RErr(StageError::internal(e.to_string())),
            Err(_) => RResult::RErr(StageError::internal("the host's SER decoder panicked")),
        }
    }

    fn device_frames(&self) -> RResult<ROption<DeviceFrames>, StageError> {
        let Some(store) = &self.device else {
            return RResult::ROk(ROption::RNone);
        };
        match catch_unwind(AssertUnwindSafe(|| store.frames(&self.ser, &self.indices))) {
            Ok(r) => r.map(ROption::from).into(),
            Err(_) => RResult::RErr(StageError::gpu("uploading the capture to the GPU panicked")),
        }
    }
}

/// A stage failure; `Cancelled` is reported separately (exit code 130).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cancelled")]
    Cancelled,
    #[error("stage '{stage}' ({kind}, plugin file {file}) failed: {error}")]
    Stage {
        stage: String,
        kind: &'static str,
        file: String,
        error: StageError,
    },
    #[error("stage '{stage}' (plugin file {file}) returned an invalid result: {problem}")]
    BadOutput {
        stage: String,
        file: String,
        problem: String,
    },
}

fn stage_err(s: &LoadedStage, e: StageError) -> anyhow::Error {
    if e.kind == ErrorKind::Cancelled {
        return RunError::Cancelled.into();
    }
    RunError::Stage {
        stage: s.manifest.name.to_string(),
        kind: s.manifest.kind.as_str(),
        file: s.file.display().to_string(),
        error: e,
    }
    .into()
}

fn bad_output(s: &LoadedStage, problem: String) -> anyhow::Error {
    RunError::BadOutput {
        stage: s.manifest.name.to_string(),
        file: s.file.display().to_string(),
        problem,
    }
    .into()
}

fn check_image(s: &LoadedStage, img: &Image, w: u32, h: u32, c: Option<u32>) -> Result<()> {
    if img.width != w || img.height != h || c.is_some_and(|c| img.channels != c) {
        return Err(bad_output(
            s,
            format!(
                "image of {}×{}×{}, expected {w}×{h}×{}",
                img.width,
                img.height,
                img.channels,
                c.map_or("?".into(), |c| c.to_string())
            ),
        ));
    }
    if let Some(buf) = img.device.as_ref().into_option() {
        // Device-resident: its values are checked once downloaded.
        if buf.size < img.len() as u64 * 4 {
            return Err(bad_output(
                s,
                format!(
                    "GPU image buffer of {} bytes for {}×{}×{}",
                    buf.size, img.width, img.height, img.channels
                ),
            ));
        }
        return Ok(());
    }
    if img.data.len() != img.len() {
        return Err(bad_output(
            s,
            format!(
                "image holds {} samples for {}×{}×{}",
                img.data.len(),
                img.width,
                img.height,
                img.channels
            ),
        ));
    }
    if let Some(i) = img.data.iter().position(|v| !v.is_finite()) {
        return Err(bad_output(
            s,
            format!("non-finite value ({}) at sample {i}", img.data[i]),
        ));
    }
    Ok(())
}

/// Brings a GPU-resident image into host memory (and frees its buffer).
fn download(backend: &HostBackend, image: Image) -> Result<Image> {
    let Some(buf) = image.device.as_ref().into_option().copied() else {
        return Ok(image);
    };
    let gpu = backend
        .gpu_service()
        .ok_or_else(|| anyhow::anyhow!("a stage returned a GPU image but there is no GPU"))?;
    let data = jupiter_plugin_api::gpu::helpers::download(gpu, buf, image.len())
        .map_err(|e| anyhow::anyhow!("downloading the image from the GPU failed: {e}"))?;
    gpu.destroy_buffer(buf);
    Ok(Image::from_vec(
        image.width,
        image.height,
        image.channels,
        data,
    ))
}

/// Calls a stage; when it reports a GPU failure, warns once and re-runs it on
/// the CPU (with the GPU hidden from it), like darktable's pixel pipe.
fn with_cpu_fallback<T>(
    backend: &HostBackend,
    stage: &LoadedStage,
    mut call: impl FnMut() -> RResult<T, StageError>,
) -> Result<T> {
    match call().into_result() {
        Err(e) if e.kind == ErrorKind::GpuFailed && backend.gpu_service().is_some() => {
            backend.message(&format!(
                "warning: stage '{}': GPU path failed ({}); re-running it on the CPU",
                stage.manifest.name, e.message
            ));
            backend.enable_gpu(false);
            let r = call().into_result();
            backend.enable_gpu(true);
            r.map_err(|e| stage_err(stage, e))
        }
        r => r.map_err(|e| stage_err(stage, e)),
    }
}

/// Per-stage timing for the report.
#[derive(Debug, Clone, Serialize)]
pub struct StageTiming {
    pub stage: String,
    pub plugin: String,
    pub version: String,
    pub seconds: f64,
}

/// The JSON report (`--report`).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub input: String,
    pub output: String,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    pub frames: usize,
    pub warnings: Vec<String>,
    pub pipeline: PipelineSpec,
    pub scores: Vec<f32>,
    /// Selected frame indices, best first.
    pub selected: Vec<usize>,
    /// `(dx, dy)` of each selected frame, in `selected` order.
    pub shifts: Vec<[f32; 2]>,
    pub timings: Vec<StageTiming>,
    pub total_seconds: f64,
    /// Peak resident memory of this process so far, MB (`VmHWM` of
    /// /proc/self/status; 0 where that is not available).
    pub peak_rss_mb: f64,
    /// The device the stages were offered.
    pub device: String,
}

/// What a run produced.
pub struct RunOutput {
    pub report: Report,
    /// The stack before post-processing (when `keep_stacked` was asked).
    pub stacked: Option<Image>,
    /// The final image (written to `report.output`).
    pub image: Image,
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
}

/// Peak resident set of this process in MB, from `VmHWM` (Linux); 0 elsewhere.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn params_json(stage: &LoadedStage, choice: &StageChoice) -> Result<String> {
    validate_params(&stage.manifest, &choice.params)?;
    Ok(serde_json::to_string(&choice.params)?)
}

/// Resolves every stage of the spec and validates its parameters (before any work).
fn resolve<'r>(
    reg: &'r Registry,
    spec: &PipelineSpec,
    backend: &HostBackend,
) -> Result<Vec<(&'r LoadedStage, String, StageKind)>> {
    let mut out = Vec::new();
    for (choice, kind) in [
        (&spec.quality, StageKind::Quality),
        (&spec.align, StageKind::Align),
        (&spec.stack, StageKind::Stack),
    ] {
        let s = reg.get(&choice.plugin, kind)?;
        out.push((s, params_json(s, choice)?, kind));
    }
    for choice in &spec.post {
        if spec.default_post && !reg.stages.contains_key(&choice.plugin) {
            backend.message(&format!(
                "warning: default post-processing stage '{}' is not installed; skipped",
                choice.plugin
            ));
            continue;
        }
        let kind = reg
            .stages
            .get(&choice.plugin)
            .map(|s| s.manifest.kind)
            .unwrap_or(StageKind::Filter);
        let kind = if crate::registry::is_image_stage(kind) {
            kind
        } else {
            StageKind::Filter
        };
        let s = reg.get(&choice.plugin, kind)?;
        out.push((s, params_json(s, choice)?, kind));
    }
    Ok(out)
}

/// Runs the whole pipeline on one capture and writes the result.
pub fn run(reg: &Registry, backend: &HostBackend, req: &RunRequest) -> Result<RunOutput> {
    let t0 = Instant::now();
    let stages = resolve(reg, req.spec, backend).map_err(|e| match &req.spec.source {
        Some(file) => e.context(format!("pipeline {}", file.display())),
        None => e,
    })?;
    if req.output.exists() && !req.force {
        bail!(
            "{}: already exists (use --force to replace it)",
            req.output.display()
        );
    }
    // On a GPU run the capture is uploaded once, at the first stage that
    // asks for it (or while the previous capture of a batch was aligned),
    // into the backend's store (whose buffers the previous capture leaves
    // allocated), and given up after stacking.
    let on_device = backend.capture_store();
    let ser = match on_device.as_ref().and_then(|d| d.prefetched(req.input)) {
        Some(s) => s,
        None => Arc::new(SerFile::open(req.input, req.open)?),
    };
    if let Some(d) = &on_device {
        d.start(&ser);
    }
    crate::timeline::mark("capture opened");
    for w in &ser.warnings {
        backend.message(&format!("warning: {}: {w}", req.input.display()));
    }
    let n = ser.frame_count;
    let (w, h, c) = (
        ser.width() as u32,
        ser.height() as u32,
        ser.channels() as u32,
    );
    let mut timings = Vec::new();
    let mut time = |s: &LoadedStage, label: &str, t: Instant| {
        timings.push(StageTiming {
            stage: label.into(),
            plugin: s.manifest.name.to_string(),
            version: s.manifest.version.to_string(),
            seconds: t.elapsed().as_secs_f64(),
        })
    };
    let cancelled = || -> Result<()> {
        if backend.is_cancelled() {
            Err(RunError::Cancelled.into())
        } else {
            Ok(())
        }
    };

    // Quality.
    let (qs, qp, _) = &stages[0];
    let all = SerFrames {
        ser: ser.clone(),
        indices: (0..n).collect(),
        device: on_device.clone(),
    };
    let t = Instant::now();
    backend.begin_stage("quality");
    let scores = with_cpu_fallback(backend, qs, || {
        (qs.module.quality())(
            RStr::from(qs.manifest.name.as_str()),
            backend.as_ref(),
            FrameSource_TO::from_ptr(&all, TD_Opaque),
            RStr::from(qp.as_str()),
        )
    });
    backend.end_stage();
    let scores: Vec<f32> = scores?.into_vec();
    cancelled()?;
    if scores.len() != n {
        return Err(bad_output(
            qs,
            format!("{} scores for {n} frames", scores.len()),
        ));
    }
    if let Some(i) = scores.iter().position(|s| !s.is_finite()) {
        return Err(bad_output(
            qs,
            format!("score of frame {i} is {}", scores[i]),
        ));
    }
    time(qs, "quality", t);
    // The next capture of a batch goes up while this one is aligned and
    // stacked (a file that does not open is reported by its own run).
    if let (Some(d), Some(next)) = (&on_device, req.next) {
        if let Ok(s) = SerFile::open(next, req.open) {
            d.prefetch(Arc::new(s));
        }
    }

    // Selection: best first.
    let keep = req.spec.select.count_of(n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order.truncate(keep);
    let selected = SerFrames {
        ser: ser.clone(),
        indices: order.clone(),
        device: on_device.clone(),
    };
    let sel_scores: RVec<f32> = order.iter().map(|&i| scores[i]).collect();
    let source = || -> FrameSourceRef<'_> { FrameSource_TO::from_ptr(&selected, TD_Opaque) };

    // Align.
    let (as_, ap, _) = &stages[1];
    let t = Instant::now();
    backend.begin_stage("align");
    let align_req = AlignRequest {
        scores: sel_scores.clone(),
    };
    let alignment: Result<Alignment> = with_cpu_fallback(backend, as_, || {
        (as_.module.align())(
            RStr::from(as_.manifest.name.as_str()),
            backend.as_ref(),
            source(),
            &align_req,
            RStr::from(ap.as_str()),
        )
    });
    backend.end_stage();
    let alignment = alignment?;
    cancelled()?;
    if alignment.warps.len() != keep {
        return Err(bad_output(
            as_,
            format!("{} warps for {keep} frames", alignment.warps.len()),
        ));
    }
    if let Some(i) = alignment
        .warps
        .iter()
        .position(|w| !w.dx.is_finite() || !w.dy.is_finite())
    {
        return Err(bad_output(as_, format!("shift of frame {i} is not finite")));
    }
    time(as_, "align", t);

    // Stack.
    let (ss, sp, _) = &stages[2];
    let t = Instant::now();
    backend.begin_stage("stack");
    let stack_req = StackRequest {
        alignment: alignment.clone(),
        scores: sel_scores,
    };
    let stacked = with_cpu_fallback(backend, ss, || {
        (ss.module.stack())(
            RStr::from(ss.manifest.name.as_str()),
            backend.as_ref(),
            source(),
            &stack_req,
            RStr::from(sp.as_str()),
        )
    });
    backend.end_stage();
    if let Some(d) = &on_device {
        d.finish();
    }
    let stacked = stacked?;
    cancelled()?;
    check_image(ss, &stacked, w, h, Some(c))?;
    let stacked = if stages.len() == 3 {
        download(backend, stacked)?
    } else {
        stacked
    };
    if let Some(i) = stacked.data.iter().position(|v| !v.is_finite()) {
        return Err(bad_output(
            ss,
            format!("non-finite value ({}) at sample {i}", stacked.data[i]),
        ));
    }
    time(ss, "stack", t);

    // The plain stack is kept (in host memory) only when asked for.
    let mut image = stacked;
    let stacked = if req.keep_stacked {
        image = download(backend, image)?;
        Some(image.clone())
    } else {
        None
    };

    // Post-processing, in order. A GPU-resident image stays on the device
    // between GPU-capable stages and is downloaded before a CPU-only one.
    for (ps, pp, _) in &stages[3..] {
        let t = Instant::now();
        if !ps.manifest.gpu || backend.gpu_service().is_none() {
            image = download(backend, image)?;
        }
        backend.begin_stage(ps.manifest.name.as_str());
        let input = image;
        let mut retry_input: Option<Image> = None;
        let out = with_cpu_fallback(backend, ps, || {
            // A retry after a GPU failure gets the input in host memory.
            let arg = match &retry_input {
                None => {
                    retry_input = Some(input.clone());
                    input.clone()
                }
                Some(i) => download(backend, i.clone()).unwrap_or_else(|_| i.clone()),
            };
            (ps.module.process())(
                RStr::from(ps.manifest.name.as_str()),
                backend.as_ref(),
                arg,
                RStr::from(pp.as_str()),
            )
        });
        backend.end_stage();
        let out = out?;
        // The input's device buffer belongs to the host: free it once replaced.
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
        image = out;
        cancelled()?;
        check_image(ps, &image, w, h, None)?;
        time(ps, "post", t);
    }

    cancelled()?;
    let image = download(backend, image)?;
    if let Some(i) = image.data.iter().position(|v| !v.is_finite()) {
        bail!(
            "the final image has a non-finite value ({}) at sample {i}",
            image.data[i]
        );
    }
    crate::timeline::mark("image downloaded");
    write_image(&image, &req.output, req.png8, req.force)?;
    crate::timeline::mark("output written");
    let report = Report {
        input: req.input.display().to_string(),
        output: req.output.display().to_string(),
        width: w as usize,
        height: h as usize,
        channels: c as usize,
        frames: n,
        warnings: ser.warnings.clone(),
        pipeline: req.spec.clone(),
        scores,
        selected: order,
        shifts: alignment.warps.iter().map(|w| [w.dx, w.dy]).collect(),
        timings,
        total_seconds: t0.elapsed().as_secs_f64(),
        peak_rss_mb: peak_rss_mb(),
        device: req.device.clone(),
    };
    Ok(RunOutput {
        report,
        stacked,
        image,
    })
}
