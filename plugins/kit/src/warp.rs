//! Sub-pixel resampling of frame rows under a [`FrameWarp`], streamed from a
//! frame source: only the input rows a band of output needs are decoded.

use jupiter_plugin_api::{FrameSourceRef, FrameWarp, StageError};

/// Interpolation kernel for fractional shifts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interp {
    /// 2×2 taps; slightly softening.
    Bilinear,
    /// 4×4 Catmull-Rom taps; keeps detail (default).
    Bicubic,
}

impl Interp {
    /// Parses `bilinear` / `bicubic`.
    pub fn parse(s: &str) -> Result<Interp, StageError> {
        match s {
            "bilinear" => Ok(Interp::Bilinear),
            "bicubic" => Ok(Interp::Bicubic),
            other => Err(StageError::invalid_params(format!("interpolation must be bilinear or bicubic, not '{other}'"))),
        }
    }
}

/// Catmull-Rom weights for taps at -1, 0, 1, 2 of a fraction `t` in `[0, 1)`.
#[inline]
fn cubic_weights(t: f32) -> [f32; 4] {
    let t2 = t * t;
    let t3 = t2 * t;
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// A window of decoded input rows `y0 .. y0 + rows` of one frame.
pub struct RowWindow<'a> {
    pub data: &'a [f32],
    pub y0: usize,
    pub rows: usize,
    pub width: usize,
    pub channels: usize,
}

impl RowWindow<'_> {
    #[inline]
    fn at(&self, x: isize, y: isize, c: usize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = (y.clamp(self.y0 as isize, (self.y0 + self.rows) as isize - 1) as usize) - self.y0;
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// The value of channel `c` at the real position `(x, y)` (edges replicated).
    #[inline]
    pub fn sample(&self, x: f32, y: f32, c: usize, interp: Interp) -> f32 {
        let (fx, fy) = (x.floor(), y.floor());
        let (tx, ty) = (x - fx, y - fy);
        let (ix, iy) = (fx as isize, fy as isize);
        match interp {
            Interp::Bilinear => {
                let a = self.at(ix, iy, c) * (1.0 - tx) + self.at(ix + 1, iy, c) * tx;
                let b = self.at(ix, iy + 1, c) * (1.0 - tx) + self.at(ix + 1, iy + 1, c) * tx;
                a * (1.0 - ty) + b * ty
            }
            Interp::Bicubic => {
                let wx = cubic_weights(tx);
                let wy = cubic_weights(ty);
                let mut acc = 0.0;
                for (j, wyj) in wy.iter().enumerate() {
                    let yy = iy + j as isize - 1;
                    let mut row = 0.0;
                    for (i, wxi) in wx.iter().enumerate() {
                        row += wxi * self.at(ix + i as isize - 1, yy, c);
                    }
                    acc += wyj * row;
                }
                acc
            }
        }
    }
}

/// Vertical extent of a warp's shifts: `(min dy, max dy)`.
fn dy_range(warp: &FrameWarp) -> (f32, f32) {
    match warp.field.as_ref().into_option() {
        None => (warp.dy, warp.dy),
        Some(f) => {
            let lo = f.dy.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = f.dy.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (warp.dy + lo.min(0.0), warp.dy + hi.max(0.0))
        }
    }
}

/// Resamples output rows `y0 .. y0 + rows` of frame `index` under `warp` into
/// `out` (`rows * width * channels` samples): `out(x, y) = frame(x + dx, y + dy)`.
/// When the warp has a field, its interpolated weight per pixel goes into
/// `weight` (if given); otherwise `weight` is filled with 1.
/// `scratch` holds the decoded input rows and is reused between calls.
#[allow(clippy::too_many_arguments)]
pub fn warped_rows(
    frames: &FrameSourceRef,
    index: usize,
    warp: &FrameWarp,
    interp: Interp,
    y0: usize,
    rows: usize,
    out: &mut [f32],
    mut weight: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) -> Result<(), StageError> {
    let info = frames.info();
    let (w, h, ch) = (info.width as usize, info.height as usize, info.channels as usize);
    let (lo, hi) = dy_range(warp);
    let in_y0 = ((y0 as f32 + lo).floor() as isize - 2).clamp(0, h as isize - 1) as usize;
    let in_y1 = (((y0 + rows) as f32 + hi).ceil() as isize + 3).clamp(in_y0 as isize + 1, h as isize) as usize;
    scratch.resize((in_y1 - in_y0) * w * ch, 0.0);
    frames.read_rows(index, in_y0, in_y1 - in_y0, scratch.as_mut_slice().into()).into_result()?;
    let win = RowWindow { data: scratch, y0: in_y0, rows: in_y1 - in_y0, width: w, channels: ch };
    let field = warp.field.as_ref().into_option();
    for ry in 0..rows {
        let y = (y0 + ry) as f32;
        for x in 0..w {
            let (mut dx, mut dy, mut wt) = (warp.dx, warp.dy, 1.0);
            if let Some(f) = field {
                let (fx, fy, fw) = f.sample(x as f32, y);
                dx += fx;
                dy += fy;
                wt = fw;
            }
            let (sx, sy) = (x as f32 + dx, y + dy);
            let o = (ry * w + x) * ch;
            for c in 0..ch {
                out[o + c] = win.sample(sx, sy, c, interp);
            }
            if let Some(wb) = weight.as_deref_mut() {
                wb[ry * w + x] = wt;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::MemFrames;

    fn smooth(w: usize, h: usize, sx: f32, sy: f32) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - sx, (i / w) as f32 - sy);
                0.5 + 0.25 * (x * 0.3).sin() * (y * 0.2).cos()
            })
            .collect()
    }

    #[test]
    fn shifting_back_recovers_the_reference() {
        let (w, h) = (40, 30);
        let (sx, sy) = (1.4f32, -2.3f32);
        let frames = MemFrames::new(w as u32, h as u32, 1, vec![smooth(w, h, sx, sy)]);
        let truth = smooth(w, h, 0.0, 0.0);
        for interp in [Interp::Bilinear, Interp::Bicubic] {
            let mut out = vec![0.0; w * h];
            let mut scratch = Vec::new();
            // Read in two bands to exercise the row window.
            for (y0, rows) in [(0, 13), (13, 17)] {
                let band = &mut out[y0 * w..(y0 + rows) * w];
                warped_rows(&frames.as_ref(), 0, &FrameWarp::shift(sx, sy), interp, y0, rows, band, None, &mut scratch).unwrap();
            }
            // Compare away from the borders, where edge replication differs.
            let mut err = 0.0f32;
            for y in 4..h - 4 {
                for x in 4..w - 4 {
                    err = err.max((out[y * w + x] - truth[y * w + x]).abs());
                }
            }
            let tol = if interp == Interp::Bicubic { 2e-3 } else { 1.5e-2 };
            assert!(err < tol, "{interp:?}: max error {err}");
        }
    }
}
