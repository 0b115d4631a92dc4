//! Where drops land: the geometry the CPU and GPU paths share.
//!
//! Coordinates are the reference frame's pixel centres (pixel `x` spans
//! `[x − ½, x + ½]`). Output pixel `u` of an output `s` times finer spans
//! `[u/s − ½, (u+1)/s − ½]`. A frame's content is displaced by `d` (the
//! aligner's convention: `frame(x + d) ≈ reference(x)`), so the frame's
//! pixel `x_f` lies at `x_f − d` in the reference, and its drop is the
//! square of side `pixfrac` centred there. An output pixel receives from
//! every drop that overlaps it, weighted by the overlap's area; `d` is taken
//! at the output pixel's centre (the warp field is smooth over a pixel).

/// Output size and per-axis scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geometry {
    pub w: usize,
    pub h: usize,
    pub out_w: usize,
    pub out_h: usize,
    pub sx: f32,
    pub sy: f32,
    pub pixfrac: f32,
}

impl Geometry {
    /// `w × h` frames drizzled at `scale` (the output rounded to whole
    /// pixels; each axis's scale is then exact).
    pub fn new(w: usize, h: usize, scale: f32, pixfrac: f32) -> Geometry {
        let out_w = ((w as f32 * scale).round() as usize).max(1);
        let out_h = ((h as f32 * scale).round() as usize).max(1);
        Geometry {
            w,
            h,
            out_w,
            out_h,
            sx: out_w as f32 / w as f32,
            sy: out_h as f32 / h as f32,
            pixfrac,
        }
    }

    /// Reference coordinate of output column `u`'s centre.
    pub fn ref_x(&self, u: usize) -> f32 {
        (u as f32 + 0.5) / self.sx - 0.5
    }
    /// Reference coordinate of output row `v`'s centre.
    pub fn ref_y(&self, v: usize) -> f32 {
        (v as f32 + 0.5) / self.sy - 0.5
    }

    /// Reference rows `[lo, hi]` that output rows `v0 .. v0 + rows` span.
    pub fn ref_rows(&self, v0: usize, rows: usize) -> (f32, f32) {
        (
            v0 as f32 / self.sy - 0.5,
            (v0 + rows) as f32 / self.sy - 0.5,
        )
    }
}

/// The input pixels along one axis whose drops overlap the output pixel
/// spanning `[a0, a1]` (reference coordinates) under displacement `d`, with
/// each overlap's length; `n` input pixels on the axis. Calls `f(index,
/// overlap)` for each positive overlap.
#[inline]
pub fn overlaps(a0: f32, a1: f32, d: f32, pixfrac: f32, n: usize, mut f: impl FnMut(usize, f32)) {
    let half = 0.5 * pixfrac;
    // Drop of x_f: [x_f − d − half, x_f − d + half].
    let first = (a0 + d - half).floor() as isize;
    let last = (a1 + d + half).ceil() as isize;
    for xf in first.max(0)..=last.min(n as isize - 1) {
        let c = xf as f32 - d;
        let o = (a1.min(c + half) - a0.max(c - half)).max(0.0);
        if o > 0.0 {
            f(xf as usize, o);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlaps_tile_the_output_pixel() {
        // pixfrac 1, scale 1, no shift: exactly the one pixel.
        let mut got = Vec::new();
        overlaps(4.5, 5.5, 0.0, 1.0, 10, |x, o| got.push((x, o)));
        assert_eq!(got, vec![(5, 1.0)]);
        // Shifted content by +0.25 (frame(x + d) ≈ ref(x)): ref pixel 5
        // gets 3/4 of frame pixel 5 and 1/4 of frame pixel 6.
        got.clear();
        overlaps(4.5, 5.5, 0.25, 1.0, 10, |x, o| got.push((x, o)));
        assert_eq!(got, vec![(5, 0.75), (6, 0.25)]);
        // Outside the frame: nothing.
        got.clear();
        overlaps(-1.5, -0.5, 0.0, 1.0, 10, |x, o| got.push((x, o)));
        assert!(got.is_empty());
    }
}
