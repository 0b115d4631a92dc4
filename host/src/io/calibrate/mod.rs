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
//! [`Calibration`] (`calibration.rs`) holds the masters of a run (built
//! once for a batch); [`Calibration::attach`] checks them against one
//! capture and returns the [`Applied`] calibration that [`CaptureFile`]
//! runs on every rows it decodes. This file: the spec, the raw layout
//! (colour classes, same-colour neighbours) and the errors.

mod calibration;
mod combine;
mod defects;
mod flat;
mod master;
#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use calibration::{Applied, Calibration, CalibrationSummary, MasterSummary};
pub use combine::{median, sigma_clipped_mean, Combine, KAPPA};
pub use defects::{hot_in_dark, hot_in_frames, outliers, repair, DARK_KAPPA, FRAME_KAPPA};
pub use flat::{class_means, flat_gain, MIN_FLAT};
pub use master::Master;

use super::capture::{CaptureError, CaptureFile};
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
