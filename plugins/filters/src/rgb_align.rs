//! `rgb-align`: corrects atmospheric dispersion in colour images. The red
//! and blue channels of a low planet are displaced (mostly vertically) from
//! the green one; their sub-pixel shifts against green are measured by phase
//! correlation and undone with bicubic resampling.

use jupiter_kit::fft::{PhaseCorrelator, Shift};
use jupiter_kit::warp::{Interp, RowWindow};
use jupiter_plugin_api::prelude::*;

use crate::common::{host_pixels, BAND_ROWS};

/// Smallest image side phase correlation is attempted on.
pub const MIN_SIDE: usize = 8;
/// A channel whose correlation peak (relative to green's auto-correlation)
/// is below this is not moved: the measurement is not trustworthy.
pub const MIN_PEAK: f32 = 0.05;
/// Shifts smaller than this on both axes are not worth a resampling pass.
pub const NEGLIGIBLE_SHIFT: f32 = 0.005;

jupiter_plugin_api::params! {
    /// Parameters of `rgb-align`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct RgbAlignParams {
        /// false passes the image through unchanged.
        pub enabled: bool = true, bool, "Measure and correct the R and B shifts against G (false = pass through)";
        /// Sanity limit, pixels: a channel measured as shifted further than this
        /// on either axis is left alone (with a warning).
        pub max_shift: f32 = 8.0, float(0.0, 100.0), "Largest believable shift per axis, pixels; a channel measured beyond it is left alone";
    }
}

/// Measures the displacement of channels 0 (R) and 2 (B) of an interleaved
/// RGB image against channel 1 (G): channel `c` at `(x + dx, y + dy)` shows
/// what G shows at `(x, y)`. Both measurements run in parallel.
pub fn measure(
    ctx: &StageCtx,
    data: &[f32],
    width: usize,
    height: usize,
) -> Result<[Shift; 2], StageError> {
    let plane = |c: usize| -> Vec<f32> { data.iter().skip(c).step_by(3).copied().collect() };
    let pc = PhaseCorrelator::new(&plane(1), width, height);
    let shifts = ctx.par_map(2, |i| pc.shift_of(&plane(if i == 0 { 0 } else { 2 })))?;
    Ok([shifts[0], shifts[1]])
}

/// Resamples channels 0 and 2 of an interleaved RGB image by their shifts
/// (`None` = leave that channel), bicubic, edges replicated:
/// `out_c(x, y) = in_c(x + dx, y + dy)`. Channel 1 is copied.
pub fn correct(
    ctx: &StageCtx,
    image: &Image,
    shifts: [Option<(f32, f32)>; 2],
) -> Result<Image, StageError> {
    let (w, h) = (image.width as usize, image.height as usize);
    let rl = w * 3;
    let src = image.data.as_slice();
    let win = RowWindow::whole(src, w, h, 3);
    let mut out = image.data.to_vec();
    ctx.par_chunks_mut(&mut out, BAND_ROWS * rl, |b, band| {
        let y0 = b * BAND_ROWS;
        for (ry, row) in band.chunks_mut(rl).enumerate() {
            let y = (y0 + ry) as f32;
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                for (k, c) in [(0usize, 0usize), (1, 2)] {
                    if let Some((dx, dy)) = shifts[k] {
                        px[c] = win.sample(x as f32 + dx, y + dy, c, Interp::Bicubic);
                    }
                }
            }
        }
    })?;
    Ok(Image::from_vec(image.width, image.height, 3, out))
}

/// Measures and corrects the R and B shifts of an RGB image; other channel
/// counts pass through unchanged.
pub fn apply(ctx: &StageCtx, image: Image, p: &RgbAlignParams) -> Result<Image, StageError> {
    p.check_ranges()?;
    host_pixels(&image)?;
    if !p.enabled {
        ctx.info("disabled: image passed through");
        return Ok(image);
    }
    if image.channels != 3 {
        ctx.info(&format!(
            "{}-channel image: nothing to align, passed through",
            image.channels
        ));
        return Ok(image);
    }
    let (w, h) = (image.width as usize, image.height as usize);
    if w < MIN_SIDE || h < MIN_SIDE {
        ctx.info(&format!("image {w}×{h} is too small to measure channel shifts (< {MIN_SIDE} px): passed through"));
        return Ok(image);
    }
    if image.data.iter().any(|v| !v.is_finite()) {
        ctx.warn("image has non-finite samples: channel shifts not measured, passed through");
        return Ok(image);
    }
    let measured = measure(ctx, &image.data, w, h)?;
    let mut apply_shift = [None, None];
    for (k, (name, s)) in ["R", "B"].iter().zip(measured).enumerate() {
        ctx.info(&format!(
            "{name} is shifted by ({:+.3}, {:+.3}) px against G (correlation peak {:.3})",
            s.dx, s.dy, s.peak
        ));
        if !(s.dx.is_finite() && s.dy.is_finite())
            || s.dx.abs() > p.max_shift
            || s.dy.abs() > p.max_shift
        {
            ctx.warn(&format!(
                "{name} shift ({:+.3}, {:+.3}) px exceeds max_shift {} px: {name} left unaligned",
                s.dx, s.dy, p.max_shift
            ));
        } else if s.peak < MIN_PEAK {
            ctx.warn(&format!("{name} correlates too weakly with G (peak {:.3} < {MIN_PEAK}): {name} left unaligned", s.peak));
        } else if s.dx.abs() >= NEGLIGIBLE_SHIFT || s.dy.abs() >= NEGLIGIBLE_SHIFT {
            apply_shift[k] = Some((s.dx, s.dy));
        }
    }
    if apply_shift == [None, None] {
        return Ok(image);
    }
    correct(ctx, &image, apply_shift)
}

/// The `rgb-align` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const RgbAlign: ProcessFn<RgbAlignParams> = ProcessFn {
    info: StageInfo::new(
        "rgb-align",
        env!("CARGO_PKG_VERSION"),
        "Atmospheric dispersion fix: aligns R and B to G by phase correlation and bicubic resampling",
    ),
    kind: StageKind::Filter,
    run: apply,
};

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::ThreadBackend;

    /// A smooth planet scene at the real position `(x, y)`: a disc with a
    /// soft limb (logistic, ~1 px), latitude bands and two ovals.
    fn scene(x: f32, y: f32) -> f32 {
        let (cx, cy, r) = (48.0f32, 40.0f32, 28.0f32);
        let (dx, dy) = (x - cx, y - cy);
        let d = (dx * dx + dy * dy).sqrt();
        let disc = 1.0 / (1.0 + ((d - r) / 0.8).exp());
        let bands = 0.6 + 0.2 * (dy * 0.45).sin() + 0.1 * (dy * 1.1 + 0.3).cos();
        let oval = |ox: f32, oy: f32, s: f32| {
            (-((x - ox).powi(2) + (y - oy).powi(2)) / (2.0 * s * s)).exp()
        };
        disc * (bands + 0.3 * oval(55.0, 45.0, 2.5) - 0.2 * oval(38.0, 32.0, 1.8))
    }

    /// An RGB image of `w × h` whose R content is displaced by `r` and B by
    /// `b` relative to G (`channel(x, y) = scene(x − s)`).
    fn dispersed(w: usize, h: usize, r: (f32, f32), b: (f32, f32)) -> Vec<f32> {
        let mut v = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                let (xf, yf) = (x as f32, y as f32);
                v.push(0.9 * scene(xf - r.0, yf - r.1));
                v.push(scene(xf, yf));
                v.push(0.7 * scene(xf - b.0, yf - b.1));
            }
        }
        v
    }

    /// Max |channel c / gain − G| over pixels at least `m` from the border.
    fn interior_err(data: &[f32], w: usize, h: usize, c: usize, gain: f32, m: usize) -> f32 {
        let mut e = 0.0f32;
        for y in m..h - m {
            for x in m..w - m {
                let p = &data[(y * w + x) * 3..][..3];
                e = e.max((p[c] / gain - p[1]).abs());
            }
        }
        e
    }

    #[test]
    fn recovers_and_corrects_dispersion() {
        // Odd size; R is G's content moved by (+1.5, +0.7), B by (−1.5, −0.4).
        let (w, h) = (97usize, 81usize);
        let (rs, bs) = ((1.5f32, 0.7f32), (-1.5f32, -0.4f32));
        let data = dispersed(w, h, rs, bs);
        let img = Image::from_vec(w as u32, h as u32, 3, data.clone());
        let be = ThreadBackend::new(3);
        be.with_ctx("rgb-align", |ctx| {
            let [r, b] = measure(ctx, &data, w, h).unwrap();
            let err = [(r.dx - rs.0), (r.dy - rs.1), (b.dx - bs.0), (b.dy - bs.1)].map(f32::abs);
            eprintln!("measured R ({:.3}, {:.3}), B ({:.3}, {:.3}); errors {err:?}", r.dx, r.dy, b.dx, b.dy);
            assert!(err.iter().all(|e| *e < 0.1), "R {r:?} B {b:?}: errors {err:?} (wanted < 0.1 px)");

            let before = (interior_err(&data, w, h, 0, 0.9, 6), interior_err(&data, w, h, 2, 0.7, 6));
            let out = RgbAlign.process(ctx, img, "").unwrap();
            let after = (interior_err(&out.data, w, h, 0, 0.9, 6), interior_err(&out.data, w, h, 2, 0.7, 6));
            eprintln!("interior max |R−G|, |B−G|: before {before:?}, after {after:?}");
            assert!(after.0 < 0.02 && after.1 < 0.02, "after correction R/B differ from G by {after:?} (before {before:?}; wanted < 0.02)");
            // G is untouched.
            assert!(out.data.iter().skip(1).step_by(3).zip(data.iter().skip(1).step_by(3)).all(|(a, b)| a == b));
        });
    }

    #[test]
    fn correct_with_known_shifts_matches_the_truth() {
        let (w, h) = (64usize, 57usize);
        let (rs, bs) = ((0.6f32, -1.2f32), (-0.3f32, 0.9f32));
        let data = dispersed(w, h, rs, bs);
        let img = Image::from_vec(w as u32, h as u32, 3, data);
        let be = ThreadBackend::new(2);
        let out = be
            .with_ctx("rgb-align", |ctx| correct(ctx, &img, [Some(rs), Some(bs)]))
            .unwrap();
        let e = (
            interior_err(&out.data, w, h, 0, 0.9, 4),
            interior_err(&out.data, w, h, 2, 0.7, 4),
        );
        eprintln!("bicubic with exact shifts: interior max |R−G|, |B−G| = {e:?}");
        assert!(e.0 < 0.01 && e.1 < 0.01, "bicubic with exact shifts: {e:?}");
    }

    #[test]
    fn mono_disabled_and_implausible_inputs_pass_through() {
        let be = ThreadBackend::new(2);
        be.with_ctx("rgb-align", |ctx| {
            let mono = Image::from_vec(20, 10, 1, (0..200).map(|i| (i % 7) as f32 / 7.0).collect());
            assert_eq!(RgbAlign.process(ctx, mono.clone(), "").unwrap(), mono);
            let (w, h) = (48usize, 40usize);
            let rgb = Image::from_vec(
                w as u32,
                h as u32,
                3,
                dispersed(w, h, (2.0, 0.0), (0.0, 0.0)),
            );
            assert_eq!(
                RgbAlign
                    .process(ctx, rgb.clone(), r#"{"enabled": false}"#)
                    .unwrap(),
                rgb
            );
            // A 2 px shift against a 1 px limit: warned about and left alone.
            assert_eq!(
                RgbAlign
                    .process(ctx, rgb.clone(), r#"{"max_shift": 1.0}"#)
                    .unwrap(),
                rgb
            );
            let tiny = Image::from_vec(3, 2, 3, vec![0.5; 18]);
            assert_eq!(RgbAlign.process(ctx, tiny.clone(), "").unwrap(), tiny);
            let e = RgbAlign
                .process(ctx, rgb, r#"{"max_shift": -1}"#)
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams);
            assert!(e.message.contains("max_shift"));
        });
    }
}
