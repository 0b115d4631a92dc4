//! Phase correlation on the GPU (`shaders/phase_corr.wgsl`): the
//! measurement of [`crate::fft::PhaseCorrelator::shift_of`] — first estimate
//! on 2×2-binned planes (regions of at least [`COARSE_MIN`] a side), the
//! frame resampled by it, the residual measured at full resolution — for a
//! batch of frames at a time, on frames the host keeps on the device, two
//! frames per complex transform (the real and imaginary parts). Only four
//! numbers per frame come back.
//!
//! Sizes: every side of the region (and of its binned half) must have prime
//! factors up to 13 and be at most 2048 ([`supported_len`]); otherwise
//! [`GpuCorrelator::new`] returns `None` and the caller measures on the CPU.

use jupiter_plugin_api::gpu::helpers::{download_at, groups, run, write, Buffers};
use jupiter_plugin_api::{DeviceFrames, FrameInfo, GpuBuffer, GpuServiceBox, StageCtx, StageError};

use crate::align::Roi;
use crate::fft::{hann, Shift, COARSE_MIN};
use crate::gpu::{groups_1d, shaders::PHASE_CORR, uniforms, PhaseCorrP};

/// Workgroups per frame in the shader's reductions (`PARTS` there).
const PARTS: usize = 32;

/// Longest line the shader's shared memory holds.
pub const MAX_LEN: usize = 2048;
/// Invocations per FFT workgroup (as in the shader).
const WG: usize = 256;

/// Invocations per line of `n` samples (as `lanes()` in the shader): `n / 4`
/// rounded up to a power of two, within 32 ..= 256; a workgroup transforms
/// `256 / lanes(n)` lines.
pub fn lanes(n: usize) -> usize {
    n.div_ceil(4).max(2).next_power_of_two().clamp(32, WG)
}
/// Radix the shader picks for the remaining length `rem` (as `radix()` there).
fn radix(rem: usize) -> Option<usize> {
    [4, 2, 3, 5, 7, 11, 13]
        .into_iter()
        .find(|r| rem.is_multiple_of(*r))
}

/// Can the shader transform a line of `n` samples? (Radices up to 13, and
/// each invocation's butterfly inputs fit its 16 registers.)
pub fn supported_len(n: usize) -> bool {
    if !(2..=MAX_LEN).contains(&n) {
        return false;
    }
    let mut ns = 1;
    while ns < n {
        let Some(r) = radix(n / ns) else {
            return false;
        };
        // Radix 4 keeps at most 2 butterflies per invocation in variables;
        // the others at most 16 inputs in a private array.
        let per = (n / r).div_ceil(lanes(n));
        if per * r > 16 || (r == 4 && per > 2) {
            return false;
        }
        ns *= r;
    }
    true
}

/// Workgroups for transforming `lines` lines of `len` samples in each of
/// `count` frames.
fn line_groups(lines: usize, len: usize, count: usize) -> [u32; 3] {
    [lines.div_ceil(WG / lanes(len)) as u32, count as u32, 1]
}

/// Words of the largest batch buffer (the spectra: 2 words a sample); 128 MiB,
/// the smallest storage binding limit among the drivers in use (lavapipe).
const BATCH_WORDS: usize = 1 << 25;

/// One resolution of the correlator.
struct Level {
    n0: usize,
    n1: usize,
    bin: u32,
    consts: GpuBuffer,
    refspec: GpuBuffer,
    self_peak: f32,
}

/// The shader's uniform block.
type Pu = PhaseCorrP;

/// Phase correlation against one reference region, on the device.
pub struct GpuCorrelator<'g> {
    gpu: &'g GpuServiceBox,
    /// Frees every buffer below when the correlator is dropped.
    _bufs: Buffers<'g>,
    roi: Roi,
    whiten: f32,
    fine: Level,
    coarse: Option<Level>,
    /// The 4×4-binned level of [`GpuCorrelator::rough_shifts`] (regions of
    /// at least twice [`COARSE_MIN`] a side, when its sizes are supported).
    rough: Option<Level>,
    /// Whether the CPU's `rough_shift` would use a 4×4-binned level here.
    wants_rough: bool,
    batch: usize,
    table: GpuBuffer,
    res: GpuBuffer,
    plane: GpuBuffer,
    spec: GpuBuffer,
}

/// Where a pass reads its frames: the geometry of the source and the region.
#[derive(Clone, Copy)]
struct Source {
    fw: usize,
    fh: usize,
    fc: usize,
    roi: Roi,
}

/// A pass's first estimate and how the result combines with it.
#[derive(Clone, Copy)]
struct Refine {
    use_prev: bool,
    prev: usize,
    prev_scale: f32,
    mode: u32,
    out: usize,
}

impl Refine {
    /// A plain measurement into result slot 0 (no first estimate).
    const PLAIN: Refine = Refine {
        use_prev: false,
        prev: 0,
        prev_scale: 1.0,
        mode: 0,
        out: 0,
    };
}

impl<'g> GpuCorrelator<'g> {
    /// Prepares the reference (`reference` is the region `roi` of the
    /// reference plane, `roi.w × roi.h`) with the CPU correlator's
    /// parameters (low-pass sigma 0.1 cycles/px, whitening 0.3), for
    /// measuring up to `frames` frames per call (the batch is sized by it).
    /// `None` when the region's sizes are not supported.
    pub fn new(
        gpu: &'g GpuServiceBox,
        reference: &[f32],
        roi: Roi,
        frames: usize,
    ) -> Result<Option<GpuCorrelator<'g>>, StageError> {
        let (sigma, whiten) = (0.1f32, 0.3f32);
        let has_coarse = roi.w >= COARSE_MIN && roi.h >= COARSE_MIN;
        let sizes_ok = supported_len(roi.w)
            && supported_len(roi.h)
            && (!has_coarse || (supported_len(roi.w / 2) && supported_len(roi.h / 2)));
        if !sizes_ok || reference.len() != roi.w * roi.h {
            return Ok(None);
        }
        let plane_len = roi.w * roi.h;
        let batch = (BATCH_WORDS / (2 * plane_len))
            .clamp(1, 1024)
            .min(frames.max(1));
        let mut bufs = Buffers::new(gpu);
        let table = bufs.zeroed(batch)?;
        let res = bufs.zeroed((3 + PARTS) * batch * 4)?;
        let plane = bufs.zeroed(batch * plane_len)?;
        let spec = bufs.zeroed(2 * batch * plane_len)?;
        let refplane = bufs.upload(reference)?;
        let mut level = |n0: usize, n1: usize, bin: u32, sigma: f32| -> Result<Level, StageError> {
            let consts = bufs.upload(&level_consts(n0, n1, sigma))?;
            let refspec = bufs.zeroed(2 * n0 * n1)?;
            Ok(Level {
                n0,
                n1,
                bin,
                consts,
                refspec,
                self_peak: 1.0,
            })
        };
        let fine = level(roi.w, roi.h, 1, sigma)?;
        let coarse = if has_coarse {
            Some(level(roi.w / 2, roi.h / 2, 2, (2.0 * sigma).min(0.5))?)
        } else {
            None
        };
        // The binned level's own binned level, as the CPU correlator builds
        // it (sizes halved twice, sigma doubled twice).
        let (rw, rh) = (roi.w / 2 / 2, roi.h / 2 / 2);
        let wants_rough = has_coarse && roi.w / 2 >= COARSE_MIN && roi.h / 2 >= COARSE_MIN;
        let rough = if wants_rough && supported_len(rw) && supported_len(rh) {
            Some(level(rw, rh, 4, (4.0 * sigma).min(0.5))?)
        } else {
            None
        };
        let mut pc = GpuCorrelator {
            gpu,
            _bufs: bufs,
            roi,
            whiten,
            fine,
            coarse,
            rough,
            wants_rough,
            batch,
            table,
            res,
            plane,
            spec,
        };
        // Reference spectra, then each level's auto-correlation peak (what
        // a perfect match scores).
        write(gpu, table, 0, &[0.0])?;
        let src = Source {
            fw: roi.w,
            fh: roi.h,
            fc: 1,
            roi: Roi::full(roi.w, roi.h),
        };
        let plain = Refine::PLAIN;
        for which in 0..3 {
            let Some(lv) = (match which {
                0 => Some(&pc.fine),
                1 => pc.coarse.as_ref(),
                _ => pc.rough.as_ref(),
            }) else {
                continue;
            };
            pc.spectra(lv, &[(refplane, 0, 1)], src, plain, 1)?;
            let u = pc.pu(lv, src, 0, 1, plain);
            let g = groups_1d(lv.n0 * lv.n1, 256);
            pc.dispatch("save_ref", refplane, lv, &u, g)?;
            pc.correlate(lv, refplane, src, plain, 1)?;
            let peak = download_at(gpu, res, 0, 4)?[2].max(1e-20);
            let lv = match which {
                0 => Some(&mut pc.fine),
                1 => pc.coarse.as_mut(),
                _ => pc.rough.as_mut(),
            };
            if let Some(lv) = lv {
                lv.self_peak = peak;
            }
        }
        Ok(Some(pc))
    }

    fn pu(&self, lv: &Level, src: Source, base: usize, count: usize, r: Refine) -> Pu {
        let (n0, n1) = (lv.n0 as u32, lv.n1 as u32);
        Pu {
            geom: [
                src.fw as u32,
                src.fh as u32,
                src.fc as u32,
                lv.bin,
                src.roi.x0 as u32,
                src.roi.y0 as u32,
                src.roi.w as u32,
                src.roi.h as u32,
            ],
            n0,
            n1,
            count: count as u32,
            base: base as u32,
            prev: r.prev as u32,
            out: r.out as u32,
            means: (2 * self.batch) as u32,
            use_prev: r.use_prev as u32,
            prev_scale: r.prev_scale,
            self_peak: lv.self_peak,
            whiten: self.whiten,
            mode: r.mode,
            // Offsets in `consts`: twiddles n0, twiddles n1, Hann x, Hann y,
            // low-pass x, low-pass y (see `level_consts`).
            tables: [
                0,
                2 * n0,
                2 * n0 + 2 * n1,
                3 * n0 + 2 * n1,
                3 * n0 + 3 * n1,
                3 * n0 + 3 * n1 + n0 / 2 + 1,
            ],
            inverse: 0,
            part: (3 * self.batch) as u32,
        }
    }

    fn dispatch(
        &self,
        entry: &str,
        src: GpuBuffer,
        lv: &Level,
        u: &Pu,
        g: [u32; 3],
    ) -> Result<(), StageError> {
        run(
            self.gpu,
            PHASE_CORR,
            entry,
            &[
                src, self.table, self.res, self.plane, self.spec, lv.refspec, lv.consts,
            ],
            &uniforms(u),
            g,
        )
    }

    /// Loads batch frames (per source buffer: `(buffer, first batch
    /// position, count)`) into the planes and transforms them.
    fn spectra(
        &self,
        lv: &Level,
        groups_of: &[(GpuBuffer, usize, usize)],
        src: Source,
        r: Refine,
        count: usize,
    ) -> Result<(), StageError> {
        for &(buf, base, k) in groups_of {
            let u = self.pu(lv, src, base, k, r);
            self.dispatch(
                "load",
                buf,
                lv,
                &u,
                [groups(lv.n0, 16), groups(lv.n1, 16), k as u32],
            )?;
        }
        let any = groups_of[0].0;
        let u = self.pu(lv, src, 0, count, r);
        let pairs = count.div_ceil(2);
        self.dispatch("mean_part", any, lv, &u, [PARTS as u32, count as u32, 1])?;
        self.dispatch("mean", any, lv, &u, [groups(count, 64), 1, 1])?;
        self.dispatch("rows", any, lv, &u, line_groups(lv.n1, lv.n0, pairs))?;
        self.dispatch("cols", any, lv, &u, line_groups(lv.n0, lv.n1, pairs))
    }

    /// Cross-power, inverse transform and peak of the batch's spectra.
    fn correlate(
        &self,
        lv: &Level,
        any: GpuBuffer,
        src: Source,
        r: Refine,
        count: usize,
    ) -> Result<(), StageError> {
        let mut u = self.pu(lv, src, 0, count, r);
        let pairs = count.div_ceil(2);
        self.dispatch("cross", any, lv, &u, groups_1d(pairs * lv.n0 * lv.n1, 256))?;
        u.inverse = 1;
        self.dispatch("cols", any, lv, &u, line_groups(lv.n0, lv.n1, pairs))?;
        self.dispatch("rows", any, lv, &u, line_groups(lv.n1, lv.n0, pairs))?;
        self.dispatch("peak_part", any, lv, &u, [PARTS as u32, count as u32, 1])?;
        self.dispatch("peak", any, lv, &u, [groups(count, 64), 1, 1])
    }

    /// The CPU correlator's `rough_shift` of frames `indices` (in that
    /// order): one measurement on the 4×4-binned planes where the region
    /// has them, else on the 2×2-binned ones, else at full resolution,
    /// scaled to full-resolution pixels; `None` when the 4×4-binned sizes
    /// are not supported (the caller measures on the CPU).
    pub fn rough_shifts(
        &self,
        ctx: &StageCtx,
        info: FrameInfo,
        dev: &DeviceFrames,
        indices: &[usize],
    ) -> Result<Option<Vec<Shift>>, StageError> {
        let lv = match (&self.rough, &self.coarse) {
            (Some(r), _) => r,
            (None, _) if self.wants_rough => return Ok(None),
            (None, Some(c)) => c,
            (None, None) => &self.fine,
        };
        let shifts = self.in_batches(ctx, info, dev, indices, 0, |groups_of, src, count| {
            self.spectra(lv, groups_of, src, Refine::PLAIN, count)?;
            self.correlate(lv, groups_of[0].0, src, Refine::PLAIN, count)
        })?;
        let scale = lv.bin as f32;
        Ok(Some(
            shifts
                .into_iter()
                .map(|s| Shift {
                    dx: scale * s.dx,
                    dy: scale * s.dy,
                    peak: s.peak,
                })
                .collect(),
        ))
    }

    /// Shifts of frames `indices` of the source (on the device as `dev`),
    /// in the order given, measured on the region this correlator was made for.
    pub fn measure(
        &self,
        ctx: &StageCtx,
        info: FrameInfo,
        dev: &DeviceFrames,
        indices: &[usize],
    ) -> Result<Vec<Shift>, StageError> {
        let b = self.batch;
        self.in_batches(ctx, info, dev, indices, b, |groups_of, src, count| {
            let any = groups_of[0].0;
            // First estimate: on the binned level when there is one (its
            // shift in binned pixels, doubled), else at full resolution
            // (kept alone when under 0.05 px); then the refinement.
            let (first, prev_scale, mode) = match &self.coarse {
                Some(c) => (c, 2.0, 1),
                None => (&self.fine, 1.0, 2),
            };
            self.spectra(first, groups_of, src, Refine::PLAIN, count)?;
            self.correlate(first, any, src, Refine::PLAIN, count)?;
            let last = Refine {
                use_prev: true,
                prev: 0,
                prev_scale,
                mode,
                out: b,
            };
            self.spectra(&self.fine, groups_of, src, last, count)?;
            self.correlate(&self.fine, any, src, last, count)
        })
    }

    /// Runs `pass` on frames `indices` a batch at a time and reads each
    /// frame's `(dx, dy, peak)` from result slot `out` (results in the
    /// order of `indices`). The batch goes in buffer order, so that its
    /// frames of one buffer are consecutive (one load dispatch per
    /// buffer); `pass` gets the batch's `(buffer, first, count)` runs, the
    /// source geometry and the batch size.
    fn in_batches(
        &self,
        ctx: &StageCtx,
        info: FrameInfo,
        dev: &DeviceFrames,
        indices: &[usize],
        out: usize,
        pass: impl Fn(&[(GpuBuffer, usize, usize)], Source, usize) -> Result<(), StageError>,
    ) -> Result<Vec<Shift>, StageError> {
        let len = info.frame_len();
        let src = Source {
            fw: info.width as usize,
            fh: info.height as usize,
            fc: info.channels as usize,
            roi: self.roi,
        };
        let work = dev.in_buffer_order(indices, len);
        let mut shifts = vec![
            Shift {
                dx: 0.0,
                dy: 0.0,
                peak: 0.0
            };
            indices.len()
        ];
        for chunk in work.chunks(self.batch) {
            ctx.check_cancelled()?;
            let count = chunk.len();
            let offsets: Vec<f32> = chunk
                .iter()
                .map(|s| f32::from_bits(s.offset as u32))
                .collect();
            write(self.gpu, self.table, 0, &offsets)?;
            pass(&DeviceFrames::runs(chunk), src, count)?;
            let r = download_at(self.gpu, self.res, 4 * out, 4 * count)?;
            for (s, v) in chunk.iter().zip(r.chunks_exact(4)) {
                shifts[s.pos] = Shift {
                    dx: v[0],
                    dy: v[1],
                    peak: v[2],
                };
            }
        }
        Ok(shifts)
    }
}

/// [`crate::align::mean_of_best`] over frames the host keeps on the
/// device: the best frames' shifts measured by a [`GpuCorrelator`] (on the
/// CPU when the region's size is one it does not handle) and the frames
/// resampled and added there; the luminance of the sum comes back.
pub fn mean_of_best_on_device(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    frames: &jupiter_plugin_api::FrameSourceRef,
    dev: &DeviceFrames,
    k: usize,
    first: &mut dyn FnMut(&[f32]),
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    let measure = |crop: &[f32], roi: Roi, idx: &[usize]| -> Result<Vec<Shift>, StageError> {
        match GpuCorrelator::new(gpu, crop, roi, idx.len())? {
            Some(gc) => gc.measure(ctx, info, dev, idx),
            None => crate::align::measure_region(ctx, frames, crop, roi, idx, false),
        }
    };
    let (w, h, c) = info.dims();
    let geometry = crate::gpu::ShiftGeometry::whole(w, h, c, 1);
    let sum = |items: &[(usize, Shift)]| -> Result<Option<Vec<f32>>, StageError> {
        let mut bufs = Buffers::new(gpu);
        let acc = bufs.zeroed(info.frame_len())?;
        let items: Vec<_> = items.iter().map(|&(i, s)| (i, s.dx, s.dy, 1.0)).collect();
        crate::gpu::accumulate_resident(gpu, dev, &geometry, &items, acc, |_| {
            ctx.check_cancelled()
        })?;
        jupiter_plugin_api::gpu::helpers::download(gpu, acc, info.frame_len()).map(Some)
    };
    crate::align::mean_of_best_measured(ctx, frames, k, &measure, Some(&sum), first)
}

/// The constant tables of one level, in the order the shader's offsets
/// expect: twiddles `exp(-2πi m/n0)` (cos, sin; computed in f64), the same
/// for n1, the Hann windows of the CPU path, and the gaussian low-pass
/// factors `exp(-f²/(2σ²))` for frequencies `0 ..= n/2`.
fn level_consts(n0: usize, n1: usize, sigma: f32) -> Vec<f32> {
    let mut c = Vec::new();
    for n in [n0, n1] {
        for m in 0..n {
            let a = -2.0 * std::f64::consts::PI * m as f64 / n as f64;
            c.push(a.cos() as f32);
            c.push(a.sin() as f32);
        }
    }
    c.extend(hann(n0));
    c.extend(hann(n1));
    for n in [n0, n1] {
        for k in 0..=n / 2 {
            let f = k as f32 / n as f32;
            c.push((-(f * f) / (2.0 * sigma * sigma)).exp());
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_fit_the_shared_line_buffer() {
        for n in 2..=MAX_LEN {
            let l = lanes(n);
            assert!(l.is_power_of_two() && (32..=WG).contains(&l));
            // All lines of a workgroup fit the shader's 2048 samples.
            assert!(WG / l * n <= MAX_LEN, "{n}");
        }
    }

    #[test]
    fn supported_lengths() {
        for n in [
            2,
            8,
            96,
            80,
            160,
            480,
            640,
            1024,
            2048,
            1936 / 2,
            33,
            21,
            1536,
            1920,
        ] {
            assert!(supported_len(n), "{n}");
        }
        for n in [1, 17, 4096, 19 * 4, 2 * 23] {
            assert!(!supported_len(n), "{n}");
        }
    }
}
