//! Calibration of the raw frames: darks, flats, bias and hot pixels,
//! applied to every frame's raw samples before the demosaic:
//!
//! ```text
//! calibrated = (frame − dark) / normalised(flat − flat-dark)
//! ```
//!
//! (`bias` stands in for the flat-dark when there is none, and for the
//! dark when there is none). Each colour of a Bayer mosaic is normalised to
//! its own mean in the flat (`flat.rs`), so the flat light's colour does not
//! tint the image. Hot pixels come from the master dark, or without one
//! from the capture (`defects.rs`), and are repaired from their same-colour
//! neighbours, as are the pixels the flat says are dead.
//!
//! Each master is a capture in any format jupiter reads, combined pixel by
//! pixel (`combine.rs`: median, or sigma-clipped mean), or an image that is
//! already a master (`master.rs`; `jupiter-host master` writes one). A
//! master of another size, colour layout, Bayer pattern or sample depth
//! than the capture is an error naming both files, raised when the capture
//! is opened, before any frame is scored.
//!
//! [`Calibration`] holds the masters of a run (built once for a batch);
//! [`Calibration::attach`] checks them against one capture and returns the
//! [`Applied`] calibration that [`CaptureFile`] runs on every rows it decodes.

mod combine;
mod defects;
mod flat;
mod master;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use combine::{median, sigma_clipped_mean, Combine, KAPPA};
pub use defects::{hot_in_dark, hot_in_frames, outliers, repair, DARK_KAPPA, FRAME_KAPPA};
pub use flat::{class_means, flat_gain, MIN_FLAT};
pub use master::Master;

use super::capture::{CaptureError, CaptureFile, OpenOptions};
use super::debayer::BayerPattern;

/// Errors of calibration; a mismatch names the master and the capture.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("the {role} {} does not match the capture {}: {reason}", master.display(), capture.display())]
    Mismatch {
        role: &'static str,
        master: PathBuf,
        capture: PathBuf,
        reason: String,
    },
    #[error("the {role} {} does not match the {other_role} {}: {reason}", master.display(), other.display())]
    Masters {
        role: &'static str,
        master: PathBuf,
        other_role: &'static str,
        other: PathBuf,
        reason: String,
    },
    #[error("the {role} {}: {reason}", path.display())]
    Invalid {
        role: &'static str,
        path: PathBuf,
        reason: String,
    },
}

/// The calibration a pipeline asks for: `--dark`, `--flat`, `--bias`,
/// `--flat-dark`, `--combine`, `--hot-pixels`, or the pipeline file's
/// `[calibration]` table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibrationSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dark: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flat_dark: Option<PathBuf>,
    /// How master captures are combined.
    #[serde(default)]
    pub combine: Combine,
    /// Find and repair hot pixels: `None` = whenever a master is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_pixels: Option<bool>,
}

impl CalibrationSpec {
    /// Whether anything is asked for.
    pub fn is_empty(&self) -> bool {
        !self.has_masters() && self.hot_pixels != Some(true)
    }
    fn has_masters(&self) -> bool {
        self.dark.is_some()
            || self.flat.is_some()
            || self.bias.is_some()
            || self.flat_dark.is_some()
    }
    /// Whether hot pixels are looked for.
    pub fn hot_pixels_on(&self) -> bool {
        self.hot_pixels.unwrap_or(self.has_masters())
    }
    /// The masters' paths made relative to `dir` (a pipeline file's folder)
    /// where they are relative.
    pub fn resolve_paths(&mut self, dir: &Path) {
        for p in [
            &mut self.dark,
            &mut self.flat,
            &mut self.bias,
            &mut self.flat_dark,
        ]
        .into_iter()
        .flatten()
        {
            if p.is_relative() {
                *p = dir.join(&*p);
            }
        }
    }
}

/// The raw samples' geometry: what calibration works on and what a master
/// must share with the capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub width: usize,
    pub height: usize,
    /// Samples per pixel before the demosaic (1 for a mosaic).
    pub channels: usize,
    /// The mosaic's pattern, when the frames are a raw Bayer mosaic.
    pub bayer: Option<BayerPattern>,
}

impl Layout {
    /// The raw layout of a capture.
    pub fn of(file: &CaptureFile) -> Layout {
        Layout {
            width: file.width(),
            height: file.height(),
            channels: file.raw_channels(),
            bayer: file.bayer(),
        }
    }
    /// Samples in one frame.
    pub fn samples(&self) -> usize {
        self.width * self.height * self.channels
    }
    /// Colour classes a flat is normalised over: R, G, B of a mosaic, the
    /// channels otherwise.
    pub fn classes(&self) -> usize {
        if self.bayer.is_some() {
            3
        } else {
            self.channels
        }
    }
    /// The colour class of sample `i`.
    pub fn class_of(&self, i: usize) -> usize {
        let p = i / self.channels;
        match self.bayer {
            Some(b) => b.color_at(p % self.width, p / self.width),
            None => i % self.channels,
        }
    }
    /// A class's name for messages.
    pub fn class_name(&self, k: usize) -> &'static str {
        match (self.bayer.is_some() || self.channels == 3, k) {
            (false, _) => "the image",
            (true, 0) => "red",
            (true, 1) => "green",
            _ => "blue",
        }
    }
    /// How the layout reads in messages (`256×224 RGGB mosaic`).
    pub fn describe(&self) -> String {
        let what = match (self.bayer, self.channels) {
            (Some(p), _) => format!("{} mosaic", p.short_name()),
            (None, 1) => "mono".into(),
            (None, c) => format!("{c}-channel"),
        };
        format!("{}×{} {what}", self.width, self.height)
    }
    /// Calls `f` with each same-colour neighbour of sample `i` whose row
    /// lies in `rows`: the 8 around it, or in a mosaic the same-colour
    /// pixels of the 5×5 window (4 for red and blue, 8 for green).
    pub fn neighbours(&self, i: usize, rows: Range<usize>, mut f: impl FnMut(usize)) {
        let c = self.channels;
        let (p, k) = (i / c, i % c);
        let (x, y) = ((p % self.width) as isize, (p / self.width) as isize);
        let r: isize = if self.bayer.is_some() { 2 } else { 1 };
        let own = self.class_of(i);
        for dy in -r..=r {
            let ny = y + dy;
            if ny < rows.start as isize || ny >= rows.end as isize {
                continue;
            }
            for dx in -r..=r {
                let nx = x + dx;
                if (dx, dy) == (0, 0) || nx < 0 || nx >= self.width as isize {
                    continue;
                }
                let n = (ny as usize * self.width + nx as usize) * c + k;
                if self.class_of(n) == own {
                    f(n);
                }
            }
        }
    }
}

/// The masters of a run, built once for all its captures.
pub struct Calibration {
    pub spec: CalibrationSpec,
    dark: Option<Master>,
    flat: Option<Master>,
    bias: Option<Master>,
    flat_dark: Option<Master>,
    /// Subtracted from every sample: the dark, else the bias.
    offset: Option<Vec<f32>>,
    /// Multiplied in after: `1 / normalised flat`.
    gain: Option<Vec<f32>>,
    /// Samples the flat is too dark at (repaired).
    dead: Vec<usize>,
    /// Hot samples of the dark (when hot pixels are on and a dark is given).
    hot: Option<Vec<usize>>,
}

impl Calibration {
    /// Builds the masters `spec` names (opened with `open`, as the capture
    /// will be); `None` when nothing is asked for.
    pub fn prepare(
        spec: &CalibrationSpec,
        open: OpenOptions,
    ) -> Result<Option<Arc<Calibration>>, CalibrationError> {
        if spec.is_empty() {
            return Ok(None);
        }
        let load = |p: &Option<PathBuf>| {
            p.as_deref()
                .map(|p| Master::load(p, open, spec.combine))
                .transpose()
        };
        let (dark, flat, bias, flat_dark) = (
            load(&spec.dark)?,
            load(&spec.flat)?,
            load(&spec.bias)?,
            load(&spec.flat_dark)?,
        );
        let named = [
            ("dark", &dark),
            ("flat", &flat),
            ("bias", &bias),
            ("flat-dark", &flat_dark),
        ];
        let present: Vec<(&'static str, &Master)> = named
            .iter()
            .filter_map(|(r, m)| m.as_ref().map(|m| (*r, m)))
            .collect();
        if let Some((first_role, first)) = present.first() {
            for (role, m) in &present[1..] {
                if let Some(reason) = mismatch(m, &first.layout, first.depth, first.scale) {
                    return Err(CalibrationError::Masters {
                        role,
                        master: m.path.clone(),
                        other_role: first_role,
                        other: first.path.clone(),
                        reason,
                    });
                }
            }
        }
        let offset = dark.as_ref().or(bias.as_ref()).map(|m| m.data.clone());
        let (gain, dead) = match &flat {
            Some(f) => {
                let fd = flat_dark
                    .as_ref()
                    .or(bias.as_ref())
                    .map(|m| m.data.as_slice());
                let (g, d) = flat_gain(&f.data, fd, &f.layout).map_err(|reason| {
                    CalibrationError::Invalid {
                        role: "flat",
                        path: f.path.clone(),
                        reason,
                    }
                })?;
                (Some(g), d)
            }
            None => (None, Vec::new()),
        };
        let hot = dark
            .as_ref()
            .filter(|_| spec.hot_pixels_on())
            .map(|d| hot_in_dark(&d.data, &d.layout));
        Ok(Some(Arc::new(Calibration {
            spec: spec.clone(),
            dark,
            flat,
            bias,
            flat_dark,
            offset,
            gain,
            dead,
            hot,
        })))
    }

    /// One line per master, for the run's messages.
    pub fn describe(&self) -> Vec<String> {
        self.masters()
            .map(|(role, m)| {
                format!(
                    "calibration: {role} {} ({}, {})",
                    m.path.display(),
                    m.describe(),
                    m.layout.describe()
                )
            })
            .collect()
    }

    /// The masters with their roles.
    fn masters(&self) -> impl Iterator<Item = (&'static str, &Master)> {
        [
            ("dark", &self.dark),
            ("flat", &self.flat),
            ("bias", &self.bias),
            ("flat-dark", &self.flat_dark),
        ]
        .into_iter()
        .filter_map(|(r, m)| m.as_ref().map(|m| (r, m)))
    }

    /// Checks every master against `file` and finds its hot pixels (from
    /// the dark, else from the capture's frames): the calibration that
    /// `file` then applies (see [`CaptureFile::with_calibration`]).
    pub fn attach(self: &Arc<Self>, file: &CaptureFile) -> Result<Applied, CalibrationError> {
        let layout = Layout::of(file);
        for (role, m) in self.masters() {
            if let Some(reason) = mismatch(
                m,
                &layout,
                Some(file.bit_depth()),
                Some(file.sample_scale()),
            ) {
                return Err(CalibrationError::Mismatch {
                    role,
                    master: m.path.clone(),
                    capture: file.path().to_path_buf(),
                    reason,
                });
            }
        }
        let (hot, hot_from) = match (&self.hot, self.spec.hot_pixels_on()) {
            (Some(h), _) => (h.clone(), "dark"),
            (None, true) => (hot_in_frames(file, &layout)?, "frames"),
            (None, false) => (Vec::new(), "off"),
        };
        let hot_count = hot.len();
        let mut defects = hot;
        defects.extend_from_slice(&self.dead);
        defects.sort_unstable();
        defects.dedup();
        let mut mask = vec![false; layout.samples()];
        defects.iter().for_each(|&d| mask[d] = true);
        Ok(Applied {
            calibration: self.clone(),
            layout,
            defects,
            mask,
            summary: self.summary(hot_count, hot_from),
        })
    }

    fn summary(&self, hot_pixels: usize, hot_from: &str) -> CalibrationSummary {
        let flat_dark = self
            .flat_dark
            .as_ref()
            .map(|_| "flat-dark")
            .or(self.bias.as_ref().map(|_| "bias"));
        let offset = self
            .dark
            .as_ref()
            .map(|_| "dark")
            .or(self.bias.as_ref().map(|_| "bias"));
        let num = match offset {
            Some(o) => format!("(frame − {o})"),
            None => "frame".into(),
        };
        let formula = match (&self.flat, flat_dark) {
            (Some(_), Some(fd)) => format!("{num} / normalised(flat − {fd})"),
            (Some(_), None) => format!("{num} / normalised(flat)"),
            (None, _) => num,
        };
        CalibrationSummary {
            masters: self
                .masters()
                .map(|(role, m)| MasterSummary {
                    role: role.into(),
                    path: m.path.display().to_string(),
                    built: m.describe(),
                    frames: m.frames,
                })
                .collect(),
            formula,
            hot_pixels,
            hot_pixels_from: hot_from.into(),
            dead_pixels: self.dead.len(),
        }
    }
}

/// Why `m` cannot calibrate frames of `layout` (with samples of `depth`
/// bits and full scale `scale`, where known); `None` when it can.
fn mismatch(m: &Master, layout: &Layout, depth: Option<u32>, scale: Option<f64>) -> Option<String> {
    let l = &m.layout;
    if (l.width, l.height) != (layout.width, layout.height) {
        return Some(format!(
            "the master is {}×{}, the capture {}×{}",
            l.width, l.height, layout.width, layout.height
        ));
    }
    if l.channels != layout.channels {
        return Some(format!(
            "the master is {}, the capture {}",
            l.describe(),
            layout.describe()
        ));
    }
    if let (Some(a), Some(b)) = (l.bayer, layout.bayer) {
        if a != b {
            return Some(format!(
                "the master's Bayer pattern is {}, the capture's {}",
                a.short_name(),
                b.short_name()
            ));
        }
    }
    if let (Some(a), Some(b)) = (m.depth, depth) {
        if a != b {
            return Some(format!(
                "the master has {a}-bit samples, the capture {b}-bit samples"
            ));
        }
    }
    if let (Some(a), Some(b)) = (m.scale, scale) {
        if (a - b).abs() > 0.5 {
            return Some(format!(
                "the master's samples reach {a}, the capture's {b} (another sample range)"
            ));
        }
    }
    None
}

/// The calibration of one capture: the run's masters and the capture's
/// defect map.
pub struct Applied {
    calibration: Arc<Calibration>,
    layout: Layout,
    /// Hot and dead samples, sorted.
    defects: Vec<usize>,
    mask: Vec<bool>,
    summary: CalibrationSummary,
}

impl Applied {
    /// Rows a calibrated read needs beyond the rows asked for: the repair's
    /// reach (2 in a mosaic, 1 otherwise) plus the debayer's 1.
    pub fn margin_rows(&self) -> usize {
        if self.layout.bayer.is_some() {
            3
        } else {
            1
        }
    }

    /// Calibrates rows `y0 .. y0 + rows` of raw samples in place: offset,
    /// flat, then the repair of the defects among them.
    pub fn apply(&self, raw: &mut [f32], y0: usize, rows: usize) {
        let row = self.layout.width * self.layout.channels;
        let span = y0 * row..(y0 + rows) * row;
        let cal = &self.calibration;
        if let Some(o) = &cal.offset {
            raw.iter_mut()
                .zip(&o[span.clone()])
                .for_each(|(v, o)| *v -= o);
        }
        if let Some(g) = &cal.gain {
            raw.iter_mut().zip(&g[span]).for_each(|(v, g)| *v *= g);
        }
        repair(raw, y0, rows, &self.layout, &self.defects, &self.mask);
    }

    /// The line a run shows: the formula and the repaired pixels.
    pub fn describe(&self) -> String {
        let s = &self.summary;
        format!(
            "calibration: {}; {} hot pixels (from the {}), {} dead pixels repaired",
            s.formula, s.hot_pixels, s.hot_pixels_from, s.dead_pixels
        )
    }

    /// What the report records.
    pub fn summary(&self) -> &CalibrationSummary {
        &self.summary
    }
}

/// One master, as the report records it.
#[derive(Debug, Clone, Serialize)]
pub struct MasterSummary {
    /// dark, flat, bias or flat-dark.
    pub role: String,
    pub path: String,
    /// `median of 32 frames`, `master image`.
    pub built: String,
    pub frames: usize,
}

/// The calibration of a run, as the report records it.
#[derive(Debug, Clone, Serialize)]
pub struct CalibrationSummary {
    pub masters: Vec<MasterSummary>,
    /// What was computed, e.g. `(frame − dark) / normalised(flat − flat-dark)`.
    pub formula: String,
    /// Hot pixels repaired.
    pub hot_pixels: usize,
    /// Where they were found: `dark`, `frames` or `off`.
    pub hot_pixels_from: String,
    /// Pixels the flat is too dark at, repaired too.
    pub dead_pixels: usize,
}
