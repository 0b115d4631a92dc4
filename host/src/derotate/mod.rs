//! Derotation: Jupiter, Saturn and Mars turn visibly during a capture of a
//! few minutes. Every selected frame is brought to the surface as it was at
//! the reference time (mid-capture of the stacked frames), by a warp from a
//! model of the planet (`globe.rs`: an oblate sphere in orthographic
//! projection) fitted to the capture: the disc from the limb (`limb.rs`),
//! the pole's position angle from how the surface moved between the early
//! and the late frames (`pole.rs`), the frame times from the file
//! (`times.rs`).
//!
//! The aligner measures the derotated frames (`frames.rs`:
//! `DerotatedFrames`), so that its reference and its local shifts carry no
//! rotation; the stacker gets the aligner's warps composed with the
//! derotation (`compose`), so each frame is still resampled once, from the
//! capture, and a point contributes only from frames in which it faced the
//! camera. Works with any aligner and stacker, drizzle included.

mod frames;
mod globe;
mod limb;
mod pole;
mod stacks;
mod times;

use std::sync::Mutex;

use anyhow::{bail, Context, Result};
use jupiter_plugin_api::{Alignment, WarpField};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use frames::{DerotatedFrames, FrameTurn};
pub use globe::{angle_diff, Globe};
pub use limb::{fit_disc, Disc, Grey};
pub use stacks::{derotate_stacks, Combine, Stack, StackFit};
pub use times::FrameTimes;

use crate::backend::HostBackend;
use crate::frames::CaptureFrames;
use crate::io::capture::CaptureFile;

/// A planet whose rotation is built in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Body {
    /// Jupiter, System II (the belts and most features): 9 h 55 m 40.6 s.
    Jupiter,
    /// Jupiter, System I (the equatorial zone): 9 h 50 m 30.0 s.
    #[value(name = "jupiter1")]
    #[serde(rename = "jupiter1")]
    JupiterSystemI,
    /// Saturn, System III: 10 h 33 m 38 s.
    Saturn,
    /// Mars: 24 h 37 m 22.7 s.
    Mars,
}

impl Body {
    /// Sidereal rotation period (seconds).
    pub fn period_s(self) -> f64 {
        match self {
            Body::Jupiter => 35_740.6,
            Body::JupiterSystemI => 35_430.0,
            Body::Saturn => 38_018.0,
            Body::Mars => 88_642.7,
        }
    }
    /// Flattening `(a − b) / a` of the globe.
    pub fn flattening(self) -> f64 {
        match self {
            Body::Jupiter | Body::JupiterSystemI => 0.06487,
            Body::Saturn => 0.09796,
            Body::Mars => 0.00589,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Body::Jupiter => "jupiter",
            Body::JupiterSystemI => "jupiter1",
            Body::Saturn => "saturn",
            Body::Mars => "mars",
        }
    }
}

/// What the user asked of the derotation (`--derotate`, `--fps`, the
/// `[derotate]` table, `--set derotate.KEY=VALUE`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerotationSpec {
    /// The planet; with neither it nor `period_hours` there is no derotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<Body>,
    /// A rotation period instead of the body's (hours).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_hours: Option<f64>,
    /// The north pole's position angle (degrees from image up,
    /// counter-clockwise); fitted from the capture when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pole_angle: Option<f64>,
    /// The image is mirrored (the sense of rotation is reversed).
    #[serde(default)]
    pub mirrored: bool,
    /// Sub-observer latitude (degrees).
    #[serde(default)]
    pub latitude: f64,
    /// Frames per second, for captures without frame timestamps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
}

impl DerotationSpec {
    pub fn is_on(&self) -> bool {
        self.body.is_some() || self.period_hours.is_some()
    }

    /// Rotation period (seconds).
    pub fn period_s(&self) -> Option<f64> {
        self.period_hours
            .map(|h| h * 3600.0)
            .or(self.body.map(Body::period_s))
    }

    /// The body's flattening, when the body is named.
    pub fn flattening(&self) -> Option<f64> {
        self.body.map(Body::flattening)
    }

    /// Applies `--set derotate.KEY=VALUE`.
    pub fn set(&mut self, key: &str, value: &serde_json::Value) -> Result<()> {
        let mut map = match serde_json::to_value(&*self)? {
            serde_json::Value::Object(m) => m,
            _ => unreachable!("the spec is a struct"),
        };
        map.insert(key.to_string(), value.clone());
        *self = serde_json::from_value(serde_json::Value::Object(map)).with_context(|| {
            format!("--set derotate.{key}={value}: the keys are body, period_hours, pole_angle, mirrored, latitude, fps")
        })?;
        self.check()
    }

    /// Values that make sense.
    pub fn check(&self) -> Result<()> {
        if let Some(h) = self.period_hours {
            if !(h.is_finite() && h > 0.1 && h < 1e5) {
                bail!("derotate: period_hours = {h} is not a rotation period");
            }
        }
        if let Some(p) = self.pole_angle {
            if !p.is_finite() {
                bail!("derotate: pole_angle = {p} is not an angle");
            }
        }
        if !(self.latitude.abs() <= 90.0) {
            bail!("derotate: latitude = {} is outside ±90°", self.latitude);
        }
        if let Some(f) = self.fps {
            if !(f.is_finite() && f > 0.0) {
                bail!("derotate: fps = {f} is not a frame rate");
            }
        }
        Ok(())
    }

    /// The body's flattening, used to tell the disc's outline from a fit
    /// (its orientation then only comes from the rotation).
    fn describe(&self) -> String {
        match (self.body, self.period_hours) {
            (_, Some(h)) => format!("a period of {h} h"),
            (Some(b), None) => b.name().to_string(),
            (None, None) => "nothing".into(),
        }
    }
}

/// What the report records of a derotation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DerotationSummary {
    pub body: String,
    pub period_hours: f64,
    /// The reference time (ISO 8601 UTC), when the capture dates its frames.
    pub reference_time: Option<String>,
    /// Seconds from the first frame of the capture to the reference time.
    pub reference_seconds: f64,
    pub times_from: String,
    pub disc: DiscSummary,
    pub pole_angle_deg: f64,
    pub pole_angle_fitted: bool,
    /// How clearly the capture decided the pole (mismatch at the fitted
    /// angle over the opposite one; near 1: undecided).
    pub pole_fit_ratio: Option<f64>,
    pub mirrored: bool,
    pub latitude_deg: f64,
    /// Where features on the near side move (position angle, degrees).
    pub motion_angle_deg: f64,
    /// From the first to the last stacked frame.
    pub span_seconds: f64,
    /// The largest derotation applied at the disc's centre (px).
    pub centre_shift_px: f64,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DiscSummary {
    /// The disc's centre in the stack (px).
    pub cx: f64,
    pub cy: f64,
    pub equatorial_radius: f64,
    pub polar_radius: f64,
    /// RMS distance of the limb points from the fitted outline (px).
    pub limb_rms: f64,
}

/// A prepared derotation of one capture's selected frames.
pub struct Derotation {
    pub globe: Globe,
    /// One per selected frame, in selection order.
    pub turns: Vec<FrameTurn>,
    /// The derotation field of each selected frame, in its own pixels.
    pub fields: Vec<WarpField>,
    pub summary: DerotationSummary,
    /// The reference time (UTC ticks) when the capture dates its frames:
    /// the output's `DATE-OBS`, so that the image is dated when it shows.
    pub reference_ticks: Option<i64>,
    step: f64,
    size: (usize, usize),
}

/// Checks what can be checked before any work: the frame times, and a
/// disc on dark sky in the capture's middle frame. `None` without a
/// derotation.
pub fn check(spec: &DerotationSpec, file: &CaptureFile) -> Result<Option<FrameTimes>> {
    if !spec.is_on() {
        return Ok(None);
    }
    spec.check()?;
    let times = FrameTimes::of(file, spec.fps)?;
    let mid = file.frame_count() / 2;
    let frame = file.decode_frame(mid)?;
    let grey = luminance(&frame, file.channels());
    fit_disc(
        &Grey {
            data: &grey,
            width: file.width(),
            height: file.height(),
        },
        spec.flattening(),
    )
    .with_context(|| {
        format!(
            "{}: cannot derotate ({}): frame {mid}",
            file.path().display(),
            spec.describe()
        )
    })?;
    Ok(Some(times))
}

impl Derotation {
    /// Fits the model to the selected frames and computes every frame's
    /// derotation to the middle of their times.
    pub fn prepare(
        spec: &DerotationSpec,
        frames: &CaptureFrames,
        times: &FrameTimes,
        backend: &HostBackend,
    ) -> Result<Derotation> {
        let file = &frames.capture;
        let size = (file.width(), file.height());
        let t: Vec<f64> = frames.indices.iter().map(|&i| times.seconds[i]).collect();
        let t_ref = times.middle_of(&frames.indices);
        let omega = std::f64::consts::TAU / spec.period_s().context("no rotation period")?;
        let means = backend.install(|| Means::of(frames, &t))?;
        let disc = fit_disc(&means.grey(&means.all), spec.flattening())
            .with_context(|| format!("{}: cannot derotate", file.path().display()))?;
        let (globe, ratio) = orientation(spec, &means, &disc, omega, backend);
        // Each frame's disc: its centroid, moved as the mean's disc lies
        // from the canvas centre the frames were centred on.
        let canvas = (size.0 as f64 / 2.0, size.1 as f64 / 2.0);
        let turns: Vec<FrameTurn> = means
            .centroids
            .iter()
            .zip(&t)
            .map(|(c, ti)| FrameTurn {
                centre: (c.0 + disc.cx - canvas.0, c.1 + disc.cy - canvas.1),
                alpha: omega * (ti - t_ref),
            })
            .collect();
        let step = (disc.a / 16.0).clamp(3.0, 8.0);
        let fields = turns
            .iter()
            .map(|&turn| frames::frame_field(&globe, turn, step, size))
            .collect();
        let summary = summarise(spec, times, (&t, t_ref), &disc, (&globe, ratio), &turns);
        Ok(Derotation {
            globe,
            turns,
            fields,
            summary,
            reference_ticks: reference_ticks(times, t_ref),
            step,
            size,
        })
    }

    /// The frames the aligner measures.
    pub fn frames<'a>(&'a self, inner: &'a CaptureFrames) -> DerotatedFrames<'a> {
        DerotatedFrames::new(inner, &self.fields)
    }

    /// The stacker's warps: the aligner's composed with the derotation.
    /// The summary's disc centre becomes the disc's place in the stack.
    pub fn compose(&mut self, alignment: &Alignment) -> Alignment {
        let (cx, cy) = frames::output_centre(alignment, &self.turns);
        (self.summary.disc.cx, self.summary.disc.cy) = (cx, cy);
        frames::compose(alignment, &self.globe, &self.turns, self.step, self.size)
    }

    /// Lines for the log: the fitted disc and orientation.
    pub fn describe(&self) -> Vec<String> {
        let s = &self.summary;
        let mut out = vec![format!(
            "derotate: {} ({:.4} h), {:.0} s of frames to {}, from {}",
            s.body,
            s.period_hours,
            s.span_seconds,
            s.reference_time
                .clone()
                .unwrap_or_else(|| format!("{:.1} s after the first frame", s.reference_seconds)),
            s.times_from
        )];
        out.push(format!(
            "derotate: disc at ({:.1}, {:.1}), radii {:.1} × {:.1} px; pole at {:.1}° ({}){}; features move towards {:.1}°; up to {:.2} px at the centre",
            s.disc.cx,
            s.disc.cy,
            s.disc.equatorial_radius,
            s.disc.polar_radius,
            s.pole_angle_deg,
            if s.pole_angle_fitted { "fitted" } else { "given" },
            if s.mirrored { ", mirrored" } else { "" },
            s.motion_angle_deg,
            s.centre_shift_px
        ));
        if let Some(r) = s.pole_fit_ratio.filter(|r| *r > 0.8) {
            out.push(format!(
                "warning: derotate: the capture barely shows the rotation (fit ratio {r:.2}); the pole angle may be wrong: give it with --set derotate.pole_angle=DEG"
            ));
        }
        out
    }
}

/// The globe with its pole: given, or fitted from the early and late means
/// (each centred on its own limb fit), with the fit's ratio.
fn orientation(
    spec: &DerotationSpec,
    means: &Means,
    disc: &Disc,
    omega: f64,
    backend: &HostBackend,
) -> (Globe, Option<f64>) {
    let shape = Globe {
        a: disc.a,
        b: disc.b,
        pole_deg: 0.0,
        mirrored: spec.mirrored,
        latitude_deg: spec.latitude,
    };
    if let Some(p) = spec.pole_angle {
        return (
            Globe {
                pole_deg: p.rem_euclid(360.0),
                ..shape
            },
            None,
        );
    }
    let centre = |data: &[f32]| {
        fit_disc(&means.grey(data), spec.flattening()).map_or((disc.cx, disc.cy), |f| (f.cx, f.cy))
    };
    let pair = pole::Pair {
        early: means.grey(&means.early),
        late: means.grey(&means.late),
        centres: [centre(&means.early), centre(&means.late)],
        alpha: omega * (means.late_t - means.early_t),
    };
    let fit = backend.install(|| pole::fit_pole(&pair, shape));
    (
        Globe {
            pole_deg: fit.pole_deg,
            ..shape
        },
        Some(fit.ratio),
    )
}

/// The UTC ticks of `t_ref` (seconds on the frames' clock), when the
/// capture dates its first frame.
fn reference_ticks(times: &FrameTimes, t_ref: f64) -> Option<i64> {
    let t0 = times.seconds.first().copied().unwrap_or(0.0);
    times
        .start_ticks
        .map(|s| s + ((t_ref - t0) * 1e7).round() as i64)
}

/// What the report records: the fit, the times and the largest
/// derotation at the disc centre.
fn summarise(
    spec: &DerotationSpec,
    times: &FrameTimes,
    (t, t_ref): (&[f64], f64),
    disc: &Disc,
    (globe, ratio): (&Globe, Option<f64>),
    turns: &[FrameTurn],
) -> DerotationSummary {
    let t0 = times.seconds.first().copied().unwrap_or(0.0);
    let span =
        t.iter().fold(f64::MIN, |m, &v| m.max(v)) - t.iter().fold(f64::MAX, |m, &v| m.min(v));
    let centre_shift_px = turns
        .iter()
        .map(|tr| {
            let (dx, dy, _) = globe.derotation((0.0, 0.0), tr.alpha);
            dx.hypot(dy)
        })
        .fold(0.0, f64::max);
    DerotationSummary {
        body: spec.describe(),
        period_hours: spec.period_s().unwrap_or(0.0) / 3600.0,
        reference_time: reference_ticks(times, t_ref).and_then(crate::io::ser::iso8601),
        reference_seconds: t_ref - t0,
        times_from: times.source.to_string(),
        disc: DiscSummary {
            cx: disc.cx,
            cy: disc.cy,
            equatorial_radius: disc.a,
            polar_radius: disc.b,
            limb_rms: disc.rms,
        },
        pole_angle_deg: globe.pole_deg,
        pole_angle_fitted: spec.pole_angle.is_none(),
        pole_fit_ratio: ratio,
        mirrored: spec.mirrored,
        latitude_deg: spec.latitude,
        motion_angle_deg: globe.motion_deg(),
        span_seconds: span,
        centre_shift_px,
    }
}

/// The frames' disc centroids and three means of the frames centred on
/// them: all, the first third and the last third of the time span (with
/// their mean times).
struct Means {
    /// Frame width and height.
    size: (usize, usize),
    centroids: Vec<(f64, f64)>,
    all: Vec<f32>,
    early: Vec<f32>,
    late: Vec<f32>,
    early_t: f64,
    late_t: f64,
}

/// Chunks of frames the means are summed in (a fixed number, so the sums
/// do not depend on the threads; each chunk holds three frame-sized sums).
const MEAN_CHUNKS: usize = 8;

/// Per-chunk sums of [`Means`].
#[derive(Clone)]
struct Sums {
    all: Vec<f32>,
    early: Vec<f32>,
    late: Vec<f32>,
    n: [f64; 3],
    t: [f64; 2],
}

impl Means {
    /// One of the means (or any frame-sized image) as a grey image.
    fn grey<'a>(&self, data: &'a [f32]) -> Grey<'a> {
        Grey {
            data,
            width: self.size.0,
            height: self.size.1,
        }
    }

    fn of(frames: &CaptureFrames, t: &[f64]) -> Result<Means> {
        let file = &frames.capture;
        let (w, h, ch) = (file.width(), file.height(), file.channels());
        let (lo, hi) = t
            .iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        let thirds = (lo + (hi - lo) / 3.0, hi - (hi - lo) / 3.0);
        let centroids = Mutex::new(vec![(0.0, 0.0); t.len()]);
        let zero = Sums::zero(w * h);
        // Fixed chunks of frames, summed in order: the same means whatever
        // the number of threads (float sums depend on their order).
        let chunk = t.len().div_ceil(MEAN_CHUNKS).max(1);
        let partial: Vec<Result<Sums>> = (0..t.len().div_ceil(chunk))
            .into_par_iter()
            .map(|c| {
                let mut s = zero.clone();
                for k in c * chunk..((c + 1) * chunk).min(t.len()) {
                    let frame = frames::read_frame(frames, k)
                        .map_err(|e| anyhow::anyhow!("derotate: {}", e.message))?;
                    let grey = luminance(&frame, ch);
                    let img = Grey {
                        data: &grey,
                        width: w,
                        height: h,
                    };
                    let (sky, peak) = limb::levels(&img);
                    let (cx, cy, _) = limb::centroid(&img, sky, peak)
                        .with_context(|| format!("derotate: no disc in frame {k}"))?;
                    centroids.lock().unwrap()[k] = (cx, cy);
                    let shift = (cx - w as f64 / 2.0, cy - h as f64 / 2.0);
                    s.add(&img, shift, t[k], thirds);
                }
                Ok(s)
            })
            .collect();
        let mut sums = zero;
        for part in partial {
            sums.merge(&part?);
        }
        let scale = |v: Vec<f32>, n: f64| -> Vec<f32> {
            let k = 1.0 / n.max(1.0) as f32;
            v.into_iter().map(|x| x * k).collect()
        };
        Ok(Means {
            size: (w, h),
            centroids: centroids.into_inner().unwrap(),
            early_t: sums.t[0] / sums.n[1].max(1.0),
            late_t: sums.t[1] / sums.n[2].max(1.0),
            all: scale(sums.all, sums.n[0]),
            early: scale(sums.early, sums.n[1]),
            late: scale(sums.late, sums.n[2]),
        })
    }
}

impl Sums {
    fn zero(len: usize) -> Sums {
        Sums {
            all: vec![0.0; len],
            early: vec![0.0; len],
            late: vec![0.0; len],
            n: [0.0; 3],
            t: [0.0; 2],
        }
    }

    /// Adds a frame taken at `t` (centred by `shift`) to all, and to the
    /// early or late sums when `t` lies before `thirds.0` or after `thirds.1`.
    fn add(&mut self, img: &Grey, shift: (f64, f64), t: f64, thirds: (f64, f64)) {
        accumulate(img, shift, &mut self.all);
        self.n[0] += 1.0;
        if t <= thirds.0 {
            accumulate(img, shift, &mut self.early);
            self.n[1] += 1.0;
            self.t[0] += t;
        }
        if t >= thirds.1 {
            accumulate(img, shift, &mut self.late);
            self.n[2] += 1.0;
            self.t[1] += t;
        }
    }

    fn merge(&mut self, b: &Sums) {
        for (x, y) in [
            (&mut self.all, &b.all),
            (&mut self.early, &b.early),
            (&mut self.late, &b.late),
        ] {
            x.iter_mut().zip(y).for_each(|(p, q)| *p += q);
        }
        (0..3).for_each(|i| self.n[i] += b.n[i]);
        (0..2).for_each(|i| self.t[i] += b.t[i]);
    }
}

/// Adds `img` moved by `-shift` rounded to whole pixels (what falls
/// outside is dropped): the means only serve the limb and pole fits, for
/// which the half-pixel blur of rounding is harmless, and whole-pixel
/// moves are a plain add.
fn accumulate(img: &Grey, shift: (f64, f64), sum: &mut [f32]) {
    let (w, h) = (img.width as i64, img.height as i64);
    let (sx, sy) = (shift.0.round() as i64, shift.1.round() as i64);
    let (xa, xb) = ((-sx).max(0), (w - sx).min(w));
    if xa >= xb {
        return;
    }
    for y in (-sy).max(0)..(h - sy).min(h) {
        let src = ((y + sy) * w + xa + sx) as usize;
        let dst = (y * w + xa) as usize;
        let n = (xb - xa) as usize;
        for (s, v) in sum[dst..dst + n].iter_mut().zip(&img.data[src..src + n]) {
            *s += v;
        }
    }
}

/// The mean of the channels of an interleaved frame.
fn luminance(frame: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return frame.to_vec();
    }
    frame
        .chunks(channels)
        .map(|p| p.iter().sum::<f32>() / channels as f32)
        .collect()
}
