//! GPU path of `align-multipoint` (`shaders/point_measure.wgsl`), on
//! frames the host keeps on the device: the scan ([`scan`]: rough global
//! shifts by the GPU phase correlator, each point's sharpness), the
//! measurement ([`measure`]: each frame's first estimate at every point it
//! is measured at — the phase correlation of the binned patch,
//! [`crate::cpu::PointCorrelator`]'s arithmetic — and, in each later pass,
//! the sums of the gradient fit on the patch resampled under the field
//! measured so far, [`crate::gradient`]) and the reference rebuild's sum
//! ([`warped_mean`]). The host side keeps the per-frame logic of the CPU
//! path — the field between passes ([`field_so_far`]), the 4×4 solve, what
//! counts as a valid measurement — so the two paths differ only by the
//! rounding of the device's sums. A residual the gradient fit cannot
//! measure (no fit at that point, or outside its range) is measured on the
//! CPU, as there.
//!
//! Four numbers per item come back; the frames never leave the device.

use std::collections::HashMap;

use jupiter_kit::align::frame_luminance;
use jupiter_kit::fft::Shift;
use jupiter_kit::gpu::phase_corr::GpuCorrelator;
use jupiter_kit::gpu::{
    dispatch, groups_1d, shaders::POINT_MEASURE, warp_accumulate_resident, warp_tables,
    PointMeasureP,
};
use jupiter_plugin_api::gpu::helpers::{download, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{DeviceFrames, GpuBuffer, GpuServiceBox};

use crate::cpu::{
    field_so_far, first_local, later_local, residual_on_cpu, FrameMeasure, GlobalRef, MeasurePlan,
    Points,
};
use crate::field::Local;
use crate::gradient::{taper_line, MAX_SHIFT};
use crate::grid::ApGrid;
use crate::params::MultipointParams;

/// Largest transform side the shader's twiddle table holds.
const MAX_N: usize = 128;
/// Words of the largest buffer bound (128 MiB: lavapipe's storage binding
/// limit, the smallest among the drivers in use).
const MAX_WORDS: usize = 1 << 25;
/// Frames measured per round trip (their items, fields and results).
const FRAMES_PER_BATCH: usize = 256;
/// Words per item in the shader's `Item`.
const ITEM_WORDS: usize = 8;

/// One measurement: frame `frame` of the source (position `pos` in its
/// batch) at point `k`, on the patch whose top-left pixel is `(ox, oy)`.
#[derive(Debug, Clone, Copy)]
struct Req {
    frame: usize,
    pos: usize,
    k: usize,
    ox: i32,
    oy: i32,
}

/// The requests of frames `batch` (their positions in it as `pos`) at the
/// points `k` where `wanted(frame, k)`, each patch at the point's origin
/// moved by `at(frame)` whole pixels.
fn requests(
    grid: &ApGrid,
    batch: &[usize],
    at: impl Fn(usize) -> (i32, i32),
    wanted: impl Fn(usize, usize) -> bool,
) -> Vec<Req> {
    let mut reqs = Vec::new();
    for (pos, &i) in batch.iter().enumerate() {
        let (rx, ry) = at(i);
        for k in (0..grid.len()).filter(|&k| wanted(i, k)) {
            let (ox, oy) = grid.origin(k);
            reqs.push(Req {
                frame: i,
                pos,
                k,
                ox: ox as i32 + rx,
                oy: oy as i32 + ry,
            });
        }
    }
    reqs
}

/// A global shift rounded to whole pixels: where the patches are taken.
fn rounded(s: &Shift) -> (i32, i32) {
    (s.dx.round() as i32, s.dy.round() as i32)
}

/// The points' reference tables on the device, with the scratch the
/// correlations work in.
pub struct DevicePoints<'g> {
    gpu: &'g GpuServiceBox,
    /// Frees the buffers below when dropped.
    _bufs: Buffers<'g>,
    refs: GpuBuffer,
    /// The reference plane (the gradient fits' reference patches).
    refplane: GpuBuffer,
    scratch: GpuBuffer,
    /// A zeroed warp table (the correlations read none).
    no_warps: GpuBuffer,
    /// Items per dispatch (scratch slots).
    slots: usize,
    /// Per point: word offset of its reference spectrum in `refs` and its
    /// auto-correlation peak; `None` for inactive points.
    spec: Vec<Option<(u32, f32)>>,
    /// The uniform block with the geometry and table offsets filled in.
    base: PointMeasureP,
    frame_len: usize,
}

impl<'g> DevicePoints<'g> {
    /// Uploads the tables of `points` for frames of `info`'s geometry;
    /// `None` when the device path does not cover them (no active point,
    /// a transform larger than [`MAX_N`], or tables past a binding's limit).
    pub fn new(
        gpu: &'g GpuServiceBox,
        points: &Points,
        info: FrameInfo,
    ) -> Result<Option<DevicePoints<'g>>, StageError> {
        let grid = &points.grid;
        let Some(first) = points.correlators.iter().flatten().next() else {
            return Ok(None);
        };
        let (n, _) = first.first.dims();
        let active = points.correlators.iter().flatten().count();
        let (w, h, c) = info.dims();
        let s = grid.size;
        let half = n / 2 + 1;
        let head = 2 * n + 2 * n * n + s;
        let words = head + active * 2 * n * half;
        if n > MAX_N || words > MAX_WORDS || w * h > MAX_WORDS {
            return Ok(None);
        }
        let mut refs = Vec::with_capacity(words);
        let tw = refs.len();
        for m in 0..n {
            let a = -2.0 * std::f64::consts::PI * m as f64 / n as f64;
            refs.extend([a.cos() as f32, a.sin() as f32]);
        }
        let lp = refs.len();
        refs.extend(first.first.full_lowpass());
        let win = refs.len();
        refs.extend_from_slice(first.first.window());
        let taper = refs.len();
        refs.extend(taper_line(s));
        let mut spec = vec![None; grid.len()];
        for (k, pc) in points.correlators.iter().enumerate() {
            if let Some(pc) = pc {
                spec[k] = Some((refs.len() as u32, pc.first.self_peak()));
                refs.extend(pc.first.half_spectrum());
            }
        }
        let slot = 2 * n * n;
        let slots = (MAX_WORDS / (2 * slot)).clamp(1, 1 << 16);
        let mut bufs = Buffers::new(gpu);
        let refs_buf = bufs.upload(&refs)?;
        let refplane = bufs.upload(points.reference())?;
        let scratch = bufs.zeroed(2 * slot * slots)?;
        let no_warps = bufs.zeroed(jupiter_kit::gpu::WARP_SLOT_WORDS)?;
        let u32_of = |v: usize| v as u32;
        let base = PointMeasureP {
            fw: u32_of(w),
            fh: u32_of(h),
            fc: u32_of(c),
            n: u32_of(n),
            bin: if first.binned { 2 } else { 1 },
            s: u32_of(s),
            slot: u32_of(slot),
            tw: u32_of(tw),
            lp: u32_of(lp),
            win: u32_of(win),
            taper: u32_of(taper),
            half: u32_of(half),
            whiten: first.first.whiten(),
            ..Default::default()
        };
        Ok(Some(DevicePoints {
            gpu,
            _bufs: bufs,
            refs: refs_buf,
            refplane,
            scratch,
            no_warps,
            slots,
            spec,
            base,
            frame_len: info.frame_len(),
        }))
    }

    /// The first estimates `(dx, dy, peak)` of `reqs`, in full-resolution
    /// pixels relative to each patch's origin.
    fn correlate(&self, dev: &DeviceFrames, reqs: &[Req]) -> Result<Vec<[f32; 4]>, StageError> {
        self.run("correlate", dev, reqs, None)
    }

    /// The gradient fit's sums of `reqs`, each frame resampled under its
    /// warp (`warps[pos]`).
    fn gradient(
        &self,
        dev: &DeviceFrames,
        reqs: &[Req],
        warps: &[FrameWarp],
    ) -> Result<Vec<[f32; 4]>, StageError> {
        let refs: Vec<&FrameWarp> = warps.iter().collect();
        let (table, grids) = warp_tables(&refs, &vec![1.0; warps.len()], 0);
        let mut bufs = Buffers::new(self.gpu);
        let table = bufs.upload(&table)?;
        let grids = bufs.upload(&grids)?;
        self.run("gradient", dev, reqs, Some((table, grids)))
    }

    /// Runs `entry` over `reqs`, grouped by the device buffer their frame
    /// lies in (one binding per dispatch); results in request order.
    fn run(
        &self,
        entry: &str,
        dev: &DeviceFrames,
        reqs: &[Req],
        warps: Option<(GpuBuffer, GpuBuffer)>,
    ) -> Result<Vec<[f32; 4]>, StageError> {
        if reqs.is_empty() {
            return Ok(Vec::new());
        }
        // Requests grouped by buffer, buffers in order of first appearance.
        let mut groups: Vec<(GpuBuffer, Vec<(usize, u32)>)> = Vec::new();
        for (j, r) in reqs.iter().enumerate() {
            let (buf, offset) = dev.locate(r.frame, self.frame_len);
            match groups.iter_mut().find(|g| g.0 == buf) {
                Some(g) => g.1.push((j, offset as u32)),
                None => groups.push((buf, vec![(j, offset as u32)])),
            }
        }
        let mut items = Vec::with_capacity(reqs.len() * ITEM_WORDS);
        let mut order = Vec::with_capacity(reqs.len());
        for (_, list) in &groups {
            for &(j, offset) in list {
                let r = reqs[j];
                let (spec, peak) = self.spec[r.k].unwrap_or((0, 1.0));
                items.extend([
                    f32::from_bits(offset),
                    f32::from_bits(r.pos as u32),
                    f32::from_bits(r.ox as u32),
                    f32::from_bits(r.oy as u32),
                    f32::from_bits(spec),
                    peak,
                    0.0,
                    0.0,
                ]);
                order.push(j);
            }
        }
        let mut bufs = Buffers::new(self.gpu);
        let items_buf = bufs.upload(&items)?;
        let out = bufs.zeroed(4 * reqs.len())?;
        let (table, grids) = warps.unwrap_or((self.no_warps, self.no_warps));
        let mut start = 0;
        for (buf, list) in &groups {
            for chunk in (0..list.len()).step_by(self.slots) {
                let count = (list.len() - chunk).min(self.slots);
                let u = PointMeasureP {
                    base: (start + chunk) as u32,
                    count: count as u32,
                    ..self.base
                };
                let bindings = [
                    *buf,
                    items_buf,
                    table,
                    grids,
                    self.refs,
                    self.scratch,
                    out,
                    self.refplane,
                ];
                dispatch(
                    self.gpu,
                    POINT_MEASURE,
                    entry,
                    &bindings,
                    &u,
                    groups_1d(count, 1),
                )?;
            }
            start += list.len();
        }
        let flat = download(self.gpu, out, 4 * reqs.len())?;
        let mut res = vec![[0.0f32; 4]; reqs.len()];
        for (v, &j) in flat.chunks_exact(4).zip(&order) {
            res[j] = [v[0], v[1], v[2], v[3]];
        }
        Ok(res)
    }
}

/// The measurement step on the device: every frame `plan` measures, in
/// batches, its first pass and later passes as the CPU path's
/// `first_pass_points` and `later_passes` do. `Ok(false)` when the device
/// path does not cover this run (one pass, or [`DevicePoints::new`]
/// declines): the caller measures on the CPU.
#[allow(clippy::too_many_arguments)]
pub(crate) fn measure(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    dev: &DeviceFrames,
    points: &Points,
    globals: &[Shift],
    locals: &mut [Vec<Local>],
    plan: &MeasurePlan,
    p: &MultipointParams,
) -> Result<bool, StageError> {
    if p.passes <= 1 {
        return Ok(false);
    }
    let Some(dp) = DevicePoints::new(gpu, points, frames.info())? else {
        return Ok(false);
    };
    let todo: Vec<usize> = (0..locals.len()).filter(|&i| plan.todo(i)).collect();
    let mut done = 0;
    let mut t = Tally::default();
    for batch in todo.chunks(FRAMES_PER_BATCH) {
        ctx.check_cancelled()?;
        first_pass(&dp, dev, points, batch, globals, locals, plan, p, &mut t)?;
        for _ in 1..p.passes {
            later_pass(
                &dp, ctx, frames, dev, points, batch, globals, locals, plan, p, &mut t,
            )?;
        }
        done += batch.len();
        ctx.progress(done as u64, todo.len() as u64);
    }
    ctx.log(LogLevel::Debug, &t.line());
    Ok(true)
}

/// Where the device path's time goes (`-v`): items and wall time of the
/// correlations, the gradient fits, the host's fields between passes and
/// the residuals measured on the CPU.
#[derive(Default)]
struct Tally {
    first: (usize, f64),
    fits: (usize, f64),
    fields: f64,
    on_cpu: (usize, f64),
}

impl Tally {
    /// Counts `n` items and the time since `start` into `slot`.
    fn add(slot: &mut (usize, f64), n: usize, start: std::time::Instant) {
        slot.0 += n;
        slot.1 += start.elapsed().as_secs_f64();
    }

    fn line(&self) -> String {
        format!(
            "device measurement: {} correlations {:.3} s, {} gradient fits {:.3} s, fields {:.3} s, {} residuals on the CPU {:.3} s",
            self.first.0, self.first.1, self.fits.0, self.fits.1, self.fields, self.on_cpu.0, self.on_cpu.1
        )
    }
}

/// The first estimates of a batch of frames at the points `plan` asks for.
#[allow(clippy::too_many_arguments)]
fn first_pass(
    dp: &DevicePoints,
    dev: &DeviceFrames,
    points: &Points,
    batch: &[usize],
    globals: &[Shift],
    locals: &mut [Vec<Local>],
    plan: &MeasurePlan,
    p: &MultipointParams,
    t: &mut Tally,
) -> Result<(), StageError> {
    let start = std::time::Instant::now();
    let reqs = requests(
        &points.grid,
        batch,
        |i| rounded(&globals[i]),
        |i, k| points.correlators[k].is_some() && plan.first(i).is_none_or(|o| o[k]),
    );
    for (r, v) in reqs.iter().zip(dp.correlate(dev, &reqs)?) {
        let g = globals[r.frame];
        let at = (g.dx.round(), g.dy.round());
        let l = &mut locals[r.frame][r.k];
        let m = Shift {
            dx: v[0],
            dy: v[1],
            peak: v[2],
        };
        *l = first_local(&m, at, &g, l.sharpness, p);
    }
    Tally::add(&mut t.first, reqs.len(), start);
    Ok(())
}

/// One pass after the first on a batch of frames: each frame's field so
/// far, the gradient fit's sums on the device at the points kept there
/// and around, solved here; residuals outside the fit measured on the CPU.
#[allow(clippy::too_many_arguments)]
fn later_pass(
    dp: &DevicePoints,
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    dev: &DeviceFrames,
    points: &Points,
    batch: &[usize],
    globals: &[Shift],
    locals: &mut [Vec<Local>],
    plan: &MeasurePlan,
    p: &MultipointParams,
    t: &mut Tally,
) -> Result<(), StageError> {
    let grid = &points.grid;
    let start = std::time::Instant::now();
    let fields = {
        let locals = &*locals;
        ctx.par_map(batch.len(), |pos| {
            field_so_far(grid, &locals[batch[pos]], p)
        })?
    };
    let warps: Vec<FrameWarp> = batch
        .iter()
        .zip(&fields)
        .map(|(&i, (_, _, f))| FrameWarp::with_field(globals[i].dx, globals[i].dy, f.clone()))
        .collect();
    let fits = p.refine == "gradient";
    let wanted = |i: usize, k: usize| plan.masks[i][k] && points.correlators[k].is_some();
    let (reqs, mut on_cpu): (Vec<Req>, Vec<Req>) = requests(grid, batch, |_| (0, 0), wanted)
        .into_iter()
        .partition(|r| fits && points.gradients[r.k].is_some());
    t.fields += start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let sums = dp.gradient(dev, &reqs, &warps)?;
    for (r, v) in reqs.iter().zip(sums) {
        let fit = points.gradients[r.k]
            .as_ref()
            .expect("requested with a fit");
        let solved = fit.solve(v.map(|x| x as f64));
        match solved {
            Some((dx, dy)) if dx.abs() <= MAX_SHIFT && dy.abs() <= MAX_SHIFT => {
                let (fx, fy, _) = &fields[r.pos];
                let l = &mut locals[r.frame][r.k];
                let m = Shift {
                    dx,
                    dy,
                    peak: l.peak,
                };
                *l = later_local(&m, (fx[r.k], fy[r.k]), l.sharpness, p);
            }
            _ => on_cpu.push(*r),
        }
    }
    Tally::add(&mut t.fits, reqs.len(), start);
    let start = std::time::Instant::now();
    residuals_on_cpu(ctx, frames, points, &on_cpu, &fields, globals, locals, p)?;
    Tally::add(&mut t.on_cpu, on_cpu.len(), start);
    Ok(())
}

/// The residuals of `reqs` measured on the CPU (the frames read from the
/// source, each once), as the CPU path's later passes measure them.
#[allow(clippy::too_many_arguments)]
fn residuals_on_cpu(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    points: &Points,
    reqs: &[Req],
    fields: &[(Vec<f32>, Vec<f32>, WarpField)],
    globals: &[Shift],
    locals: &mut [Vec<Local>],
    p: &MultipointParams,
) -> Result<(), StageError> {
    let mut by_frame: HashMap<usize, Vec<Req>> = HashMap::new();
    for r in reqs {
        by_frame.entry(r.frame).or_default().push(*r);
    }
    let (w, h, _) = frames.info().dims();
    let list: Vec<(usize, Vec<Req>)> = by_frame.into_iter().collect();
    // Frames in parallel, each read once; results written back after.
    let measured = {
        let locals = &*locals;
        ctx.par_try_map(list.len(), 0, |j| {
            let (i, rs) = &list[j];
            let lum = frame_luminance(frames, *i)?;
            let g = globals[*i];
            let mut out = Vec::with_capacity(rs.len());
            for r in rs {
                let (fx, fy, f) = &fields[r.pos];
                let l = &locals[*i][r.k];
                let at = (g.dx, g.dy);
                if let Some(m) = residual_on_cpu(points, &lum, (w, h), at, f, r.k, l.peak, p) {
                    out.push((r.k, later_local(&m, (fx[r.k], fy[r.k]), l.sharpness, p)));
                }
            }
            Ok(out)
        })?
    };
    for ((i, _), results) in list.iter().zip(measured) {
        for (k, l) in results {
            locals[*i][k] = l;
        }
    }
    Ok(())
}

/// The mean luminance of frames `0..warps.len()` of the source, each
/// resampled under its warp with Catmull-Rom weights (as the CPU path's
/// `dewarp_rows`), summed on the device where the host keeps them
/// (`stack_warp.wgsl` with weights 1); only the sum comes back.
pub(crate) fn warped_mean(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    dev: &DeviceFrames,
    info: FrameInfo,
    warps: &[FrameWarp],
) -> Result<Vec<f32>, StageError> {
    let (w, h, c) = info.dims();
    let len = info.frame_len();
    let mut bufs = Buffers::new(gpu);
    let (acc, wsum) = (bufs.zeroed(len)?, bufs.zeroed(w * h)?);
    let ones = vec![1.0; warps.len()];
    // Catmull-Rom: the shader's interpolation 1.
    let sums = [acc, wsum];
    warp_accumulate_resident(
        gpu,
        &mut bufs,
        dev,
        (w, h, c),
        warps,
        &ones,
        sums,
        1,
        |_, _| ctx.check_cancelled(),
    )?;
    let total = download(gpu, acc, len)?;
    let mut mean = jupiter_kit::stats::luminance(&total, c);
    let n = warps.len().max(1) as f32;
    mean.iter_mut().for_each(|v| *v /= n);
    Ok(mean)
}

/// The scan on the device ([`crate::cpu::scan`] of every frame): the rough
/// global shift by the GPU phase correlator on the global rectangle, then
/// each active point's sharpness on its patch at the rounded global
/// position (`structure` in `point_measure.wgsl`). `None` when the device
/// path declines (no active point, or sizes the kernels do not handle):
/// the caller scans on the CPU.
pub(crate) fn scan(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    dev: &DeviceFrames,
    points: &Points,
    global: &GlobalRef,
) -> Result<Option<Vec<FrameMeasure>>, StageError> {
    let info = frames.info();
    let grid = &points.grid;
    let n = info.count as usize;
    if grid.active_count() == 0 || grid.size < 5 || n == 0 {
        return Ok(None);
    }
    let all: Vec<usize> = (0..n).collect();
    let Some(shifts) = rough_shifts(ctx, gpu, frames, dev, points, global, &all)? else {
        return Ok(None);
    };
    let Some(dp) = DevicePoints::new(gpu, points, info)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(n);
    for batch in all.chunks(FRAMES_PER_BATCH) {
        ctx.check_cancelled()?;
        let at = |i: usize| rounded(&shifts[i]);
        let reqs = requests(grid, batch, at, |_, k| grid.active[k]);
        let mut locals = vec![vec![Local::default(); grid.len()]; batch.len()];
        for (r, v) in reqs.iter().zip(dp.run("structure", dev, &reqs, None)?) {
            let l = &mut locals[r.pos][r.k];
            l.sharpness = v[0];
            l.valid = true;
        }
        out.extend(batch.iter().zip(locals).map(|(&i, locals)| FrameMeasure {
            global: shifts[i],
            locals,
        }));
        ctx.progress(out.len() as u64, n as u64);
    }
    Ok(Some(out))
}

/// The rough global shifts ([`GlobalRef::rough`]) of frames `indices` on
/// the device, in that order; `None` where the GPU correlator does not
/// handle the rectangle's sizes.
pub(crate) fn rough_shifts(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    dev: &DeviceFrames,
    points: &Points,
    global: &GlobalRef,
    indices: &[usize],
) -> Result<Option<Vec<Shift>>, StageError> {
    let info = frames.info();
    let crop = global.roi.crop(points.reference(), info.width as usize);
    match GpuCorrelator::new(gpu, &crop, global.roi, indices.len())? {
        Some(gc) => gc.rough_shifts(ctx, info, dev, indices),
        None => Ok(None),
    }
}
