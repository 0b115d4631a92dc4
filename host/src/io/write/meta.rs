//! What an output image records about how it was made: when the stacked
//! frames were taken, how many there were, who and what took them, and the
//! pipeline that made it. Each writer puts the same facts where its format's
//! readers look for them (FITS cards, TIFF tags, PNG text chunks), so an
//! archive or a measuring tool (WinJUPOS needs the time) does not have to
//! guess them from the file name.

use crate::io::ser::iso8601;

/// 100-ns ticks per second (the unit of SER times, used for every format).
const TICKS_PER_SECOND: f64 = 1e7;

/// The facts an output records; built by the pipeline from the capture and
/// the selection ([`crate::pipeline`]), written by [`super::write_image`].
#[derive(Debug, Clone, PartialEq)]
pub struct OutputMeta {
    /// UTC time at mid-capture of the stacked frames (100-ns ticks since
    /// 0001-01-01, as SER stores times); `None` when the capture has no date.
    pub date_obs: Option<i64>,
    /// Frames stacked into the image (`NCOMBINE`); 0 when not a stack.
    pub frames: usize,
    /// The capture's observer, telescope and camera (SER header fields);
    /// empty when unknown.
    pub observer: String,
    pub telescope: String,
    pub instrument: String,
    /// The capture read, for the description.
    pub source: String,
    /// The pipeline, one stage a line (`quality: quality {}`): FITS
    /// `HISTORY`, and the end of the TIFF/PNG description.
    pub history: Vec<String>,
    /// Further FITS header cards (what a calibration master records of the
    /// capture it was built from); ignored for TIFF and PNG.
    pub fits_cards: Vec<FitsCard>,
}

/// A FITS header card beyond the ones every output gets.
#[derive(Debug, Clone, PartialEq)]
pub enum FitsCard {
    Text(&'static str, String),
    Int(&'static str, i64),
    Float(&'static str, f64),
}

impl Default for OutputMeta {
    /// An image with nothing known but the program that wrote it.
    fn default() -> OutputMeta {
        OutputMeta {
            date_obs: None,
            frames: 0,
            observer: String::new(),
            telescope: String::new(),
            instrument: String::new(),
            source: String::new(),
            history: Vec::new(),
            fits_cards: Vec::new(),
        }
    }
}

impl OutputMeta {
    /// `jupiter X.Y.Z`: FITS `CREATOR`, TIFF `Software`, PNG `Software`.
    pub fn software() -> String {
        format!("jupiter {}", env!("CARGO_PKG_VERSION"))
    }

    /// `DATE-OBS` as FITS wants it: ISO 8601 UTC without the `Z`.
    pub fn fits_date(&self) -> Option<String> {
        let iso = iso8601(self.date_obs?)?;
        Some(iso.trim_end_matches('Z').to_string())
    }

    /// The TIFF `DateTime` form, `YYYY:MM:DD HH:MM:SS` (UTC).
    pub fn tiff_date(&self) -> Option<String> {
        let iso = iso8601(self.date_obs?)?;
        // 2022-08-29T10:13:20.000Z → 2022:08:29 10:13:20
        Some(format!("{} {}", iso[..10].replace('-', ":"), &iso[11..19]))
    }

    /// ISO 8601 UTC with milliseconds and `Z` (PNG `Creation Time`).
    pub fn iso_date(&self) -> Option<String> {
        iso8601(self.date_obs?)
    }

    /// The summary for TIFF `ImageDescription` and PNG `Description`: the
    /// stack, the capture's date and observer fields, then the pipeline.
    pub fn description(&self) -> String {
        let mut lines = Vec::new();
        let mut head = if self.frames > 0 {
            format!("Stack of {} frames", self.frames)
        } else {
            "Image".to_string()
        };
        if !self.source.is_empty() {
            head.push_str(&format!(" of {}", self.source));
        }
        if let Some(d) = self.iso_date() {
            head.push_str(&format!(", mid-capture {d}"));
        }
        lines.push(head);
        for (name, v) in [
            ("Observer", &self.observer),
            ("Telescope", &self.telescope),
            ("Instrument", &self.instrument),
        ] {
            if !v.is_empty() {
                lines.push(format!("{name}: {v}"));
            }
        }
        lines.extend(self.history.iter().cloned());
        lines.push(format!("Software: {}", Self::software()));
        lines.join("\n")
    }
}

/// The mid-capture time of the frames `selected` (indices into `times`,
/// per-frame UTC ticks): half-way between the earliest and the latest of
/// them. Zero times (a trailer not filled in) and indices past the end are
/// ignored; `None` when no selected frame has a time.
pub fn mid_capture(times: &[i64], selected: &[usize]) -> Option<i64> {
    let known = selected
        .iter()
        .filter_map(|&i| times.get(i).copied())
        .filter(|&t| t > 0);
    let (lo, hi) = known.fold(None, |acc: Option<(i64, i64)>, t| match acc {
        None => Some((t, t)),
        Some((lo, hi)) => Some((lo.min(t), hi.max(t))),
    })?;
    Some(lo + (hi - lo) / 2)
}

/// The mid-capture time estimated from the capture's start and frame rate
/// (frame `i` taken at `start + i / fps`), for captures without per-frame
/// times; the start itself without a usable rate.
pub fn mid_from_start(start: i64, fps: Option<f64>, selected: &[usize]) -> i64 {
    let (Some(&lo), Some(&hi)) = (selected.iter().min(), selected.iter().max()) else {
        return start;
    };
    match fps.filter(|f| f.is_finite() && *f > 0.0) {
        Some(fps) => start + ((lo + hi) as f64 / 2.0 / fps * TICKS_PER_SECOND).round() as i64,
        None => start,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2022-08-29T10:13:20Z in SER ticks.
    const T0: i64 = 637_973_648_000_000_000;

    #[test]
    fn mid_capture_is_half_way_between_the_first_and_last_stacked_frame() {
        // 10 frames, 0.1 s apart.
        let times: Vec<i64> = (0..10).map(|i| T0 + i * 1_000_000).collect();
        // Frames 2, 7 and 4 stacked: 0.2 s .. 0.7 s → 0.45 s.
        assert_eq!(mid_capture(&times, &[2, 7, 4]), Some(T0 + 4_500_000));
        assert_eq!(mid_capture(&times, &[3]), Some(T0 + 3_000_000));
        // Zero times and indices past the end are ignored.
        let mut holes = times.clone();
        holes[7] = 0;
        assert_eq!(mid_capture(&holes, &[2, 7, 4, 99]), Some(T0 + 3_000_000));
        assert_eq!(mid_capture(&times, &[]), None);
        assert_eq!(mid_capture(&[0, 0], &[0, 1]), None);
    }

    #[test]
    fn mid_capture_from_the_start_and_the_frame_rate() {
        // Frames 10 and 30 at 20 fps: 0.5 s .. 1.5 s → 1 s after the start.
        assert_eq!(mid_from_start(T0, Some(20.0), &[30, 10]), T0 + 10_000_000);
        assert_eq!(mid_from_start(T0, None, &[30, 10]), T0);
        assert_eq!(mid_from_start(T0, Some(0.0), &[30, 10]), T0);
        assert_eq!(mid_from_start(T0, Some(20.0), &[]), T0);
    }

    #[test]
    fn dates_in_each_formats_form() {
        let m = OutputMeta {
            date_obs: Some(T0 + 4_500_000),
            ..Default::default()
        };
        assert_eq!(m.fits_date().unwrap(), "2022-08-29T10:13:20.450");
        assert_eq!(m.tiff_date().unwrap(), "2022:08:29 10:13:20");
        assert_eq!(m.iso_date().unwrap(), "2022-08-29T10:13:20.450Z");
        assert_eq!(OutputMeta::default().fits_date(), None);
    }

    #[test]
    fn the_description_names_the_stack_and_omits_empty_fields() {
        let m = OutputMeta {
            date_obs: Some(T0),
            frames: 120,
            observer: "A. Observer".into(),
            telescope: String::new(),
            instrument: "ASI462MC".into(),
            source: "jup_101320.ser".into(),
            history: vec!["stack: stack-mean {}".into()],
            fits_cards: Vec::new(),
        };
        let d = m.description();
        let lines: Vec<&str> = d.lines().collect();
        assert_eq!(
            lines[0],
            "Stack of 120 frames of jup_101320.ser, mid-capture 2022-08-29T10:13:20.000Z"
        );
        assert_eq!(lines[1], "Observer: A. Observer");
        assert_eq!(lines[2], "Instrument: ASI462MC");
        assert_eq!(lines[3], "stack: stack-mean {}");
        assert!(lines[4].starts_with("Software: jupiter "));
        assert!(!d.contains("Telescope"));
    }
}
