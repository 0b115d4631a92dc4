//! The run's JSON report (`--report`).

use serde::Serialize;

use crate::config::PipelineSpec;
use crate::io::calibrate::CalibrationSummary;

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
    /// Multi-point runs: the warp field's nodes with what was measured at
    /// each over the kept frames.
    pub alignment_points: Option<ApSummary>,
    /// The calibration applied to the frames: masters, formula, hot pixels.
    pub calibration: Option<CalibrationSummary>,
    /// The derotation's fit and what it applied (`--derotate`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derotation: Option<crate::derotate::DerotationSummary>,
}

/// The warp fields of a multi-point run, summarised per node (the fields of
/// all frames share one grid): the RMS over the kept frames of the local
/// shift (on top of the global one), and the fraction of frames whose
/// weight there is above zero (the per-point selection).
#[derive(Debug, Clone, Serialize)]
pub struct ApSummary {
    pub cols: usize,
    pub rows: usize,
    pub x0: f32,
    pub y0: f32,
    pub step_x: f32,
    pub step_y: f32,
    /// Per node, row by row (px).
    pub rms: Vec<f32>,
    /// Per node, row by row (0..=1).
    pub kept: Vec<f32>,
}

impl ApSummary {
    /// The summary of the warps' fields; `None` when a warp has no field or
    /// the grids differ.
    pub fn of(warps: &[jupiter_plugin_api::FrameWarp]) -> Option<ApSummary> {
        use rayon::prelude::*;
        let first = warps.first()?.dense_field()?;
        let (cols, rows) = (first.cols as usize, first.rows as usize);
        // Sums over chunks of frames on the pool (refining thousands of
        // fields was a serial pause between the aligner and the stacker).
        let zero = || Some((vec![0.0f64; cols * rows], vec![0.0f32; cols * rows]));
        let (sq, kept) = warps
            .par_chunks(64)
            .map(|chunk| {
                let (mut sq, mut kept) = zero()?;
                for w in chunk {
                    let f = w.dense_field()?;
                    if (f.cols as usize, f.rows as usize) != (cols, rows) {
                        return None;
                    }
                    for k in 0..cols * rows {
                        sq[k] += (f.dx[k] as f64).powi(2) + (f.dy[k] as f64).powi(2);
                        kept[k] += (f.weight[k] > 0.0) as u32 as f32;
                    }
                }
                Some((sq, kept))
            })
            .reduce(zero, |a, b| {
                let ((mut sa, mut ka), (sb, kb)) = (a?, b?);
                sa.iter_mut().zip(sb).for_each(|(x, y)| *x += y);
                ka.iter_mut().zip(kb).for_each(|(x, y)| *x += y);
                Some((sa, ka))
            })?;
        let n = warps.len() as f32;
        Some(ApSummary {
            cols,
            rows,
            x0: first.x0,
            y0: first.y0,
            step_x: first.step_x,
            step_y: first.step_y,
            rms: sq.iter().map(|s| (s / n as f64).sqrt() as f32).collect(),
            kept: kept.iter().map(|k| k / n).collect(),
        })
    }
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
