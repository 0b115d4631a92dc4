//! The samplers' common case with AVX2 intrinsics: eight positions whose
//! 4×4 (or 2×2) blocks are one block moved a pixel per lane and lie inside
//! the window — under a slowly varying warp, nearly every batch of a span —
//! for mono and interleaved RGB windows. The portable lane loops do not
//! vectorise the floor, the tap weights and the tap sums together (the
//! compiler keeps parts scalar); here each is one vector instruction. The
//! operations and their order are the portable path's, so the samples are
//! the same bit for bit (no fused multiply-add); any other batch goes
//! through the portable path.

use std::arch::x86_64::*;

use super::{Interp, RowWindow, LANES};

/// [`RowWindow::sample_span`] of a `CH`-channel window (1 or 3): the
/// batches described above here, every other batch and the tail through
/// `portable`.
///
/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn span<const CH: usize>(
    win: &RowWindow,
    xs: &[f32],
    ys: &[f32],
    interp: Interp,
    out: &mut [f32],
    portable: impl Fn(&[f32], &[f32], &mut [f32]),
) {
    let n = xs.len().min(ys.len()).min(out.len() / CH);
    let mut k0 = 0;
    while k0 + LANES <= n {
        let (r, o) = (k0..k0 + LANES, k0 * CH..(k0 + LANES) * CH);
        if !batch::<CH>(
            win,
            &xs[r.clone()],
            &ys[r.clone()],
            interp,
            &mut out[o.clone()],
        ) {
            portable(&xs[r.clone()], &ys[r], &mut out[o]);
        }
        k0 += LANES;
    }
    if k0 < n {
        portable(&xs[k0..n], &ys[k0..n], &mut out[k0 * CH..n * CH]);
    }
}

/// `floor` lane by lane as the portable `floor_lanes` computes it
/// (truncate, one less where that rounded up) and the fraction.
#[target_feature(enable = "avx2")]
#[inline]
fn floor_frac(v: __m256) -> (__m256i, __m256) {
    let a = _mm256_cvttps_epi32(v);
    let up = _mm256_castps_si256(_mm256_cmp_ps::<_CMP_GT_OQ>(_mm256_cvtepi32_ps(a), v));
    // `up` is −1 where the truncation rounded up.
    let a = _mm256_add_epi32(a, up);
    (a, _mm256_sub_ps(v, _mm256_cvtepi32_ps(a)))
}

/// Catmull-Rom weights, as `cubic_weights` orders its operations.
#[target_feature(enable = "avx2")]
#[inline]
fn catmull_rom(t: __m256) -> [__m256; 4] {
    let c = _mm256_set1_ps;
    let (t2, half) = (_mm256_mul_ps(t, t), c(0.5));
    let t3 = _mm256_mul_ps(t2, t);
    let neg_t3 = _mm256_xor_ps(t3, c(-0.0));
    let w0 = _mm256_sub_ps(_mm256_add_ps(neg_t3, _mm256_mul_ps(c(2.0), t2)), t);
    let w1 = _mm256_add_ps(
        _mm256_sub_ps(_mm256_mul_ps(c(3.0), t3), _mm256_mul_ps(c(5.0), t2)),
        c(2.0),
    );
    let w2 = _mm256_add_ps(
        _mm256_add_ps(_mm256_mul_ps(c(-3.0), t3), _mm256_mul_ps(c(4.0), t2)),
        t,
    );
    let w3 = _mm256_sub_ps(t3, t2);
    [w0, w1, w2, w3].map(|w| _mm256_mul_ps(half, w))
}

/// Cubic-convolution weights with `a = −0.75`, as `sharp_cubic_weights`
/// orders its operations.
#[target_feature(enable = "avx2")]
#[inline]
fn sharp_cubic(t: __m256) -> [__m256; 4] {
    let c = _mm256_set1_ps;
    let near = |d: __m256| {
        let v = _mm256_sub_ps(_mm256_mul_ps(c(1.25), d), c(2.25));
        _mm256_add_ps(_mm256_mul_ps(_mm256_mul_ps(v, d), d), c(1.0))
    };
    let far = |d: __m256| {
        let v = _mm256_add_ps(_mm256_mul_ps(_mm256_sub_ps(d, c(5.0)), d), c(8.0));
        _mm256_mul_ps(c(-0.75), _mm256_sub_ps(_mm256_mul_ps(v, d), c(4.0)))
    };
    let one = c(1.0);
    [
        far(_mm256_add_ps(one, t)),
        near(t),
        near(_mm256_sub_ps(one, t)),
        far(_mm256_sub_ps(c(2.0), t)),
    ]
}

/// Lane `l` of sample vector `k` of eight interleaved `CH`-channel pixels
/// belongs to pixel `(8k + l) / CH`: the per-pixel vector `v` spread so.
#[target_feature(enable = "avx2")]
#[inline]
fn spread<const CH: usize>(v: __m256, k: usize) -> __m256 {
    if CH == 1 {
        return v;
    }
    let idx = |k: i32| {
        let p = |l: i32| (8 * k + l) / CH as i32;
        _mm256_setr_epi32(p(0), p(1), p(2), p(3), p(4), p(5), p(6), p(7))
    };
    _mm256_permutevar8x32_ps(v, idx(k as i32))
}

/// One batch of eight `CH`-channel pixels (interleaved); `false` (nothing
/// written) unless their blocks are one block moved a pixel per lane,
/// inside the window. Each of the `CH` vectors of eight output samples
/// reads its taps as runs of memory `CH` samples apart, with its pixels'
/// weights spread over its lanes ([`spread`]).
#[target_feature(enable = "avx2")]
#[inline]
fn batch<const CH: usize>(
    win: &RowWindow,
    xs: &[f32],
    ys: &[f32],
    interp: Interp,
    out: &mut [f32],
) -> bool {
    let (Some(xs), Some(ys)) = (xs.first_chunk::<LANES>(), ys.first_chunk::<LANES>()) else {
        return false;
    };
    // SAFETY: eight floats each (the chunks above).
    let (px, py) = unsafe { (_mm256_loadu_ps(xs.as_ptr()), _mm256_loadu_ps(ys.as_ptr())) };
    let ((ix, tx), (iy, ty)) = (floor_frac(px), floor_frac(py));
    let ix0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(ix));
    let iy0 = _mm_cvtsi128_si32(_mm256_castsi256_si128(iy));
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let same = _mm256_and_si256(
        _mm256_cmpeq_epi32(ix, _mm256_add_epi32(_mm256_set1_epi32(ix0), lanes)),
        _mm256_cmpeq_epi32(iy, _mm256_set1_epi32(iy0)),
    );
    if _mm256_movemask_epi8(same) != -1 {
        return false;
    }
    let taps = if interp == Interp::Bilinear { 2 } else { 4 };
    let (before, after) = if taps == 2 { (0, 1) } else { (1, 2) };
    let (x, y) = (ix0 as i64, iy0 as i64);
    let (w, y_begin, y_end) = (win.width as i64, win.y0 as i64, (win.y0 + win.rows) as i64);
    if win.channels != CH
        || x - before < 0
        || x + (LANES as i64 - 1) + after >= w
        || y - before < y_begin
        || y + after >= y_end
    {
        return false;
    }
    let base = ((y - before - y_begin) * w + (x - before)) as usize * CH;
    let row_len = win.width * CH;
    // One past the last sample read: row `taps − 1`, the last vector's
    // last tap (= the last pixel's last channel of lane 7's block).
    let last = base + (taps - 1) * row_len + (taps - 1) * CH + LANES * CH;
    let (Some(data), Some(out)) = (win.data.get(..last), out.get_mut(..LANES * CH)) else {
        return false;
    };
    // SAFETY: every load below reads eight floats ending at or before `last`.
    let at =
        |j: usize, i: usize| unsafe { _mm256_loadu_ps(data.as_ptr().add(base + j * row_len + i)) };
    let one = _mm256_set1_ps(1.0);
    let cubic = if taps == 2 {
        None
    } else if interp == Interp::Sharp {
        Some((sharp_cubic(tx), sharp_cubic(ty)))
    } else {
        Some((catmull_rom(tx), catmull_rom(ty)))
    };
    for k in 0..CH {
        let v = match cubic {
            None => {
                let (tx, ty) = (spread::<CH>(tx, k), spread::<CH>(ty, k));
                let (sx, sy) = (_mm256_sub_ps(one, tx), _mm256_sub_ps(one, ty));
                let lerp = |a: __m256, b: __m256| {
                    _mm256_add_ps(_mm256_mul_ps(a, sx), _mm256_mul_ps(b, tx))
                };
                let o = 8 * k;
                let (a, b) = (lerp(at(0, o), at(0, o + CH)), lerp(at(1, o), at(1, o + CH)));
                _mm256_add_ps(_mm256_mul_ps(a, sy), _mm256_mul_ps(b, ty))
            }
            Some((wx, wy)) => {
                let wx = wx.map(|v| spread::<CH>(v, k));
                let mut acc = _mm256_setzero_ps();
                for (j, wyj) in wy.iter().enumerate() {
                    let t = |i: usize| _mm256_mul_ps(wx[i], at(j, 8 * k + i * CH));
                    let mut row = _mm256_add_ps(t(0), t(1));
                    row = _mm256_add_ps(row, t(2));
                    row = _mm256_add_ps(row, t(3));
                    acc = _mm256_add_ps(acc, _mm256_mul_ps(spread::<CH>(*wyj, k), row));
                }
                acc
            }
        };
        // SAFETY: eight floats from 8k, inside `out` (LANES · CH long).
        unsafe { _mm256_storeu_ps(out.as_mut_ptr().add(8 * k), v) };
    }
    true
}
