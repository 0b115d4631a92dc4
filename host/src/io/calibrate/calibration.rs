//! [`Calibration`] (the masters of a run and what is derived from them) and
//! [`Applied`] (one capture's calibration, run on every rows it decodes).

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use super::{
    flat_gain, hot_in_dark, hot_in_frames, repair, CalibrationError, CalibrationSpec, Layout,
    Master,
};
use crate::io::capture::{CaptureFile, OpenOptions};

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
    /// With `capture` (the first of a batch, opened), each master is
    /// checked against it before its frames are combined.
    pub fn prepare(
        spec: &CalibrationSpec,
        open: OpenOptions,
        capture: Option<&CaptureFile>,
    ) -> Result<Option<Arc<Calibration>>, CalibrationError> {
        if spec.is_empty() {
            return Ok(None);
        }
        let load = |role: &'static str, p: &Option<PathBuf>| {
            p.as_deref()
                .map(|p| {
                    Master::load_checked(p, open, spec.combine, |m| match capture {
                        Some(c) => check_against(role, m, c),
                        None => Ok(()),
                    })
                })
                .transpose()
        };
        let (dark, flat, bias, flat_dark) = (
            load("dark", &spec.dark)?,
            load("flat", &spec.flat)?,
            load("bias", &spec.bias)?,
            load("flat-dark", &spec.flat_dark)?,
        );
        check_agree(&[
            ("dark", &dark),
            ("flat", &flat),
            ("bias", &bias),
            ("flat-dark", &flat_dark),
        ])?;
        let offset = dark.as_ref().or(bias.as_ref()).map(|m| m.data.clone());
        let (gain, dead) = match &flat {
            Some(f) => {
                let (g, d) = gain_of(f, flat_dark.as_ref().or(bias.as_ref()))?;
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
            check_against(role, m, file)?;
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

/// Refuses a master that cannot calibrate `file`'s frames, naming both.
fn check_against(
    role: &'static str,
    m: &Master,
    file: &CaptureFile,
) -> Result<(), CalibrationError> {
    let layout = Layout::of(file);
    match mismatch(
        m,
        &layout,
        Some(file.bit_depth()),
        Some(file.sample_scale()),
    ) {
        Some(reason) => Err(CalibrationError::Mismatch {
            role,
            master: m.path.clone(),
            capture: file.path().to_path_buf(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Refuses masters that disagree with one another, naming both.
fn check_agree(masters: &[(&'static str, &Option<Master>)]) -> Result<(), CalibrationError> {
    let present: Vec<(&'static str, &Master)> = masters
        .iter()
        .filter_map(|(r, m)| m.as_ref().map(|m| (*r, m)))
        .collect();
    let Some(&(first_role, first)) = present.first() else {
        return Ok(());
    };
    for &(role, m) in &present[1..] {
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
    Ok(())
}

/// The flat's gain and dead samples, `dark` (the flat-dark or bias) taken off.
fn gain_of(
    flat: &Master,
    dark: Option<&Master>,
) -> Result<(Vec<f32>, Vec<usize>), CalibrationError> {
    flat_gain(&flat.data, dark.map(|m| m.data.as_slice()), &flat.layout).map_err(|reason| {
        CalibrationError::Invalid {
            role: "flat",
            path: flat.path.clone(),
            reason,
        }
    })
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
    /// Rows the hot-pixel repair reads beyond the rows it repairs (2 in a
    /// mosaic: the same-colour neighbours; 1 otherwise). A calibrated read
    /// pads by this plus the demosaic's margin.
    pub fn repair_rows(&self) -> usize {
        if self.layout.bayer.is_some() {
            2
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

    /// The calibration as the decode kernel reads it (`decode.wgsl`,
    /// binding 2): the offset (zeros without one), the gain (ones without a
    /// flat) and the defect mask (1 at a repaired sample), each one value
    /// per raw sample in decoded order, one after the other. Uploaded once
    /// per capture, so that the device keeps the raw upload.
    pub fn device_tables(&self) -> Vec<f32> {
        let n = self.layout.samples();
        let cal = &self.calibration;
        let mut t = Vec::with_capacity(3 * n);
        t.extend(cal.offset.as_deref().map_or(vec![0.0; n], <[f32]>::to_vec));
        t.extend(cal.gain.as_deref().map_or(vec![1.0; n], <[f32]>::to_vec));
        t.extend(self.mask.iter().map(|&m| f32::from(u8::from(m))));
        t
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
