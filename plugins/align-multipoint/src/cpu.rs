//! CPU path of `align-multipoint` (see the crate documentation for the algorithm).

use jupiter_kit::align::{
    frame_luminance, frame_luminance_in, luminance_into, mean_of_best_seeing, Roi,
};
use jupiter_kit::fft::{bin2, bin2_strided, PhaseCorrelator, Shift};
use jupiter_kit::stats::{noise_model, NoiseModel};
use jupiter_kit::warp::Interp;
use jupiter_plugin_api::prelude::*;

use crate::dewarp::{dewarp_rows, dewarp_rows_within};
use crate::field::{self, Local};
use crate::gradient::{Gradient, PatchRef, MAX_SHIFT};
use crate::grid::{self, ApGrid};
use crate::params::{Mode, MultipointParams};

/// Everything measured on one frame: its global shift and, per grid point
/// (inactive points stay default), the local measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameMeasure {
    pub global: Shift,
    pub locals: Vec<Local>,
}

/// The reference's global correlator, on the rectangle global shifts are
/// measured on ([`Roi::around_object`]: the object and a margin, at most
/// 1024² on large frames, whose whole-frame correlator would hold some
/// 300 MB of spectra and windows).
pub struct GlobalRef {
    pub pc: PhaseCorrelator,
    pub roi: Roi,
    width: usize,
}

impl GlobalRef {
    /// Prepares the correlator on `reference` (`w × h`).
    pub fn new(reference: &[f32], w: usize, h: usize) -> GlobalRef {
        let roi = Roi::around_object(reference, w, h);
        GlobalRef {
            pc: PhaseCorrelator::new(&roi.crop(reference, w), roi.w, roi.h),
            roi,
            width: w,
        }
    }

    /// The rectangle of a frame's luminance.
    fn crop<'a>(&self, lum: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
        if self.roi.w == self.width && self.roi.w * self.roi.h == lum.len() {
            lum.into()
        } else {
            self.roi.crop(lum, self.width).into()
        }
    }

    /// [`PhaseCorrelator::rough_shift`] of a frame's luminance.
    pub fn rough(&self, lum: &[f32]) -> Shift {
        self.pc.rough_shift(&self.crop(lum))
    }

    /// [`PhaseCorrelator::shift_of`] of a frame's luminance.
    pub fn full(&self, lum: &[f32]) -> Shift {
        self.pc.shift_of(&self.crop(lum))
    }
}

/// Patches of at least this side take their first estimate on 2×2-binned
/// planes ([`PhaseCorrelator::first_estimate`]): a quarter of the cost of
/// the full correlation, and the gradient pass after it measures what the
/// binning missed.
const POINT_COARSE_MIN: usize = 32;

/// One alignment point's phase correlators: the first estimate's (on the
/// 2×2-binned reference patch from [`POINT_COARSE_MIN`] on, else the patch
/// itself) and the full-resolution one where the passes after the first
/// need it (a point without a gradient fit, `refine = correlation`, or a
/// single pass). Elsewhere the full one is made from the reference patch
/// when a residual falls outside the gradient fit's range (rare): keeping
/// it for every point held most of the aligner's memory on large frames.
pub struct PointCorrelator {
    pub(crate) first: PhaseCorrelator,
    pub(crate) binned: bool,
    full: Option<PhaseCorrelator>,
}

impl PointCorrelator {
    fn new(patch: &[f32], s: usize, full: bool) -> PointCorrelator {
        let binned = s >= POINT_COARSE_MIN;
        let first = if binned {
            // Frequencies in binned pixels are twice those in full pixels.
            PhaseCorrelator::with_params(&bin2(patch, s, s), s / 2, s / 2, 0.2, 0.3)
        } else {
            PhaseCorrelator::new(patch, s, s)
        };
        PointCorrelator {
            first,
            binned,
            full: (full || !binned).then(|| PhaseCorrelator::new(patch, s, s)),
        }
    }

    /// The first estimate of a patch's shift (one correlation, binned).
    fn first_estimate(&self, patch: &[f32], s: usize) -> Shift {
        if !self.binned {
            return self.first.raw_shift(patch);
        }
        let r = self.first.raw_shift(&bin2(patch, s, s));
        Shift {
            dx: 2.0 * r.dx,
            dy: 2.0 * r.dy,
            peak: r.peak,
        }
    }

    /// [`Self::first_estimate`] of a patch read in place; `None` for a
    /// point whose first estimate is not binned (the caller copies).
    fn first_estimate_in(&self, patch: PatchRef, s: usize) -> Option<Shift> {
        if !self.binned {
            return None;
        }
        let r = self
            .first
            .raw_shift(&bin2_strided(patch.data, patch.stride, s, s));
        Some(Shift {
            dx: 2.0 * r.dx,
            dy: 2.0 * r.dy,
            peak: r.peak,
        })
    }
}

impl Points {
    /// `f` of point `k`'s full-resolution correlator: the kept one, or one
    /// made from the point's reference patch.
    fn with_full<T>(&self, k: usize, f: impl FnOnce(&PhaseCorrelator) -> T) -> Option<T> {
        let pc = self.correlators[k].as_ref()?;
        if let Some(full) = &pc.full {
            return Some(f(full));
        }
        let s = self.grid.size;
        let mut patch = vec![0.0f32; s * s];
        self.reference_patch(k, &mut patch);
        Some(f(&PhaseCorrelator::new(&patch, s, s)))
    }

    /// Point `k`'s patch of the reference the points were prepared on.
    fn reference_patch(&self, k: usize, out: &mut [f32]) {
        self.grid
            .patch(&self.reference, self.w, self.h, k, 0, 0, out);
    }

    /// [`Self::reference_patch`] read in place, or copied into `buf` at
    /// the frame's edges.
    fn reference_patch_in<'a>(&'a self, k: usize, buf: &'a mut [f32]) -> PatchRef<'a> {
        match self
            .grid
            .patch_in(&self.reference, (self.w, self.h), k, (0, 0))
        {
            Some(v) => v,
            None => {
                self.reference_patch(k, buf);
                PatchRef::packed(buf, self.grid.size)
            }
        }
    }
}

/// Point `k`'s correlators and gradient fit (none for an inactive point),
/// on its patch of `reference` (`w × h`).
fn prepare_point(
    grid: &ApGrid,
    reference: &[f32],
    (w, h): (usize, usize),
    p: &MultipointParams,
    k: usize,
) -> (Option<PointCorrelator>, Option<Gradient>) {
    if !grid.active[k] {
        return (None, None);
    }
    let s = grid.size;
    let mut patch = vec![0.0f32; s * s];
    grid.patch(reference, w, h, k, 0, 0, &mut patch);
    let gradient = Gradient::new(&patch, s);
    let correlation = p.passes <= 1 || p.refine != "gradient";
    let full = correlation || gradient.is_none();
    (Some(PointCorrelator::new(&patch, s, full)), gradient)
}

/// The per-point correlators, built once from the reference patches (their
/// windowed spectra are cached inside), plus the grid they belong to.
pub struct Points {
    pub grid: ApGrid,
    /// `Some` for active points.
    pub correlators: Vec<Option<PointCorrelator>>,
    /// The gradient fits of the active points with enough structure in
    /// both directions (the passes after the first).
    pub gradients: Vec<Option<Gradient>>,
    /// Per frame row, the columns active points cover (`x0 >= x1`: none):
    /// all that the later passes resample.
    pub spans: Vec<(usize, usize)>,
    /// Per point, the sharpness² a frame's noise alone gives there (at the
    /// reference's level; 0 until [`Points::with_noise`]): what the
    /// automatic per-point budget weighs detail against.
    pub noise: Vec<f32>,
    /// The reference plane the points were prepared on (`w × h`): the
    /// gradient fits read their reference patches from it.
    reference: Vec<f32>,
    w: usize,
    h: usize,
}

impl Points {
    /// Prepares the correlators and gradient fits of the active points of
    /// `grid` on `reference`, for the passes `p` asks for.
    pub fn new(
        grid: ApGrid,
        reference: &[f32],
        w: usize,
        h: usize,
        p: &MultipointParams,
    ) -> Points {
        let prepared = (0..grid.len())
            .map(|k| prepare_point(&grid, reference, (w, h), p, k))
            .collect();
        Self::from_prepared(grid, prepared, reference.to_vec(), w, h)
    }

    /// [`Points::new`], the points prepared in parallel on the stage's pool
    /// (thousands of them on a large frame).
    pub fn new_in(
        ctx: &StageCtx,
        grid: ApGrid,
        reference: Vec<f32>,
        w: usize,
        h: usize,
        p: &MultipointParams,
    ) -> Result<Points, StageError> {
        let prepared = ctx.par_map(grid.len(), |k| {
            prepare_point(&grid, &reference, (w, h), p, k)
        })?;
        Ok(Self::from_prepared(grid, prepared, reference, w, h))
    }

    fn from_prepared(
        grid: ApGrid,
        prepared: Vec<(Option<PointCorrelator>, Option<Gradient>)>,
        reference: Vec<f32>,
        w: usize,
        h: usize,
    ) -> Points {
        let (correlators, gradients) = prepared.into_iter().unzip();
        let spans = active_spans(&grid, w, h);
        Points {
            grid,
            correlators,
            gradients,
            spans,
            noise: Vec::new(),
            reference,
            w,
            h,
        }
    }

    /// The reference plane the points were prepared on.
    pub fn reference(&self) -> &[f32] {
        &self.reference
    }

    /// The reference plane the points were prepared on, the points dropped.
    pub fn into_reference(self) -> Vec<f32> {
        self.reference
    }

    /// Sets [`Points::noise`] from the noise model of one frame's
    /// luminance, at each active point's mean level on the reference.
    pub fn with_noise(mut self, model: &NoiseModel) -> Points {
        let s = self.grid.size;
        let mut patch = vec![0.0f32; s * s];
        let scale = grid::NOISE_STRUCTURE * grid::NOISE_STRUCTURE;
        self.noise = (0..self.grid.len())
            .map(|k| {
                if !self.grid.active[k] {
                    return 0.0;
                }
                self.reference_patch(k, &mut patch);
                scale * model.variance(jupiter_kit::stats::mean(&patch) as f32)
            })
            .collect();
        self
    }
}

/// Measures one frame (its luminance plane): the global shift against
/// `global`, then at every active point the residual local shift of the
/// patch (taken at the integer-rounded global position) and its sharpness.
/// Further passes (`p.passes`) resample each patch under the field estimated
/// so far and measure what is left: a patch under a distortion that varies
/// across it is stretched, which biases one correlation by up to a third of
/// the distortion, while the residual after dewarping is small and nearly
/// uniform.
pub fn measure_frame(
    lum: &[f32],
    w: usize,
    h: usize,
    global: &GlobalRef,
    points: &Points,
    p: &MultipointParams,
) -> FrameMeasure {
    measure_frame_in(None, lum, (w, h), global, points, p, true, &mut Vec::new())
}

/// [`measure_frame`], its points measured in parallel on `par`'s pool when
/// given (a large frame measured alone), else on this thread; without the
/// points' sharpness unless `sharpness` (the reference rebuild needs only
/// the shifts); `dewarped` is [`later_passes`]' plane.
#[allow(clippy::too_many_arguments)]
fn measure_frame_in(
    par: Option<&StageCtx>,
    lum: &[f32],
    (w, h): (usize, usize),
    global: &GlobalRef,
    points: &Points,
    p: &MultipointParams,
    sharpness: bool,
    dewarped: &mut Vec<f32>,
) -> FrameMeasure {
    let mut m = scan_with(par, lum, (w, h), global, points, sharpness);
    first_pass_points(par, lum, w, h, points, p, &mut m, None);
    later_passes(par, lum, w, h, points, p, &mut m, None, dewarped);
    m
}

/// Points measured per parallel task by [`update_points`].
const POINTS_PER_TASK: usize = 8;

/// How many frames of `w × h` to measure at once: a task measuring one
/// frame holds two planes (the luminance and its dewarped copy); past
/// kit's budget, frames are measured one at a time, each one's points in
/// parallel, so that the memory stays that of one frame on any number of
/// cores.
fn frames_in_flight(ctx: &StageCtx, w: usize, h: usize) -> usize {
    jupiter_kit::align::frames_in_flight(ctx, w, h, 2)
}

/// Replaces `locals[k]` by `f(k, locals, scratch)` for every point `k`
/// where `f` measures one (`Some`), all from the same `locals` as they were
/// before: on this thread with one scratch buffer of `scratch` samples, or,
/// with `par`, in parallel on its pool ([`POINTS_PER_TASK`] points and one
/// buffer per task). The results are the same either way.
fn update_points(
    par: Option<&StageCtx>,
    locals: &mut [Local],
    scratch: usize,
    f: impl Fn(usize, &[Local], &mut [f32]) -> Option<Local> + Sync,
) {
    let mut measured: Vec<Option<Local>> = vec![None; locals.len()];
    let before = &*locals;
    let run = |start: usize, chunk: &mut [Option<Local>]| {
        let mut buf = vec![0.0f32; scratch];
        for (j, o) in chunk.iter_mut().enumerate() {
            *o = f(start + j, before, &mut buf);
        }
    };
    match par {
        // Cancelled: the tasks not run measure nothing; the caller checks
        // for cancellation after the frame.
        Some(ctx) if measured.len() > POINTS_PER_TASK => {
            let _ = ctx.par_chunks_mut(&mut measured, POINTS_PER_TASK, |c, chunk| {
                run(c * POINTS_PER_TASK, chunk)
            });
        }
        _ => run(0, &mut measured),
    }
    for (l, new) in locals.iter_mut().zip(measured) {
        if let Some(new) = new {
            *l = new;
        }
    }
}

/// Frames measured at every point for the mean geometry (every
/// `count / RECENTRE_FRAMES`-th; all of a shorter capture).
const RECENTRE_FRAMES: usize = 100;

/// Whether a local measurement is usable: a clear peak, finite, within the
/// search range.
fn accepted(m: &Shift, dx: f32, dy: f32, p: &MultipointParams) -> bool {
    m.peak >= p.min_peak
        && dx.is_finite()
        && dy.is_finite()
        && dx.abs() <= p.search
        && dy.abs() <= p.search
}

/// What the selection needs of a frame: its global shift and each active
/// point's sharpness on the patch at the rounded global position (shifts
/// not measured yet; `valid` until a measurement says otherwise).
pub fn scan(lum: &[f32], w: usize, h: usize, global: &GlobalRef, points: &Points) -> FrameMeasure {
    scan_with(None, lum, (w, h), global, points, true)
}

/// [`scan`], the sharpness measured only when `sharpness` (else 0).
fn scan_with(
    par: Option<&StageCtx>,
    lum: &[f32],
    (w, h): (usize, usize),
    global: &GlobalRef,
    points: &Points,
    sharpness: bool,
) -> FrameMeasure {
    let grid = &points.grid;
    // With alignment points, the global shift is only where their patches
    // are taken (rounded): they measure the residual, so the rough estimate
    // on binned planes is enough. Without any, it is the result.
    let g = if grid.active_count() > 0 {
        global.rough(lum)
    } else {
        global.full(lum)
    };
    let (rx, ry) = (g.dx.round() as isize, g.dy.round() as isize);
    let mut sharp = vec![0.0f32; grid.len()];
    if sharpness {
        grid.structures_in(par, lum, (w, h), (rx, ry), &mut sharp);
    }
    let mut locals = vec![Local::default(); grid.len()];
    for k in (0..grid.len()).filter(|&k| grid.active[k]) {
        locals[k].sharpness = sharp[k];
        locals[k].valid = true;
    }
    FrameMeasure { global: g, locals }
}

/// The first measurement of each active point's shift (or, with `only`, of
/// those where it is true) on the patch at the rounded global position;
/// the points in parallel on `par`'s pool when given.
#[allow(clippy::too_many_arguments)]
fn first_pass_points(
    par: Option<&StageCtx>,
    lum: &[f32],
    w: usize,
    h: usize,
    points: &Points,
    p: &MultipointParams,
    m: &mut FrameMeasure,
    only: Option<&[bool]>,
) {
    let grid = &points.grid;
    let g = m.global;
    let (rx, ry) = (g.dx.round(), g.dy.round());
    let s = grid.size;
    let at = (rx as isize, ry as isize);
    update_points(par, &mut m.locals, s * s, |k, locals, patch| {
        let pc = points.correlators[k].as_ref()?;
        if only.is_some_and(|o| !o[k]) {
            return None;
        }
        // With a later pass, its residual measurement also absorbs the small
        // window bias of a single correlation and the binned estimate's
        // error: no refinement needed here. The binned estimate reads the
        // patch in place where it lies inside the frame.
        let in_place = (p.passes > 1)
            .then(|| grid.patch_in(lum, (w, h), k, at))
            .flatten()
            .and_then(|v| pc.first_estimate_in(v, s));
        let r = match in_place {
            Some(r) => r,
            None => {
                grid.patch(lum, w, h, k, at.0, at.1, patch);
                if p.passes > 1 {
                    pc.first_estimate(patch, s)
                } else {
                    points
                        .with_full(k, |full| full.shift_of(patch))
                        .unwrap_or_else(|| pc.first_estimate(patch, s))
                }
            }
        };
        Some(first_local(&r, (rx, ry), &g, locals[k].sharpness, p))
    });
}

/// A point's first measurement `r` of the patch taken at the rounded
/// global position `(rx, ry)`, as a local shift: the patch's total shift
/// (integer offset + measured) minus the global one.
pub(crate) fn first_local(
    r: &Shift,
    (rx, ry): (f32, f32),
    g: &Shift,
    sharpness: f32,
    p: &MultipointParams,
) -> Local {
    measured_local(r, (rx + r.dx - g.dx, ry + r.dy - g.dy), sharpness, p)
}

/// A point's residual `r` measured after dewarping under the field value
/// `(fx, fy)` there, as a local shift.
pub(crate) fn later_local(
    r: &Shift,
    (fx, fy): (f32, f32),
    sharpness: f32,
    p: &MultipointParams,
) -> Local {
    measured_local(r, (fx + r.dx, fy + r.dy), sharpness, p)
}

/// The local shift `(dx, dy)` a measurement `r` gave, valid when
/// [`accepted`].
fn measured_local(r: &Shift, (dx, dy): (f32, f32), sharpness: f32, p: &MultipointParams) -> Local {
    Local {
        dx,
        dy,
        peak: r.peak,
        sharpness,
        valid: accepted(r, dx, dy, p),
        measured: true,
    }
}

/// The field a pass after the first resamples a frame under: its local
/// shifts so far, cleaned and filled, refined (weights 1); also the
/// filled node values per point.
pub(crate) fn field_so_far(
    grid: &ApGrid,
    locals: &[Local],
    p: &MultipointParams,
) -> (Vec<f32>, Vec<f32>, WarpField) {
    let mut est = locals.to_vec();
    field::clean(grid, &mut est, p.outlier);
    let (mut fx, mut fy): (Vec<f32>, Vec<f32>) = est.iter().map(|l| (l.dx, l.dy)).unzip();
    field::fill(grid, &mut fx, &mut fy);
    let ones = vec![1.0; grid.len()];
    let f = grid.dense_field(&fx, &fy, &ones, p.field_refine as usize);
    (fx, fy, f)
}

/// The passes after the first (`p.passes`): the frame resampled under the
/// field measured so far, the residual measured at the active points, or,
/// with `only`, at the points where it is true (the others keep what they
/// have; only the rows and columns of those points are resampled). With
/// `par`, the rows and the points in parallel on its pool.
#[allow(clippy::too_many_arguments)]
pub fn later_passes(
    par: Option<&StageCtx>,
    lum: &[f32],
    w: usize,
    h: usize,
    points: &Points,
    p: &MultipointParams,
    m: &mut FrameMeasure,
    only: Option<&[bool]>,
    dewarped: &mut Vec<f32>,
) {
    let grid = &points.grid;
    if p.passes <= 1 || grid.active_count() == 0 {
        return;
    }
    let wanted = |k: usize| only.is_none_or(|o| o[k]);
    let own_spans = only.map(|o| spans_of(grid, w, h, |k| o[k]));
    let spans = own_spans.as_deref().unwrap_or(&points.spans);
    let s = grid.size;
    // Reused from frame to frame (its rows outside the spans are never
    // read): a fresh large plane costs the kernel's zeroing of every page.
    jupiter_kit::mem::fit(dewarped, w * h);
    let g = m.global;
    let locals = &mut m.locals;
    for _ in 1..p.passes {
        let (fx, fy, f) = field_so_far(grid, locals, p);
        // The frame resampled once under the field so far; each patch of
        // it should now match its reference patch up to a small residual.
        let (y0, y1) = (grid.oy0, grid.origin(grid.len() - 1).1 + s);
        let dewarp = |y: usize, rows: &mut [f32]| {
            let at = (g.dx, g.dy);
            dewarp_rows_within(lum, w, h, at, &f, y, rows, Interp::Bilinear, |y| spans[y])
        };
        let band = &mut dewarped[y0 * w..y1 * w];
        match par {
            Some(ctx) => {
                // A few tasks per thread: each one sets up the field's
                // column interpolation along the whole width, which costs
                // as much as dewarping a few rows of a wide frame.
                let per = (y1 - y0).div_ceil(4 * ctx.threads().max(1)).max(16);
                // Cancelled: the caller checks after the frame.
                let _ = ctx.par_chunks_mut(band, per * w, |c, rows| dewarp(y0 + per * c, rows));
            }
            None => dewarp(y0, band),
        }
        let dewarped = &*dewarped;
        update_points(par, locals, 3 * s * s, |k, current, buf| {
            let pc = points.correlators[k].as_ref()?;
            if !wanted(k) {
                return None;
            }
            let (copy, bufs) = buf.split_at_mut(s * s);
            let patch = match grid.patch_in(dewarped, (w, h), k, (0, 0)) {
                Some(v) => v,
                None => {
                    grid.patch(dewarped, w, h, k, 0, 0, copy);
                    PatchRef::packed(copy, s)
                }
            };
            let r = residual(points, k, pc, patch, bufs, current[k].peak, p);
            Some(later_local(&r, (fx[k], fy[k]), current[k].sharpness, p))
        });
    }
}

/// Per row of a `w × h` frame, the columns the active points' patches cover.
fn active_spans(grid: &ApGrid, w: usize, h: usize) -> Vec<(usize, usize)> {
    spans_of(grid, w, h, |_| true)
}

/// [`active_spans`] of the active points where `keep(k)`.
fn spans_of(
    grid: &ApGrid,
    w: usize,
    h: usize,
    keep: impl Fn(usize) -> bool,
) -> Vec<(usize, usize)> {
    let mut spans = vec![(w, 0); h];
    for k in (0..grid.len()).filter(|&k| grid.active[k] && keep(k)) {
        let (ox, oy) = grid.origin(k);
        let (x1, y1) = ((ox + grid.size).min(w), (oy + grid.size).min(h));
        for s in &mut spans[oy.min(h)..y1] {
            *s = (s.0.min(ox), s.1.max(x1));
        }
    }
    spans
}

/// The residual shift of point `k`'s patch after dewarping: the gradient
/// fit when `refine = gradient` and the residual is within its range (it
/// keeps the first pass's peak), else the phase correlation.
/// `bufs` (`2 · size²`) hold the reference patch and a packed copy of
/// `patch` where they cannot be read in place.
fn residual(
    points: &Points,
    k: usize,
    pc: &PointCorrelator,
    patch: PatchRef,
    bufs: &mut [f32],
    peak: f32,
    p: &MultipointParams,
) -> Shift {
    let s = points.grid.size;
    let (ref_buf, pack_buf) = bufs.split_at_mut(s * s);
    let fitted = (p.refine == "gradient")
        .then(|| points.gradients[k].as_ref())
        .flatten()
        .and_then(|g| g.shift_in(points.reference_patch_in(k, ref_buf), patch));
    match fitted {
        Some((dx, dy)) if dx.abs() <= MAX_SHIFT && dy.abs() <= MAX_SHIFT => Shift { dx, dy, peak },
        _ => {
            let packed = patch.packed_into(s, pack_buf);
            points
                .with_full(k, |full| full.raw_shift(packed))
                .unwrap_or_else(|| pc.first_estimate(packed, s))
        }
    }
}

/// [`residual`] of point `k` of a frame (luminance `lum`, `w × h`)
/// resampled under its global shift `at` and the field `f`: only that
/// point's patch is resampled. The device path's fallback where the
/// gradient fit cannot measure.
#[allow(clippy::too_many_arguments)]
pub(crate) fn residual_on_cpu(
    points: &Points,
    lum: &[f32],
    (w, h): (usize, usize),
    at: (f32, f32),
    f: &WarpField,
    k: usize,
    peak: f32,
    p: &MultipointParams,
) -> Option<Shift> {
    let grid = &points.grid;
    let pc = points.correlators[k].as_ref()?;
    let spans = spans_of(grid, w, h, |j| j == k);
    let (y0, y1) = (
        grid.origin(k).1.min(h - 1),
        (grid.origin(k).1 + grid.size).min(h),
    );
    // Only the patch's rows: read with the rows' offset, the patch clamps
    // at the frame's edges as it would in the whole plane.
    let mut band = vec![0.0f32; (y1 - y0) * w];
    dewarp_rows_within(lum, w, h, at, f, y0, &mut band, Interp::Bilinear, |y| {
        spans[y]
    });
    let s = grid.size;
    let (mut patch, mut bufs) = (vec![0.0f32; s * s], vec![0.0f32; 2 * s * s]);
    grid.patch(&band, w, y1 - y0, k, 0, -(y0 as isize), &mut patch);
    let patch = PatchRef::packed(&patch, s);
    Some(residual(points, k, pc, patch, &mut bufs, peak, p))
}

/// The mean of the luminance of frames `0..k`, each resampled under its
/// measured global shift and (recentred) local field against the points' reference:
/// a sharper reference than the globally aligned mean, in the mean geometry
/// of those frames.
pub fn dewarped_mean(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    points: &Points,
    p: &MultipointParams,
    k: usize,
) -> Result<Vec<f32>, StageError> {
    let fields = reference_fields(ctx, frames, points, p, k)?;
    mean_under_fields(ctx, frames, points, p, fields)
}

/// Whether the grid may go sparse ([`MultipointParams::sparse_rms`]):
/// surface mode, the automatic step, a threshold set and points to measure.
fn sparse_allowed(mode: Mode, grid: &ApGrid, p: &MultipointParams) -> bool {
    mode == Mode::Surface && p.ap_step == 0 && p.sparse_rms > 0.0 && grid.active_count() > 0
}

/// Reference frames the distortion probe measures (at most).
const PROBE_FRAMES: usize = 4;

/// Points the distortion probe measures (about, at most): the grid is
/// thinned past it.
const PROBE_POINTS: usize = 200;

/// The RMS local shift of the best frames (at most [`PROBE_FRAMES`] of the
/// `k` reference frames, on `grid` thinned to about [`PROBE_POINTS`]) against
/// `reference`, which is handed back: what decides whether the points
/// need to overlap and the reference to be rebuilt.
fn probe_distortion(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    grid: &ApGrid,
    reference: Vec<f32>,
    p: &MultipointParams,
    k: usize,
) -> Result<(f32, Vec<f32>), StageError> {
    let (w, h, _) = frames.info().dims();
    let thin = grid.thinning_for(PROBE_POINTS);
    let on = Points::new_in(ctx, grid.thinned(thin), reference, w, h, p)?;
    let (_, locals) = reference_fields(ctx, frames, &on, p, k.min(PROBE_FRAMES))?;
    Ok((local_rms(&on.grid, &locals), on.into_reference()))
}

/// The RMS length of the local shifts at the active points of `grid` over
/// `locals` (one per frame).
fn local_rms(grid: &ApGrid, locals: &[Vec<Local>]) -> f32 {
    let (mut sq, mut n) = (0.0f64, 0usize);
    for l in locals {
        for k in (0..grid.len()).filter(|&k| grid.active[k]) {
            sq += (l[k].dx * l[k].dx + l[k].dy * l[k].dy) as f64;
            n += 1;
        }
    }
    if n == 0 {
        return 0.0;
    }
    (sq / n as f64).sqrt() as f32
}

/// The global shifts and local fields (cleaned, recentred on their mean)
/// of frames `0..k` against the points' reference, on the device when
/// the host keeps the frames there.
fn reference_fields(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    points: &Points,
    p: &MultipointParams,
    k: usize,
) -> Result<Measured, StageError> {
    let (w, h, _) = frames.info().dims();
    let global = GlobalRef::new(points.reference(), w, h);
    let grid = &points.grid;
    let device = match ctx.gpu() {
        Some(gpu) => frames.on_device()?.map(|dev| (gpu, dev)),
        None => None,
    };
    let (globals, mut locals) = match &device {
        Some(on) => reference_frames_on_device(ctx, (&on.0, &on.1), frames, &global, points, p, k)?,
        None => None,
    }
    .map_or_else(|| reference_frames(ctx, frames, &global, points, p, k), Ok)?;
    for l in locals.iter_mut() {
        field::clean(grid, l, p.outlier);
    }
    field::recentre(grid, &mut locals);
    Ok((globals, locals))
}

/// The mean of the luminance of the frames of `fields` (from
/// [`reference_fields`]), each resampled under its global shift and field.
fn mean_under_fields(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    points: &Points,
    p: &MultipointParams,
    (globals, locals): Measured,
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    let (w, h) = (info.width as usize, info.height as usize);
    let k = globals.len();
    let grid = &points.grid;
    let device = match ctx.gpu() {
        Some(gpu) => frames.on_device()?.map(|dev| (gpu, dev)),
        None => None,
    };
    let ones = vec![1.0; grid.len()];
    let warps: Vec<FrameWarp> = globals
        .iter()
        .zip(&locals)
        .map(|(g, l)| {
            let (mut dx, mut dy): (Vec<f32>, Vec<f32>) = l.iter().map(|l| (l.dx, l.dy)).unzip();
            field::fill(grid, &mut dx, &mut dy);
            let f = grid.dense_field(&dx, &dy, &ones, p.field_refine as usize);
            FrameWarp::with_field(g.dx, g.dy, f)
        })
        .collect();
    if let Some((gpu, dev)) = &device {
        return crate::gpu::warped_mean(ctx, gpu, dev, frames.info(), &warps);
    }
    let mut acc = jupiter_kit::mem::zeroed(w * h);
    let mut lum = Vec::new();
    for (i, warp) in warps.iter().enumerate() {
        ctx.check_cancelled()?;
        luminance_into(Some(ctx), frames, i, &mut lum)?;
        let f = warp
            .field
            .as_ref()
            .into_option()
            .expect("field was just set");
        // Rows in parallel: each task adds its own rows to `acc`.
        ctx.par_chunks_mut(&mut acc, w * 16, |c, rows| {
            let mut tmp = vec![0.0f32; rows.len()];
            dewarp_rows(&lum, w, h, warp.dx, warp.dy, f, c * 16, &mut tmp);
            rows.iter_mut().zip(tmp).for_each(|(a, t)| *a += t);
        })?;
    }
    acc.iter_mut().for_each(|a| *a /= k as f32);
    Ok(acc)
}

/// The planes a frame's measurement works in, lent from frame to frame
/// (`kit::mem::Lender`): a fresh plane of a 24-megapixel frame costs the
/// kernel 96 MB of zeroing.
#[derive(Default)]
struct Planes {
    lum: Vec<f32>,
    dewarped: Vec<f32>,
}

/// Each frame's global shift and local measurements.
type Measured = (Vec<Shift>, Vec<Vec<Local>>);

/// Global shifts and local measurements of frames `0..k` (every point, all
/// passes) for [`dewarped_mean`], on the CPU: large frames one at a time,
/// their points in parallel; else frames in parallel.
fn reference_frames(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    global: &GlobalRef,
    points: &Points,
    p: &MultipointParams,
    k: usize,
) -> Result<Measured, StageError> {
    let (w, h, _) = frames.info().dims();
    // One frame at a time or in parallel, each borrows the planes a
    // finished frame handed back.
    let lender = jupiter_kit::mem::Lender::<Planes>::default();
    let measure = |i: usize, par: Option<&StageCtx>| {
        ctx.check_cancelled()?;
        lender.with(|planes| {
            luminance_into(par, frames, i, &mut planes.lum)?;
            let (lum, dewarped) = (&planes.lum, &mut planes.dewarped);
            Ok(measure_frame_in(
                par,
                lum,
                (w, h),
                global,
                points,
                p,
                false,
                dewarped,
            ))
        })
    };
    let measured: Vec<FrameMeasure> = if frames_in_flight(ctx, w, h) < ctx.threads() {
        (0..k)
            .map(|i| measure(i, Some(ctx)))
            .collect::<Result<_, StageError>>()?
    } else {
        let all = ctx.par_map(k, |i| measure(i, None))?;
        all.into_iter().collect::<Result<_, _>>()?
    };
    Ok(measured.into_iter().map(|m| (m.global, m.locals)).unzip())
}

/// [`reference_frames`] with the frames measured on the device (their
/// rough global shifts too, where the GPU correlator handles the
/// rectangle); `None` when the device path declines.
fn reference_frames_on_device(
    ctx: &StageCtx,
    (gpu, dev): (
        &jupiter_plugin_api::GpuServiceBox,
        &jupiter_plugin_api::DeviceFrames,
    ),
    frames: &FrameSourceRef,
    global: &GlobalRef,
    points: &Points,
    p: &MultipointParams,
    k: usize,
) -> Result<Option<Measured>, StageError> {
    let (w, h, _) = frames.info().dims();
    let idx: Vec<usize> = (0..k).collect();
    let (globals, mut locals): (Vec<Shift>, Vec<Vec<Local>>) =
        match crate::gpu::rough_shifts(ctx, gpu, frames, dev, points, global, &idx)? {
            Some(shifts) => {
                let grid = &points.grid;
                let fresh = || -> Vec<Local> {
                    (0..grid.len())
                        .map(|k| Local {
                            valid: grid.active[k],
                            ..Local::default()
                        })
                        .collect()
                };
                let locals = shifts.iter().map(|_| fresh()).collect();
                (shifts, locals)
            }
            None => {
                let at_once = jupiter_kit::align::frames_in_flight(ctx, w, h, 1);
                let mut scanned = Vec::with_capacity(k);
                for start in (0..k).step_by(at_once) {
                    scanned.extend(ctx.par_try_map((k - start).min(at_once), 0, |j| {
                        let lum = frame_luminance(frames, start + j)?;
                        Ok(scan_with(None, &lum, (w, h), global, points, false))
                    })?);
                }
                scanned.into_iter().map(|m| (m.global, m.locals)).unzip()
            }
        };
    let plan = MeasurePlan::everywhere(&points.grid, k);
    let done = crate::gpu::measure(
        ctx,
        gpu,
        frames,
        dev,
        points,
        &globals,
        &mut locals,
        &plan,
        p,
    )?;
    Ok(done.then_some((globals, locals)))
}

/// Summary of a run, for the log and the tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The mode used (the automatic choice when the user asked for `auto`).
    pub mode: Mode,
    pub grid: ApGrid,
    /// Local measurements that failed or were outliers, replaced by their neighbours' median.
    pub replaced: usize,
    /// Local measurements made (a frame is measured where it is kept and
    /// at the points around).
    pub measured: usize,
    /// RMS of the final local shifts over active points and frames (pixels).
    pub rms_local: f32,
    /// Mean share of the frames kept per active point (1 without points).
    pub kept: f32,
    /// Whether the points were measured on the device.
    pub on_device: bool,
    /// Whether the scan (global shifts, sharpness) ran on the device.
    pub scan_on_device: bool,
}

/// Mean over the active points of the share of frames with weight there.
fn kept_share(grid: &ApGrid, weights: &[Vec<f32>]) -> f32 {
    let active: Vec<usize> = (0..grid.len()).filter(|&k| grid.active[k]).collect();
    if active.is_empty() || weights.is_empty() {
        return 1.0;
    }
    let kept: f32 = weights
        .iter()
        .map(|w| active.iter().map(|&k| w[k]).sum::<f32>())
        .sum();
    kept / (active.len() * weights.len()) as f32
}

/// Aligns every frame of the source (best first): global shift plus a warp
/// field with per-point local shifts and weights.
pub fn align(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &MultipointParams,
) -> Result<Alignment, StageError> {
    align_with_summary(ctx, frames, p).map(|(a, _)| a)
}

/// [`align`], also returning what it found.
pub fn align_with_summary(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &MultipointParams,
) -> Result<(Alignment, Summary), StageError> {
    let chosen = p.validate()?;
    let info = frames.info();
    let n = info.count as usize;
    if n == 0 {
        return Err(StageError::invalid_params("no frames to align"));
    }
    let (w, h) = (info.width as usize, info.height as usize);
    if w < 8 || h < 8 {
        return Err(StageError::invalid_params(format!(
            "frames of {w}×{h} are too small for multi-point alignment (at least 8×8)"
        )));
    }
    // 1–2. Reference, mode, alignment points and their correlators.
    let mut steps = Steps::start();
    let (mode, global, points) = reference_and_points(ctx, frames, p, chosen, &mut steps)?;
    // 3. One streaming pass over the frames.
    let (scanned, scan_on_device) = points.scan_all(ctx, frames, &global)?;
    steps.done(if scan_on_device {
        "scan (device)"
    } else {
        "scan"
    });
    // 4. Select on the sharpness, then measure each frame only where it is
    // kept (and around: the stacker interpolates the field between points).
    let (globals, mut locals): (Vec<Shift>, Vec<Vec<Local>>) =
        scanned.into_iter().map(|m| (m.global, m.locals)).unzip();
    let mut weights = field::select(&points.grid, &locals, p.keep, &points.noise);
    let on_device = points.measure_where_kept(ctx, frames, &globals, &mut locals, &weights, p)?;
    steps.done(if on_device {
        "measure (device)"
    } else {
        "measure"
    });
    let grid = points.grid;
    // 5. Clean, recentre, fill; one warp field per frame. A kept point
    // whose measurement failed or was an outlier is dropped there.
    let (mut replaced, mut measured) = (0, 0);
    ctx.par_chunks_mut(&mut locals, 64, |_, chunk| {
        chunk.iter_mut().for_each(|l| {
            field::clean(&grid, l, p.outlier);
        })
    })?;
    for (l, wt) in locals.iter_mut().zip(weights.iter_mut()) {
        for (k, w) in wt.iter_mut().enumerate() {
            if grid.active[k] && !l[k].valid {
                *w = 0.0;
            }
        }
        measured += l.iter().filter(|l| l.measured).count();
        replaced += l.iter().filter(|l| l.measured && !l.valid).count();
    }
    if p.recentre {
        field::recentre(&grid, &mut locals);
    }
    let kept = kept_share(&grid, &weights);
    let (warps, rms_local) = warps_of(ctx, &grid, &globals, locals, weights, p)?;
    let summary = Summary {
        mode,
        grid,
        replaced,
        measured,
        rms_local,
        kept,
        on_device,
        scan_on_device,
    };
    log_summary(ctx, &summary, &globals, p);
    steps.done("fields");
    ctx.log(LogLevel::Debug, &steps.line);
    let warps = warps.into();
    Ok((
        Alignment {
            warps,
            reference: 0,
        },
        summary,
    ))
}

/// Frames the reference averages (step 1): `reference_frames`, but at most
/// a third of the `n` frames to align (and at least 3). Of a short capture's
/// few frames the best `reference_frames` would take in most, barely better
/// than the rest, and their reading and resampling was a fifth of a
/// 30-frame 6000×4000 run (the stack moved by less than 0.001 dB with 5
/// instead of 10); from 30 frames on the parameter holds.
fn reference_count(p: &MultipointParams, n: usize) -> usize {
    let all = p.reference_frames as usize;
    all.min((n / 3).max(3)).min(n).max(1)
}

/// Steps 1–2: the reference (the mean of the best globally aligned frames,
/// rebuilt under the measured fields `reference_iterations` times), the
/// mode (chosen from it when `auto`), the alignment points on it, and the
/// reference's global correlator.
fn reference_and_points(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &MultipointParams,
    chosen: Option<Mode>,
    steps: &mut Steps,
) -> Result<(Mode, GlobalRef, Points), StageError> {
    let info = frames.info();
    let ((w, h, _), n) = (info.dims(), info.count as usize);
    let best = reference_count(p, n);
    // The noise of one frame (the best), at each point's level, for the
    // automatic per-point budget: modelled as frame 0 is read here.
    let mut model = None;
    let mut first = |f0: &[f32]| model = Some(noise_model(f0, w, h));
    let reference = match (ctx.gpu(), frames.on_device()?) {
        (Some(gpu), Some(dev)) => jupiter_kit::gpu::phase_corr::mean_of_best_on_device(
            ctx, &gpu, frames, &dev, best, &mut first,
        )?,
        _ => mean_of_best_seeing(ctx, frames, best, &mut first)?,
    };
    ctx.check_cancelled()?;
    steps.done("reference: mean of best");
    let mode = chosen.unwrap_or_else(|| {
        let m = grid::detect_mode(&reference, w, h, p.disc_threshold);
        let why = match m {
            Mode::Planet => "a disc on dark sky",
            Mode::Surface => "the surface fills or crosses the frame",
        };
        ctx.info(&format!(
            "{} mode (automatic: {why}; set align.mode to override)",
            m.name()
        ));
        m
    });
    let grid = grid::place_in(ctx, &reference, (w, h), mode, p)?;
    if grid.active_count() == 0 {
        ctx.warn("no alignment point has enough structure: falling back to global alignment");
    }
    steps.done("grid");
    // The globally aligned mean is smeared (ghosted) by the frames' local
    // distortions; re-average its frames under their measured fields (on a
    // thinned grid past `reference_points`).
    let k = best.min(n);
    let rebuilds = if grid.active_count() > 0 && k > 1 {
        p.reference_iterations
    } else {
        0
    };
    let (mut grid, mut reference, mut rebuilds) = (grid, reference, rebuilds);
    if rebuilds > 0 && sparse_allowed(mode, &grid, p) {
        let (rms, back) = probe_distortion(ctx, frames, &grid, reference, p, k)?;
        reference = back;
        steps.done("distortion probe");
        ctx.log(
            LogLevel::Debug,
            &format!(
                "distortion probe: local shifts RMS {rms:.3} px (points go sparse below {})",
                p.sparse_rms
            ),
        );
        if rms < p.sparse_rms {
            ctx.info(&format!(
                "local distortion small (RMS {rms:.2} px on the reference frames): alignment points {} px apart, the reference not rebuilt",
                2 * grid.step
            ));
            grid = grid.thinned(2);
            rebuilds = 0;
        }
    }
    let thin = grid.thinning_for(p.reference_points as usize);
    for _ in 0..rebuilds {
        let on = Points::new_in(ctx, grid.thinned(thin), reference, w, h, p)?;
        // Building thousands of points on many threads leaves free memory
        // in every thread's arena (large frames: hundreds of MB).
        jupiter_kit::mem::release_free_memory();
        steps.done("points");
        reference = dewarped_mean(ctx, frames, &on, p, k)?;
        // Its correlators go before the next are made.
        drop(on);
        steps.done("rebuilt");
    }
    let points = Points::new_in(ctx, grid, reference, w, h, p)?;
    jupiter_kit::mem::release_free_memory();
    steps.done("points");
    let model = match model {
        Some(m) => m,
        None => noise_model(&frame_luminance_in(ctx, frames, 0)?, w, h),
    };
    let points = points.with_noise(&model);
    let global = GlobalRef::new(points.reference(), w, h);
    steps.done("noise and global correlator");
    Ok((mode, global, points))
}

impl Points {
    /// Step 3: one streaming pass over the frames (on the device when the
    /// host keeps them there, `gpu::scan`), in parallel: each task
    /// decodes one frame, measures its global shift and its points'
    /// sharpness ([`scan`]), and drops it. Large frames go as many at a
    /// time as kit's `frames_in_flight` allows (one luminance plane each),
    /// not one per thread.
    fn scan_all(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        global: &GlobalRef,
    ) -> Result<(Vec<FrameMeasure>, bool), StageError> {
        if let (Some(gpu), Some(dev)) = (ctx.gpu(), frames.on_device()?) {
            if let Some(all) = crate::gpu::scan(ctx, &gpu, frames, &dev, self, global)? {
                return Ok((all, true));
            }
        }
        let (w, h, _) = frames.info().dims();
        let n = frames.info().count as usize;
        let mut all = Vec::with_capacity(n);
        if jupiter_kit::align::frames_in_flight(ctx, w, h, 1) < ctx.threads() {
            // Large frames one at a time (memory), each one's read and its
            // points' sharpness spread over the threads (a 9576×6388 scan
            // ran on one of two threads: 1.65 s for 15 frames).
            let mut lum = Vec::new();
            for i in 0..n {
                ctx.check_cancelled()?;
                luminance_into(Some(ctx), frames, i, &mut lum)?;
                all.push(scan_with(Some(ctx), &lum, (w, h), global, self, true));
                ctx.progress(i as u64 + 1, n as u64);
            }
            return Ok((all, false));
        }
        let planes = jupiter_kit::mem::Lender::default();
        all = ctx.par_try_map(n, 8, |i| {
            planes.with(|lum| {
                luminance_into(None, frames, i, lum)?;
                Ok(scan(lum, w, h, global, self))
            })
        })?;
        Ok((all, false))
    }

    /// Every frame kept at some active point (`weights[frame][point] > 0`)
    /// measured at those points and their neighbours: the first pass and
    /// the later ones ([`later_passes`]); a sample of [`RECENTRE_FRAMES`]
    /// frames also gets the first pass at every point, for the mean
    /// geometry. Elsewhere a frame's shift is not needed (weight 0); it
    /// stays unmeasured and invalid, so that the cleaning fills it from its
    /// neighbours and the mean geometry leaves it out. On the device when
    /// the host offers one and keeps the frames there (`gpu.rs`; returns
    /// `true` then).
    fn measure_where_kept(
        &self,
        ctx: &StageCtx,
        frames: &FrameSourceRef,
        globals: &[Shift],
        locals: &mut [Vec<Local>],
        weights: &[Vec<f32>],
        p: &MultipointParams,
    ) -> Result<bool, StageError> {
        for l in locals.iter_mut() {
            l.iter_mut().for_each(|l| l.valid = false);
        }
        if self.grid.active_count() == 0 {
            return Ok(false);
        }
        let (w, h, _) = frames.info().dims();
        let plan = MeasurePlan::new(&self.grid, weights);
        if let (Some(gpu), Some(dev)) = (ctx.gpu(), frames.on_device()?) {
            if crate::gpu::measure(ctx, &gpu, frames, &dev, self, globals, locals, &plan, p)? {
                return Ok(true);
            }
        }
        let total = (0..locals.len()).filter(|&i| plan.todo(i)).count() as u64;
        let done = std::sync::atomic::AtomicU64::new(0);
        // Large frames one at a time, each one's points in parallel
        // (`frames_in_flight`); else frames in parallel.
        let inner = frames_in_flight(ctx, w, h) < ctx.threads();
        let par = inner.then_some(ctx);
        // Frames one at a time or in parallel, each borrows the planes a
        // finished frame handed back.
        let lender = jupiter_kit::mem::Lender::<Planes>::default();
        let measure = |i: usize, one: &mut Vec<Local>| -> Result<(), StageError> {
            if !plan.todo(i) || ctx.check_cancelled().is_err() {
                return Ok(());
            }
            lender.with(|planes| {
                luminance_into(par, frames, i, &mut planes.lum)?;
                let (lum, dewarped) = (&planes.lum, &mut planes.dewarped);
                let mut m = FrameMeasure {
                    global: globals[i],
                    locals: std::mem::take(one),
                };
                let mask = Some(plan.masks[i].as_slice());
                first_pass_points(par, lum, w, h, self, p, &mut m, plan.first(i));
                later_passes(par, lum, w, h, self, p, &mut m, mask, dewarped);
                *one = m.locals;
                Ok::<_, StageError>(())
            })?;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if d.is_multiple_of(8) || d == total {
                ctx.progress(d, total);
            }
            Ok(())
        };
        if inner {
            for (i, one) in locals.iter_mut().enumerate() {
                measure(i, one)?;
            }
            ctx.check_cancelled()?;
        } else {
            ctx.par_try_chunks_mut(locals, 1, |i, one| measure(i, &mut one[0]))?;
        }
        Ok(false)
    }
}

/// Where the measurement step measures: per frame, the points kept there
/// and their neighbours (`masks`: the stacker interpolates the field
/// between them, so their shifts must be as good); and every
/// `stride`-th frame also at every point (first pass), since the mean
/// geometry the stack is recentred on needs many frames at each point,
/// not only the few sharpest kept there.
pub(crate) struct MeasurePlan {
    pub masks: Vec<Vec<bool>>,
    stride: usize,
}

impl MeasurePlan {
    fn new(grid: &ApGrid, weights: &[Vec<f32>]) -> MeasurePlan {
        let masks = weights
            .iter()
            .map(|wt| {
                let mut m = vec![false; grid.len()];
                for k in (0..grid.len()).filter(|&k| grid.active[k] && wt[k] > 0.0) {
                    m[k] = true;
                    for j in grid.neighbours(k).filter(|&j| grid.active[j]) {
                        m[j] = true;
                    }
                }
                m
            })
            .collect();
        MeasurePlan {
            masks,
            stride: (weights.len() / RECENTRE_FRAMES).max(1),
        }
    }

    /// Every active point of frames `0..n`, all passes.
    fn everywhere(grid: &ApGrid, n: usize) -> MeasurePlan {
        MeasurePlan {
            masks: vec![grid.active.clone(); n],
            stride: 1,
        }
    }

    fn sampled(&self, i: usize) -> bool {
        i.is_multiple_of(self.stride)
    }

    /// Whether frame `i` is measured at all.
    pub fn todo(&self, i: usize) -> bool {
        self.sampled(i) || self.masks[i].iter().any(|&m| m)
    }

    /// The points of frame `i` the first pass measures (`None`: every
    /// active point).
    pub fn first(&self, i: usize) -> Option<&[bool]> {
        (!self.sampled(i)).then_some(self.masks[i].as_slice())
    }
}

/// Wall time of the aligner's steps, for the debug log (`-v`): where a
/// run's time goes without a profiler.
struct Steps {
    at: std::time::Instant,
    line: String,
}

impl Steps {
    fn start() -> Steps {
        Steps {
            at: std::time::Instant::now(),
            line: "steps:".into(),
        }
    }

    fn done(&mut self, step: &str) {
        let now = std::time::Instant::now();
        let sep = if self.line.ends_with(':') { " " } else { ", " };
        self.line += &format!("{sep}{step} {:.2} s", (now - self.at).as_secs_f64());
        self.at = now;
    }
}

/// One warp per frame (its global shift and the filled, refined field of
/// its local shifts with the per-point weights) and the RMS of the local
/// shifts over the active points, built in parallel [`WARP_CHUNK`] frames
/// at a time. Each chunk's measurements are dropped once its warps are
/// built: the warps (four times the nodes) never sit beside a whole
/// second copy of the per-point state.
fn warps_of(
    ctx: &StageCtx,
    grid: &ApGrid,
    globals: &[Shift],
    locals: Vec<Vec<Local>>,
    weights: Vec<Vec<f32>>,
    p: &MultipointParams,
) -> Result<(Vec<FrameWarp>, f32), StageError> {
    let (mut sq, mut count) = (0.0f64, 0usize);
    let mut warps = Vec::with_capacity(globals.len());
    let mut frames = locals.into_iter().zip(weights);
    loop {
        let chunk: Vec<(Vec<Local>, Vec<f32>)> = frames.by_ref().take(WARP_CHUNK).collect();
        if chunk.is_empty() {
            break;
        }
        let start = warps.len();
        let built = ctx.par_map(chunk.len(), |j| {
            let (l, wt) = &chunk[j];
            let g = globals[start + j];
            let (mut dx, mut dy): (Vec<f32>, Vec<f32>) = l.iter().map(|l| (l.dx, l.dy)).unzip();
            let active = (0..grid.len()).filter(|&k| grid.active[k]);
            let sq: f64 = active.map(|k| (dx[k] * dx[k] + dy[k] * dy[k]) as f64).sum();
            field::fill(grid, &mut dx, &mut dy);
            let f = grid.field(&dx, &dy, wt, p.field_refine as usize);
            (FrameWarp::with_field(g.dx, g.dy, f), sq)
        })?;
        drop(chunk);
        for (w, s) in built {
            warps.push(w);
            sq += s;
            count += grid.active_count();
        }
    }
    let rms = if count > 0 {
        (sq / count as f64).sqrt() as f32
    } else {
        0.0
    };
    Ok((warps, rms))
}

/// Frames whose warps [`warps_of`] builds at a time.
const WARP_CHUNK: usize = 256;

/// The run's info line, and a warning when frames correlate weakly.
fn log_summary(ctx: &StageCtx, s: &Summary, globals: &[Shift], p: &MultipointParams) {
    let (grid, n) = (&s.grid, globals.len());
    ctx.info(&format!(
        "{} of {}×{} alignment points active (size {}, step {}); local shifts RMS {:.2} px; {} of {} local measurements replaced by their neighbours; {:.0}% of frames kept per point ({})",
        grid.active_count(),
        grid.cols,
        grid.rows,
        grid.size,
        grid.step,
        s.rms_local,
        s.replaced,
        s.measured,
        100.0 * s.kept,
        if p.keep > 0.0 { "fixed" } else { "automatic, on average" },
    ));
    let weak = globals.iter().filter(|s| s.peak < p.min_peak).count();
    if weak > 0 {
        ctx.warn(&format!(
            "{weak} of {n} frames correlate weakly with the reference (peak < {})",
            p.min_peak
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Mode;
    use jupiter_kit::warp::{warped_rows, Interp};
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};

    /// A textured surface (a sum of ripples and a few blobs) at `(x, y)`.
    fn surface_at(x: f32, y: f32) -> f32 {
        let mut v = 0.45 + 0.05 * (x * 0.05).sin() * (y * 0.037).cos();
        v += 0.1 * ((x * 0.31).sin() * (y * 0.23).cos()) + 0.08 * ((x * 0.13 + y * 0.29).sin());
        v += 0.06 * ((x * 0.71 - y * 0.17).cos() * (y * 0.53).sin());
        for (bx, by, r) in [
            (30.0, 40.0, 5.0),
            (90.0, 30.0, 8.0),
            (120.0, 90.0, 4.0),
            (50.0, 100.0, 6.0),
        ] {
            v += 0.15 * (-((x - bx).powi(2) + (y - by).powi(2)) / (2.0 * r * r)).exp();
        }
        v
    }

    /// A frame whose pixel p shows the surface at `p - g - f(p)`, plus noise.
    fn warped(
        w: usize,
        h: usize,
        g: (f32, f32),
        f: &dyn Fn(f32, f32) -> (f32, f32),
        noise: f32,
        seed: u64,
    ) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut rnd = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                let (fx, fy) = f(x, y);
                surface_at(x - g.0 - fx, y - g.1 - fy) + noise * 3.46 * rnd()
            })
            .collect()
    }

    /// A zero-mean-over-frames smooth distortion: two plane waves per axis
    /// (wavelengths ~50–90 px) whose phases depend on the frame.
    fn distortion(i: usize, a: f32) -> impl Fn(f32, f32) -> (f32, f32) {
        let ph = i as f32 * 2.399; // golden angle: phases spread evenly
        move |x, y| {
            (
                a * 0.7
                    * ((x * 0.09 + y * 0.04 + ph).cos() + (x * 0.03 - y * 0.1 + 1.3 * ph).sin()),
                a * 0.7
                    * ((x * 0.05 - y * 0.08 + 2.0 * ph).sin() + (x * 0.11 + y * 0.02 - ph).cos()),
            )
        }
    }

    /// RMS over the active points of (measured - true) local displacement.
    fn node_error(
        m: &FrameMeasure,
        grid: &ApGrid,
        g: (f32, f32),
        f: &dyn Fn(f32, f32) -> (f32, f32),
    ) -> f32 {
        let (mut se, mut n) = (0.0f32, 0.0f32);
        for k in (0..grid.len()).filter(|&k| grid.active[k]) {
            let (x, y) = grid.centre(k);
            let l = m.locals[k];
            // The output point x samples the frame at q = x + d; the frame
            // shows there the surface at q - g - f(q), which should be x.
            let (qx, qy) = (x + m.global.dx + l.dx, y + m.global.dy + l.dy);
            let (fx, fy) = f(qx, qy);
            se += (qx - g.0 - fx - x).powi(2) + (qy - g.1 - fy - y).powi(2);
            n += 1.0;
        }
        (se / n).sqrt()
    }

    fn exact_reference(w: usize, h: usize) -> Vec<f32> {
        warped(w, h, (0.0, 0.0), &|_, _| (0.0, 0.0), 0.0, 0)
    }

    #[test]
    fn a_pure_translation_gives_no_local_shift() {
        let (w, h) = (160, 128);
        let reference = exact_reference(w, h);
        let p = MultipointParams::default();
        let points = Points::new(
            grid::place(&reference, w, h, Mode::Surface, &p),
            &reference,
            w,
            h,
            &p,
        );
        let global = GlobalRef::new(&reference, w, h);
        for g in [(2.3f32, -1.7f32), (-4.6, 0.4)] {
            let frame = warped(w, h, g, &|_, _| (0.0, 0.0), 0.0, 1);
            let m = measure_frame(&frame, w, h, &global, &points, &p);
            // The global shift is one correlation, the points measure the rest.
            assert!(
                (m.global.dx - g.0).abs() < 0.3 && (m.global.dy - g.1).abs() < 0.3,
                "{:?}",
                m.global
            );
            let worst = m
                .locals
                .iter()
                .filter(|l| l.valid)
                .map(|l| {
                    (m.global.dx + l.dx - g.0)
                        .abs()
                        .max((m.global.dy + l.dy - g.1).abs())
                })
                .fold(0.0, f32::max);
            // Bicubic resampling of this sharp texture (detail down to 9 px
            // periods) has a small phase error; real frames are blurred.
            assert!(worst < 0.15, "largest local shift {worst}");
            assert_eq!(
                m.locals.iter().filter(|l| l.valid).count(),
                points.grid.active_count()
            );
        }
    }

    #[test]
    fn a_short_capture_averages_a_third_of_its_frames_into_the_reference() {
        let p = MultipointParams::default();
        assert_eq!(p.reference_frames, 10);
        let counts: Vec<usize> = [1, 2, 5, 9, 15, 29, 30, 250]
            .iter()
            .map(|&n| reference_count(&p, n))
            .collect();
        assert_eq!(counts, [1, 2, 3, 3, 5, 9, 10, 10]);
        let few = MultipointParams {
            reference_frames: 2,
            ..p
        };
        assert_eq!(reference_count(&few, 250), 2);
    }

    #[test]
    fn points_overlap_only_where_the_reference_frames_are_distorted() {
        // Eight frames of a surface under a known distortion of amplitude
        // `a`: 0.05 px (RMS about 0.07) goes sparse, 1.5 px keeps the
        // half-overlapping grid and rebuilds the reference.
        let (w, h) = (192, 160);
        let p = MultipointParams::default();
        let be = ThreadBackend::new(2);
        for (a, sparse) in [(0.05f32, true), (1.5, false)] {
            let frames: Vec<Vec<f32>> = (0..8)
                .map(|i| warped(w, h, (0.0, 0.0), &distortion(i, a), 0.002, i as u64 + 1))
                .collect();
            let src = MemFrames::new(w as u32, h as u32, 1, frames);
            let dense = grid::place(&exact_reference(w, h), w, h, Mode::Surface, &p);
            let (mode, _, points) = be
                .with_ctx("align-multipoint", |ctx| {
                    reference_and_points(ctx, &src.as_ref(), &p, None, &mut Steps::start())
                })
                .unwrap();
            assert_eq!(mode, Mode::Surface);
            let want = if sparse { dense.size } else { dense.size / 2 };
            assert_eq!(points.grid.step, want, "amplitude {a}");
            // The probe's figure, on the same frames, is on the right side.
            let rms = be
                .with_ctx("t", |ctx| {
                    let on = Points::new(dense.clone(), &exact_reference(w, h), w, h, &p);
                    let (_, l) = reference_fields(ctx, &src.as_ref(), &on, &p, 4)?;
                    Ok::<_, StageError>(local_rms(&on.grid, &l))
                })
                .unwrap();
            assert_eq!(rms < p.sparse_rms, sparse, "amplitude {a}: RMS {rms}");
        }
    }

    #[test]
    fn local_rms_is_the_rms_length_over_active_points() {
        let mut grid = ApGrid::new(64, 64, 32, 16);
        grid.active = vec![false; grid.len()];
        grid.active[0] = true;
        grid.active[1] = true;
        let at = |dx, dy| Local {
            dx,
            dy,
            ..Local::default()
        };
        let mut frame = vec![at(9.0, 9.0); grid.len()];
        frame[0] = at(3.0, 4.0);
        frame[1] = at(0.0, 0.0);
        let other = {
            let mut f = frame.clone();
            f[1] = at(0.0, 5.0);
            f
        };
        // Lengths 5, 0, 5, 5 (inactive points ignored): sqrt(75 / 4).
        let got = local_rms(&grid, &[frame, other]);
        assert!((got - (75.0f32 / 4.0).sqrt()).abs() < 1e-6, "{got}");
        assert_eq!(local_rms(&grid, &[]), 0.0);
    }

    #[test]
    fn points_measured_in_parallel_equal_points_measured_in_turn() {
        // What a large frame gets (`frames_in_flight` below the threads):
        // its points on the pool, with and without a mask of points.
        let (w, h) = (160, 128);
        let reference = exact_reference(w, h);
        let p = MultipointParams::default();
        let grid = grid::place(&reference, w, h, Mode::Surface, &p);
        let points = Points::new(grid, &reference, w, h, &p);
        let global = GlobalRef::new(&reference, w, h);
        let be = ThreadBackend::new(3);
        be.with_ctx("align-multipoint", |ctx| {
            for i in 0..3 {
                let frame = warped(w, h, (1.3, -0.6), &distortion(i, 2.0), 0.01, i as u64);
                // One dewarped plane for both, as a loop over frames keeps it.
                let mut dewarped = Vec::new();
                let mut measure = |par| {
                    let d = &mut dewarped;
                    measure_frame_in(par, &frame, (w, h), &global, &points, &p, true, d)
                };
                let (alone, pooled) = (measure(None), measure(Some(ctx)));
                assert_eq!(alone, pooled, "frame {i}");
                assert!(alone.locals.iter().filter(|l| l.measured).count() > 10);
                let mask: Vec<bool> = (0..points.grid.len()).map(|k| k % 3 == i).collect();
                let run = |par| {
                    let mut m = scan(&frame, w, h, &global, &points);
                    first_pass_points(par, &frame, w, h, &points, &p, &mut m, Some(&mask));
                    later_passes(
                        par,
                        &frame,
                        w,
                        h,
                        &points,
                        &p,
                        &mut m,
                        Some(&mask),
                        &mut Vec::new(),
                    );
                    m
                };
                assert_eq!(run(None), run(Some(ctx)), "frame {i}, masked");
            }
        });
    }

    #[test]
    fn measures_a_known_distortion_and_the_second_pass_helps() {
        let (w, h) = (160, 128);
        let reference = exact_reference(w, h);
        let mut errs = [0.0f32; 2];
        for passes in [1, 2] {
            let p = MultipointParams {
                passes,
                ..Default::default()
            };
            let points = Points::new(
                grid::place(&reference, w, h, Mode::Surface, &p),
                &reference,
                w,
                h,
                &p,
            );
            let global = GlobalRef::new(&reference, w, h);
            let mut sum = 0.0;
            for i in 0..6 {
                let f = distortion(i, 2.0);
                let g = (1.3, -0.6);
                let m = measure_frame(
                    &warped(w, h, g, &f, 0.01, i as u64),
                    w,
                    h,
                    &global,
                    &points,
                    &p,
                );
                sum += node_error(&m, &points.grid, g, &f) / 6.0;
            }
            errs[passes as usize - 1] = sum;
        }
        // The distortion itself has an RMS of about 2 px.
        eprintln!(
            "local error: one pass {:.3} px, two passes {:.3} px",
            errs[0], errs[1]
        );
        assert!(errs[1] < 0.3 && errs[1] < 0.85 * errs[0], "{errs:?}");
    }

    /// Weighted mean of the frames under the warps (what `stack-mean` does).
    fn stack(frames: &MemFrames, warps: &[FrameWarp]) -> Vec<f32> {
        let (w, h) = (frames.info.width as usize, frames.info.height as usize);
        let (mut sum, mut wsum) = (vec![0.0f32; w * h], vec![0.0f32; w * h]);
        let (mut buf, mut wt, mut scratch) = (vec![0.0; w * h], vec![0.0; w * h], Vec::new());
        for (i, warp) in warps.iter().enumerate() {
            warped_rows(
                &frames.as_ref(),
                i,
                warp,
                Interp::Bicubic,
                0,
                h,
                &mut buf,
                Some(&mut wt),
                &mut scratch,
            )
            .unwrap();
            for px in 0..w * h {
                sum[px] += wt[px] * buf[px];
                wsum[px] += wt[px];
            }
        }
        sum.iter()
            .zip(&wsum)
            .map(|(s, w)| if *w > 0.0 { s / w } else { 0.0 })
            .collect()
    }

    fn rms_interior(a: &[f32], b: &[f32], w: usize, h: usize, m: usize) -> f32 {
        let (mut se, mut n) = (0.0f32, 0.0f32);
        for y in m..h - m {
            for x in m..w - m {
                se += (a[y * w + x] - b[y * w + x]).powi(2);
                n += 1.0;
            }
        }
        (se / n).sqrt()
    }

    #[test]
    fn local_alignment_stacks_much_closer_to_the_truth_than_global() {
        let (w, h, n) = (160, 128, 16);
        let truth = exact_reference(w, h);
        let globals: Vec<(f32, f32)> = (0..n)
            .map(|i| {
                if i == 0 {
                    (0.0, 0.0)
                } else {
                    ((i as f32 * 1.7).sin() * 3.0, (i as f32 * 0.9).cos() * 2.5)
                }
            })
            .collect();
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            (0..n)
                .map(|i| warped(w, h, globals[i], &distortion(i, 1.5), 0.01, 10 + i as u64))
                .collect(),
        );
        let be = ThreadBackend::new(2);
        let p = MultipointParams {
            keep: 1.0,
            ..Default::default()
        };
        let (a, summary) = be
            .with_ctx("align-multipoint", |ctx| {
                align_with_summary(ctx, &frames.as_ref(), &p)
            })
            .unwrap();
        assert_eq!(a.warps.len(), n);
        assert_eq!(summary.grid.active_count(), summary.grid.len());
        let mp = stack(&frames, &a.warps);
        let global_only: Vec<FrameWarp> = a
            .warps
            .iter()
            .map(|w| FrameWarp::shift(w.dx, w.dy))
            .collect();
        let gl = stack(&frames, &global_only);
        // The stack sits where the reference is: frame 0's place, up to the
        // mean distortion of the reference frames; compare up to a global offset.
        let at = |img: &[f32]| {
            let pc = PhaseCorrelator::new(&truth, w, h);
            let s = pc.shift_of(img);
            let moved = jupiter_kit::align::shifted(img, w, h, s);
            rms_interior(&moved, &truth, w, h, 12)
        };
        let (e_mp, e_gl) = (at(&mp), at(&gl));
        eprintln!("RMS error against the truth: multi-point {e_mp:.4}, global {e_gl:.4}");
        assert!(e_mp < 0.5 * e_gl, "multi-point {e_mp} vs global {e_gl}");
    }

    #[test]
    fn per_point_selection_keeps_the_asked_fraction() {
        let (w, h, n) = (128, 96, 10);
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            (0..n)
                .map(|i| warped(w, h, (0.0, 0.0), &distortion(i, 0.5), 0.01, i as u64))
                .collect(),
        );
        let be = ThreadBackend::new(2);
        let p = MultipointParams {
            keep: 0.3,
            ..Default::default()
        };
        let a = be
            .with_ctx("t", |ctx| align(ctx, &frames.as_ref(), &p))
            .unwrap();
        let f0 = a.warps[0].dense_field().unwrap();
        // field_refine = 2: the measured points are every other node.
        let (cols, rows) = (f0.cols as usize, f0.rows as usize);
        for j in (0..rows).step_by(2) {
            for i in (0..cols).step_by(2) {
                let kept: f32 = a
                    .warps
                    .iter()
                    .map(|w| w.dense_field().unwrap().weight[j * cols + i])
                    .sum();
                assert_eq!(kept, 3.0, "node ({i},{j})");
            }
        }
    }

    #[test]
    fn rgb_frames_align_on_their_luminance() {
        let (w, h, n) = (96, 80, 4);
        let mono: Vec<Vec<f32>> = (0..n)
            .map(|i| {
                warped(
                    w,
                    h,
                    (i as f32 * 0.8, -(i as f32) * 0.5),
                    &|_, _| (0.0, 0.0),
                    0.0,
                    0,
                )
            })
            .collect();
        let rgb: Vec<Vec<f32>> = mono
            .iter()
            .map(|m| m.iter().flat_map(|v| [*v, v * 0.9, v * 0.8]).collect())
            .collect();
        let frames = MemFrames::new(w as u32, h as u32, 3, rgb);
        let be = ThreadBackend::new(2);
        let a = be
            .with_ctx("t", |ctx| {
                align(ctx, &frames.as_ref(), &MultipointParams::default())
            })
            .unwrap();
        for (i, warp) in a.warps.iter().enumerate() {
            let f = warp.dense_field().unwrap();
            for (fx, fy) in f.dx.iter().zip(f.dy.iter()) {
                let (tx, ty) = (warp.dx + fx, warp.dy + fy);
                assert!(
                    (tx - i as f32 * 0.8).abs() < 0.15 && (ty + i as f32 * 0.5).abs() < 0.15,
                    "frame {i}: ({tx}, {ty})"
                );
            }
        }
    }

    #[test]
    fn bad_inputs_are_errors_not_panics() {
        let be = ThreadBackend::new(2);
        let empty = MemFrames::new(32, 32, 1, vec![]);
        let e = be
            .with_ctx("t", |ctx| {
                align(ctx, &empty.as_ref(), &MultipointParams::default())
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams);
        let tiny = MemFrames::new(4, 4, 1, vec![vec![0.5; 16]]);
        let e = be
            .with_ctx("t", |ctx| {
                align(ctx, &tiny.as_ref(), &MultipointParams::default())
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams);
        let bad = MultipointParams {
            keep: 2.0,
            ..Default::default()
        };
        let frames = MemFrames::new(32, 32, 1, vec![vec![0.5; 32 * 32]; 2]);
        let e = be
            .with_ctx("t", |ctx| align(ctx, &frames.as_ref(), &bad))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::InvalidParams);
        // Flat frames: no point has structure; global alignment, no error.
        let a = be
            .with_ctx("t", |ctx| {
                align(ctx, &frames.as_ref(), &MultipointParams::default())
            })
            .unwrap();
        assert_eq!(a.warps.len(), 2);
        assert!(
            a.warps
                .iter()
                .all(|w| w.dx.is_finite()
                    && w.dense_field().unwrap().weight.iter().all(|v| *v == 1.0))
        );
    }

    #[test]
    fn cancellation_stops_the_run() {
        let (w, h) = (64, 48);
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            (0..4)
                .map(|i| warped(w, h, (0.0, 0.0), &distortion(i, 0.5), 0.0, 0))
                .collect(),
        );
        let be = ThreadBackend::new(2);
        be.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
        let e = be
            .with_ctx("t", |ctx| {
                align(ctx, &frames.as_ref(), &MultipointParams::default())
            })
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Cancelled);
    }
}
