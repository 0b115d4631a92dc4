//! What the host checks of every stage: errors named after the stage and
//! its plugin file, results of the right size and finite, and the CPU
//! re-run of a stage whose GPU path failed.

use abi_stable::std_types::RResult;
use anyhow::Result;
use jupiter_plugin_api::{ErrorKind, Image, StageError};

use crate::backend::HostBackend;
use crate::registry::LoadedStage;

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

pub(super) fn stage_err(s: &LoadedStage, e: StageError) -> anyhow::Error {
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

pub(super) fn bad_output(s: &LoadedStage, problem: String) -> anyhow::Error {
    RunError::BadOutput {
        stage: s.manifest.name.to_string(),
        file: s.file.display().to_string(),
        problem,
    }
    .into()
}

/// A stacker's image: the frames' size, or larger on both axes by one
/// scale in (1, 4] (a drizzle, or another super-resolving stacker: `W =
/// round(w · k)`, `H = round(h · k)` for one `k`). Returns the scale.
pub(super) fn check_stacked(s: &LoadedStage, img: &Image, w: u32, h: u32, c: u32) -> Result<f64> {
    let (ow, oh) = (img.width as f64, img.height as f64);
    let (w64, h64) = (w as f64, h as f64);
    // The scales each side allows, as intervals; one k must lie in both.
    let lo = ((ow - 0.5) / w64).max((oh - 0.5) / h64);
    let hi = ((ow + 0.5) / w64).min((oh + 0.5) / h64);
    let scaled = img.width > w && img.height > h && lo < hi && lo <= 4.0;
    let (ew, eh) = if scaled {
        (img.width, img.height)
    } else {
        (w, h)
    };
    check_image(s, img, ew, eh, Some(c))?;
    Ok(if scaled { ow / w64 } else { 1.0 })
}

pub(super) fn check_image(
    s: &LoadedStage,
    img: &Image,
    w: u32,
    h: u32,
    c: Option<u32>,
) -> Result<()> {
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
    check_finite(s, &img.data)
}

/// Refuses NaN and infinity in an image a stage returned (host memory).
pub(super) fn check_finite(s: &LoadedStage, data: &[f32]) -> Result<()> {
    match data.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(bad_output(
            s,
            format!("non-finite value ({}) at sample {i}", data[i]),
        )),
        None => Ok(()),
    }
}

/// Brings a GPU-resident image into host memory (and frees its buffer).
pub fn download(backend: &HostBackend, image: Image) -> Result<Image> {
    if image.device.is_none() {
        return Ok(image);
    }
    let gpu = backend
        .gpu_service()
        .ok_or_else(|| anyhow::anyhow!("a stage returned a GPU image but there is no GPU"))?;
    jupiter_plugin_api::gpu::helpers::download_image(gpu, image)
        .map_err(|e| anyhow::anyhow!("downloading the image from the GPU failed: {e}"))
}

/// Calls a stage; when it reports a GPU failure, warns once and re-runs it on
/// the CPU (with the GPU hidden from it), like darktable's pixel pipe.
pub(super) fn with_cpu_fallback<T>(
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
