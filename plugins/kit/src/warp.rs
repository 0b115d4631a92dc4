//! Sub-pixel resampling of frame rows under a [`FrameWarp`], streamed from a
//! frame source: only the input rows a band of output needs are decoded.

use jupiter_plugin_api::{FrameSourceRef, FrameWarp, StageError, WarpField};

/// Interpolation kernel for fractional shifts: the parameter type of the
/// stackers' `interpolation` ([`jupiter_plugin_api::Interpolation`]), under
/// the short name the resamplers use.
pub use jupiter_plugin_api::Interpolation as Interp;

/// `floor` for finite values well inside the `i32` range, without the libm
/// call `f32::floor` compiles to on baseline x86-64 (hot in the samplers).
#[inline]
pub fn floor_i(v: f32) -> isize {
    let i = v as isize;
    if (i as f32) > v {
        i - 1
    } else {
        i
    }
}

/// Catmull-Rom weights for taps at -1, 0, 1, 2 of a fraction `t` in `[0, 1)`:
/// the ones the warp fields are refined with ([`jupiter_plugin_api::frame::refine_nodes`]).
pub use jupiter_plugin_api::frame::catmull_rom as cubic_weights;

/// Cubic-convolution weights with `a = −0.75` ([`Interp::Sharp`]) for taps
/// at -1, 0, 1, 2 of a fraction `t` in `[0, 1)`; `shaders/common.wgsl`'s
/// `sharp_cubic` is the same.
#[inline(always)]
pub fn sharp_cubic_weights(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    // |d| <= 1: (a+2)|d|³ − (a+3)|d|² + 1; 1 < |d| < 2: a(|d|³ − 5|d|² + 8|d| − 4).
    let near = |d: f32| ((A + 2.0) * d - (A + 3.0)) * d * d + 1.0;
    let far = |d: f32| A * (((d - 5.0) * d + 8.0) * d - 4.0);
    [far(1.0 + t), near(t), near(1.0 - t), far(2.0 - t)]
}

/// The four tap weights of a cubic `interp` (Catmull-Rom for bilinear,
/// which has none: callers use the 2×2 path).
#[inline]
fn cubic_of(interp: Interp, t: f32) -> [f32; 4] {
    match interp {
        Interp::Sharp => sharp_cubic_weights(t),
        _ => cubic_weights(t),
    }
}

/// A window of decoded input rows `y0 .. y0 + rows` of one frame.
pub struct RowWindow<'a> {
    pub data: &'a [f32],
    pub y0: usize,
    pub rows: usize,
    pub width: usize,
    pub channels: usize,
}

impl<'a> RowWindow<'a> {
    /// A window over a whole `width × height × channels` image.
    pub fn whole(data: &'a [f32], width: usize, height: usize, channels: usize) -> RowWindow<'a> {
        RowWindow {
            data,
            y0: 0,
            rows: height,
            width,
            channels,
        }
    }

    /// True when the 4×4 bicubic taps around `(ix, iy)` lie inside the window.
    #[inline(always)]
    fn holds_taps(&self, ix: isize, iy: isize) -> bool {
        ix >= 1
            && iy > self.y0 as isize
            && ((ix + 2) as usize) < self.width
            && ((iy + 2) as usize) < self.y0 + self.rows
    }

    #[inline]
    fn at(&self, x: isize, y: isize, c: usize) -> f32 {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = (y.clamp(self.y0 as isize, (self.y0 + self.rows) as isize - 1) as usize) - self.y0;
        self.data[(y * self.width + x) * self.channels + c]
    }

    /// The value of channel `c` at the real position `(x, y)` (edges replicated).
    #[inline]
    pub fn sample(&self, x: f32, y: f32, c: usize, interp: Interp) -> f32 {
        let (ix, iy) = (floor_i(x), floor_i(y));
        let (tx, ty) = (x - ix as f32, y - iy as f32);
        match interp {
            Interp::Bilinear => {
                let a = self.at(ix, iy, c) * (1.0 - tx) + self.at(ix + 1, iy, c) * tx;
                let b = self.at(ix, iy + 1, c) * (1.0 - tx) + self.at(ix + 1, iy + 1, c) * tx;
                a * (1.0 - ty) + b * ty
            }
            Interp::Bicubic | Interp::Sharp if self.holds_taps(ix, iy) => {
                // Away from the edges: no clamping, the same sums in the same order.
                let (wx, wy) = (cubic_of(interp, tx), cubic_of(interp, ty));
                let ch = self.channels;
                let row_len = self.width * ch;
                let base =
                    (iy - 1 - self.y0 as isize) as usize * row_len + (ix - 1) as usize * ch + c;
                let mut acc = 0.0;
                for (j, wyj) in wy.iter().enumerate() {
                    let r = &self.data[base + j * row_len..];
                    acc += wyj
                        * (wx[0] * r[0] + wx[1] * r[ch] + wx[2] * r[2 * ch] + wx[3] * r[3 * ch]);
                }
                acc
            }
            Interp::Bicubic | Interp::Sharp => {
                let wx = cubic_of(interp, tx);
                let wy = cubic_of(interp, ty);
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

impl RowWindow<'_> {
    /// Every channel at the real position `(x, y)` into `out` (`channels`
    /// values): what [`Self::sample`] gives per channel, bit for bit, with
    /// the bicubic weights computed once per pixel and, away from the
    /// edges, the 4×4 taps read from one bounds-checked block (the per-pixel
    /// overhead of `sample` was most of the warped stack's time).
    #[inline]
    pub fn sample_all(&self, x: f32, y: f32, interp: Interp, out: &mut [f32]) {
        let (ix, iy) = (floor_i(x), floor_i(y));
        if interp == Interp::Bilinear || !self.holds_taps(ix, iy) {
            for (c, o) in out.iter_mut().enumerate() {
                *o = self.sample(x, y, c, interp);
            }
            return;
        }
        let (wx, wy) = (
            cubic_of(interp, x - ix as f32),
            cubic_of(interp, y - iy as f32),
        );
        let row_len = self.width * self.channels;
        let base =
            (iy - 1 - self.y0 as isize) as usize * row_len + (ix - 1) as usize * self.channels;
        match self.channels {
            1 => out[0] = taps::<1>(&self.data[base..], row_len, 0, &wx, &wy),
            3 => {
                for (c, o) in out.iter_mut().enumerate().take(3) {
                    *o = taps::<3>(&self.data[base..], row_len, c, &wx, &wy);
                }
            }
            ch => {
                for (c, o) in out.iter_mut().enumerate() {
                    *o = taps_dyn(&self.data[base..], row_len, ch, c, &wx, &wy);
                }
            }
        }
    }
}

/// Pixels a [`RowWindow::sample_span`] batch handles together.
const LANES: usize = 8;

#[cfg(target_arch = "x86_64")]
#[path = "warp_avx2.rs"]
mod avx2;

impl RowWindow<'_> {
    /// Every channel at each position `(xs[i], ys[i])` into
    /// `out[i * channels ..]`: what [`Self::sample_all`] gives at each,
    /// bit for bit (same operations, same order). For 1- and 3-channel
    /// windows and cubic kernels, eight pixels go together: their weights
    /// are computed lane by lane and their taps summed lane by lane, which
    /// vectorises; the rest goes pixel by pixel.
    pub fn sample_span(&self, xs: &[f32], ys: &[f32], interp: Interp, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if matches!(self.channels, 1 | 3) && jupiter_plugin_api::simd::has_avx2() {
            let portable = |xs: &[f32], ys: &[f32], out: &mut [f32]| {
                self.sample_span_portable(xs, ys, interp, out)
            };
            // SAFETY: the CPU supports AVX2 (checked above).
            unsafe {
                match self.channels {
                    1 => avx2::span::<1>(self, xs, ys, interp, out, portable),
                    _ => avx2::span::<3>(self, xs, ys, interp, out, portable),
                }
            }
            return;
        }
        self.sample_span_portable(xs, ys, interp, out)
    }

    /// [`Self::sample_span`] without the AVX2 batches.
    fn sample_span_portable(&self, xs: &[f32], ys: &[f32], interp: Interp, out: &mut [f32]) {
        match (interp, self.channels) {
            (Interp::Sharp, 1) => self.span_lanes::<1, _>(xs, ys, out, interp, sharp_cubic_weights),
            (Interp::Bicubic, 1) => self.span_lanes::<1, _>(xs, ys, out, interp, cubic_weights),
            (Interp::Sharp, 3) => self.span_lanes::<3, _>(xs, ys, out, interp, sharp_cubic_weights),
            (Interp::Bicubic, 3) => self.span_lanes::<3, _>(xs, ys, out, interp, cubic_weights),
            (Interp::Bilinear, 1) => self.bilinear_lanes::<1>(xs, ys, out),
            (Interp::Bilinear, 3) => self.bilinear_lanes::<3>(xs, ys, out),
            _ => {
                let ch = self.channels;
                for ((x, y), o) in xs.iter().zip(ys).zip(out.chunks_exact_mut(ch)) {
                    self.sample_all(*x, *y, interp, o);
                }
            }
        }
    }

    /// [`Self::sample_span`] for `CH` channels and a cubic `interp`
    /// whose tap weights `weights` gives.
    fn span_lanes<const CH: usize, W: Fn(f32) -> [f32; 4]>(
        &self,
        xs: &[f32],
        ys: &[f32],
        out: &mut [f32],
        interp: Interp,
        weights: W,
    ) {
        crate::simd::wide(
            #[inline(always)]
            || {
                let n = xs.len().min(ys.len()).min(out.len() / CH);
                let row_len = self.width * CH;
                for b in batches(xs, ys, n) {
                    let Batch {
                        k0,
                        m,
                        ix,
                        tx,
                        iy,
                        ty,
                        ..
                    } = b;
                    let (mut wx, mut wy) = ([[0.0f32; LANES]; 4], [[0.0f32; LANES]; 4]);
                    for l in 0..LANES {
                        let (a, b) = (weights(tx[l]), weights(ty[l]));
                        for i in 0..4 {
                            wx[i][l] = a[i];
                            wy[i][l] = b[i];
                        }
                    }
                    // Lanes whose 4×4 block lies inside the window read it directly;
                    // the others (edges, and lanes past `m`) are sampled alone.
                    // `&`, not `&&`: the lanes' tests run side by side.
                    let (x_end, y0, y_end) = (
                        self.width as i64,
                        self.y0 as i64,
                        (self.y0 + self.rows) as i64,
                    );
                    let inside: [bool; LANES] = std::array::from_fn(|l| {
                        let (x, y) = (ix[l] as i64, iy[l] as i64);
                        (l < m) & (x >= 1) & (y > y0) & (x + 2 < x_end) & (y + 2 < y_end)
                    });
                    if let Some(base) = self.contiguous(&b, &inside, 1) {
                        // The lanes' blocks are one block shifted by a pixel per
                        // lane: each tap row is one run of memory (no gather).
                        for c in 0..CH {
                            let mut acc = [0.0f32; LANES];
                            for (j, wyj) in wy.iter().enumerate() {
                                let r =
                                    &self.data[base + j * row_len + c..][..(LANES + 2) * CH + 1];
                                let v: [[f32; LANES]; 4] = std::array::from_fn(|i| {
                                    std::array::from_fn(|l| r[(i + l) * CH])
                                });
                                for l in 0..LANES {
                                    let row = wx[0][l] * v[0][l]
                                        + wx[1][l] * v[1][l]
                                        + wx[2][l] * v[2][l]
                                        + wx[3][l] * v[3][l];
                                    acc[l] += wyj[l] * row;
                                }
                            }
                            for (l, a) in acc.iter().enumerate() {
                                out[(k0 + l) * CH + c] = *a;
                            }
                        }
                        continue;
                    }
                    let Some(first) = inside.iter().position(|&v| v) else {
                        self.resample_edges::<CH>(&b, &inside, &mut out[k0 * CH..], interp);
                        continue;
                    };
                    let base: [usize; LANES] = std::array::from_fn(|l| {
                        let l = if inside[l] { l } else { first };
                        (iy[l] as usize - 1 - self.y0) * row_len + (ix[l] as usize - 1) * CH
                    });
                    for c in 0..CH {
                        let mut acc = [0.0f32; LANES];
                        for (j, wyj) in wy.iter().enumerate() {
                            // Each lane's four taps of row j from one bounds-checked slice.
                            let mut v = [[0.0f32; LANES]; 4];
                            for (l, at) in base.iter().enumerate() {
                                let r = &self.data[at + j * row_len + c..][..3 * CH + 1];
                                for (i, vi) in v.iter_mut().enumerate() {
                                    vi[l] = r[i * CH];
                                }
                            }
                            for l in 0..LANES {
                                let row = wx[0][l] * v[0][l]
                                    + wx[1][l] * v[1][l]
                                    + wx[2][l] * v[2][l]
                                    + wx[3][l] * v[3][l];
                                acc[l] += wyj[l] * row;
                            }
                        }
                        for l in (0..m).filter(|&l| inside[l]) {
                            out[(k0 + l) * CH + c] = acc[l];
                        }
                    }
                    self.resample_edges::<CH>(&b, &inside, &mut out[k0 * CH..], interp);
                }
            },
        )
    }

    /// [`Self::sample_span`] for `CH` channels, bilinear.
    fn bilinear_lanes<const CH: usize>(&self, xs: &[f32], ys: &[f32], out: &mut [f32]) {
        crate::simd::wide(
            #[inline(always)]
            || {
                let n = xs.len().min(ys.len()).min(out.len() / CH);
                let row_len = self.width * CH;
                for b in batches(xs, ys, n) {
                    let Batch {
                        k0,
                        m,
                        ix,
                        tx,
                        iy,
                        ty,
                        ..
                    } = b;
                    let inside: [bool; LANES] = std::array::from_fn(|l| {
                        l < m
                            && ix[l] >= 0
                            && iy[l] >= self.y0 as i32
                            && (ix[l] as usize) + 1 < self.width
                            && (iy[l] as usize) + 1 < self.y0 + self.rows
                    });
                    if let Some(base) = self.contiguous(&b, &inside, 0) {
                        for c in 0..CH {
                            let top = &self.data[base + c..][..LANES * CH + 1];
                            let bottom = &self.data[base + row_len + c..][..LANES * CH + 1];
                            for l in 0..LANES {
                                let (v00, v01) = (top[l * CH], top[(l + 1) * CH]);
                                let (v10, v11) = (bottom[l * CH], bottom[(l + 1) * CH]);
                                let a = v00 * (1.0 - tx[l]) + v01 * tx[l];
                                let b = v10 * (1.0 - tx[l]) + v11 * tx[l];
                                out[(k0 + l) * CH + c] = a * (1.0 - ty[l]) + b * ty[l];
                            }
                        }
                        continue;
                    }
                    if let Some(first) = inside.iter().position(|&v| v) {
                        let base: [usize; LANES] = std::array::from_fn(|l| {
                            let l = if inside[l] { l } else { first };
                            (iy[l] as usize - self.y0) * row_len + ix[l] as usize * CH
                        });
                        for c in 0..CH {
                            // Each lane's two taps of a row from one bounds-checked slice.
                            let (mut v00, mut v01) = ([0.0f32; LANES], [0.0f32; LANES]);
                            let (mut v10, mut v11) = ([0.0f32; LANES], [0.0f32; LANES]);
                            for (l, at) in base.iter().enumerate() {
                                let top = &self.data[at + c..][..CH + 1];
                                let bottom = &self.data[at + row_len + c..][..CH + 1];
                                (v00[l], v01[l], v10[l], v11[l]) =
                                    (top[0], top[CH], bottom[0], bottom[CH]);
                            }
                            for l in (0..m).filter(|&l| inside[l]) {
                                let a = v00[l] * (1.0 - tx[l]) + v01[l] * tx[l];
                                let b = v10[l] * (1.0 - tx[l]) + v11[l] * tx[l];
                                out[(k0 + l) * CH + c] = a * (1.0 - ty[l]) + b * ty[l];
                            }
                        }
                    }
                    self.resample_edges::<CH>(&b, &inside, &mut out[k0 * CH..], Interp::Bilinear);
                }
            },
        )
    }

    /// Where a full batch's blocks start when they are one block moved a
    /// pixel per lane (all inside, one row, consecutive columns: the field
    /// varies slowly, so most batches of a span are): the index of lane 0's
    /// first tap, `before` pixels up and left of its integer position.
    #[inline(always)]
    fn contiguous(&self, b: &Batch, inside: &[bool; LANES], before: usize) -> Option<usize> {
        let mut same = b.m == LANES;
        for (l, &within) in inside.iter().enumerate() {
            same &= within & (b.iy[l] == b.iy[0]) & (b.ix[l] == b.ix[0] + l as i32);
        }
        same.then(|| {
            ((b.iy[0] as usize - before - self.y0) * self.width + b.ix[0] as usize - before)
                * self.channels
        })
    }

    /// The lanes `l < m` of a batch that are not `inside`, pixel by pixel
    /// (`out` starts at the batch).
    fn resample_edges<const CH: usize>(
        &self,
        b: &Batch,
        inside: &[bool; LANES],
        out: &mut [f32],
        interp: Interp,
    ) {
        for l in (0..b.m).filter(|&l| !inside[l]) {
            for (c, v) in out[l * CH..(l + 1) * CH].iter_mut().enumerate() {
                *v = self.sample(b.px[l], b.py[l], c, interp);
            }
        }
    }
}

/// Up to [`LANES`] positions of a span from `k0`: how many (`m`), and
/// per lane the position, its integer part and its fraction (lanes past
/// `m` repeat the last position).
struct Batch {
    k0: usize,
    m: usize,
    px: [f32; LANES],
    py: [f32; LANES],
    ix: [i32; LANES],
    tx: [f32; LANES],
    iy: [i32; LANES],
    ty: [f32; LANES],
}

/// The first `n` positions `(xs[i], ys[i])` in [`Batch`]es.
#[inline(always)]
fn batches<'a>(xs: &'a [f32], ys: &'a [f32], n: usize) -> impl Iterator<Item = Batch> + 'a {
    (0..n).step_by(LANES).map(
        #[inline(always)]
        move |k0| {
            let m = (n - k0).min(LANES);
            let (px, py) = match (xs[k0..].first_chunk(), ys[k0..].first_chunk()) {
                (Some(x), Some(y)) if m == LANES => (*x, *y),
                _ => (lanes_of(&xs[k0..k0 + m]), lanes_of(&ys[k0..k0 + m])),
            };
            let ((ix, tx), (iy, ty)) = (floor_lanes(&px), floor_lanes(&py));
            Batch {
                k0,
                m,
                px,
                py,
                ix,
                tx,
                iy,
                ty,
            }
        },
    )
}

/// Up to [`LANES`] values, the last repeated into the lanes past them.
#[inline(always)]
fn lanes_of(v: &[f32]) -> [f32; LANES] {
    std::array::from_fn(|l| v[l.min(v.len() - 1)])
}

/// [`floor_i`] and the fraction, lane by lane (in `i32`, which vectorises).
#[inline(always)]
fn floor_lanes(v: &[f32; LANES]) -> ([i32; LANES], [f32; LANES]) {
    let mut i = [0i32; LANES];
    let mut t = [0.0f32; LANES];
    for l in 0..LANES {
        let a = v[l] as i32;
        let a = if (a as f32) > v[l] { a - 1 } else { a };
        i[l] = a;
        t[l] = v[l] - a as f32;
    }
    (i, t)
}

/// The bicubic sum over a 4×4 block starting at `block[c]` (rows
/// `row_len` apart, pixels `CH` apart), in [`RowWindow::sample`]'s order.
#[inline(always)]
fn taps<const CH: usize>(
    block: &[f32],
    row_len: usize,
    c: usize,
    wx: &[f32; 4],
    wy: &[f32; 4],
) -> f32 {
    let block = &block[..3 * row_len + 3 * CH + c + 1];
    let mut acc = 0.0;
    for (j, wyj) in wy.iter().enumerate() {
        let r = &block[j * row_len + c..];
        let r: &[f32] = &r[..3 * CH + 1];
        acc += wyj * (wx[0] * r[0] + wx[1] * r[CH] + wx[2] * r[2 * CH] + wx[3] * r[3 * CH]);
    }
    acc
}

/// [`taps`] for a channel count known only at run time.
#[inline]
fn taps_dyn(
    block: &[f32],
    row_len: usize,
    ch: usize,
    c: usize,
    wx: &[f32; 4],
    wy: &[f32; 4],
) -> f32 {
    let mut acc = 0.0;
    for (j, wyj) in wy.iter().enumerate() {
        let r = &block[j * row_len + c..];
        acc += wyj * (wx[0] * r[0] + wx[1] * r[ch] + wx[2] * r[2 * ch] + wx[3] * r[3 * ch]);
    }
    acc
}

/// A warp field interpolated along whole pixel rows: what
/// [`WarpField::sample`] gives at each pixel, bit for bit (the same
/// operations in the same order), with the column nodes found once and the
/// step along the grid's columns done once per row.
pub struct FieldRows<'f> {
    field: &'f WarpField,
    /// Per pixel column: its two node columns and the weight of the second.
    xs: Vec<(usize, usize, f32)>,
    /// The weights of `xs` alone, contiguous.
    tx: Vec<f32>,
    /// Runs of pixel columns `x0 .. x1` between the same node columns
    /// `(i0, i1)`: a run interpolates with two constants, so it vectorises.
    runs: Vec<(usize, usize, usize, usize)>,
    at_row: Vec<f32>,
}

impl<'f> FieldRows<'f> {
    /// For rows `width` pixels long.
    pub fn new(field: &'f WarpField, width: usize) -> FieldRows<'f> {
        let xs: Vec<(usize, usize, f32)> =
            (0..width).map(|x| field.column_nodes(x as f32)).collect();
        let mut runs: Vec<(usize, usize, usize, usize)> = Vec::new();
        for (x, &(i0, i1, _)) in xs.iter().enumerate() {
            match runs.last_mut() {
                Some(r) if (r.2, r.3) == (i0, i1) => r.1 = x + 1,
                _ => runs.push((x, x + 1, i0, i1)),
            }
        }
        FieldRows {
            field,
            tx: xs.iter().map(|&(_, _, t)| t).collect(),
            xs,
            runs,
            at_row: vec![0.0; 3 * field.cols as usize],
        }
    }

    /// [`Self::row`] over the pixels where the weight can be above 0 only:
    /// returns that span `(x0, x1)` (empty when the whole row weighs 0);
    /// the weight outside it is set to 0, `dx` and `dy` are left as they
    /// were. Inside the span the values are [`Self::row`]'s, bit for bit.
    pub fn weighted_row(
        &mut self,
        y: f32,
        dx: &mut [f32],
        dy: &mut [f32],
        weight: &mut [f32],
    ) -> (usize, usize) {
        self.field.along_row(y, &mut self.at_row);
        let (x0, x1) = self.weighted_span().unwrap_or((0, 0));
        weight[..x0].fill(0.0);
        weight[x1..].fill(0.0);
        self.lerp_span(x0, x1, dx, dy, weight);
        (x0, x1)
    }

    /// The field's `dx`, `dy` and weight at every pixel of row `y`.
    pub fn row(&mut self, y: f32, dx: &mut [f32], dy: &mut [f32], weight: &mut [f32]) {
        self.field.along_row(y, &mut self.at_row);
        self.lerp_span(0, self.xs.len(), dx, dy, weight);
    }

    /// The pixels of the row in `at_row` whose weight can be above 0: a
    /// pixel interpolates between node columns i0 and i1 (i0 never
    /// decreases along the row), so it can weigh only if one of them does.
    fn weighted_span(&self) -> Option<(usize, usize)> {
        let cols = self.field.cols as usize;
        let rwt = &self.at_row[2 * cols..];
        let first = rwt.iter().position(|&v| v > 0.0)?;
        let last = rwt.iter().rposition(|&v| v > 0.0)?;
        let x0 = self.xs.iter().position(|&(_, i1, _)| i1 >= first)?;
        let x1 = self.xs.iter().rposition(|&(i0, _, _)| i0 <= last)? + 1;
        (x0 < x1).then_some((x0, x1))
    }

    /// Pixels `x0 .. x1` of the row in `at_row`, interpolated between
    /// their node columns.
    fn lerp_span(&self, x0: usize, x1: usize, dx: &mut [f32], dy: &mut [f32], weight: &mut [f32]) {
        crate::simd::wide(
            #[inline(always)]
            || {
                let cols = self.field.cols as usize;
                let (rdx, rest) = self.at_row.split_at(cols);
                let (rdy, rwt) = rest.split_at(cols);
                for &(a, b, i0, i1) in &self.runs {
                    let (a, b) = (a.max(x0), b.min(x1));
                    if a >= b {
                        continue;
                    }
                    let t = &self.tx[a..b];
                    for (out, v) in [
                        (&mut dx[a..b], rdx),
                        (&mut dy[a..b], rdy),
                        (&mut weight[a..b], rwt),
                    ] {
                        let (v0, v1) = (v[i0], v[i1]);
                        for (o, &tx) in out.iter_mut().zip(t) {
                            *o = v0 * (1.0 - tx) + v1 * tx;
                        }
                    }
                }
            },
        )
    }
}

/// Whether any pixel of rows `y0 .. y0 + rows` gets a weight above 0 from
/// the field: its node rows around them hold a positive weight. A frame
/// that the per-point selection dropped over a whole band of rows is then
/// neither read nor resampled there.
pub fn band_has_weight(field: &WarpField, y0: usize, rows: usize) -> bool {
    let (j0, _, _) = field.row_nodes(y0 as f32);
    let (_, j1, _) = field.row_nodes((y0 + rows.max(1) - 1) as f32);
    let c = field.cols as usize;
    field.weight[j0.min(j1) * c..(j0.max(j1) + 1) * c]
        .iter()
        .any(|&v| v > 0.0)
}

/// Vertical extent of a warp's shifts: `(min dy, max dy)` of its global
/// `dy` plus its field as interpolated (`field`: [`FrameWarp::dense_field`],
/// made once by the caller, who reads it again).
pub fn dy_range(dy: f32, field: Option<&WarpField>) -> (f32, f32) {
    match field {
        None => (dy, dy),
        Some(f) => {
            let lo = f.dy.iter().copied().fold(f32::INFINITY, f32::min);
            let hi = f.dy.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            (dy + lo.min(0.0), dy + hi.max(0.0))
        }
    }
}

/// Resamples output rows `y0 .. y0 + rows` of frame `index` under `warp` into
/// `out` (`rows * width * channels` samples): `out(x, y) = frame(x + dx, y + dy)`.
/// When the warp has a field, its interpolated weight per pixel goes into
/// `weight` (if given), and a pixel of weight 0 is left at 0 instead of
/// resampled (it adds nothing to any stack); otherwise `weight` is filled
/// with 1.
/// `scratch` holds the decoded input rows (`(rows + shift span + 5) · width ·
/// channels` samples; twice that for a pure shift, whose rows are resampled
/// separably: horizontally once per input row, then vertically) and is reused
/// between calls. A pure shift gives bit for bit what [`RowWindow::sample`]
/// gives at every pixel.
#[allow(clippy::too_many_arguments)]
pub fn warped_rows(
    frames: &FrameSourceRef,
    index: usize,
    warp: &FrameWarp,
    interp: Interp,
    y0: usize,
    rows: usize,
    out: &mut [f32],
    weight: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) -> Result<(), StageError> {
    // The field as it is interpolated (a coarse one refined here, per band:
    // microseconds, where holding every frame's refined field was most of
    // a long capture's memory; see [`DenseFields`]).
    let dense = warp.dense_field();
    let rows_of = RowsOf { y0, rows, interp };
    warped_rows_under(
        frames,
        index,
        warp,
        dense.as_deref(),
        rows_of,
        out,
        weight,
        scratch,
    )
}

/// The output rows and interpolation of [`warped_rows_under`].
#[derive(Clone, Copy)]
pub struct RowsOf {
    pub y0: usize,
    pub rows: usize,
    pub interp: Interp,
}

/// Every frame's field as interpolated ([`FrameWarp::dense_field`]), made
/// once for all the bands a stacker resamples when they fit
/// [`DENSE_FIELDS_BUDGET`] together (a large frame's many points: a band
/// refining its frames' fields again was a tenth of the stack's time on
/// 6000×4000 frames), else refined by each band as it needs them (tens of
/// thousands of frames: the memory of a long capture stays flat).
pub struct DenseFields {
    fields: Option<Vec<Option<WarpField>>>,
}

/// Bytes of refined fields [`DenseFields`] keeps for a whole stack.
pub const DENSE_FIELDS_BUDGET: usize = 16 << 20;

impl DenseFields {
    /// The refined fields of `warps`, when they fit the budget.
    pub fn new(warps: &[FrameWarp]) -> DenseFields {
        let bytes: usize = warps
            .iter()
            .filter_map(|w| w.field.as_ref().into_option())
            .map(|f| {
                let (c, r) = f.dense_dims();
                3 * c as usize * r as usize * std::mem::size_of::<f32>()
            })
            .sum();
        let fields = (bytes <= DENSE_FIELDS_BUDGET).then(|| {
            warps
                .iter()
                .map(|w| w.dense_field().map(|f| f.into_owned()))
                .collect()
        });
        DenseFields { fields }
    }

    /// [`warped_rows`] of frame `index` under `warp` (`warps[index]` of
    /// [`Self::new`]), with the field refined once.
    #[allow(clippy::too_many_arguments)]
    pub fn warped_rows(
        &self,
        frames: &FrameSourceRef,
        index: usize,
        warp: &FrameWarp,
        rows_of: RowsOf,
        out: &mut [f32],
        weight: Option<&mut [f32]>,
        scratch: &mut Vec<f32>,
    ) -> Result<(), StageError> {
        match &self.fields {
            Some(all) => warped_rows_under(
                frames,
                index,
                warp,
                all[index].as_ref(),
                rows_of,
                out,
                weight,
                scratch,
            ),
            None => warped_rows(
                frames,
                index,
                warp,
                rows_of.interp,
                rows_of.y0,
                rows_of.rows,
                out,
                weight,
                scratch,
            ),
        }
    }
}

/// [`warped_rows`] with the warp's field as interpolated given (`field`).
#[allow(clippy::too_many_arguments)]
fn warped_rows_under(
    frames: &FrameSourceRef,
    index: usize,
    warp: &FrameWarp,
    field: Option<&WarpField>,
    RowsOf { y0, rows, interp }: RowsOf,
    out: &mut [f32],
    mut weight: Option<&mut [f32]>,
    scratch: &mut Vec<f32>,
) -> Result<(), StageError> {
    let info = frames.info();
    let (w, h, ch) = info.dims();
    if let (Some(f), Some(wb)) = (field, weight.as_deref_mut()) {
        if !band_has_weight(f, y0, rows) {
            // Not selected anywhere in these rows: nothing to read.
            out[..rows * w * ch].fill(0.0);
            wb[..rows * w].fill(0.0);
            return Ok(());
        }
    }
    let (lo, hi) = dy_range(warp.dy, field);
    let in_y0 = ((y0 as f32 + lo).floor() as isize - 2).clamp(0, h as isize - 1) as usize;
    let in_y1 = (((y0 + rows) as f32 + hi).ceil() as isize + 3)
        .clamp(in_y0 as isize + 1, h as isize) as usize;
    let win_len = (in_y1 - in_y0) * w * ch;
    // A pure shift also needs one horizontally resampled copy of the window.
    scratch.resize(
        if field.is_none() {
            2 * win_len
        } else {
            win_len
        },
        0.0,
    );
    let (decoded, hrows) = scratch.split_at_mut(win_len);
    frames
        .read_rows(index, in_y0, in_y1 - in_y0, (&mut *decoded).into())
        .into_result()?;
    let win = RowWindow {
        data: decoded,
        y0: in_y0,
        rows: in_y1 - in_y0,
        width: w,
        channels: ch,
    };
    let Some(field) = field else {
        shift_rows(&win, warp.dx, warp.dy, interp, y0, rows, out, hrows);
        if let Some(wb) = weight {
            wb[..rows * w].fill(1.0);
        }
        return Ok(());
    };
    let mut rows_of = FieldRows::new(field, w);
    let (mut fdx, mut fdy, mut fwt) = (vec![0.0f32; w], vec![0.0f32; w], vec![0.0f32; w]);
    for ry in 0..rows {
        let y = (y0 + ry) as f32;
        // With a weight buffer, pixels of weight 0 are not resampled: only
        // the span of the row that can weigh is interpolated.
        let (x0, x1) = if weight.is_some() {
            rows_of.weighted_row(y, &mut fdx, &mut fdy, &mut fwt)
        } else {
            rows_of.row(y, &mut fdx, &mut fdy, &mut fwt);
            (0, w)
        };
        if let Some(wb) = weight.as_deref_mut() {
            wb[ry * w..(ry + 1) * w].copy_from_slice(&fwt);
        }
        let out_row = &mut out[ry * w * ch..(ry + 1) * w * ch];
        out_row[..x0 * ch].fill(0.0);
        out_row[x1.max(x0) * ch..].fill(0.0);
        if x0 < x1 {
            source_positions(
                &mut fdx[x0..x1],
                &mut fdy[x0..x1],
                x0,
                y,
                (warp.dx, warp.dy),
            );
        }
        // Runs of pixels that weigh (with a weight buffer; a pixel of weight
        // 0 — dropped by the per-point selection — is left at 0 instead of
        // resampled), each resampled at once.
        let weighed = weight.is_some();
        let run_end = |from: usize, weighs: bool| {
            if !weighed {
                return if weighs { x1 } else { from };
            }
            fwt[from..x1]
                .iter()
                .position(|&v| (v != 0.0) != weighs)
                .map_or(x1, |i| from + i)
        };
        let mut x = x0;
        while x < x1 {
            let end = run_end(x, true);
            if end > x {
                win.sample_span(
                    &fdx[x..end],
                    &fdy[x..end],
                    interp,
                    &mut out_row[x * ch..end * ch],
                );
            }
            let next = run_end(end, false);
            out_row[end * ch..next * ch].fill(0.0);
            x = next;
        }
    }
    Ok(())
}

/// The field's values `dx`, `dy` of pixels `x0 ..` of row `y` replaced by
/// the source positions `x + (gx + dx)`, `y + (gy + dy)` (in that order of
/// operations, which the samplers' tests pin).
pub fn source_positions(dx: &mut [f32], dy: &mut [f32], x0: usize, y: f32, (gx, gy): (f32, f32)) {
    crate::simd::wide(
        #[inline(always)]
        || {
            // Column indices as `i32` (exact below 2^24): the conversion
            // vectorises, a `usize` one does not.
            for (i, (sx, sy)) in dx.iter_mut().zip(dy.iter_mut()).enumerate() {
                *sx = (x0 + i) as i32 as f32 + (gx + *sx);
                *sy = y + (gy + *sy);
            }
        },
    )
}

/// A whole plane (or interleaved image) resampled by a constant shift:
/// `out(x, y) = src(x + dx, y + dy)`, edges replicated; bit for bit what
/// [`RowWindow::sample`] gives at every pixel, computed separably.
pub fn shift_plane(
    src: &[f32],
    width: usize,
    height: usize,
    channels: usize,
    dx: f32,
    dy: f32,
    interp: Interp,
) -> Vec<f32> {
    let win = RowWindow::whole(src, width, height, channels);
    let mut out = crate::mem::zeroed(src.len());
    let mut hrows = crate::mem::zeroed(src.len());
    shift_rows(&win, dx, dy, interp, 0, height, &mut out, &mut hrows);
    out
}

/// Rows `y0 .. y0 + out.len() / (width · channels)` of
/// [`shift_plane`]'s result, bit for bit, from only the input rows their
/// taps reach: a band of a large frame shifted without the whole frame's
/// intermediate plane (bands of one frame can run in parallel).
#[allow(clippy::too_many_arguments)]
pub fn shift_plane_rows(
    src: &[f32],
    width: usize,
    height: usize,
    channels: usize,
    (dx, dy): (f32, f32),
    interp: Interp,
    y0: usize,
    out: &mut [f32],
) {
    let rl = width * channels;
    let rows = out.len() / rl.max(1);
    if rows == 0 || height == 0 {
        return;
    }
    // The rows `shift_rows` reads (its arithmetic: floor(y + dy) − 1 ..=
    // floor(y + dy) + 2), clamped as it clamps: within the window they are
    // the image's rows, so its edge replication is the image's.
    let reach = |y: usize| (y as f32 + dy).floor() as isize;
    let last = height as isize - 1;
    let lo = (reach(y0) - 1).clamp(0, last) as usize;
    let hi = (reach(y0 + rows - 1) + 2).clamp(0, last) as usize + 1;
    let (lo, hi) = (lo.min(hi - 1), hi);
    let win = RowWindow {
        data: &src[lo * rl..hi * rl],
        y0: lo,
        rows: hi - lo,
        width,
        channels,
    };
    let mut hrows = vec![0.0; (hi - lo) * rl];
    shift_rows(&win, dx, dy, interp, y0, rows, out, &mut hrows);
}

/// Per output column: its input columns (edges replicated) and weights for
/// a horizontal shift by `dx`.
fn column_taps(w: usize, dx: f32, interp: Interp) -> Vec<([usize; 4], [f32; 4])> {
    let clamp_x = |i: isize| i.clamp(0, w as isize - 1) as usize;
    (0..w)
        .map(|x| {
            let sx = x as f32 + dx;
            let fx = sx.floor();
            let (tx, ix) = (sx - fx, fx as isize);
            match interp {
                Interp::Bilinear => (
                    [clamp_x(ix), clamp_x(ix + 1), 0, 0],
                    [1.0 - tx, tx, 0.0, 0.0],
                ),
                Interp::Bicubic | Interp::Sharp => (
                    [
                        clamp_x(ix - 1),
                        clamp_x(ix),
                        clamp_x(ix + 1),
                        clamp_x(ix + 2),
                    ],
                    cubic_of(interp, tx),
                ),
            }
        })
        .collect()
}

/// One input row (`ch` interleaved channels) resampled horizontally with
/// the [`column_taps`] into `dst`.
fn horizontal_row(
    src: &[f32],
    dst: &mut [f32],
    cols: &[([usize; 4], [f32; 4])],
    interp: Interp,
    ch: usize,
) {
    crate::simd::wide(
        #[inline(always)]
        || {
            match (interp, ch) {
                // Mono: the common case, one sample per column.
                (Interp::Bicubic | Interp::Sharp, 1) => {
                    for (d, (idx, wt)) in dst.iter_mut().zip(cols) {
                        let mut row = 0.0;
                        row += wt[0] * src[idx[0]];
                        row += wt[1] * src[idx[1]];
                        row += wt[2] * src[idx[2]];
                        row += wt[3] * src[idx[3]];
                        *d = row;
                    }
                }
                (Interp::Bilinear, 1) => {
                    for (d, (idx, wt)) in dst.iter_mut().zip(cols) {
                        *d = src[idx[0]] * wt[0] + src[idx[1]] * wt[1];
                    }
                }
                // RGB: the channel loop written out (same operations, same order).
                (Interp::Bicubic | Interp::Sharp, 3) => {
                    for (d, (idx, wt)) in dst.chunks_exact_mut(3).zip(cols) {
                        let (a, b, c, e) = (idx[0] * 3, idx[1] * 3, idx[2] * 3, idx[3] * 3);
                        for k in 0..3 {
                            let mut row = 0.0;
                            row += wt[0] * src[a + k];
                            row += wt[1] * src[b + k];
                            row += wt[2] * src[c + k];
                            row += wt[3] * src[e + k];
                            d[k] = row;
                        }
                    }
                }
                (Interp::Bicubic | Interp::Sharp, _) => {
                    for (d, (idx, wt)) in dst.chunks_exact_mut(ch).zip(cols) {
                        for (c, d) in d.iter_mut().enumerate() {
                            let mut row = 0.0;
                            for i in 0..4 {
                                row += wt[i] * src[idx[i] * ch + c];
                            }
                            *d = row;
                        }
                    }
                }
                (Interp::Bilinear, _) => {
                    for (d, (idx, wt)) in dst.chunks_exact_mut(ch).zip(cols) {
                        for (c, d) in d.iter_mut().enumerate() {
                            *d = src[idx[0] * ch + c] * wt[0] + src[idx[1] * ch + c] * wt[1];
                        }
                    }
                }
            }
        },
    )
}

/// Output rows `y0 .. y0 + rows` of `win` shifted by `(dx, dy)`: the same
/// arithmetic as [`RowWindow::sample`] at every pixel (bit for bit), done
/// separably: each needed input row is resampled horizontally once (column
/// taps and weights computed once per call) into `hrows` (one window's worth
/// of samples), then each output row combines 2 or 4 of those rows.
#[allow(clippy::too_many_arguments)]
fn shift_rows(
    win: &RowWindow,
    dx: f32,
    dy: f32,
    interp: Interp,
    y0: usize,
    rows: usize,
    out: &mut [f32],
    hrows: &mut [f32],
) {
    crate::simd::wide(
        #[inline(always)]
        || {
            let (w, ch) = (win.width, win.channels);
            let rl = w * ch;
            let cols = column_taps(w, dx, interp);
            let mut ready = vec![false; win.rows];
            // Window row (0-based) holding input row `y`, edges replicated.
            let wrow = |y: isize| {
                (y.clamp(win.y0 as isize, (win.y0 + win.rows) as isize - 1) as usize) - win.y0
            };
            let mut horizontal = |r: usize, hrows: &mut [f32]| {
                if ready[r] {
                    return;
                }
                ready[r] = true;
                let src = &win.data[r * rl..(r + 1) * rl];
                horizontal_row(src, &mut hrows[r * rl..(r + 1) * rl], &cols, interp, ch);
            };
            for ry in 0..rows {
                let sy = (y0 + ry) as f32 + dy;
                let fy = sy.floor();
                let (ty, iy) = (sy - fy, fy as isize);
                let o = &mut out[ry * rl..(ry + 1) * rl];
                match interp {
                    Interp::Bilinear => {
                        let (ra, rb) = (wrow(iy), wrow(iy + 1));
                        horizontal(ra, hrows);
                        horizontal(rb, hrows);
                        let (a, b) = (
                            &hrows[ra * rl..(ra + 1) * rl],
                            &hrows[rb * rl..(rb + 1) * rl],
                        );
                        for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                            *o = a * (1.0 - ty) + b * ty;
                        }
                    }
                    Interp::Bicubic | Interp::Sharp => {
                        let wy = cubic_of(interp, ty);
                        let r = [wrow(iy - 1), wrow(iy), wrow(iy + 1), wrow(iy + 2)];
                        for &rj in &r {
                            horizontal(rj, hrows);
                        }
                        let h = |j: usize| &hrows[r[j] * rl..(r[j] + 1) * rl];
                        let (h0, h1, h2, h3) = (h(0), h(1), h(2), h(3));
                        for (i, o) in o.iter_mut().enumerate() {
                            let mut acc = 0.0;
                            acc += wy[0] * h0[i];
                            acc += wy[1] * h1[i];
                            acc += wy[2] * h2[i];
                            acc += wy[3] * h3[i];
                            *o = acc;
                        }
                    }
                }
            }
        },
    )
}

#[cfg(test)]
mod field_tests {
    use super::*;
    use jupiter_plugin_api::testing::MemFrames;
    use jupiter_plugin_api::WarpField;
    use jupiter_testkit::frames::image_from;

    /// Bands whose node rows carry no weight are skipped (zeros, weight 0)
    /// and equal what resampling them pixel by pixel gives.
    #[test]
    fn unweighted_bands_are_zero_without_being_read() {
        let (w, h) = (30usize, 60usize);
        let plane = image_from(w, h, |x, y| 0.5 + 0.1 * (x * 0.3).sin() * (y * 0.2).cos());
        let frames = MemFrames::new(w as u32, h as u32, 1, vec![plane]);
        // Nodes every 10 rows from y = 0; only node row 3 (y = 30) weighs.
        let (cols, rows) = (4usize, 7usize);
        let weight: Vec<f32> = (0..cols * rows)
            .map(|k| (k / cols == 3) as u8 as f32)
            .collect();
        let field = WarpField::new(
            (cols, rows),
            (0.0, 0.0),
            (10.0, 10.0),
            [vec![0.3; cols * rows], vec![-0.2; cols * rows], weight],
        );
        assert!(!band_has_weight(&field, 0, 16));
        assert!(band_has_weight(&field, 16, 16));
        assert!(band_has_weight(&field, 32, 8));
        assert!(!band_has_weight(&field, 41, 16));
        let warp = FrameWarp::with_field(0.0, 0.0, field.clone());
        let mut scratch = Vec::new();
        for (y0, n) in [(0, 16), (16, 16), (44, 16)] {
            let (mut out, mut wt) = (vec![1.0; n * w], vec![1.0; n * w]);
            warped_rows(
                &frames.as_ref(),
                0,
                &warp,
                Interp::Sharp,
                y0,
                n,
                &mut out,
                Some(&mut wt),
                &mut scratch,
            )
            .unwrap();
            for r in 0..n {
                for x in 0..w {
                    let fw = field.sample(x as f32, (y0 + r) as f32).2;
                    assert_eq!(wt[r * w + x], fw, "weight at ({x}, {})", y0 + r);
                    if fw == 0.0 {
                        assert_eq!(out[r * w + x], 0.0);
                    }
                }
            }
        }
    }

    /// The field path equals sampling `WarpField::sample` at every pixel, bit for bit.
    #[test]
    fn shifted_bands_are_the_shifted_plane_bit_for_bit() {
        let (w, h) = (23usize, 19usize);
        for ch in [1usize, 3] {
            let src: Vec<f32> = (0..w * h * ch)
                .map(|i| ((i * 31 % 97) as f32 * 0.13).sin())
                .collect();
            for (dx, dy) in [
                (0.3f32, -0.7f32),
                (-2.6, 4.2),
                (1.0, -30.5),
                (0.0, 25.0),
                (-0.49, 0.0),
            ] {
                for interp in [Interp::Bilinear, Interp::Bicubic, Interp::Sharp] {
                    let whole = shift_plane(&src, w, h, ch, dx, dy, interp);
                    for (y0, rows) in [(0, h), (0, 1), (5, 4), (h - 3, 3), (h - 1, 1)] {
                        let mut band = vec![f32::NAN; rows * w * ch];
                        shift_plane_rows(&src, w, h, ch, (dx, dy), interp, y0, &mut band);
                        let want = &whole[y0 * w * ch..(y0 + rows) * w * ch];
                        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                        assert_eq!(
                            bits(&band),
                            bits(want),
                            "{ch} ch, ({dx}, {dy}), {interp:?}, rows {y0}+{rows}"
                        );
                    }
                }
            }
        }
    }

    /// The fields refined once for all bands resample what each band's own
    /// refinement gives, bit for bit (coarse fields, a pure shift and a
    /// field at its own spacing).
    #[test]
    fn dense_fields_made_once_resample_as_each_band_would() {
        let (w, h) = (41usize, 33usize);
        let plane = image_from(w, h, |x, y| 0.5 + 0.2 * (x * 0.37).sin() * (y * 0.23).cos());
        let frames = MemFrames::new(w as u32, h as u32, 1, vec![plane; 3]);
        let (cols, rows) = (4usize, 4usize);
        let n = cols * rows;
        let values = || {
            [
                (0..n).map(|k| (k as f32 * 0.9).sin() * 0.8).collect(),
                (0..n).map(|k| (k as f32 * 0.4).cos() * 0.6).collect(),
                (0..n).map(|k| 0.3 + 0.1 * (k % 3) as f32).collect(),
            ]
        };
        let coarse = WarpField::refined((cols, rows), (3.0, 2.0), (12.0, 10.0), values(), 2);
        let plain = WarpField::new((cols, rows), (3.0, 2.0), (12.0, 10.0), values());
        let warps = vec![
            FrameWarp::with_field(0.4, -0.3, coarse),
            FrameWarp::shift(1.25, 0.5),
            FrameWarp::with_field(-0.7, 0.2, plain),
        ];
        let fields = DenseFields::new(&warps);
        assert!(fields.fields.is_some());
        let (mut s1, mut s2) = (Vec::new(), Vec::new());
        for (i, warp) in warps.iter().enumerate() {
            for (y0, rows) in [(0, 16), (16, 17)] {
                let (mut a, mut aw) = (vec![0.0; rows * w], vec![0.0; rows * w]);
                let (mut b, mut bw) = (vec![1.0; rows * w], vec![1.0; rows * w]);
                let interp = Interp::Bicubic;
                let f = frames.as_ref();
                warped_rows(
                    &f,
                    i,
                    warp,
                    interp,
                    y0,
                    rows,
                    &mut a,
                    Some(&mut aw),
                    &mut s1,
                )
                .unwrap();
                let at = RowsOf { y0, rows, interp };
                fields
                    .warped_rows(&f, i, warp, at, &mut b, Some(&mut bw), &mut s2)
                    .unwrap();
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&a), bits(&b), "frame {i}, rows from {y0}");
                assert_eq!(bits(&aw), bits(&bw), "frame {i}, rows from {y0}");
            }
        }
    }

    #[test]
    fn field_rows_are_the_fields_samples_bit_for_bit() {
        let (w, h) = (53usize, 9usize);
        let (cols, rows) = (5usize, 3usize);
        let n = cols * rows;
        let dx = (0..n).map(|k| (k as f32 * 0.7).sin() * 1.5).collect();
        let dy = (0..n).map(|k| (k as f32 * 1.3).cos()).collect();
        // Weight only in the middle columns: the weighted span is a part.
        let weight = (0..n)
            .map(|k| ((k % cols == 2) as u8) as f32 * 0.6)
            .collect();
        let field = WarpField::new((cols, rows), (6.5, 1.0), (11.0, 3.5), [dx, dy, weight]);
        let mut fr = FieldRows::new(&field, w);
        let bits = |v: f32| v.to_bits();
        for y in 0..h {
            let (mut fx, mut fy, mut fw) = (vec![9.0; w], vec![9.0; w], vec![9.0; w]);
            fr.row(y as f32, &mut fx, &mut fy, &mut fw);
            let (mut gx, mut gy, mut gw) = (vec![9.0; w], vec![9.0; w], vec![9.0; w]);
            let (x0, x1) = fr.weighted_row(y as f32, &mut gx, &mut gy, &mut gw);
            assert!(x0 < x1 && x1 - x0 < w, "row {y}: span {x0}..{x1}");
            for x in 0..w {
                let (sx, sy, sw) = field.sample(x as f32, y as f32);
                let got = (bits(fx[x]), bits(fy[x]), bits(fw[x]));
                assert_eq!(got, (bits(sx), bits(sy), bits(sw)), "({x}, {y})");
                if (x0..x1).contains(&x) {
                    assert_eq!((bits(gx[x]), bits(gy[x]), bits(gw[x])), got, "({x}, {y})");
                } else {
                    assert_eq!(gw[x], 0.0, "({x}, {y}) outside the span");
                }
            }
        }
    }

    #[test]
    fn field_path_matches_per_pixel_sampling() {
        let (w, h) = (37usize, 29usize);
        let plane = image_from(w, h, |x, y| (x * 0.31).sin() + (y * 0.17).cos());
        let frames = MemFrames::new(w as u32, h as u32, 1, vec![plane.clone()]);
        let (cols, rows) = (4usize, 3usize);
        let n = cols * rows;
        let dx = (0..n).map(|k| (k as f32 * 0.7).sin() * 1.5).collect();
        let dy = (0..n).map(|k| (k as f32 * 1.3).cos()).collect();
        let weight = (0..n).map(|k| (k % 2) as f32).collect();
        let field = WarpField::new((cols, rows), (3.5, 2.0), (10.0, 12.0), [dx, dy, weight]);
        let warp = FrameWarp::with_field(0.4, -0.7, field.clone());
        let mut out = vec![0.0; w * h];
        let mut wts = vec![0.0; w * h];
        let mut scratch = Vec::new();
        warped_rows(
            &frames.as_ref(),
            0,
            &warp,
            Interp::Bicubic,
            0,
            h,
            &mut out,
            Some(&mut wts),
            &mut scratch,
        )
        .unwrap();
        let win = RowWindow::whole(&plane, w, h, 1);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy, wt) = field.sample(x as f32, y as f32);
                let (dx, dy) = (0.4 + fx, -0.7 + fy);
                // Pixels of weight 0 are not resampled: they stay 0.
                let want = if wt == 0.0 {
                    0.0
                } else {
                    win.sample(x as f32 + dx, y as f32 + dy, 0, Interp::Bicubic)
                };
                assert_eq!(out[y * w + x].to_bits(), want.to_bits(), "({x}, {y})");
                assert_eq!(wts[y * w + x].to_bits(), wt.to_bits());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::MemFrames;
    use jupiter_testkit::frames::image_from;

    #[test]
    fn span_sampling_is_per_pixel_sampling_bit_for_bit() {
        let (w, h) = (23usize, 17usize);
        for ch in [1usize, 2, 3] {
            let data: Vec<f32> = (0..w * h * ch)
                .map(|i| ((i as f32 * 0.61).sin() + (i as f32 * 0.07).cos()) * 0.4)
                .collect();
            // A window of rows 3..14, positions inside and across every edge.
            let win = RowWindow {
                data: &data[3 * w * ch..14 * w * ch],
                y0: 3,
                rows: 11,
                width: w,
                channels: ch,
            };
            let n = 29;
            // Scattered positions (the per-lane path), then a row under a
            // slowly varying shift (whole batches one pixel apart: the
            // contiguous path, with a batch crossing a row and the edges).
            let scattered: (Vec<f32>, Vec<f32>) = (0..n)
                .map(|i| {
                    (
                        -2.3 + i as f32 * 0.97,
                        1.2 + (i as f32 * 0.9).sin() * 7.0 + 5.0,
                    )
                })
                .unzip();
            let along: (Vec<f32>, Vec<f32>) = (0..n)
                .map(|i| (i as f32 - 1.6 + i as f32 * 0.004, 7.55 + i as f32 * 0.02))
                .unzip();
            // Batches whose blocks end at the window's last pixel.
            // (bicubic: lanes at x 13..=20 of row 11; bilinear: 14..=21 of
            // row 12).
            let corner: (Vec<f32>, Vec<f32>) = (0..16)
                .map(|i| match i {
                    0..8 => (13.3 + i as f32, 11.3),
                    _ => (6.3 + i as f32, 12.3),
                })
                .unzip();
            for ((xs, ys), interp) in [&scattered, &along, &corner]
                .into_iter()
                .flat_map(|p| [Interp::Bicubic, Interp::Sharp, Interp::Bilinear].map(|i| (p, i)))
            {
                let n = xs.len();
                let mut got = vec![0.0; n * ch];
                win.sample_span(xs, ys, interp, &mut got);
                for i in 0..n {
                    let mut want = vec![0.0; ch];
                    win.sample_all(xs[i], ys[i], interp, &mut want);
                    assert_eq!(
                        &got[i * ch..(i + 1) * ch],
                        &want[..],
                        "{ch} ch, {interp:?}, pixel {i}"
                    );
                }
            }
        }
    }

    #[test]
    fn floor_i_is_floor() {
        for v in [-0.5f32, 2.0, -3.0, 0.0, 7.99, -1e-3] {
            assert_eq!(floor_i(v), v.floor() as isize, "{v}");
        }
    }

    fn smooth(w: usize, h: usize, sx: f32, sy: f32) -> Vec<f32> {
        image_from(w, h, |x, y| {
            0.5 + 0.25 * ((x - sx) * 0.3).sin() * ((y - sy) * 0.2).cos()
        })
    }

    #[test]
    fn separable_shift_path_equals_per_pixel_sampling_bit_for_bit() {
        let (w, h) = (29, 41);
        for ch in [1usize, 3] {
            let data: Vec<f32> = (0..w * h * ch)
                .map(|i| ((i * 7919) % 1013) as f32 / 1013.0)
                .collect();
            let frames = MemFrames::new(w as u32, h as u32, ch as u32, vec![data.clone()]);
            let full = RowWindow::whole(&data, w, h, ch);
            for (dx, dy) in [
                (0.0f32, 0.0f32),
                (0.3, -0.7),
                (-2.6, 1.45),
                (3.0, -4.0),
                (-35.2, 50.9),
                (12.75, -0.25),
            ] {
                for interp in [Interp::Bilinear, Interp::Bicubic, Interp::Sharp] {
                    let mut scratch = Vec::new();
                    for (y0, rows) in [(0, 16), (16, 16), (32, 9), (0, h)] {
                        let mut out = vec![0.0; rows * w * ch];
                        let mut wt = vec![0.0; rows * w];
                        warped_rows(
                            &frames.as_ref(),
                            0,
                            &FrameWarp::shift(dx, dy),
                            interp,
                            y0,
                            rows,
                            &mut out,
                            Some(&mut wt),
                            &mut scratch,
                        )
                        .unwrap();
                        assert!(wt.iter().all(|&v| v == 1.0));
                        for ry in 0..rows {
                            for x in 0..w {
                                for c in 0..ch {
                                    let want = full.sample(
                                        x as f32 + dx,
                                        (y0 + ry) as f32 + dy,
                                        c,
                                        interp,
                                    );
                                    let got = out[(ry * w + x) * ch + c];
                                    assert_eq!(
                                        got.to_bits(),
                                        want.to_bits(),
                                        "{interp:?} ({dx}, {dy}) ch {ch} at ({x}, {})",
                                        y0 + ry
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn shifting_back_recovers_the_reference() {
        let (w, h) = (40, 30);
        let (sx, sy) = (1.4f32, -2.3f32);
        let frames = MemFrames::new(w as u32, h as u32, 1, vec![smooth(w, h, sx, sy)]);
        let truth = smooth(w, h, 0.0, 0.0);
        for interp in [Interp::Bilinear, Interp::Bicubic, Interp::Sharp] {
            let mut out = vec![0.0; w * h];
            let mut scratch = Vec::new();
            // Read in two bands to exercise the row window.
            for (y0, rows) in [(0, 13), (13, 17)] {
                let band = &mut out[y0 * w..(y0 + rows) * w];
                warped_rows(
                    &frames.as_ref(),
                    0,
                    &FrameWarp::shift(sx, sy),
                    interp,
                    y0,
                    rows,
                    band,
                    None,
                    &mut scratch,
                )
                .unwrap();
            }
            // Compare away from the borders, where edge replication differs.
            let mut err = 0.0f32;
            for y in 4..h - 4 {
                for x in 4..w - 4 {
                    err = err.max((out[y * w + x] - truth[y * w + x]).abs());
                }
            }
            // The sharp cubic moves a ramp by up to 0.03 px (it is exact on
            // constants only).
            let tol = match interp {
                Interp::Bicubic => 2e-3,
                Interp::Sharp => 4e-3,
                Interp::Bilinear => 1.5e-2,
            };
            assert!(err < tol, "{interp:?}: max error {err}");
        }
    }
}

#[cfg(test)]
mod cubic_tests {
    use super::*;

    #[test]
    fn cubic_kernels_sum_to_one() {
        for i in 0..16 {
            let t = i as f32 / 16.0;
            for w in [cubic_weights(t), sharp_cubic_weights(t)] {
                assert!((w.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{t}: {w:?}");
            }
        }
        assert_eq!(sharp_cubic_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        // Half-way, the sharp kernel weighs the near taps more and the far
        // ones more negatively (less smoothing).
        let (c, s) = (cubic_weights(0.5), sharp_cubic_weights(0.5));
        assert!(s[1] > c[1] && s[0] < c[0], "{c:?} {s:?}");
    }
}
