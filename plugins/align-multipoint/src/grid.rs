//! The alignment-point grid: placement, automatic size, and which points are
//! worth measuring (structure, brightness, on the disc), decided once on the
//! reference.

use jupiter_kit::stats::percentile;
use jupiter_plugin_api::{StageCtx, StageError, WarpField};

use crate::gradient::PatchRef;
use crate::params::{Mode, MultipointParams};

/// Smallest patch an alignment point may have.
pub const MIN_AP_SIZE: usize = 16;

/// A regular grid of alignment points. Point `(i, j)` measures the square
/// patch of `size × size` pixels whose top-left pixel is
/// `(ox0 + i * step, oy0 + j * step)`; its shift is attributed to the patch
/// centre, which is where the warp field's node sits.
#[derive(Debug, Clone, PartialEq)]
pub struct ApGrid {
    pub size: usize,
    pub step: usize,
    pub cols: usize,
    pub rows: usize,
    pub ox0: usize,
    pub oy0: usize,
    /// Points measured (row-major); the others take their shift from their
    /// measured neighbours and keep every frame.
    pub active: Vec<bool>,
}

impl ApGrid {
    /// Places a grid of `size` (clamped to the frame, made even) and `step`
    /// over a `w × h` frame, centred, every point active.
    pub fn new(w: usize, h: usize, size: usize, step: usize) -> ApGrid {
        let size = (size.min(w).min(h) & !1).max(2);
        let step = step.max(1);
        let cols = (w - size) / step + 1;
        let rows = (h - size) / step + 1;
        let ox0 = (w - size - (cols - 1) * step) / 2;
        let oy0 = (h - size - (rows - 1) * step) / 2;
        ApGrid {
            size,
            step,
            cols,
            rows,
            ox0,
            oy0,
            active: vec![true; cols * rows],
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.cols * self.rows
    }

    /// True for an empty grid (never: a grid has at least one point).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of active points.
    pub fn active_count(&self) -> usize {
        self.active.iter().filter(|a| **a).count()
    }

    /// Top-left pixel of point `k`'s patch.
    pub fn origin(&self, k: usize) -> (usize, usize) {
        (
            self.ox0 + (k % self.cols) * self.step,
            self.oy0 + (k / self.cols) * self.step,
        )
    }

    /// Centre of point `k` (pixel coordinates).
    pub fn centre(&self, k: usize) -> (f32, f32) {
        let (x, y) = self.origin(k);
        let half = (self.size as f32 - 1.0) * 0.5;
        (x as f32 + half, y as f32 + half)
    }

    /// The warp field of one frame from its per-point values, standing for
    /// the node grid refined `factor` times by cubic interpolation
    /// ([`WarpField::refined`]: the points' values are what is stored, the
    /// readers refine them, [`WarpField::dense`]); weights are kept within
    /// `0..=1`.
    pub fn field(&self, dx: &[f32], dy: &[f32], weight: &[f32], factor: usize) -> WarpField {
        let (x0, y0) = self.centre(0);
        // Unrefined, the nodes are the field: clamped here; else after the
        // refinement, by `dense`.
        let weight = if factor <= 1 {
            weight.iter().map(|w| w.clamp(0.0, 1.0)).collect()
        } else {
            weight.to_vec()
        };
        let step = self.step as f32;
        WarpField::refined(
            (self.cols, self.rows),
            (x0, y0),
            (step, step),
            [dx.to_vec(), dy.to_vec(), weight],
            factor,
        )
    }

    /// [`Self::field`] refined at once ([`WarpField::dense`]), for the
    /// aligner's own resampling.
    pub fn dense_field(&self, dx: &[f32], dy: &[f32], weight: &[f32], factor: usize) -> WarpField {
        self.field(dx, dy, weight, factor).dense().into_owned()
    }

    /// Every `factor`-th point in each direction from the first (same patch
    /// size, `factor` × the step), active where this grid's point is: a
    /// coarser grid over the same frame, whose field spans it as this one's.
    pub fn thinned(&self, factor: usize) -> ApGrid {
        let f = factor.max(1);
        let (cols, rows) = ((self.cols - 1) / f + 1, (self.rows - 1) / f + 1);
        let active = (0..rows)
            .flat_map(|j| (0..cols).map(move |i| (i, j)))
            .map(|(i, j)| self.active[j * f * self.cols + i * f])
            .collect();
        ApGrid {
            step: self.step * f,
            cols,
            rows,
            active,
            ..self.clone()
        }
    }

    /// The smallest factor of [`Self::thinned`] that leaves at most `most`
    /// active points (1 when this grid has no more; `most` = 0: 1).
    pub fn thinning_for(&self, most: usize) -> usize {
        let mut f = 1;
        while most > 0 && f < self.cols.max(self.rows) && self.thinned(f).active_count() > most {
            f *= 2;
        }
        f
    }

    /// Indices of the 8-neighbours of point `k`.
    pub fn neighbours(&self, k: usize) -> impl Iterator<Item = usize> + '_ {
        let (i, j) = ((k % self.cols) as isize, (k / self.cols) as isize);
        (-1..=1isize)
            .flat_map(move |dj| (-1..=1isize).map(move |di| (i + di, j + dj)))
            .filter_map(move |(a, b)| {
                let inside =
                    a >= 0 && b >= 0 && (a as usize) < self.cols && (b as usize) < self.rows;
                (inside && (a, b) != (i, j)).then(|| b as usize * self.cols + a as usize)
            })
    }

    /// [`structure`] of every active point's patch displaced by `(rx, ry)`
    /// (`out[k]`; inactive points 0), from one pass over the frame: the
    /// patches overlap (four deep at the default step), and a patch's
    /// structure only reads its interior's smoothed gradients, which are
    /// the frame's own there. Patches reaching past the frame's edge (whose
    /// replicated edge pixels the frame does not hold) are measured alone.
    #[allow(clippy::too_many_arguments)]
    pub fn structures(
        &self,
        plane: &[f32],
        w: usize,
        h: usize,
        rx: isize,
        ry: isize,
        out: &mut [f32],
    ) {
        self.structures_in(None, plane, (w, h), (rx, ry), out)
    }

    /// [`Self::structures`], the rows' energies in bands in parallel on
    /// `par`'s pool when given (a large frame scanned alone): each band
    /// starts its own smoothing rings, whose rows do not depend on where
    /// they start, so the result is the same bit for bit.
    pub fn structures_in(
        &self,
        par: Option<&StageCtx>,
        plane: &[f32],
        (w, h): (usize, usize),
        (rx, ry): (isize, isize),
        out: &mut [f32],
    ) {
        let s = self.size;
        out.iter_mut().for_each(|o| *o = 0.0);
        if s < 5 {
            return;
        }
        let inside = |k: usize| {
            let (ox, oy) = self.origin(k);
            let (x, y) = (ox as isize + rx, oy as isize + ry);
            x >= 0 && y >= 0 && x as usize + s <= w && y as usize + s <= h
        };
        let (mut ylo, mut yhi) = (h, 0);
        for k in (0..self.len()).filter(|&k| self.active[k] && inside(k)) {
            let y = (self.origin(k).1 as isize + ry) as usize;
            ylo = ylo.min(y + 2);
            yhi = yhi.max(y + s - 2);
        }
        // Per interior row: the gradient energy summed over each grid
        // column's interior span, from sums between consecutive span ends.
        let cols = self.cols;
        let span = |i: usize| {
            let x = (self.origin(i).0 as isize + rx).clamp(0, w as isize) as usize;
            ((x + 2).min(w), (x + s - 2).min(w))
        };
        let mut ends: Vec<usize> = (0..cols).flat_map(|i| [span(i).0, span(i).1]).collect();
        ends.sort_unstable();
        ends.dedup();
        let at = |x: usize| ends.binary_search(&x).expect("an end");
        let mut sums = vec![0.0f64; yhi.saturating_sub(ylo) * cols];
        // The span sums of rows `y0 ..` into `part` (`cols` per row).
        let band = |y0: usize, part: &mut [f64]| {
            let mut rows = EnergyRows::new(plane, w, y0);
            let mut prefix = vec![0.0f64; ends.len()];
            for (r, out_row) in part.chunks_exact_mut(cols).enumerate() {
                let e = rows.next_row();
                for j in 1..ends.len() {
                    let part = &e[ends[j - 1]..ends[j]];
                    prefix[j] = prefix[j - 1] + jupiter_kit::stats::mean(part) * part.len() as f64;
                }
                for (i, o) in out_row.iter_mut().enumerate() {
                    let (a, b) = span(i);
                    *o = prefix[at(b)] - prefix[at(a)];
                }
                debug_assert!(y0 + r < yhi);
            }
        };
        match par {
            Some(ctx) if ylo < yhi => {
                let per = (yhi - ylo).div_ceil(4 * ctx.threads().max(1)).max(16);
                // Cancelled: the caller checks after the frame.
                let _ =
                    ctx.par_chunks_mut(&mut sums, per * cols, |c, part| band(ylo + c * per, part));
            }
            _ if ylo < yhi => band(ylo, &mut sums),
            _ => {}
        }
        let mut patch = Vec::new();
        let n = ((s - 4) * (s - 4)) as f64;
        for k in (0..self.len()).filter(|&k| self.active[k]) {
            if !inside(k) {
                patch.resize(s * s, 0.0);
                self.patch(plane, w, h, k, rx, ry, &mut patch);
                out[k] = structure(&patch, s);
                continue;
            }
            let y = (self.origin(k).1 as isize + ry) as usize;
            let total: f64 = (y + 2..y + s - 2)
                .map(|r| sums[(r - ylo) * cols + k % cols])
                .sum();
            out[k] = (total / n).sqrt() as f32 * 0.5;
        }
    }

    /// Point `k`'s patch of `plane` (`w × h`) at offset `(rx, ry)` read in
    /// place, when it lies wholly inside (what [`Self::patch`] would copy
    /// out, without its edge clamping); `None` at the edges.
    pub fn patch_in<'a>(
        &self,
        plane: &'a [f32],
        (w, h): (usize, usize),
        k: usize,
        (rx, ry): (isize, isize),
    ) -> Option<PatchRef<'a>> {
        let s = self.size as isize;
        let (ox, oy) = self.origin(k);
        let (x0, y0) = (ox as isize + rx, oy as isize + ry);
        if x0 < 0 || y0 < 0 || x0 + s > w as isize || y0 + s > h as isize {
            return None;
        }
        let at = y0 as usize * w + x0 as usize;
        Some(PatchRef {
            data: &plane[at..],
            stride: w,
        })
    }

    /// Copies point `k`'s patch out of a `w × h` plane, displaced by the
    /// integer offset `(rx, ry)` (edges replicated).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        plane: &[f32],
        w: usize,
        h: usize,
        k: usize,
        rx: isize,
        ry: isize,
        out: &mut [f32],
    ) {
        let s = self.size;
        let (ox, oy) = self.origin(k);
        for v in 0..s {
            let y = (oy as isize + v as isize + ry).clamp(0, h as isize - 1) as usize;
            let row = &plane[y * w..(y + 1) * w];
            let x0 = ox as isize + rx;
            let dst = &mut out[v * s..(v + 1) * s];
            if x0 >= 0 && x0 as usize + s <= w {
                dst.copy_from_slice(&row[x0 as usize..x0 as usize + s]);
            } else {
                for (u, d) in dst.iter_mut().enumerate() {
                    *d = row[(x0 + u as isize).clamp(0, w as isize - 1) as usize];
                }
            }
        }
    }
}

/// [`structure`] of white noise of standard deviation 1: the smoothed
/// central differences have the taps [1 2 0 −2 −1]/4 ⊗ [1 2 1]/4, variance
/// 60/256 per axis, so the RMS gradient is √(120/256) and the score half of it.
pub const NOISE_STRUCTURE: f32 = 0.342;

/// How far above the noise's own [`structure`] a point must be to be measured.
const NOISE_MARGIN: f32 = 3.0;

/// Local structure of a patch: RMS gradient of its [1 2 1]-smoothed copy
/// (smoothing keeps pixel noise from passing for detail). Also the sharpness
/// score used to rank frames at a point: blur lowers it, detail raises it.
pub fn structure(p: &[f32], s: usize) -> f32 {
    if s < 5 {
        return 0.0;
    }
    // The rows' gradient energy as a whole frame's (`EnergyRows`), on the
    // patch alone: rows 2 .. s - 2, columns 2 .. s - 2.
    let mut rows = EnergyRows::new(p, s, 2);
    let mut acc = 0.0f64;
    for _ in 2..s - 2 {
        let energy = &rows.next_row()[2..s - 2];
        acc += jupiter_kit::stats::mean(energy) * energy.len() as f64;
    }
    let n = ((s - 4) * (s - 4)) as f64;
    (acc / n).sqrt() as f32 * 0.5
}

/// The smoothed gradient energy of [`structure`], row by row over a whole
/// plane, for rows `y0..` (each at least 2 from the top and bottom edges);
/// columns within 2 of the left and right edges are 0. Each plane row is
/// smoothed once: rings of horizontally smoothed rows (y .. y + 2 ahead)
/// and of fully smoothed rows (y - 1 .. y + 1).
struct EnergyRows<'a> {
    plane: &'a [f32],
    w: usize,
    /// The next row whose energy [`Self::next_row`] gives.
    y: usize,
    hz: [Vec<f32>; 3],
    sm: [Vec<f32>; 3],
    energy: Vec<f32>,
}

impl<'a> EnergyRows<'a> {
    fn new(plane: &'a [f32], w: usize, y0: usize) -> EnergyRows<'a> {
        let row = || vec![0.0f32; w];
        let mut r = EnergyRows {
            plane,
            w,
            y: y0,
            hz: [row(), row(), row()],
            sm: [row(), row(), row()],
            energy: row(),
        };
        // sm[1], sm[2] = rows y0 - 1, y0; hz = rows y0 - 1, y0, y0 + 1.
        for (i, y) in (y0 - 2..=y0 + 1).enumerate() {
            r.push_hz(y);
            if i >= 2 {
                r.push_sm();
            }
        }
        r
    }

    /// Row `y` of the plane, [1 2 1] / 4 horizontally, into the hz ring.
    fn push_hz(&mut self, y: usize) {
        let w = self.w;
        self.hz.rotate_left(1);
        let src = &self.plane[y * w..(y + 1) * w];
        let out = &mut self.hz[2][1..w - 1];
        for (o, ((l, m), r)) in out.iter_mut().zip(src.iter().zip(&src[1..]).zip(&src[2..])) {
            *o = 0.25 * (l + 2.0 * m + r);
        }
    }

    /// The middle row of the hz ring, [1 2 1] / 4 vertically, into the sm ring.
    fn push_sm(&mut self) {
        self.sm.rotate_left(1);
        let [a, b, c] = &self.hz;
        for (o, ((a, b), c)) in self.sm[2].iter_mut().zip(a.iter().zip(b).zip(c)) {
            *o = 0.25 * (a + 2.0 * b + c);
        }
    }

    /// The energy of the next row.
    fn next_row(&mut self) -> &[f32] {
        self.push_hz(self.y + 2);
        self.push_sm();
        self.y += 1;
        let [up, mid, dn] = &self.sm;
        let n = self.w.saturating_sub(4);
        let out = &mut self.energy[2..2 + n];
        let gx = mid[3..].iter().zip(&mid[1..]);
        let gy = dn[2..].iter().zip(&up[2..]);
        for (o, ((r, l), (d, u))) in out.iter_mut().zip(gx.zip(gy)) {
            let (gx, gy) = (r - l, d - u);
            *o = gx * gx + gy * gy;
        }
        &self.energy
    }
}

/// Bright level and background of a reference plane (99.5th and 2nd percentiles).
pub fn levels(reference: &[f32]) -> (f32, f32) {
    // A subsample is plenty for percentiles and keeps this O(n / stride).
    let stride = (reference.len() / 200_000).max(1);
    let sample: Vec<f32> = reference.iter().step_by(stride).copied().collect();
    (percentile(&sample, 0.995), percentile(&sample, 0.02))
}

/// Where the reference is brighter than `background + threshold × (bright −
/// background)`: the planet's disc and its moons.
pub fn bright_mask(reference: &[f32], threshold: f32) -> Vec<bool> {
    bright_mask_at(reference, levels(reference), threshold)
}

/// [`bright_mask`] with the [`levels`] already known.
fn bright_mask_at(reference: &[f32], (bright, bg): (f32, f32), threshold: f32) -> Vec<bool> {
    let t = bg + threshold * (bright - bg);
    reference.iter().map(|&v| v > t).collect()
}

/// The disc of a planet in a `w × h` reference: the largest connected region
/// (4-neighbours) of the [`bright_mask`], so moons are left out.
pub fn disc_mask(reference: &[f32], w: usize, h: usize, threshold: f32) -> Vec<bool> {
    largest_region(&bright_mask(reference, threshold), w, h)
}

/// The largest connected region (4-neighbours) of `above`, a `w × h` mask.
fn largest_region(above: &[bool], w: usize, h: usize) -> Vec<bool> {
    // Label the regions; keep the largest.
    let mut label = vec![0u32; w * h];
    let (mut best, mut best_size, mut next) = (0u32, 0usize, 0u32);
    let mut stack = Vec::new();
    for start in 0..w * h {
        if !above[start] || label[start] != 0 {
            continue;
        }
        next += 1;
        label[start] = next;
        stack.push(start);
        let mut size = 0;
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if above[j] && label[j] == 0 {
                    label[j] = next;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        if size > best_size {
            best_size = size;
            best = next;
        }
    }
    label.iter().map(|&l| l != 0 && l == best).collect()
}

/// The mode for a reference frame when the user chose `auto`: a planet is a
/// bright body lying wholly inside the frame on dark sky, so its largest
/// bright region ([`disc_mask`]) keeps off the frame's border (a margin of
/// 2 px) and covers at least 0.1 % of the frame; anything else — a surface
/// filling the frame, a body cut by the frame's edge, no bright body at all
/// — is a surface. A reference over [`MODE_SAMPLES`] is judged 2×2-binned
/// (as often as needed): the labelling of its regions was a third of a
/// second on 24 megapixels, and a disc or a surface is as plain at a
/// quarter of the pixels.
pub fn detect_mode(reference: &[f32], w: usize, h: usize, threshold: f32) -> Mode {
    if w * h > MODE_SAMPLES && w >= 4 && h >= 4 {
        let binned = jupiter_kit::fft::bin2(reference, w, h);
        return detect_mode(&binned, w / 2, h / 2, threshold);
    }
    let disc = disc_mask(reference, w, h, threshold);
    let area = disc.iter().filter(|d| **d).count();
    let margin = 2;
    let touches_border = (0..h).any(|y| {
        let row = &disc[y * w..(y + 1) * w];
        if y < margin || y + margin >= h {
            row.iter().any(|d| *d)
        } else {
            row[..margin.min(w)].iter().any(|d| *d)
                || row[w.saturating_sub(margin)..].iter().any(|d| *d)
        }
    });
    if touches_border || area * 1000 < w * h {
        Mode::Surface
    } else {
        Mode::Planet
    }
}

/// Largest reference [`detect_mode`] labels without binning it.
const MODE_SAMPLES: usize = 4 << 20;

/// Diameter (pixels) of a disc of the mask's area.
pub fn disc_diameter(mask: &[bool]) -> f32 {
    let area = mask.iter().filter(|m| **m).count() as f32;
    2.0 * (area / std::f32::consts::PI).sqrt()
}

/// The automatic patch size: a sixth of the frame's short side in surface
/// mode (about 5 × 7 points at 50 % overlap on any frame), a quarter of the
/// disc's diameter in planet mode; an even number in 24 ..= 128 (or the frame).
pub fn auto_size(w: usize, h: usize, mode: Mode, disc: Option<f32>) -> usize {
    let raw = match (mode, disc) {
        (Mode::Planet, Some(d)) if d > 0.0 => d / 4.0,
        _ => w.min(h) as f32 / 6.0,
    };
    let s = ((raw / 8.0).round() as usize * 8).clamp(24, 128);
    s.min(w.min(h)) & !1
}

/// Builds the grid for a reference plane: size and step from the parameters
/// (or automatic), then deactivates points that are featureless and, in
/// surface mode, too dark or, in planet mode, not touching the disc or a moon
/// (the [`bright_mask`]).
pub fn place(reference: &[f32], w: usize, h: usize, mode: Mode, p: &MultipointParams) -> ApGrid {
    place_with(reference, (w, h), mode, p, |n, f| (0..n).map(f).collect())
}

/// [`place`], the points' statistics computed in parallel on the stage's
/// pool (thousands of points on a large frame).
pub fn place_in(
    ctx: &StageCtx,
    reference: &[f32],
    (w, h): (usize, usize),
    mode: Mode,
    p: &MultipointParams,
) -> Result<ApGrid, StageError> {
    let mut cancelled = None;
    let grid = place_with(reference, (w, h), mode, p, |n, f| {
        ctx.par_map(n, f).unwrap_or_else(|e| {
            cancelled = Some(e);
            vec![(0.0, 0.0, 0.0); n]
        })
    });
    cancelled.map_or(Ok(grid), Err)
}

/// Each point's patch mean, structure and share of the planet mask.
type PointStats = (f32, f32, f32);

/// [`place`] with `map(n, f)` giving `f(k)` for `k` in `0..n`, in order.
fn place_with(
    reference: &[f32],
    (w, h): (usize, usize),
    mode: Mode,
    p: &MultipointParams,
    map: impl FnOnce(usize, &(dyn Fn(usize) -> PointStats + Sync)) -> Vec<PointStats>,
) -> ApGrid {
    // The levels and the bright mask once (the disc is the mask's largest
    // region): each is a pass over the whole reference.
    let lv = levels(reference);
    let mask = (mode == Mode::Planet).then(|| bright_mask_at(reference, lv, p.disc_threshold));
    let size = if p.ap_size == 0 {
        let disc = mask
            .as_ref()
            .map(|m| disc_diameter(&largest_region(m, w, h)));
        auto_size(w, h, mode, disc)
    } else {
        p.ap_size as usize
    };
    let size = size.max(MIN_AP_SIZE.min(w.min(h)));
    let step = if p.ap_step == 0 {
        ((size as f32 / 2.0 / p.density.max(1.0)).round() as usize).max(4.min(size / 2).max(1))
    } else {
        p.ap_step as usize
    };
    let mut grid = ApGrid::new(w, h, size, step);
    let s = grid.size;
    let (bright, _) = lv;
    let stat = |k: usize| -> PointStats {
        let mut patch = vec![0.0f32; s * s];
        grid.patch(reference, w, h, k, 0, 0, &mut patch);
        let mean = patch.iter().sum::<f32>() / patch.len() as f32;
        let coverage = mask.as_ref().map_or(1.0, |m| {
            let (ox, oy) = grid.origin(k);
            let inside = (oy..oy + s)
                .map(|y| m[y * w + ox..y * w + ox + s].iter().filter(|b| **b).count())
                .sum::<usize>();
            inside as f32 / (s * s) as f32
        });
        (mean, structure(&patch, s), coverage)
    };
    let stats = map(grid.len(), &stat);
    let structures: Vec<f32> = stats.iter().map(|s| s.1).collect();
    let p90 = percentile(&structures, 0.9);
    // Structure a patch of pure noise would show: a point must stand well
    // above it, however flat the rest of the frame is (the relative test
    // alone passes every point of a featureless frame).
    let floor = NOISE_MARGIN * NOISE_STRUCTURE * jupiter_kit::stats::noise_sigma(reference, w, h);
    for (k, (mean, st, coverage)) in stats.into_iter().enumerate() {
        let placed = match mode {
            // Every point touching the disc (or a moon): the limb is the
            // sharpest feature of a planet and must be measured where it is.
            Mode::Planet => coverage > 0.0,
            Mode::Surface => mean >= p.min_brightness * bright,
        };
        grid.active[k] = placed && st >= p.min_structure * p90 && st > floor && st > 0.0;
    }
    grid
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A patch read in place holds what `patch` copies out; at the edges
    /// (where `patch` replicates) there is none.
    #[test]
    fn patches_in_place_are_the_copied_patches_inside_the_frame() {
        let (w, h) = (90, 70);
        let plane: Vec<f32> = (0..w * h).map(|i| (i as f32 * 0.37).sin()).collect();
        let g = ApGrid::new(w, h, 16, 8);
        let mut copy = vec![0.0; 16 * 16];
        let (mut inside, mut outside) = (0, 0);
        for k in 0..g.len() {
            for at in [(0, 0), (-3, 2), (40, 0), (0, -40)] {
                g.patch(&plane, w, h, k, at.0, at.1, &mut copy);
                match g.patch_in(&plane, (w, h), k, at) {
                    Some(v) => {
                        inside += 1;
                        let mut buf = vec![0.0; 16 * 16];
                        assert_eq!(
                            v.packed_into(16, &mut buf),
                            &copy[..],
                            "point {k} at {at:?}"
                        );
                    }
                    None => {
                        outside += 1;
                        let (ox, oy) = g.origin(k);
                        let (x0, y0) = (ox as isize + at.0, oy as isize + at.1);
                        assert!(x0 < 0 || y0 < 0 || x0 + 16 > w as isize || y0 + 16 > h as isize);
                    }
                }
            }
        }
        assert!(inside > 0 && outside > 0);
    }

    #[test]
    fn a_thinned_grid_keeps_every_other_point_where_it_was() {
        let mut g = ApGrid::new(1000, 700, 64, 32);
        g.active[2] = false;
        let t = g.thinned(2);
        assert_eq!((t.cols, t.rows), ((g.cols + 1) / 2, (g.rows + 1) / 2));
        for k in 0..t.len() {
            let (i, j) = (k % t.cols, k / t.cols);
            let full = 2 * j * g.cols + 2 * i;
            assert_eq!(t.origin(k), g.origin(full));
            assert_eq!(t.active[k], g.active[full]);
        }
        assert!(!t.active[1]);
        assert_eq!(g.thinned(1), g);
        assert_eq!(g.thinning_for(0), 1);
        assert_eq!(g.thinning_for(g.len()), 1);
        let f = g.thinning_for(g.len() / 5);
        assert_eq!(f, 4);
        assert!(g.thinned(f).active_count() <= g.len() / 5);
    }

    #[test]
    fn detect_mode_tells_a_disc_on_dark_sky_from_a_surface() {
        use jupiter_testkit::frames::image_from;
        let (w, h) = (160, 120);
        let disc_in = |(w, h): (usize, usize), cx: f32, cy: f32, r: f32| {
            image_from(w, h, move |x, y| {
                let inside = (x - cx).powi(2) + (y - cy).powi(2) < r * r;
                if inside {
                    0.6 + 0.2 * (y * 0.3).sin()
                } else {
                    0.02
                }
            })
        };
        let disc = |cx: f32, cy: f32, r: f32| disc_in((w, h), cx, cy, r);
        assert_eq!(
            detect_mode(&disc(80.0, 60.0, 35.0), w, h, 0.25),
            Mode::Planet
        );
        // The same disc cut by the frame's edge, and a textured surface.
        assert_eq!(
            detect_mode(&disc(150.0, 60.0, 35.0), w, h, 0.25),
            Mode::Surface
        );
        let surface = image_from(w, h, |x, y| 0.5 + 0.2 * (x * 0.2).sin() * (y * 0.15).cos());
        assert_eq!(detect_mode(&surface, w, h, 0.25), Mode::Surface);
        // Nothing bright at all.
        assert_eq!(detect_mode(&vec![0.1; w * h], w, h, 0.25), Mode::Surface);
        // A large frame is judged binned, alike.
        let (bw, bh) = (2600, 1700);
        let big = |cx: f32, cy: f32, r: f32| disc_in((bw, bh), cx, cy, r);
        assert!(bw * bh > MODE_SAMPLES);
        assert_eq!(
            detect_mode(&big(1300.0, 850.0, 400.0), bw, bh, 0.25),
            Mode::Planet
        );
        assert_eq!(
            detect_mode(&big(2500.0, 850.0, 400.0), bw, bh, 0.25),
            Mode::Surface
        );
    }

    #[test]
    fn noise_sigma_reads_white_noise_and_ignores_smooth_detail() {
        let (w, h) = (200, 150);
        let mut rng = jupiter_testkit::rng::Rng::new(5);
        let noise: Vec<f32> = (0..w * h).map(|_| 0.02 * rng.gauss()).collect();
        let s = jupiter_kit::stats::noise_sigma(&noise, w, h);
        assert!((s - 0.02).abs() < 0.002, "{s}");
        // Smooth structure (slow sines) adds almost nothing.
        let detailed: Vec<f32> = noise
            .iter()
            .enumerate()
            .map(|(i, n)| n + 0.3 * ((i % w) as f32 * 0.05).sin() * ((i / w) as f32 * 0.07).cos())
            .collect();
        let d = jupiter_kit::stats::noise_sigma(&detailed, w, h);
        assert!((d - 0.02).abs() < 0.003, "{d}");
        // Pure noise has about NOISE_STRUCTURE × σ of structure.
        let st = structure(&noise[..64 * 64], 64);
        assert!((st / 0.02 - NOISE_STRUCTURE).abs() < 0.05, "{}", st / 0.02);
    }

    #[test]
    fn grid_is_centred_and_covers_the_frame() {
        let g = ApGrid::new(100, 70, 32, 16);
        assert_eq!((g.cols, g.rows), (5, 3));
        // 100 - 32 - 4 * 16 = 4 → 2 px each side; 70 - 32 - 2 * 16 = 6 → 3.
        assert_eq!((g.ox0, g.oy0), (2, 3));
        assert_eq!(g.origin(6), (18, 19));
        assert_eq!(g.centre(0), (17.5, 18.5));
        let (lx, ly) = g.origin(g.len() - 1);
        assert!(lx + 32 <= 100 && ly + 32 <= 70);
        let f = g.field(&[0.0; 15], &[0.0; 15], &[1.0; 15], 1);
        assert_eq!(
            (f.cols, f.rows, f.step_x, f.x0, f.y0),
            (5, 3, 16.0, 17.5, 18.5)
        );
        // Refined twice: stored at the points, read at twice the density.
        let f = g.field(&[0.0; 15], &[0.0; 15], &[1.0; 15], 2);
        assert_eq!((f.cols, f.rows, f.refine), (5, 3, 2));
        let f = f.dense().into_owned();
        assert_eq!(
            (f.cols, f.rows, f.step_x, f.x0, f.y0),
            (9, 5, 8.0, 17.5, 18.5)
        );
        assert!(f.weight.iter().all(|w| *w == 1.0));
        // A frame smaller than the size gets one point of the frame's size.
        let g = ApGrid::new(20, 30, 64, 32);
        assert_eq!((g.size, g.cols, g.rows), (20, 1, 1));
    }

    #[test]
    fn neighbours_stay_inside() {
        let g = ApGrid::new(100, 70, 32, 16);
        assert_eq!(g.neighbours(0).collect::<Vec<_>>(), vec![1, 5, 6]);
        assert_eq!(g.neighbours(7).count(), 8);
    }

    #[test]
    fn patch_replicates_edges() {
        let (w, h) = (8, 6);
        let plane: Vec<f32> = (0..w * h).map(|i| i as f32).collect();
        let g = ApGrid::new(w, h, 4, 2);
        let mut out = vec![0.0; 16];
        g.patch(&plane, w, h, 0, -3, 0, &mut out);
        // Origin (0, 0) moved 3 left: columns 0, 0, 0, 0.
        assert_eq!(g.origin(0), (0, 0));
        assert_eq!(&out[0..4], &[0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&out[4..8], &[8.0, 8.0, 8.0, 8.0]);
        g.patch(&plane, w, h, 0, 1, 1, &mut out);
        assert_eq!(&out[0..4], &[9.0, 10.0, 11.0, 12.0]);
        g.patch(&plane, w, h, 5, 3, 3, &mut out);
        // Origin (4, 2) moved to (7, 5): clamped to the last column and row.
        assert!(out.iter().all(|&v| v == 47.0));
    }

    #[test]
    fn structure_prefers_sharp_patches() {
        let s = 32;
        let sharp: Vec<f32> = (0..s * s)
            .map(|i| {
                if (i % s / 4 + i / s / 4) % 2 == 0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let soft: Vec<f32> = (0..s * s)
            .map(|i| 0.5 + 0.5 * ((i % s) as f32 * 0.2).sin())
            .collect();
        let flat = vec![0.5; s * s];
        assert!(structure(&sharp, s) > structure(&soft, s));
        assert!(structure(&soft, s) > 0.0);
        assert_eq!(structure(&flat, s), 0.0);
    }

    #[test]
    fn structures_of_a_frame_match_each_patch_alone() {
        let (w, h) = (97, 83);
        let plane: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                0.5 + 0.3 * (x * 0.41).sin() * (y * 0.27).cos() + 0.05 * ((x * y) * 0.013).sin()
            })
            .collect();
        let mut g = ApGrid::new(w, h, 24, 12);
        g.active[2] = false;
        let mut got = vec![-1.0; g.len()];
        let mut patch = vec![0.0; 24 * 24];
        // Inside, and displaced so that edge patches reach past the frame.
        for (rx, ry) in [(0, 0), (3, -2), (-5, 4)] {
            g.structures(&plane, w, h, rx, ry, &mut got);
            for k in 0..g.len() {
                let want = if g.active[k] {
                    g.patch(&plane, w, h, k, rx, ry, &mut patch);
                    structure(&patch, 24)
                } else {
                    0.0
                };
                assert!(
                    (got[k] - want).abs() <= 1e-5 * want.max(1e-3),
                    "{k} at ({rx},{ry}): {} vs {want}",
                    got[k]
                );
            }
            // The rows in bands on a pool: the same values, bit for bit.
            let be = jupiter_plugin_api::testing::ThreadBackend::new(3);
            let mut banded = vec![-1.0; g.len()];
            be.with_ctx("t", |ctx| {
                g.structures_in(Some(ctx), &plane, (w, h), (rx, ry), &mut banded)
            });
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&banded), bits(&got), "({rx},{ry})");
        }
    }

    #[test]
    fn featureless_and_dark_points_are_skipped() {
        // Left half textured, right half flat; bottom rows dark.
        let (w, h) = (128, 96);
        let plane: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = (i % w, i / w);
                if y >= 64 {
                    0.0
                } else if x < 64 {
                    0.5 + 0.3 * ((x as f32 * 0.7).sin() * (y as f32 * 0.5).cos())
                } else {
                    0.5
                }
            })
            .collect();
        let p = MultipointParams {
            ap_size: 32,
            ap_step: 32,
            ..Default::default()
        };
        let g = place(&plane, w, h, Mode::Surface, &p);
        assert_eq!((g.cols, g.rows), (4, 3));
        let active: Vec<usize> = (0..g.len()).filter(|&k| g.active[k]).collect();
        assert_eq!(active, vec![0, 1, 4, 5]);
    }

    #[test]
    fn the_disc_is_the_largest_bright_region() {
        let (w, h) = (60, 40);
        let plane: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let planet = ((x - 25.0).powi(2) + (y - 20.0).powi(2)).sqrt() < 12.0;
                let moon = ((x - 52.0).powi(2) + (y - 8.0).powi(2)).sqrt() < 3.0;
                if planet || moon {
                    0.8
                } else {
                    0.02
                }
            })
            .collect();
        let m = disc_mask(&plane, w, h, 0.25);
        assert!(m[20 * w + 25] && !m[8 * w + 52] && !m[0]);
        let d = disc_diameter(&m);
        assert!((d - 24.0).abs() < 1.5, "{d}");
    }

    #[test]
    fn planet_mode_keeps_points_on_the_disc() {
        let (w, h) = (160, 128);
        let plane: Vec<f32> = (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32 - 80.0, (i / w) as f32 - 64.0);
                let r = (x * x + y * y).sqrt();
                if r < 40.0 {
                    0.6 + 0.2 * (y * 0.4).sin() + 0.1 * (x * 0.3).cos()
                } else {
                    0.01
                }
            })
            .collect();
        let p = MultipointParams {
            mode: "planet".into(),
            ..Default::default()
        };
        let g = place(&plane, w, h, Mode::Planet, &p);
        // Auto size: a quarter of the ~80 px disc.
        assert_eq!(g.size, 24);
        assert!(g.active_count() > 4);
        for k in 0..g.len() {
            // The patch's nearest pixel to the disc centre.
            let (ox, oy) = g.origin(k);
            let nx = 80.0f32.clamp(ox as f32, (ox + g.size - 1) as f32);
            let ny = 64.0f32.clamp(oy as f32, (oy + g.size - 1) as f32);
            // Reaching 6 px into the disc (a thinner sliver may lack structure).
            let touches = ((nx - 80.0).powi(2) + (ny - 64.0).powi(2)).sqrt() < 34.0;
            let clear = ((nx - 80.0).powi(2) + (ny - 64.0).powi(2)).sqrt() > 41.0;
            if g.active[k] {
                assert!(
                    !clear,
                    "point {k} at {:?} does not touch the disc",
                    g.centre(k)
                );
            } else {
                assert!(
                    !touches,
                    "point {k} at {:?} touches the disc but was skipped",
                    g.centre(k)
                );
            }
        }
    }

    #[test]
    fn white_noise_adds_its_share_to_structure() {
        // A flat patch plus white noise of variance 0.01 (uniform, ±√0.03).
        let (s, var) = (96usize, 0.01f32);
        let mut state = 12345u64;
        let patch: Vec<f32> = (0..s * s)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (state >> 40) as f32 / (1u64 << 24) as f32;
                0.5 + (u - 0.5) * 2.0 * (3.0 * var).sqrt()
            })
            .collect();
        let got = structure(&patch, s).powi(2);
        let want = NOISE_STRUCTURE * NOISE_STRUCTURE * var;
        assert!((got / want - 1.0).abs() < 0.05, "{got} vs {want}");
    }
}
