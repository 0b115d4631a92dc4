//! Derotation of finished stacks: several images of the same planet taken
//! minutes apart (successive colour stacks, or R, G and B through filters)
//! brought to one time and combined.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jupiter_plugin_api::Image;

use super::globe::Globe;
use super::limb::{fit_disc, Disc, Grey};
use super::{luminance, pole, DerotationSpec};
use crate::io::capture::{CaptureFile, OpenOptions};
use crate::io::dates::image_time;

/// One stack, read, with its time and fitted disc.
pub struct Stack {
    pub path: PathBuf,
    pub image: Image,
    /// UTC ticks (100 ns since 0001-01-01).
    pub ticks: i64,
    pub time_from: &'static str,
    pub disc: Disc,
}

impl Stack {
    /// Reads `path` (TIFF, PNG or FITS), its time (FITS `DATE-OBS`, TIFF
    /// `DateTime`, PNG `Creation Time`, else a capture program's file name
    /// such as `2024-11-25-2130_4-…`) and its disc.
    pub fn read(path: &Path, flattening: Option<f64>) -> Result<Stack> {
        let file = CaptureFile::open_image(path, OpenOptions::default())?;
        if file.frame_count() != 1 {
            bail!(
                "{}: a stack is one image; this holds {} frames",
                path.display(),
                file.frame_count()
            );
        }
        let (w, h, c) = (file.width(), file.height(), file.channels());
        let image = Image::from_vec(w as u32, h as u32, c as u32, file.decode_frame(0)?);
        let (ticks, time_from) = image_time(path, &file).with_context(|| {
            format!(
                "{}: no time found (FITS DATE-OBS, TIFF DateTime, PNG Creation Time, or a name like 2024-11-25-2130_4-…)",
                path.display()
            )
        })?;
        let grey = luminance(&image.data, c);
        let disc = fit_disc(
            &Grey {
                data: &grey,
                width: w,
                height: h,
            },
            flattening,
        )
        .with_context(|| format!("{}: cannot derotate", path.display()))?;
        Ok(Stack {
            path: path.to_path_buf(),
            image,
            ticks,
            time_from,
            disc,
        })
    }

    fn seconds_from(&self, ticks: i64) -> f64 {
        (self.ticks - ticks) as f64 / 1e7
    }
}

/// What [`derotate_stacks`] did, for the log.
pub struct StackFit {
    pub globe: Globe,
    pub pole_fitted: Option<f64>,
    pub reference_ticks: i64,
    /// Per stack: seconds from the reference, and the shift at the disc centre (px).
    pub moves: Vec<(f64, f64)>,
}

/// How the stacks combine: a weighted mean of like images, or three mono
/// images as the red, green and blue of one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Combine {
    Mean,
    Rgb,
}

/// Brings `stacks` to `reference` (ticks; default: half-way through their
/// times) and combines them, on the pixel grid of the stack nearest to that
/// time.
pub fn derotate_stacks(
    stacks: &[Stack],
    spec: &DerotationSpec,
    reference: Option<i64>,
    combine: Combine,
) -> Result<(Image, StackFit)> {
    let period = spec
        .period_s()
        .context("no rotation period (--derotate BODY or derotate.period_hours)")?;
    let omega = std::f64::consts::TAU / period;
    check_alike(stacks, combine)?;
    let (lo, hi) = stacks.iter().fold((i64::MAX, i64::MIN), |(a, b), s| {
        (a.min(s.ticks), b.max(s.ticks))
    });
    let t_ref = reference.unwrap_or(lo + (hi - lo) / 2);
    let median = |f: &dyn Fn(&Disc) -> f64| {
        let mut v: Vec<f64> = stacks.iter().map(|s| f(&s.disc)).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let shape = Globe {
        a: median(&|d| d.a),
        b: median(&|d| d.b),
        pole_deg: 0.0,
        mirrored: spec.mirrored,
        latitude_deg: spec.latitude,
    };
    let (pole_deg, fitted) = match spec.pole_angle {
        Some(p) => (p.rem_euclid(360.0), None),
        None => {
            let p = fit_stacks_pole(stacks, shape, omega)?;
            (p, Some(p))
        }
    };
    let globe = Globe { pole_deg, ..shape };
    let base = stacks
        .iter()
        .min_by_key(|s| (s.ticks - t_ref).abs())
        .expect("at least one stack");
    let out_c = (base.disc.cx, base.disc.cy);
    let moves = stacks
        .iter()
        .map(|s| {
            let alpha = omega * s.seconds_from(t_ref);
            let (dx, dy, _) = globe.derotation((0.0, 0.0), alpha);
            (s.seconds_from(t_ref), dx.hypot(dy))
        })
        .collect();
    let warped: Vec<(Vec<f32>, Vec<f32>)> = stacks
        .iter()
        .map(|s| {
            warp_to(
                s,
                &globe,
                omega * s.seconds_from(t_ref),
                out_c,
                (base.image.width, base.image.height),
            )
        })
        .collect();
    let image = match combine {
        Combine::Mean => mean(
            &warped,
            base.image.width,
            base.image.height,
            base.image.channels,
        ),
        Combine::Rgb => rgb(&warped, base.image.width, base.image.height),
    };
    Ok((
        image,
        StackFit {
            globe,
            pole_fitted: fitted,
            reference_ticks: t_ref,
            moves,
        },
    ))
}

/// Stacks that can be combined: the same size (and channels for a mean;
/// three mono images for RGB).
fn check_alike(stacks: &[Stack], combine: Combine) -> Result<()> {
    let Some(first) = stacks.first() else {
        bail!("no stacks to derotate");
    };
    for s in stacks {
        let same = s.image.width == first.image.width && s.image.height == first.image.height;
        if !same || (combine == Combine::Mean && s.image.channels != first.image.channels) {
            bail!(
                "{} is {}×{}×{} but {} is {}×{}×{}: stacks combined must have the same size and channels",
                s.path.display(),
                s.image.width,
                s.image.height,
                s.image.channels,
                first.path.display(),
                first.image.width,
                first.image.height,
                first.image.channels
            );
        }
        if combine == Combine::Rgb && s.image.channels != 1 {
            bail!(
                "{}: --rgb takes three mono stacks (R, G, B); this one has {} channels",
                s.path.display(),
                s.image.channels
            );
        }
    }
    Ok(())
}

/// The pole from the two stacks furthest apart in time: the later one
/// moved onto the earlier one's disc, then matched as for a capture.
fn fit_stacks_pole(stacks: &[Stack], shape: Globe, omega: f64) -> Result<f64> {
    let early = stacks.iter().min_by_key(|s| s.ticks).expect("stacks");
    let late = stacks.iter().max_by_key(|s| s.ticks).expect("stacks");
    let alpha = omega * late.seconds_from(early.ticks);
    if (alpha * shape.a).abs() < 0.5 {
        bail!(
            "the stacks are {:.0} s apart: too little rotation to fit the pole; give it with --set derotate.pole_angle=DEG",
            late.seconds_from(early.ticks)
        );
    }
    let grey = |s: &Stack| luminance(&s.image.data, s.image.channels as usize);
    let (e, l) = (grey(early), grey(late));
    let dims = |s: &Stack| (s.image.width as usize, s.image.height as usize);
    let pair = pole::Pair {
        early: Grey {
            data: &e,
            width: dims(early).0,
            height: dims(early).1,
        },
        late: Grey {
            data: &l,
            width: dims(late).0,
            height: dims(late).1,
        },
        centres: [(early.disc.cx, early.disc.cy), (late.disc.cx, late.disc.cy)],
        alpha,
    };
    Ok(pole::fit_pole(&pair, shape).pole_deg)
}

/// One stack resampled (bicubic) to the reference time on the output grid
/// (disc centre `out_c`), with its per-pixel weight.
fn warp_to(
    s: &Stack,
    globe: &Globe,
    alpha: f64,
    out_c: (f64, f64),
    (w, h): (u32, u32),
) -> (Vec<f32>, Vec<f32>) {
    let (w, h) = (w as usize, h as usize);
    let ch = s.image.channels as usize;
    let (sw, sh) = (s.image.width as usize, s.image.height as usize);
    let mut out = vec![0.0f32; w * h * ch];
    let mut weight = vec![0.0f32; w * h];
    for y in 0..h {
        for x in 0..w {
            let q = (x as f64 - out_c.0, y as f64 - out_c.1);
            let (dx, dy, wt) = globe.derotation(q, alpha);
            let (px, py) = (s.disc.cx + q.0 + dx, s.disc.cy + q.1 + dy);
            if px < 0.0 || py < 0.0 || px > (sw - 1) as f64 || py > (sh - 1) as f64 {
                continue;
            }
            let k = y * w + x;
            super::frames::bicubic(
                &s.image.data,
                (sw, sh, ch),
                px as f32,
                py as f32,
                &mut out[k * ch..(k + 1) * ch],
            );
            weight[k] = wt as f32;
        }
    }
    (out, weight)
}

fn mean(warped: &[(Vec<f32>, Vec<f32>)], w: u32, h: u32, ch: u32) -> Image {
    let c = ch as usize;
    let mut img = Image::new(w, h, ch);
    for k in 0..(w * h) as usize {
        let ws: f32 = warped.iter().map(|(_, wt)| wt[k]).sum();
        for j in 0..c {
            let v: f32 = warped.iter().map(|(d, wt)| d[k * c + j] * wt[k]).sum();
            img.data[k * c + j] = if ws > 0.0 { v / ws } else { 0.0 };
        }
    }
    img
}

/// Three derotated mono stacks as one RGB image. A point none of the three
/// saw well keeps its (faded) value rather than going black.
fn rgb(warped: &[(Vec<f32>, Vec<f32>)], w: u32, h: u32) -> Image {
    let mut img = Image::new(w, h, 3);
    for k in 0..(w * h) as usize {
        for (j, (d, _)) in warped.iter().enumerate().take(3) {
            img.data[k * 3 + j] = d[k];
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forth_and_back_returns_the_surface_away_from_the_limb() {
        let g = Globe {
            a: 50.0,
            b: 46.75,
            pole_deg: 30.0,
            mirrored: false,
            latitude_deg: 0.0,
        };
        let (w, h) = (128usize, 120usize);
        let c = (64.0, 60.0);
        let data: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f64, (i / w) as f64);
                (0.5 + 0.2 * (x * 0.31).sin() * (y * 0.23).cos()
                    + 0.1 * (x * 0.07 + y * 0.11).sin()) as f32
            })
            .collect();
        let disc = Disc {
            cx: c.0,
            cy: c.1,
            a: 50.0,
            b: 46.75,
            minor_deg: 30.0,
            rms: 0.0,
        };
        let mk = |data: Vec<f32>| Stack {
            path: "x".into(),
            image: Image::from_vec(w as u32, h as u32, 1, data),
            ticks: 0,
            time_from: "test",
            disc,
        };
        let (fwd, _) = warp_to(&mk(data.clone()), &g, 0.05, c, (w as u32, h as u32));
        let (back, _) = warp_to(&mk(fwd), &g, -0.05, c, (w as u32, h as u32));
        let mut worst = 0.0f32;
        for y in 0..h {
            for x in 0..w {
                let q = (x as f64 - c.0, y as f64 - c.1);
                if g.turn(q, 0.0).map_or(true, |t| t.mu < 0.5) {
                    continue;
                }
                worst = worst.max((back[y * w + x] - data[y * w + x]).abs());
            }
        }
        // Two bicubic resamplings of a pattern with detail near 4 px: within 2 % of its range.
        assert!(worst < 0.02, "worst {worst}");
    }
}
