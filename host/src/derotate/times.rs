//! When each frame was taken: the SER timestamp trailer (UTC ticks), else
//! a frame rate (`--fps`, or the file's own) counted from the start.

use std::path::Path;

use anyhow::{bail, Result};

use crate::io::capture::CaptureFile;

const TICKS_PER_SECOND: f64 = 1e7;

/// The frames' times in seconds from the first frame, and the UTC ticks of
/// that first frame when the file records a date.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameTimes {
    pub seconds: Vec<f64>,
    pub start_ticks: Option<i64>,
    /// Where the times came from, for the log and the report.
    pub source: &'static str,
}

impl FrameTimes {
    /// The times of `file`'s frames: `fps` (given by the user) wins over the
    /// file's timestamps, which win over the file's frame rate. An error
    /// naming the file when none is known, so that a derotation that cannot
    /// run stops before any work.
    pub fn of(file: &CaptureFile, fps: Option<f64>) -> Result<FrameTimes> {
        let n = file.frame_count();
        let reader = file.reader();
        if let Some(fps) = fps {
            return by_rate(n, fps, reader.start_time(), "--fps", file.path());
        }
        if let Some(ts) = file.timestamps().filter(|ts| usable(ts, n)) {
            let t0 = ts[0];
            return Ok(FrameTimes {
                seconds: ts
                    .iter()
                    .map(|&t| (t - t0) as f64 / TICKS_PER_SECOND)
                    .collect(),
                start_ticks: Some(t0),
                source: "the frame timestamps",
            });
        }
        match reader.frame_rate() {
            Some(fps) => by_rate(n, fps, reader.start_time(), "the file's frame rate", file.path()),
            None => bail!(
                "{}: derotation needs the time of every frame, and this capture has neither frame timestamps nor a frame rate: give one with --fps",
                file.path().display()
            ),
        }
    }

    /// Half-way between the earliest and the latest of `frames` (seconds).
    pub fn middle_of(&self, frames: &[usize]) -> f64 {
        let (lo, hi) = frames.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &i| {
            (lo.min(self.seconds[i]), hi.max(self.seconds[i]))
        });
        0.5 * (lo + hi)
    }
}

/// Timestamps that describe the frames: one per frame, filled in, in order.
fn usable(ts: &[i64], n: usize) -> bool {
    ts.len() >= n && ts[0] > 0 && ts.windows(2).all(|w| w[1] >= w[0]) && ts[n - 1] > ts[0]
}

fn by_rate(
    n: usize,
    fps: f64,
    start: Option<i64>,
    source: &'static str,
    path: &Path,
) -> Result<FrameTimes> {
    if !(fps.is_finite() && fps > 0.0 && fps < 1e6) {
        bail!(
            "{}: frame rate {fps} from {source} is not usable for derotation",
            path.display()
        );
    }
    Ok(FrameTimes {
        seconds: (0..n).map(|i| i as f64 / fps).collect(),
        start_ticks: start,
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_usable_only_when_filled_in_and_ordered() {
        assert!(usable(&[10, 20, 30], 3));
        assert!(!usable(&[0, 0, 0], 3));
        assert!(!usable(&[10, 5, 30], 3));
        assert!(!usable(&[10, 10, 10], 3));
        assert!(!usable(&[10, 20], 3));
    }

    #[test]
    fn the_middle_is_half_way_between_the_extremes() {
        let t = FrameTimes {
            seconds: vec![0.0, 1.0, 2.0, 10.0],
            start_ticks: None,
            source: "test",
        };
        assert_eq!(t.middle_of(&[1, 3]), 5.5);
        assert_eq!(t.middle_of(&[2]), 2.0);
    }
}
