//! Global alignment pieces shared by the aligners (`align-phase`,
//! `align-multipoint`): luminance of a frame, whole-plane sub-pixel shifts,
//! parallel shift measurement against a [`PhaseCorrelator`], and the
//! mean-of-best reference.
//!
//! Everything streams: a parallel task holds one decoded frame at a time, and
//! the reference builder holds one accumulator plus one frame per worker.

use jupiter_plugin_api::frame::FrameSourceExt;
use jupiter_plugin_api::{FrameSourceRef, StageCtx, StageError};

use crate::fft::{PhaseCorrelator, Shift};
use crate::stats::luminance;
use crate::warp::{shift_plane, shift_plane_rows, Interp};

/// Frame planes (`f32`) a stage may hold at once across its parallel
/// tasks: a frame of 24 megapixels is 96 MB a plane, and one per thread
/// on 16 cores would be gigabytes. Past this, fewer frames than threads
/// are worked on at a time, each one's work split over the threads.
pub const FRAME_PLANES_BUDGET: usize = 256 << 20;

/// How many frames of `w × h` to work on at once when each holds `planes`
/// `f32` planes: at least 1, at most one per thread, within
/// [`FRAME_PLANES_BUDGET`].
pub fn frames_in_flight(ctx: &StageCtx, w: usize, h: usize, planes: usize) -> usize {
    let per_frame = (planes * w * h * std::mem::size_of::<f32>()).max(1);
    (FRAME_PLANES_BUDGET / per_frame).clamp(1, ctx.threads().max(1))
}

/// Output rows per parallel task when one large frame is split by rows.
const BAND_ROWS: usize = 32;

/// Luminance plane (mean of the channels) of frame `i` of the source.
pub fn frame_luminance(frames: &FrameSourceRef, i: usize) -> Result<Vec<f32>, StageError> {
    frames.luminance(i)
}

/// [`frame_luminance`] of a frame worked on alone (a large one): its bands
/// of [`BAND_SAMPLES`] are read and decoded in parallel on `ctx`'s pool,
/// where one read on one thread left the other cores idle (on a
/// 24-megapixel 16-bit frame, about 50 ms a read, several reads per frame
/// across the stages). The same samples as one read.
pub fn frame_luminance_in(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    i: usize,
) -> Result<Vec<f32>, StageError> {
    let mut lum = Vec::new();
    luminance_into(Some(ctx), frames, i, &mut lum)?;
    Ok(lum)
}

/// Frame `i`'s luminance into `buf` (sized to the frame; a buffer kept
/// from frame to frame spares the kernel's zeroing of a fresh plane), its
/// bands read in parallel on `par`'s pool when given and the frame is
/// large ([`frame_luminance_in`]).
pub fn luminance_into(
    par: Option<&StageCtx>,
    frames: &FrameSourceRef,
    i: usize,
    buf: &mut Vec<f32>,
) -> Result<(), StageError> {
    let info = frames.info();
    let (w, h) = (info.width as usize, info.height as usize);
    crate::mem::fit(buf, w * h);
    let whole = |buf: &mut Vec<f32>| frames.read_luminance_rows(i, 0, h, buf.as_mut_slice().into());
    let ctx = match par {
        Some(ctx) if w * h > BAND_SAMPLES && ctx.threads() > 1 => ctx,
        _ => return whole(buf).into_result(),
    };
    let band = (BAND_SAMPLES / w).max(1);
    ctx.par_try_chunks_mut(buf, band * w, |b, rows| {
        frames
            .read_luminance_rows(i, b * band, rows.len() / w, rows.into())
            .into_result()
    })
}

/// Resamples a plane (bicubic, edges replicated) so that
/// `out(x, y) = plane(x + s.dx, y + s.dy)`.
pub fn shifted(plane: &[f32], w: usize, h: usize, s: Shift) -> Vec<f32> {
    shift_plane(plane, w, h, 1, s.dx, s.dy, Interp::Bicubic)
}

/// The rectangle of the frame a global shift is measured on: the object and
/// a margin around it, so that on a planet the FFTs skip the empty sky.
/// A shift measured on the same rectangle of the reference and of a frame is
/// the frame's whole-frame shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roi {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
}

impl Roi {
    /// The whole `w × h` frame.
    pub fn full(w: usize, h: usize) -> Roi {
        Roi { x0: 0, y0: 0, w, h }
    }

    /// The bounding box of the pixels of `plane` brighter than its background
    /// (10th percentile) plus 15 % of its range (to the 99.9th percentile),
    /// grown by a margin of `max(32, a quarter of the box's larger side)`
    /// pixels for frame motion and the window's taper, rounded up to an FFT
    /// friendly size (factors 2, 3, 5) and clamped to the frame. The whole
    /// frame when that box would cover more than half of it (a surface
    /// capture) or nothing stands out. Either way at most
    /// [`MAX_ROI_SIDE`] a side: the centre of a larger rectangle.
    pub fn around_object(plane: &[f32], w: usize, h: usize) -> Roi {
        Self::object_box(plane, w, h).at_most(MAX_ROI_SIDE)
    }

    /// The centre `max × max` (at most) of this rectangle.
    pub fn at_most(self, max: usize) -> Roi {
        let cut = |o: usize, n: usize| {
            let m = n.min(max);
            (o + (n - m) / 2, m)
        };
        let ((x0, w), (y0, h)) = (cut(self.x0, self.w), cut(self.y0, self.h));
        Roi { x0, y0, w, h }
    }

    /// [`Self::around_object`] before the size cap.
    fn object_box(plane: &[f32], w: usize, h: usize) -> Roi {
        let full = Roi::full(w, h);
        if plane.len() != w * h || w < 64 || h < 64 {
            return full;
        }
        let step = (plane.len() / 50_000).max(1);
        let sample: Vec<f32> = plane.iter().step_by(step).copied().collect();
        let bg = crate::stats::percentile(&sample, 0.10);
        let hi = crate::stats::percentile(&sample, 0.999);
        if hi - bg <= 1e-6 {
            return full;
        }
        let t = bg + 0.15 * (hi - bg);
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for y in 0..h {
            let row = &plane[y * w..(y + 1) * w];
            let (Some(a), Some(b)) = (
                row.iter().position(|&v| v > t),
                row.iter().rposition(|&v| v > t),
            ) else {
                continue;
            };
            (x0, x1, y0, y1) = (x0.min(a), x1.max(b), y0.min(y), y);
        }
        if x1 < x0 {
            return full;
        }
        let margin = 32.max((x1 - x0).max(y1 - y0) / 4);
        let grow = |lo: usize, hi: usize, n: usize| -> (usize, usize) {
            let size = fft_size((hi - lo + 1 + 2 * margin).min(n)).min(n);
            let centre = (lo + hi).div_ceil(2);
            let start = centre.saturating_sub(size / 2).min(n - size);
            (start, size)
        };
        let (rx, rw) = grow(x0, x1, w);
        let (ry, rh) = grow(y0, y1, h);
        if rw * rh * 2 > w * h {
            return full;
        }
        Roi {
            x0: rx,
            y0: ry,
            w: rw,
            h: rh,
        }
    }

    /// This rectangle of a `width`-wide plane, as its own plane.
    pub fn crop(&self, plane: &[f32], width: usize) -> Vec<f32> {
        (self.y0..self.y0 + self.h)
            .flat_map(|y| &plane[y * width + self.x0..y * width + self.x0 + self.w])
            .copied()
            .collect()
    }
}

/// Largest side of the rectangle a global shift is measured on: on the
/// sensors of lunar and solar imagers (6000×4000 and more) the centre 1024²
/// holds far more detail than a translation needs (a million pixels of
/// surface or disc), at a small part of the whole frame's FFT time and
/// memory (a power of two: FFT friendly). At 2048² the reference's mean
/// of the best frames took 1.0 s of a 7.6 s 30-frame 6000×4000 run (0.55 s
/// at 1024²).
pub const MAX_ROI_SIDE: usize = 1024;

/// The smallest `n' >= n` whose only prime factors are 2, 3 and 5.
pub fn fft_size(n: usize) -> usize {
    (n.max(1)..)
        .find(|&m| {
            let mut k = m;
            for p in [2, 3, 5] {
                while k % p == 0 {
                    k /= p;
                }
            }
            k == 1
        })
        .expect("some larger number is 5-smooth")
}

/// Luminance of the rectangle `roi` of frame `i` (only its rows are decoded).
pub fn roi_luminance(frames: &FrameSourceRef, i: usize, roi: Roi) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    let w = info.width as usize;
    if roi == Roi::full(w, info.height as usize) {
        return frame_luminance(frames, i);
    }
    // In bands of rows, each band's columns of the rectangle kept: on a
    // large frame the rectangle's whole rows are several times its size.
    let mut out = Vec::with_capacity(roi.w * roi.h);
    let band = (BAND_SAMPLES / w.max(1)).clamp(1, roi.h.max(1));
    let mut rows = vec![0.0f32; band * w];
    for y in (roi.y0..roi.y0 + roi.h).step_by(band) {
        let n = band.min(roi.y0 + roi.h - y);
        let part = &mut rows[..n * w];
        frames
            .read_luminance_rows(i, y, n, part.into())
            .into_result()?;
        for r in part.chunks_exact(w) {
            out.extend_from_slice(&r[roi.x0..roi.x0 + roi.w]);
        }
    }
    Ok(out)
}

/// Samples per band of rows [`roi_luminance`] reads at a time.
const BAND_SAMPLES: usize = 1 << 20;

/// Measures the shift of the luminance of every frame in `indices` against
/// `pc` (prepared on the rectangle `roi` of the reference), in parallel over
/// frames; reports progress when `report` is set.
pub fn measure_shifts(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    pc: &PhaseCorrelator,
    roi: Roi,
    indices: &[usize],
    report: bool,
) -> Result<Vec<Shift>, StageError> {
    let every = if report { 16 } else { 0 };
    // A task holds the rectangle and the correlator's work planes (about
    // five of its size): on a large rectangle, only as many tasks at a
    // time as the planes budget allows.
    let at_once = frames_in_flight(ctx, roi.w, roi.h, 5);
    let grouped = at_once < ctx.threads() && at_once < indices.len();
    let group = if grouped {
        at_once
    } else {
        indices.len().max(1)
    };
    let mut out = Vec::with_capacity(indices.len());
    for part in indices.chunks(group) {
        out.extend(
            ctx.par_try_map(part.len(), if grouped { 0 } else { every }, |k| {
                Ok(pc.shift_of(&roi_luminance(frames, part[k], roi)?))
            })?,
        );
        if grouped && report {
            ctx.progress(out.len() as u64, indices.len() as u64);
        }
    }
    Ok(out)
}

/// The reference of the global aligners: the mean of the luminance of the
/// best `k` frames of the source (frames `0..k`, the source being ordered
/// best first), each aligned to frame 0 by phase correlation (on the
/// [`Roi`] around the object of frame 0). The result sits
/// where frame 0 is and has about `sqrt(k)` times less noise than one frame.
pub fn mean_of_best(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    k: usize,
) -> Result<Vec<f32>, StageError> {
    mean_of_best_seeing(ctx, frames, k, &mut |_| {})
}

/// [`mean_of_best`], `first` shown the luminance of frame 0 (the best) as
/// it is read: a caller that needs it too (the multi-point aligner's noise
/// model) does not read a large frame a second time.
pub fn mean_of_best_seeing(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    k: usize,
    first: &mut dyn FnMut(&[f32]),
) -> Result<Vec<f32>, StageError> {
    mean_of_best_measured(
        ctx,
        frames,
        k,
        &|crop, roi, idx| measure_region(ctx, frames, crop, roi, idx, false),
        None,
        first,
    )
}

/// The shifts of frames `idx` against `crop` (the region `roi` of a
/// reference, `roi.w × roi.h`), measured on the CPU: a [`PhaseCorrelator`]
/// on the region and [`measure_shifts`].
pub fn measure_region(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    crop: &[f32],
    roi: Roi,
    idx: &[usize],
    report: bool,
) -> Result<Vec<Shift>, StageError> {
    let pc = PhaseCorrelator::new(crop, roi.w, roi.h);
    measure_shifts(ctx, frames, &pc, roi, idx, report)
}

/// How [`mean_of_best_measured`] measures shifts: given the region `roi`
/// of the best frame (`crop`, `roi.w × roi.h`), the shifts of frames `idx`.
pub type MeasureFn<'a> = dyn Fn(&[f32], Roi, &[usize]) -> Result<Vec<Shift>, StageError> + 'a;

/// How [`mean_of_best_measured`] may add the frames up elsewhere (a GPU
/// path, over the frames it keeps on the device): the sum, in the order
/// given, of frames `(index, shift)` resampled as by [`shifted`], with all
/// their channels (`width × height × channels`); `None`: added on the CPU.
pub type SumFn<'a> = dyn Fn(&[(usize, Shift)]) -> Result<Option<Vec<f32>>, StageError> + 'a;

/// [`mean_of_best`] with the shifts measured by `measure` (a GPU path
/// measures them on the device; the resampling and the sums are the same);
/// `first` as in [`mean_of_best_seeing`].
pub fn mean_of_best_measured(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    k: usize,
    measure: &MeasureFn,
    sum: Option<&SumFn>,
    first: &mut dyn FnMut(&[f32]),
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    if info.count == 0 {
        return Err(StageError::invalid_params(
            "no frames to build a reference from",
        ));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    let best = frame_luminance_in(ctx, frames, 0)?;
    first(&best);
    let k = k.clamp(1, info.count as usize);
    if k == 1 {
        return Ok(best);
    }
    let roi = Roi::around_object(&best, w, h);
    let idx: Vec<usize> = (1..k).collect();
    let shifts = measure(&roi.crop(&best, w), roi, &idx)?;
    if let Some(sum) = sum {
        // Frame 0 unshifted (bicubic weights at zero shift: the samples).
        let zero = Shift {
            dx: 0.0,
            dy: 0.0,
            peak: 1.0,
        };
        let items: Vec<(usize, Shift)> = std::iter::once((0, zero))
            .chain(idx.iter().copied().zip(shifts.iter().copied()))
            .collect();
        if let Some(total) = sum(&items)? {
            let mut acc = luminance(&total, info.channels as usize);
            acc.iter_mut().for_each(|a| *a /= k as f32);
            return Ok(acc);
        }
    }
    let mut acc: Vec<f32> = best;
    let jobs: Vec<(usize, Shift)> = idx.iter().copied().zip(shifts).collect();
    if frames_in_flight(ctx, w, h, 2) < ctx.threads() {
        // Large frames: one at a time, its rows shifted and added in
        // parallel bands (no shifted copy; the same sums).
        let mut lum = Vec::new();
        for &(i, s) in &jobs {
            ctx.check_cancelled()?;
            luminance_into(Some(ctx), frames, i, &mut lum)?;
            ctx.par_chunks_mut(&mut acc, BAND_ROWS * w, |c, band| {
                let mut moved = vec![0.0f32; band.len()];
                let at = (s.dx, s.dy);
                shift_plane_rows(
                    &lum,
                    w,
                    h,
                    1,
                    at,
                    Interp::Bicubic,
                    c * BAND_ROWS,
                    &mut moved,
                );
                band.iter_mut().zip(moved).for_each(|(a, v)| *a += v);
            })?;
        }
        acc.iter_mut().for_each(|a| *a /= k as f32);
        return Ok(acc);
    }
    // Decoded and resampled in parallel, one frame per worker at a time;
    // added in index order (the same sums as a serial loop).
    for chunk in jobs.chunks(ctx.threads().max(1)) {
        ctx.check_cancelled()?;
        let moved = ctx.par_map(chunk.len(), |j| {
            let (i, s) = chunk[j];
            frame_luminance(frames, i).map(|l| shifted(&l, w, h, s))
        })?;
        for m in moved {
            acc.iter_mut().zip(m?).for_each(|(a, v)| *a += v);
        }
    }
    acc.iter_mut().for_each(|a| *a /= k as f32);
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
    use jupiter_testkit::frames::image_from;

    fn blobs(w: usize, h: usize, sx: f32, sy: f32) -> Vec<f32> {
        image_from(w, h, |x, y| {
            let (x, y) = (x - sx, y - sy);
            0.4 + 0.3 * (-((x - 20.0).powi(2) + (y - 18.0).powi(2)) / 30.0).exp()
                + 0.2 * (-((x - 41.0).powi(2) + (y - 30.0).powi(2)) / 12.0).exp()
        })
    }

    /// A limb-darkened disc of radius `r` centred at `(cx, cy)` on black sky, with bands.
    fn planet(w: usize, h: usize, cx: f32, cy: f32, r: f32) -> Vec<f32> {
        image_from(w, h, |x, y| {
            let (x, y) = (x - cx, y - cy);
            let d = (x * x + y * y).sqrt() / r;
            let body = 1.0 / (1.0 + ((d - 1.0) * 40.0).exp());
            body * (0.6 + 0.25 * (y * 0.3).sin() + 0.1 * (x * 0.17).cos())
        })
    }

    #[test]
    fn roi_holds_a_small_planet_and_is_the_whole_frame_otherwise() {
        let (w, h) = (640, 480);
        let p = planet(w, h, 300.0, 250.0, 60.0);
        let roi = Roi::around_object(&p, w, h);
        assert!(roi.w < w / 2 && roi.h < h / 2 + 40, "{roi:?}");
        // The disc and a 32-pixel margin lie inside.
        assert!(roi.x0 + 32 <= 240 && roi.x0 + roi.w >= 360 + 32, "{roi:?}");
        assert!(roi.y0 + 32 <= 190 && roi.y0 + roi.h >= 310 + 32, "{roi:?}");
        assert_eq!(fft_size(roi.w), roi.w);
        assert_eq!(fft_size(roi.h), roi.h);
        // A surface filling the frame, a big planet and a flat frame: whole frame.
        let surface = image_from(w, h, |x, _| 0.5 + 0.3 * (x * 0.1).sin());
        for plane in [surface, planet(w, h, 320.0, 240.0, 200.0), vec![0.2; w * h]] {
            assert_eq!(Roi::around_object(&plane, w, h), Roi::full(w, h));
        }
        // A surface larger than the cap: its centre.
        let big = Roi::full(5000, 3001).at_most(MAX_ROI_SIDE);
        assert_eq!((big.x0, big.y0, big.w, big.h), (1988, 988, 1024, 1024));
        assert_eq!(Roi::full(w, h).at_most(MAX_ROI_SIDE), Roi::full(w, h));
        assert_eq!(
            (fft_size(97), fft_size(128), fft_size(241)),
            (100, 128, 243)
        );
    }

    #[test]
    fn shifts_measured_on_the_roi_equal_whole_frame_shifts() {
        let (w, h) = (320, 256);
        let truth = [(0.0f32, 0.0f32), (3.4, -2.2), (-7.75, 5.1), (12.0, 9.3)];
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            truth
                .iter()
                .map(|&(x, y)| planet(w, h, 150.0 + x, 130.0 + y, 40.0))
                .collect(),
        );
        let reference = planet(w, h, 150.0, 130.0, 40.0);
        let roi = Roi::around_object(&reference, w, h);
        assert!(roi.w * roi.h * 2 <= w * h, "{roi:?}");
        let be = ThreadBackend::new(2);
        let full = Roi::full(w, h);
        let on = |r: Roi| {
            let pc = PhaseCorrelator::new(&r.crop(&reference, w), r.w, r.h);
            be.with_ctx("t", |ctx| {
                measure_shifts(ctx, &frames.as_ref(), &pc, r, &[0, 1, 2, 3], false)
            })
            .unwrap()
        };
        let (a, b) = (on(roi), on(full));
        for ((sa, sb), (x, y)) in a.iter().zip(&b).zip(truth) {
            assert!(
                (sa.dx - x).abs() < 0.05 && (sa.dy - y).abs() < 0.05,
                "roi: {sa:?} vs ({x}, {y})"
            );
            assert!(
                (sb.dx - x).abs() < 0.05 && (sb.dy - y).abs() < 0.05,
                "full: {sb:?} vs ({x}, {y})"
            );
        }
    }

    #[test]
    fn mean_of_best_sits_on_frame_zero() {
        let (w, h) = (64, 48);
        let shifts = [(0.0, 0.0), (1.5, -1.0), (-2.0, 0.5), (0.7, 2.2)];
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            shifts.iter().map(|&(x, y)| blobs(w, h, x, y)).collect(),
        );
        let be = ThreadBackend::new(2);
        let r = be
            .with_ctx("t", |ctx| mean_of_best(ctx, &frames.as_ref(), 4))
            .unwrap();
        let truth = blobs(w, h, 0.0, 0.0);
        let err = (6..h - 6)
            .flat_map(|y| (6..w - 6).map(move |x| y * w + x))
            .map(|i| (r[i] - truth[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 5e-3, "max error {err}");
    }

    #[test]
    fn shifted_moves_content_back() {
        let (w, h) = (64, 48);
        let a = blobs(w, h, 2.0, -1.0);
        let b = shifted(
            &a,
            w,
            h,
            Shift {
                dx: 2.0,
                dy: -1.0,
                peak: 1.0,
            },
        );
        let truth = blobs(w, h, 0.0, 0.0);
        let err = (4..h - 4)
            .flat_map(|y| (4..w - 4).map(move |x| y * w + x))
            .map(|i| (b[i] - truth[i]).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-4, "max error {err}");
    }
}
