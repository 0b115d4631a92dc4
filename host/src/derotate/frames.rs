//! The frames as the aligner sees them during a derotation (each resampled
//! to the surface at the reference time), and the warps the stacker gets
//! (the aligner's warps composed with the derotation, so that every frame
//! is resampled once, from the capture, with the limb weights).

use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RSliceMut};
use jupiter_plugin_api::{
    frame::FrameSourceExt, Alignment, FrameInfo, FrameSource, FrameWarp, StageError, WarpField,
};

use super::globe::Globe;
use crate::frames::CaptureFrames;

/// How one selected frame is derotated: where its disc centre is and how
/// far the planet turned between it and the reference time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameTurn {
    pub centre: (f64, f64),
    /// Radians: `ω · (t_frame − t_reference)`.
    pub alpha: f64,
}

/// The derotation field of one frame in its own pixels, on a grid over its
/// disc (sky around it, so that outside the grid nothing moves).
pub fn frame_field(globe: &Globe, turn: FrameTurn, step: f64, size: (usize, usize)) -> WarpField {
    let margin = 2.0 * step;
    let half = globe.a.max(globe.b) + margin;
    let span = |c: f64, len: usize| {
        let lo = (c - half).max(0.0).floor();
        let hi = (c + half).min(len as f64 - 1.0).max(lo);
        (lo, ((hi - lo) / step).ceil() as usize + 1)
    };
    let (x0, cols) = span(turn.centre.0, size.0);
    let (y0, rows) = span(turn.centre.1, size.1);
    let mut v = [Vec::new(), Vec::new(), Vec::new()];
    for j in 0..rows {
        for i in 0..cols {
            let p = (x0 + i as f64 * step, y0 + j as f64 * step);
            let (dx, dy, w) =
                globe.derotation((p.0 - turn.centre.0, p.1 - turn.centre.1), turn.alpha);
            v[0].push(dx as f32);
            v[1].push(dy as f32);
            v[2].push(w as f32);
        }
    }
    WarpField::new(
        (cols, rows),
        (x0 as f32, y0 as f32),
        (step as f32, step as f32),
        v,
    )
}

/// The selected frames, each resampled (bicubic) to show the surface as it
/// was at the reference time: what the aligner measures, so that its
/// reference and its local shifts carry no rotation.
pub struct DerotatedFrames<'a> {
    pub inner: &'a CaptureFrames,
    /// One field per frame of `inner` (see [`frame_field`]).
    pub fields: &'a [WarpField],
    /// Each frame derotated once and kept (aligners read a frame several
    /// times), when they all fit [`CACHE_BYTES`]; empty otherwise.
    pub cache: Vec<std::sync::OnceLock<Vec<f32>>>,
}

/// The most memory the derotated frames may keep.
pub const CACHE_BYTES: usize = 1 << 30;

impl<'a> DerotatedFrames<'a> {
    /// The frames of `inner` derotated by `fields`, kept in memory when
    /// they fit.
    pub fn new(inner: &'a CaptureFrames, fields: &'a [WarpField]) -> DerotatedFrames<'a> {
        let bytes = inner.info().frame_len() * 4 * fields.len();
        let cache = if bytes <= CACHE_BYTES {
            (0..fields.len())
                .map(|_| std::sync::OnceLock::new())
                .collect()
        } else {
            Vec::new()
        };
        DerotatedFrames {
            inner,
            fields,
            cache,
        }
    }
}

impl FrameSource for DerotatedFrames<'_> {
    fn info(&self) -> FrameInfo {
        self.inner.info()
    }

    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        let info = self.info();
        if let Err(e) = info.check_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        match catch_unwind(AssertUnwindSafe(|| self.cached(index, y0, rows, out))) {
            Ok(r) => r.into(),
            Err(_) => RResult::RErr(StageError::internal("derotating a frame panicked")),
        }
    }
}

impl DerotatedFrames<'_> {
    /// Rows of the kept frame (derotated whole on first use), or derotated now.
    fn cached(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> Result<(), StageError> {
        let Some(slot) = self.cache.get(index) else {
            return self.read(index, y0, rows, out);
        };
        let frame = match slot.get() {
            Some(f) => f,
            None => {
                let info = self.info();
                let mut f = vec![0.0f32; info.frame_len()];
                self.read(index, 0, info.height as usize, f.as_mut_slice().into())?;
                slot.get_or_init(|| f)
            }
        };
        let rl = self.info().row_len();
        out.copy_from_slice(&frame[y0 * rl..(y0 + rows) * rl]);
        Ok(())
    }

    fn read(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> Result<(), StageError> {
        let info = self.info();
        let (w, h, ch) = (
            info.width as usize,
            info.height as usize,
            info.channels as usize,
        );
        let field = &self.fields[index];
        let reach = field.dy.iter().fold(0f32, |m, v| m.max(v.abs())).ceil() as usize + 2;
        let lo = y0.saturating_sub(reach);
        let hi = (y0 + rows + reach).min(h);
        let mut src = vec![0.0f32; (hi - lo) * w * ch];
        let source = self.inner.source();
        source
            .read_rows(index, lo, hi - lo, src.as_mut_slice().into())
            .into_result()?;
        let grid_x = (field.x0, field.x0 + (field.cols - 1) as f32 * field.step_x);
        let grid_y = (field.y0, field.y0 + (field.rows - 1) as f32 * field.step_y);
        let xa = grid_x.0.max(0.0) as usize;
        let xb = (grid_x.1 as usize).min(w - 1);
        // Per grid column, the node pair and fraction (the same every row).
        let nodes: Vec<(usize, usize, f32)> =
            (xa..=xb).map(|x| field.column_nodes(x as f32)).collect();
        let c = field.cols as usize;
        let mut along = vec![0.0f32; 3 * c];
        for r in 0..rows {
            let y = y0 + r;
            let dst = &mut out[r * w * ch..(r + 1) * w * ch];
            let src_row = &src[(y - lo) * w * ch..(y - lo + 1) * w * ch];
            dst.copy_from_slice(src_row);
            if (y as f32) < grid_y.0 || y as f32 > grid_y.1 {
                continue;
            }
            field.along_row(y as f32, &mut along);
            let (fdx, fdy) = (&along[..c], &along[c..2 * c]);
            for (x, &(i0, i1, t)) in (xa..=xb).zip(&nodes) {
                let dx = fdx[i0] * (1.0 - t) + fdx[i1] * t;
                let dy = fdy[i0] * (1.0 - t) + fdy[i1] * t;
                if dx == 0.0 && dy == 0.0 {
                    continue;
                }
                let sy = y as f32 + dy - lo as f32;
                bilinear(
                    &src,
                    (w, hi - lo, ch),
                    x as f32 + dx,
                    sy,
                    &mut dst[x * ch..(x + 1) * ch],
                );
            }
        }
        Ok(())
    }
}

/// Bilinear sample of an interleaved image at `(x, y)` (edges clamped):
/// enough for what the aligner measures, and a quarter of bicubic's taps
/// (the stacker resamples from the capture with its own interpolation).
fn bilinear(img: &[f32], (w, h, ch): (usize, usize, usize), x: f32, y: f32, out: &mut [f32]) {
    let x = x.clamp(0.0, (w - 1) as f32);
    let y = y.clamp(0.0, (h - 1) as f32);
    let (x0, y0) = (x as usize, y as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    for (c, o) in out.iter_mut().enumerate() {
        let at = |xx: usize, yy: usize| img[(yy * w + xx) * ch + c];
        let top = at(x0, y0) + (at(x1, y0) - at(x0, y0)) * fx;
        let bot = at(x0, y1) + (at(x1, y1) - at(x0, y1)) * fx;
        *o = top + (bot - top) * fy;
    }
}

/// Catmull-Rom bicubic sample of an interleaved image at `(x, y)` (edges
/// clamped) into `out` (one value per channel).
pub(super) fn bicubic(
    img: &[f32],
    (w, h, ch): (usize, usize, usize),
    x: f32,
    y: f32,
    out: &mut [f32],
) {
    let (ix, iy) = (x.floor(), y.floor());
    let (wx, wy) = (cubic_weights(x - ix), cubic_weights(y - iy));
    let clamp = |v: f32, n: usize| (v.max(0.0) as usize).min(n - 1);
    out.iter_mut().for_each(|o| *o = 0.0);
    for (j, wyj) in wy.iter().enumerate() {
        let yy = clamp(iy + j as f32 - 1.0, h);
        for (i, wxi) in wx.iter().enumerate() {
            let xx = clamp(ix + i as f32 - 1.0, w);
            let wgt = wyj * wxi;
            let px = &img[(yy * w + xx) * ch..(yy * w + xx + 1) * ch];
            for (o, v) in out.iter_mut().zip(px) {
                *o += wgt * v;
            }
        }
    }
}

fn cubic_weights(t: f32) -> [f32; 4] {
    let (t2, t3) = (t * t, t * t * t);
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// The stacker's warps: for each frame, the aligner's warp (measured on the
/// derotated frames) followed by the frame's derotation, as one field on a
/// grid that covers the disc (and the aligner's own grid), with the limb
/// weights. Frame `k`'s output pixel `x` samples the capture at
/// `x + a(x) + D(x + a(x))`.
pub fn compose(
    alignment: &Alignment,
    globe: &Globe,
    turns: &[FrameTurn],
    step: f64,
    size: (usize, usize),
) -> Alignment {
    let (x0, y0, cols, rows) = grid(alignment, globe, turns, step, size);
    let warps = alignment
        .warps
        .iter()
        .zip(turns)
        .map(|(warp, turn)| {
            let dense = warp.dense_field();
            let field = dense.as_deref();
            let mut v = [Vec::new(), Vec::new(), Vec::new()];
            for j in 0..rows {
                for i in 0..cols {
                    let (x, y) = (x0 + i as f64 * step, y0 + j as f64 * step);
                    let (fx, fy, fw) =
                        field.map_or((0.0, 0.0, 1.0), |f| f.sample(x as f32, y as f32));
                    let (ax, ay) = (warp.dx as f64 + fx as f64, warp.dy as f64 + fy as f64);
                    let q = (x + ax - turn.centre.0, y + ay - turn.centre.1);
                    let (dx, dy, dw) = globe.derotation(q, turn.alpha);
                    v[0].push((fx as f64 + dx) as f32);
                    v[1].push((fy as f64 + dy) as f32);
                    v[2].push((fw as f64 * dw) as f32);
                }
            }
            let f = WarpField::new(
                (cols, rows),
                (x0 as f32, y0 as f32),
                (step as f32, step as f32),
                v,
            );
            FrameWarp::with_field(warp.dx, warp.dy, f)
        })
        .collect::<Vec<_>>();
    Alignment {
        warps: warps.into(),
        reference: alignment.reference,
    }
}

/// Where the disc lies in the stack: the median over the frames of their
/// disc centres minus their global shifts.
pub fn output_centre(alignment: &Alignment, turns: &[FrameTurn]) -> (f64, f64) {
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(0.0)
    };
    let pairs = || alignment.warps.iter().zip(turns);
    (
        median(pairs().map(|(w, t)| t.centre.0 - w.dx as f64).collect()),
        median(pairs().map(|(w, t)| t.centre.1 - w.dy as f64).collect()),
    )
}

/// The common grid of the composed fields: the disc in output pixels (the
/// frames' disc centres minus their global shifts; the median of them) with
/// a margin, joined with the aligner's own grid.
fn grid(
    alignment: &Alignment,
    globe: &Globe,
    turns: &[FrameTurn],
    step: f64,
    size: (usize, usize),
) -> (f64, f64, usize, usize) {
    let (cx, cy) = output_centre(alignment, turns);
    let half = globe.a.max(globe.b) + 3.0 * step;
    let (mut xa, mut xb) = (cx - half, cx + half);
    let (mut ya, mut yb) = (cy - half, cy + half);
    if let Some(f) = alignment.warps.iter().find_map(|w| w.dense_field()) {
        xa = xa.min(f.x0 as f64);
        ya = ya.min(f.y0 as f64);
        xb = xb.max(f.x0 as f64 + (f.cols.max(1) - 1) as f64 * f.step_x as f64);
        yb = yb.max(f.y0 as f64 + (f.rows.max(1) - 1) as f64 * f.step_y as f64);
    }
    let (xa, ya) = (xa.max(0.0).floor(), ya.max(0.0).floor());
    let xb = xb.min(size.0 as f64 - 1.0).max(xa);
    let yb = yb.min(size.1 as f64 - 1.0).max(ya);
    let cols = ((xb - xa) / step).ceil() as usize + 1;
    let rows = ((yb - ya) / step).ceil() as usize + 1;
    (xa, ya, cols, rows)
}

/// Reads a whole frame (for the derotation's own pass over the frames).
pub fn read_frame(frames: &CaptureFrames, index: usize) -> Result<Vec<f32>, StageError> {
    frames.source().frame(index)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::FrameWarp;

    fn globe() -> Globe {
        Globe {
            a: 40.0,
            b: 37.4,
            pole_deg: 20.0,
            mirrored: false,
            latitude_deg: 0.0,
        }
    }

    #[test]
    fn the_frame_field_is_the_model_at_its_nodes_and_still_off_the_disc() {
        let g = globe();
        let turn = FrameTurn {
            centre: (60.0, 50.0),
            alpha: 0.05,
        };
        let f = frame_field(&g, turn, 4.0, (120, 100));
        let (dx, dy, w) = f.sample(60.0, 50.0);
        let (ex, ey, ew) = g.derotation((0.0, 0.0), 0.05);
        assert!(
            (dx as f64 - ex).abs() < 1e-4
                && (dy as f64 - ey).abs() < 1e-4
                && (w as f64 - ew).abs() < 1e-4
        );
        assert_eq!(f.sample(2.0, 2.0), (0.0, 0.0, 1.0));
        assert_eq!(f.sample(118.0, 98.0), (0.0, 0.0, 1.0));
    }

    #[test]
    fn composing_a_global_shift_adds_the_derotation_where_the_frame_is_sampled() {
        let g = globe();
        let turns = [FrameTurn {
            centre: (63.0, 48.0),
            alpha: -0.04,
        }];
        let al = Alignment {
            warps: vec![FrameWarp::shift(3.0, -2.0)].into(),
            reference: 0,
        };
        let c = compose(&al, &g, &turns, 4.0, (120, 100));
        let f = c.warps[0].dense_field().unwrap();
        // Output (60, 50) samples the frame at (63, 48): its disc centre.
        let (dx, dy, w) = f.sample(60.0, 50.0);
        let (ex, ey, _) = g.derotation((0.0, 0.0), -0.04);
        assert!(
            (dx as f64 - ex).abs() < 1e-2 && (dy as f64 - ey).abs() < 1e-2,
            "{dx} {dy} {ex} {ey}"
        );
        assert!(w > 0.99);
        assert_eq!((c.warps[0].dx, c.warps[0].dy), (3.0, -2.0));
    }
}
