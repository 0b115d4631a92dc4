//! The facts a run's output records ([`OutputMeta`]): taken from the
//! capture (its per-frame times, else its start time and frame rate; the
//! SER observer fields) and from the run (the frames stacked, the stages
//! and their parameters).

use crate::io::capture::CaptureFile;
use crate::io::write::{mid_capture, mid_from_start, OutputMeta};

use super::{Pipeline, ResolvedStage};

/// What the output of stacking `selected` frames of `file` through
/// `pipeline` records.
pub fn output_meta(file: &CaptureFile, selected: &[usize], pipeline: &Pipeline) -> OutputMeta {
    let (observer, telescope, instrument) = match file.reader().as_ser() {
        Some(ser) => (
            ser.header.observer.trim().to_string(),
            ser.header.telescope.trim().to_string(),
            ser.header.instrument.trim().to_string(),
        ),
        None => Default::default(),
    };
    OutputMeta {
        date_obs: date_obs(file, selected),
        frames: selected.len(),
        observer,
        telescope,
        instrument,
        source: file
            .path()
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        history: history(pipeline, selected.len(), file.frame_count()),
        fits_cards: Vec::new(),
    }
}

/// Mid-capture of the stacked frames: from per-frame times when the file
/// has them, else estimated from its start time (and frame rate).
fn date_obs(file: &CaptureFile, selected: &[usize]) -> Option<i64> {
    let from_times = file.timestamps().and_then(|ts| mid_capture(ts, selected));
    from_times.or_else(|| {
        let r = file.reader();
        r.start_time()
            .map(|start| mid_from_start(start, r.frame_rate(), selected))
    })
}

/// The pipeline, one stage a line: `align: align-phase {"window":64}`.
fn history(p: &Pipeline, kept: usize, total: usize) -> Vec<String> {
    let line = |role: &str, s: &ResolvedStage| format!("{role}: {} {}", s.name(), s.params);
    let mut out = vec![
        line("quality", &p.quality),
        format!("select: {} ({kept} of {total} frames)", p.select.to_text()),
        line("align", &p.align),
        line("stack", &p.stack),
    ];
    out.extend(
        p.post
            .iter()
            .enumerate()
            .map(|(k, s)| line(&format!("post {}", k + 1), s)),
    );
    out
}
