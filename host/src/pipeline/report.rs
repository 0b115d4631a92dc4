//! The run's JSON report (`--report`).

use serde::Serialize;

use crate::config::PipelineSpec;

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
    /// The output image's size: the frames' size times `scale` (a
    /// drizzling stacker's), 1 otherwise.
    pub output_width: usize,
    pub output_height: usize,
    pub scale: f64,
    pub frames: usize,
    pub warnings: Vec<String>,
    /// What the stages said (info, warnings, errors; `stage: message`), in
    /// order: e.g. the aligner's chosen mode, the PSF width and noise the
    /// deconvolution measured.
    pub messages: Vec<String>,
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
