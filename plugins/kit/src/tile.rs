//! Pixel-major band gathering for per-pixel stackers (median, sigma clipping).
//!
//! A stacker that needs all samples of a pixel at once works band by band: for
//! a band of output rows, every frame's rows are resampled under its
//! [`FrameWarp`] (with [`warped_rows`], which also yields the warp field's
//! per-pixel weight) and scattered into a [`PixelMajorBand`], where the samples
//! of one output sample (pixel × channel) across the frames are contiguous.
//! Samples whose per-pixel weight is `<= 0` are left out; every other sample
//! counts fully. A per-pixel reduction (median, clipped mean) then runs on each
//! contiguous run of samples, in place.
//!
//! [`stack_bands`] drives the whole thing in parallel over bands through the
//! host's pool. Memory: the output image plus, per running band, `N × band`
//! samples — never the frame set.

use std::sync::atomic::{AtomicU64, Ordering};

use jupiter_plugin_api::{FrameSourceRef, FrameWarp, Image, StageCtx, StageError};

use crate::warp::{warped_rows, Interp};

/// The most output rows a band holds.
pub const MAX_BAND_ROWS: usize = 16;

/// The most bytes of pixel-major samples one band may hold; bands get fewer
/// rows (down to one) when the frame count makes them larger.
pub const BAND_BUDGET_BYTES: usize = 16 << 20;

/// Output rows per band for `frames` frames of `row_len` samples per row:
/// [`MAX_BAND_ROWS`], fewer when `frames × rows × row_len` floats would exceed
/// [`BAND_BUDGET_BYTES`], never fewer than one.
pub fn band_rows(frames: usize, row_len: usize) -> usize {
    let per_row = frames.max(1) * row_len.max(1) * std::mem::size_of::<f32>();
    (BAND_BUDGET_BYTES / per_row).clamp(1, MAX_BAND_ROWS)
}

/// One band of output rows in pixel-major layout: for output sample
/// `s = pixel * channels + c` of the band, its kept samples across the frames
/// are `samples[s * frames .. s * frames + counts[pixel]]`, in frame order.
///
/// Buffers are allocated once ([`PixelMajorBand::new`]) and reused by every
/// [`gather`](PixelMajorBand::gather).
pub struct PixelMajorBand {
    frames: usize,
    width: usize,
    channels: usize,
    rows: usize,
    samples: Vec<f32>,
    counts: Vec<u32>,
    row_buf: Vec<f32>,
    weight_buf: Vec<f32>,
    scratch: Vec<f32>,
}

impl PixelMajorBand {
    /// Buffers for bands of up to `max_rows` rows of `width × channels`
    /// samples over `frames` frames: `frames × max_rows × width × channels`
    /// floats of samples plus one row band of resampled input, one of weights
    /// and one of counts.
    pub fn new(frames: usize, width: usize, channels: usize, max_rows: usize) -> PixelMajorBand {
        let px = max_rows * width;
        PixelMajorBand {
            frames,
            width,
            channels,
            rows: 0,
            samples: vec![0.0; frames * px * channels],
            counts: vec![0; px],
            row_buf: vec![0.0; px * channels],
            weight_buf: vec![0.0; px],
            scratch: Vec::new(),
        }
    }

    /// Pixels in the current band (`rows × width`).
    pub fn pixels(&self) -> usize {
        self.rows * self.width
    }

    /// Output samples in the current band (`rows × width × channels`).
    pub fn len(&self) -> usize {
        self.pixels() * self.channels
    }

    /// True before the first gather or for a band of no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of frames kept at `pixel` of the band (weight `> 0`).
    pub fn count(&self, pixel: usize) -> usize {
        self.counts[pixel] as usize
    }

    /// The kept samples of output sample `s` (`pixel * channels + c`).
    pub fn samples(&self, s: usize) -> &[f32] {
        let n = self.count(s / self.channels);
        &self.samples[s * self.frames..s * self.frames + n]
    }

    /// Resamples output rows `y0 .. y0 + rows` of every frame (frame `i`
    /// under `warps[i]`) into the band. `rows` must not exceed the
    /// `max_rows` given to [`new`](PixelMajorBand::new), and `warps` must
    /// hold one warp per frame. `cancelled` is polled between frames; when it
    /// answers true the gather stops early with `Err(Cancelled)`.
    #[allow(clippy::too_many_arguments)]
    pub fn gather(
        &mut self,
        frames: &FrameSourceRef,
        warps: &[FrameWarp],
        interp: Interp,
        y0: usize,
        rows: usize,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<(), StageError> {
        let px = rows * self.width;
        if px > self.counts.len() {
            return Err(StageError::internal(format!(
                "band of {rows} rows exceeds the buffers"
            )));
        }
        if warps.len() != self.frames {
            return Err(StageError::internal(format!(
                "{} warps for {} frames",
                warps.len(),
                self.frames
            )));
        }
        self.rows = rows;
        let (n, ch) = (self.frames, self.channels);
        let counts = &mut self.counts[..px];
        counts.fill(0);
        let buf = &mut self.row_buf[..px * ch];
        let wbuf = &mut self.weight_buf[..px];
        for (i, warp) in warps.iter().enumerate() {
            if cancelled() {
                return Err(StageError::cancelled());
            }
            warped_rows(
                frames,
                i,
                warp,
                interp,
                y0,
                rows,
                buf,
                Some(&mut *wbuf),
                &mut self.scratch,
            )?;
            if ch == 1 {
                for (p, (&v, &wt)) in buf.iter().zip(wbuf.iter()).enumerate() {
                    if wt > 0.0 {
                        self.samples[p * n + counts[p] as usize] = v;
                        counts[p] += 1;
                    }
                }
            } else {
                for (p, &wt) in wbuf.iter().enumerate() {
                    if wt > 0.0 {
                        let j = counts[p] as usize;
                        for c in 0..ch {
                            self.samples[(p * ch + c) * n + j] = buf[p * ch + c];
                        }
                        counts[p] += 1;
                    }
                }
            }
        }
        Ok(())
    }

    /// Writes `out[s] = reduce(samples of s)` for every output sample of the
    /// band (`out.len() == self.len()`). `reduce` may reorder its slice; it
    /// receives an empty slice where no frame was kept.
    pub fn reduce_into(&mut self, out: &mut [f32], reduce: &impl Fn(&mut [f32]) -> f32) {
        let (n, ch) = (self.frames, self.channels);
        for (s, o) in out.iter_mut().enumerate().take(self.len()) {
            let k = self.counts[s / ch] as usize;
            *o = reduce(&mut self.samples[s * n..s * n + k]);
        }
    }
}

/// Stacks `frames` under `warps` with a per-pixel reduction over the kept
/// samples of each output sample (see [`PixelMajorBand::reduce_into`]),
/// parallel over bands of [`band_rows`] rows via `ctx.par_chunks_mut`.
///
/// Memory bound: the output (`W·H·C` floats) plus, per running band (at most
/// one per worker thread), `N·R·W·C` pixel-major samples, `R·W·C` resampled
/// rows, `2·R·W` weights and counts, and `2·(R + shift span + 5)·W·C`
/// decoded input rows (see [`warped_rows`]), where `R` = [`band_rows`]. The
/// frame set is never copied; the per-band buffers are allocated once per band
/// and reused for every frame. [`naive_stack`] is the simple reference.
pub fn stack_bands<F>(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    warps: &[FrameWarp],
    interp: Interp,
    reduce: F,
) -> Result<Image, StageError>
where
    F: Fn(&mut [f32]) -> f32 + Sync,
{
    let info = frames.info();
    let n = info.count as usize;
    jupiter_plugin_api::check_warps(&info, warps.len())?;
    let (w, h, ch, rl) = (
        info.width as usize,
        info.height as usize,
        info.channels as usize,
        info.row_len(),
    );
    let mut out = Image::new(info.width, info.height, info.channels);
    if out.is_empty() {
        return Ok(out);
    }
    let br = band_rows(n, rl);
    let bands = h.div_ceil(br) as u64;
    let done = AtomicU64::new(0);
    let cancelled = || ctx.backend.cancelled();
    ctx.par_try_chunks_mut(out.data.as_mut_slice(), br * rl, |b, band| {
        let rows = band.len() / rl;
        let mut tile = PixelMajorBand::new(n, w, ch, rows);
        tile.gather(frames, warps, interp, b * br, rows, &cancelled)?;
        tile.reduce_into(band, &reduce);
        ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, bands);
        Ok(())
    })?;
    Ok(out)
}

/// The naive reference for [`stack_bands`]: resamples every frame whole,
/// then for each output sample gathers the kept samples (weight `> 0`) of all
/// frames, in frame order, into a new `Vec` and hands it to `reduce`.
///
/// Sequential and simple on purpose; it holds all `N` aligned frames and their
/// weight maps (`N·W·H·(C + 1)` floats), so it is for tests and benchmarks
/// only, never for a stage.
pub fn naive_stack<F>(
    frames: &FrameSourceRef,
    warps: &[FrameWarp],
    interp: Interp,
    mut reduce: F,
) -> Result<Image, StageError>
where
    F: FnMut(Vec<f32>) -> f32,
{
    let info = frames.info();
    let n = info.count as usize;
    jupiter_plugin_api::check_warps(&info, warps.len())?;
    let (w, h, ch) = info.dims();
    let mut aligned = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    let mut scratch = Vec::new();
    for (i, warp) in warps.iter().enumerate() {
        let mut a = vec![0.0f32; info.frame_len()];
        let mut wt = vec![0.0f32; w * h];
        if h > 0 {
            warped_rows(
                frames,
                i,
                warp,
                interp,
                0,
                h,
                &mut a,
                Some(&mut wt),
                &mut scratch,
            )?;
        }
        aligned.push(a);
        weights.push(wt);
    }
    let mut out = Image::new(info.width, info.height, info.channels);
    for (s, o) in out.data.iter_mut().enumerate() {
        let mut v = Vec::new();
        for f in 0..n {
            if weights[f][s / ch] > 0.0 {
                v.push(aligned[f][s]);
            }
        }
        *o = reduce(v);
    }
    Ok(out)
}

/// Maps `f32` bits to an `i32` whose natural order is `f32::total_cmp`'s
/// (negative values get their magnitude bits flipped). Its own inverse.
#[inline]
fn total_key(bits: i32) -> i32 {
    bits ^ ((((bits >> 31) as u32) >> 1) as i32)
}

/// The median of `v`, reordering it: the middle value, or the mean of the two
/// middle values for an even count; 0 for an empty slice. Orders values as
/// `f32::total_cmp` does and finds them by selection (`select_nth_unstable`,
/// linear time, no full sort) on integer keys, which compare faster than
/// floats; `v` holds its own values again (in some order) on return.
pub fn median_in_place(v: &mut [f32]) -> f32 {
    let m = v.len();
    if m == 0 {
        return 0.0;
    }
    // SAFETY: f32 and i32 have the same size and alignment and every bit
    // pattern is valid for both; `v` is exclusively borrowed for this view.
    let keys = unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr().cast::<i32>(), m) };
    keys.iter_mut().for_each(|k| *k = total_key(*k));
    let k = m / 2;
    let (lower, hi, _) = keys.select_nth_unstable(k);
    let hi = *hi;
    // Everything before `k` is <= the k-th: the lower middle is their maximum.
    let lo = if m % 2 == 1 {
        None
    } else {
        lower.iter().copied().max()
    };
    keys.iter_mut().for_each(|k| *k = total_key(*k));
    let value = |key: i32| f32::from_bits(total_key(key) as u32);
    match lo {
        Some(lo) => (value(lo) + value(hi)) * 0.5,
        None => value(hi),
    }
}

/// The median of `v` by a full sort of a copy (the reference for
/// [`median_in_place`]; same conventions).
pub fn median_sorted(v: &[f32]) -> f32 {
    let m = v.len();
    if m == 0 {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f32::total_cmp);
    if m % 2 == 1 {
        s[m / 2]
    } else {
        (s[m / 2 - 1] + s[m / 2]) * 0.5
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
    use jupiter_plugin_api::{StageCtx, WarpField};

    use jupiter_testkit::rng::noise;

    /// `n` noise frames (seeds `seed0..`), as vectors and as a source, and
    /// `n` zero shifts.
    fn unshifted_noise(
        (w, h, ch): (usize, usize, usize),
        n: usize,
        seed0: u64,
    ) -> (Vec<Vec<f32>>, MemFrames, Vec<FrameWarp>) {
        let frames: Vec<Vec<f32>> = (0..n)
            .map(|k| noise(k as u64 + seed0, w * h * ch))
            .collect();
        let mem = MemFrames::new(w as u32, h as u32, ch as u32, frames.clone());
        (frames, mem, vec![FrameWarp::shift(0.0, 0.0); n])
    }

    /// A field over the whole image whose weight is `wt` everywhere.
    fn flat_field(w: usize, h: usize, wt: f32) -> FrameWarp {
        let values = [vec![0.0; 4], vec![0.0; 4], vec![wt; 4]];
        let field = WarpField::new((2, 2), (0.0, 0.0), (w as f32, h as f32), values);
        FrameWarp::with_field(0.0, 0.0, field)
    }

    #[test]
    fn band_rows_respects_the_budget() {
        assert_eq!(band_rows(10, 100), MAX_BAND_ROWS);
        let r = band_rows(1000, 3000);
        assert!((1..MAX_BAND_ROWS).contains(&r));
        assert!(1000 * 3000 * 4 * r <= BAND_BUDGET_BYTES);
        assert_eq!(band_rows(100_000, 100_000), 1);
    }

    #[test]
    fn gather_transposes_unshifted_frames_to_pixel_major() {
        let (w, h, ch, n) = (7, 9, 3, 5);
        let (frames, mem, warps) = unshifted_noise((w, h, ch), n, 1);
        let mut band = PixelMajorBand::new(n, w, ch, 4);
        for (y0, rows) in [(0, 4), (4, 4), (8, 1)] {
            band.gather(&mem.as_ref(), &warps, Interp::Bicubic, y0, rows, &|| false)
                .unwrap();
            assert_eq!(band.len(), rows * w * ch);
            for s in 0..band.len() {
                let want: Vec<f32> = frames.iter().map(|f| f[y0 * w * ch + s]).collect();
                assert_eq!(band.samples(s), want.as_slice(), "band at {y0}, sample {s}");
            }
        }
    }

    #[test]
    fn gather_leaves_out_zero_weight_samples() {
        let (w, h, n) = (6, 5, 4);
        let frames: Vec<Vec<f32>> = (0..n).map(|k| vec![k as f32 / 10.0; w * h]).collect();
        let mem = MemFrames::new(w as u32, h as u32, 1, frames);
        // Frame 1 is excluded everywhere; frame 2 has a fractional weight and counts.
        let warps = vec![
            FrameWarp::shift(0.0, 0.0),
            flat_field(w, h, 0.0),
            flat_field(w, h, 0.3),
            FrameWarp::shift(0.0, 0.0),
        ];
        let mut band = PixelMajorBand::new(n, w, 1, h);
        band.gather(&mem.as_ref(), &warps, Interp::Bilinear, 0, h, &|| false)
            .unwrap();
        for p in 0..w * h {
            assert_eq!(band.count(p), 3);
            assert_eq!(band.samples(p), &[0.0, 0.2, 0.3]);
        }
    }

    #[test]
    fn gather_reports_bad_input_and_cancellation() {
        let mem = MemFrames::new(4, 4, 1, vec![vec![0.0; 16]; 2]);
        let warps = vec![FrameWarp::shift(0.0, 0.0); 2];
        let mut band = PixelMajorBand::new(2, 4, 1, 2);
        assert!(band
            .gather(&mem.as_ref(), &warps[..1], Interp::Bicubic, 0, 2, &|| false)
            .is_err());
        assert!(band
            .gather(&mem.as_ref(), &warps, Interp::Bicubic, 0, 3, &|| false)
            .is_err());
        let e = band
            .gather(&mem.as_ref(), &warps, Interp::Bicubic, 0, 2, &|| true)
            .unwrap_err();
        assert_eq!(e.kind, jupiter_plugin_api::ErrorKind::Cancelled);
    }

    #[test]
    fn median_in_place_matches_the_sorted_median() {
        assert_eq!(median_in_place(&mut []), 0.0);
        assert_eq!(median_in_place(&mut [3.0, 1.0, 4.0, 2.0]), 2.5);
        assert_eq!(median_in_place(&mut [5.0, 1.0, 3.0]), 3.0);
        for m in 1..70 {
            let v = noise(m as u64, m);
            let mut w = v.clone();
            assert_eq!(median_in_place(&mut w), median_sorted(&v), "{m} values");
        }
        // Ties and duplicates, negatives, signed zeros: same as the sort.
        for v in [
            vec![0.5, 0.5, 0.1, 0.5, 0.9, 0.1],
            vec![-0.5, 0.25, -3.0, 0.0, -0.0, 2.0],
            vec![-0.0, 0.0],
            vec![-1.5, -2.5, -0.25],
        ] {
            let mut w = v.clone();
            assert_eq!(
                median_in_place(&mut w).to_bits(),
                median_sorted(&v).to_bits(),
                "{v:?}"
            );
            // The slice still holds the same values.
            let (mut a, mut b) = (w.clone(), v.clone());
            a.sort_by(f32::total_cmp);
            b.sort_by(f32::total_cmp);
            assert_eq!(
                a.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                b.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn stack_bands_reduces_every_pixel_across_frames() {
        let (w, h, ch, n) = (13, 40, 3, 6);
        let (frames, mem, warps) = unshifted_noise((w, h, ch), n, 11);
        let be = ThreadBackend::new(3);
        let max = |v: &mut [f32]| v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let img = be
            .with_ctx("t", |ctx: &StageCtx| {
                stack_bands(ctx, &mem.as_ref(), &warps, Interp::Bicubic, max)
            })
            .unwrap();
        for i in 0..w * h * ch {
            let want = frames
                .iter()
                .map(|f| f[i])
                .fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(img.data[i], want);
        }
    }

    #[test]
    fn stack_bands_equals_the_reference_under_shifts_and_fields() {
        let (w, h, ch, n) = (17, 45, 3, 7);
        let frames: Vec<Vec<f32>> = (0..n).map(|k| noise(k as u64 + 21, w * h * ch)).collect();
        let mem = MemFrames::new(w as u32, h as u32, ch as u32, frames);
        let mut warps: Vec<FrameWarp> = (0..n)
            .map(|k| FrameWarp::shift(0.37 * k as f32 - 1.1, 1.9 - 0.53 * k as f32))
            .collect();
        warps[2] = flat_field(w, h, 0.0);
        warps[4] = flat_field(w, h, 0.5);
        let be = ThreadBackend::new(2);
        let fast = be
            .with_ctx("t", |ctx: &StageCtx| {
                stack_bands(ctx, &mem.as_ref(), &warps, Interp::Bicubic, median_in_place)
            })
            .unwrap();
        let slow = naive_stack(&mem.as_ref(), &warps, Interp::Bicubic, |v| {
            median_sorted(&v)
        })
        .unwrap();
        assert_eq!(fast.data, slow.data);
    }

    #[test]
    fn stack_bands_rejects_empty_or_mismatched_input() {
        let be = ThreadBackend::new(1);
        let empty = MemFrames::new(4, 4, 1, vec![]);
        let r = be.with_ctx("t", |ctx: &StageCtx| {
            stack_bands(ctx, &empty.as_ref(), &[], Interp::Bicubic, median_in_place)
        });
        assert_eq!(
            r.unwrap_err().kind,
            jupiter_plugin_api::ErrorKind::InvalidParams
        );
        let one = MemFrames::new(4, 4, 1, vec![vec![0.0; 16]]);
        let r = be.with_ctx("t", |ctx: &StageCtx| {
            stack_bands(ctx, &one.as_ref(), &[], Interp::Bicubic, median_in_place)
        });
        assert!(r.is_err());
    }
}
