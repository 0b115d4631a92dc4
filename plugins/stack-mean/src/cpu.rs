//! CPU path of `stack-mean`.

use std::sync::atomic::{AtomicU64, Ordering};

use jupiter_kit::warp::{DenseFields, RowsOf};
use jupiter_plugin_api::prelude::*;

use crate::params::MeanParams;

/// Output rows per band (one parallel task) for `threads` on a `w × h`
/// image of `ch` channels: 32 where there are at least four bands per
/// thread and a band's buffers (24 bytes per sample) stay within 4 MB,
/// else fewer, down to 16. Every band reads each frame's rows with the
/// resampling margin (and the demosaic's) above and below: on 640×480
/// Bayer frames 32 rows took 7 % off the stack's time against 16 (60 rows
/// no more). The sums do not depend on the band size.
pub fn band_rows(w: usize, h: usize, ch: usize, threads: usize) -> usize {
    const BUDGET: usize = 4 << 20;
    let by_threads = h.div_ceil(4 * threads.max(1));
    let by_memory = BUDGET / (w * ch * 24).max(1);
    by_threads.min(by_memory).clamp(16, 32)
}

/// Per-frame weights: all 1, or `(score / max) ^ power`.
pub fn frame_weights(scores: &[f32], n: usize, p: &MeanParams) -> Vec<f32> {
    jupiter_kit::stats::quality_weights(scores, n, p.quality_weighting, p.weight_power)
}

/// Stacks the source under the alignment.
///
/// Memory: output (`W·H·C` floats) + per running band `rows·W·C·2` for the
/// accumulators and resampled rows ([`band_rows`]) + `(rows + shift span + 5)·W·C` of
/// decoded input rows. Independent of the frame count.
pub fn stack(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MeanParams,
) -> Result<Image, StageError> {
    let info = frames.info();
    let n = info.count as usize;
    req.check(&info)?;
    let interp = p.interpolation;
    let weights = frame_weights(&req.scores, n, p);
    let (w, h, rl) = (info.width as usize, info.height as usize, info.row_len());
    let ch = info.channels as usize;
    let mut out = Image::new(info.width, info.height, info.channels);
    let band_rows = band_rows(w, h, ch, ctx.threads());
    let bands = h.div_ceil(band_rows) as u64;
    let done = AtomicU64::new(0);
    let fields = DenseFields::new(&req.alignment.warps);
    ctx.par_try_chunks_mut(out.data.as_mut_slice(), band_rows * rl, |b, band| {
        let y0 = b * band_rows;
        let rows = band.len() / rl;
        let mut sum = vec![0.0f64; band.len()];
        let mut wsum = vec![0.0f64; rows * w];
        let mut buf = vec![0.0f32; band.len()];
        let mut pix_w = vec![0.0f32; rows * w];
        let mut scratch = Vec::new();
        for (i, warp) in req.alignment.warps.iter().enumerate() {
            if ctx.backend.cancelled() {
                return Ok(());
            }
            fields.warped_rows(
                frames,
                i,
                warp,
                RowsOf { y0, rows, interp },
                &mut buf,
                Some(&mut pix_w),
                &mut scratch,
            )?;
            accumulate(&mut sum, &mut wsum, &buf, &pix_w, weights[i] as f64, ch);
        }
        for (px, ws) in wsum.iter().enumerate() {
            for c in 0..ch {
                band[px * ch + c] = if *ws > 0.0 {
                    (sum[px * ch + c] / ws) as f32
                } else {
                    0.0
                };
            }
        }
        ctx.progress(done.fetch_add(1, Ordering::Relaxed) + 1, bands);
        Ok(())
    })?;
    Ok(out)
}

/// Adds one frame's resampled rows `buf`, each pixel weighted by the
/// frame's weight `fw` times its own `pix_w`, to the band's sums. A pixel
/// whose weight is not above 0 adds nothing: its terms are selected to
/// `+0.0`, which leaves every sum's bits as skipping it did (a sum is never
/// `-0.0`) and keeps the loop branch-free, so it vectorises.
fn accumulate(sum: &mut [f64], wsum: &mut [f64], buf: &[f32], pix_w: &[f32], fw: f64, ch: usize) {
    jupiter_kit::simd::wide(
        #[inline(always)]
        || match ch {
            // Literal channel counts: the inlined loop is specialised.
            1 => add_weighted(sum, wsum, buf, pix_w, fw, 1),
            3 => add_weighted(sum, wsum, buf, pix_w, fw, 3),
            _ => add_weighted(sum, wsum, buf, pix_w, fw, ch),
        },
    )
}

/// [`accumulate`]'s loop over the pixels of `ch` interleaved channels.
#[inline(always)]
fn add_weighted(sum: &mut [f64], wsum: &mut [f64], buf: &[f32], pix_w: &[f32], fw: f64, ch: usize) {
    if ch == 0 {
        return;
    }
    let pixels = sum
        .chunks_exact_mut(ch)
        .zip(wsum.iter_mut())
        .zip(buf.chunks_exact(ch));
    for (((s, ws), b), pw) in pixels.zip(pix_w) {
        let wt = fw * *pw as f64;
        let weighs = wt > 0.0;
        *ws += if weighs { wt } else { 0.0 };
        for c in 0..ch {
            s[c] += if weighs { wt * b[c] as f64 } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};

    #[test]
    fn bands_are_32_rows_unless_threads_or_memory_ask_for_fewer() {
        assert_eq!(band_rows(640, 480, 3, 2), 32);
        assert_eq!(band_rows(640, 480, 1, 16), 16);
        assert_eq!(band_rows(6000, 4000, 1, 2), 29);
        assert_eq!(band_rows(6000, 4000, 3, 2), 16);
        assert_eq!(band_rows(1, 1, 1, 1), 16);
    }

    #[test]
    fn mean_of_unshifted_frames_is_the_plain_average() {
        let (w, h) = (21, 35);
        let frames: Vec<Vec<f32>> = (0..5)
            .map(|k| {
                (0..w * h * 3)
                    .map(|i| ((i * (k + 3)) % 17) as f32 / 17.0)
                    .collect()
            })
            .collect();
        let mem = MemFrames::new(w as u32, h as u32, 3, frames.clone());
        let req = StackRequest::new(
            (0..5)
                .map(|_| FrameWarp::shift(0.0, 0.0))
                .collect::<Vec<_>>(),
        );
        let be = ThreadBackend::new(3);
        let img = be
            .with_ctx("stack-mean", |ctx| {
                stack(ctx, &mem.as_ref(), &req, &MeanParams::default())
            })
            .unwrap();
        for i in 0..w * h * 3 {
            let want = frames.iter().map(|f| f[i]).sum::<f32>() / 5.0;
            assert!((img.data[i] - want).abs() < 1e-5);
        }
    }

    #[test]
    fn quality_weights_favour_sharp_frames() {
        let p = MeanParams {
            quality_weighting: true,
            weight_power: 2.0,
            ..Default::default()
        };
        let w = frame_weights(&[4.0, 2.0, 0.0], 3, &p);
        assert_eq!(w, vec![1.0, 0.25, 0.0]);
        let off = frame_weights(&[4.0, 2.0], 2, &MeanParams::default());
        assert_eq!(off, vec![1.0, 1.0]);
    }
}
