//! Separable convolution of one image plane, parallel over rows through the
//! backend. Borders replicate the edge pixel. `dilation` spaces the taps
//! (1 = ordinary convolution; 2^j for the à-trous wavelet).

use jupiter_plugin_api::{StageCtx, StageError};

/// A normalised gaussian kernel with radius `ceil(3 sigma)` (a single 1 for sigma ≤ 0).
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    if sigma <= 0.0 {
        return vec![1.0];
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let s: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= s);
    k
}

/// The B3-spline kernel of the à-trous wavelet: (1, 4, 6, 4, 1) / 16.
pub const B3_SPLINE: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];

/// Rows processed per parallel task.
const ROWS_PER_TASK: usize = 16;

/// Runs `$f::<K>` for the kernel lengths the fused passes specialise
/// (a gaussian of sigma up to 2, the wavelet's B3 spline), with the kernel
/// as an array; otherwise goes on.
macro_rules! fused {
    ($f:ident, $kernel:expr, $($arg:expr),*) => {
        match $kernel.len() {
            3 => return $f::<3>($kernel.try_into().unwrap(), $($arg),*),
            5 => return $f::<5>($kernel.try_into().unwrap(), $($arg),*),
            7 => return $f::<7>($kernel.try_into().unwrap(), $($arg),*),
            9 => return $f::<9>($kernel.try_into().unwrap(), $($arg),*),
            11 => return $f::<11>($kernel.try_into().unwrap(), $($arg),*),
            13 => return $f::<13>($kernel.try_into().unwrap(), $($arg),*),
            _ => {}
        }
    };
}

/// Horizontal pass over the rows starting at `y_start` that `out` covers.
fn h_rows(src: &[f32], width: usize, kernel: &[f32], d: isize, y_start: usize, out: &mut [f32]) {
    crate::simd::wide(
        #[inline(always)]
        || {
            if d == 1 {
                fused!(h_rows_fused, kernel, src, width, y_start, out);
            }
            let r = (kernel.len() / 2) as isize;
            let w = width as isize;
            for (ry, row_out) in out.chunks_mut(width).enumerate() {
                let y = y_start + ry;
                let row = &src[y * width..(y + 1) * width];
                row_out.fill(0.0);
                // Tap by tap over the whole row (vectorises); the taps are added in
                // kernel order for every pixel, so the sums equal a per-pixel loop's.
                for (k, &kv) in kernel.iter().enumerate() {
                    let off = (k as isize - r) * d;
                    // Pixels whose tap lands inside the row: x + off in [0, w).
                    let lo = (-off).clamp(0, w) as usize;
                    let hi = (w - off).clamp(0, w) as usize;
                    for o in &mut row_out[..lo] {
                        *o += kv * row[0];
                    }
                    if lo < hi {
                        let s0 = (lo as isize + off) as usize;
                        for (o, s) in row_out[lo..hi].iter_mut().zip(&row[s0..s0 + (hi - lo)]) {
                            *o += kv * s;
                        }
                    }
                    for o in &mut row_out[hi.max(lo)..] {
                        *o += kv * row[width - 1];
                    }
                }
            }
        },
    )
}

/// [`h_rows`] for `K` taps one pixel apart: each pixel's taps summed in
/// one go, in kernel order from 0 (what the tap-by-tap loop sums, bit for
/// bit), so that each row is written once and, with `K` fixed, the pixel
/// loop vectorises.
fn h_rows_fused<const K: usize>(
    kernel: &[f32; K],
    src: &[f32],
    width: usize,
    y_start: usize,
    out: &mut [f32],
) {
    crate::simd::wide(
        #[inline(always)]
        || {
            let r = K / 2;
            for (ry, row_out) in out.chunks_mut(width).enumerate() {
                let row = &src[(y_start + ry) * width..][..width];
                let clamped = |x: usize| {
                    let mut acc = 0.0f32;
                    for (k, kv) in kernel.iter().enumerate() {
                        let sx = (x + k).saturating_sub(r).min(width - 1);
                        acc += kv * row[sx];
                    }
                    acc
                };
                if width <= 2 * r {
                    for (x, o) in row_out.iter_mut().enumerate() {
                        *o = clamped(x);
                    }
                    continue;
                }
                for x in (0..r).chain(width - r..width) {
                    row_out[x] = clamped(x);
                }
                let n = width - 2 * r;
                let taps: [&[f32]; K] = std::array::from_fn(|k| &row[k..k + n]);
                for (i, o) in row_out[r..r + n].iter_mut().enumerate() {
                    let mut acc = 0.0f32;
                    for k in 0..K {
                        acc += kernel[k] * taps[k][i];
                    }
                    *o = acc;
                }
            }
        },
    )
}

/// Vertical pass over the rows starting at `y_start` that `out` covers:
/// each output row is [`combine_rows`] of the kernel's rows of `tmp`
/// (clamped at the edges).
fn v_rows(
    tmp: &[f32],
    width: usize,
    height: usize,
    kernel: &[f32],
    d: isize,
    y_start: usize,
    out: &mut [f32],
) {
    let r = (kernel.len() / 2) as isize;
    let mut rows: Vec<&[f32]> = Vec::with_capacity(kernel.len());
    for (ry, row_out) in out.chunks_mut(width).enumerate() {
        let y = (y_start + ry) as isize;
        rows.clear();
        rows.extend((0..kernel.len()).map(|k| {
            let sy = (y + (k as isize - r) * d).clamp(0, height as isize - 1) as usize;
            &tmp[sy * width..(sy + 1) * width]
        }));
        combine_rows(kernel, &rows, row_out);
    }
}

fn check(src: &[f32], width: usize, height: usize, kernel: &[f32], out: &[f32]) {
    assert_eq!(src.len(), width * height);
    assert_eq!(out.len(), width * height);
    assert!(kernel.len() % 2 == 1, "kernel length must be odd");
}

/// Convolves `src` (`width × height`, one plane) with `kernel` (odd length,
/// centred) along x then y, taps `dilation` pixels apart, into `out`;
/// parallel over bands of rows.
pub fn separable(
    ctx: &StageCtx,
    src: &[f32],
    width: usize,
    height: usize,
    kernel: &[f32],
    dilation: usize,
    out: &mut [f32],
) -> Result<(), StageError> {
    check(src, width, height, kernel, out);
    let d = dilation.max(1) as isize;
    let mut tmp = vec![0.0f32; width * height];
    ctx.par_chunks_mut(&mut tmp, width * ROWS_PER_TASK, |c, chunk| {
        h_rows(src, width, kernel, d, c * ROWS_PER_TASK, chunk)
    })?;
    let tmp = &tmp;
    ctx.par_chunks_mut(out, width * ROWS_PER_TASK, |c, chunk| {
        v_rows(tmp, width, height, kernel, d, c * ROWS_PER_TASK, chunk)
    })
}

/// [`separable`] on the calling thread (for code already running in parallel).
pub fn separable_serial(
    src: &[f32],
    width: usize,
    height: usize,
    kernel: &[f32],
    dilation: usize,
    out: &mut [f32],
) {
    check(src, width, height, kernel, out);
    let d = dilation.max(1) as isize;
    let mut tmp = vec![0.0f32; width * height];
    h_rows(src, width, kernel, d, 0, &mut tmp);
    v_rows(&tmp, width, height, kernel, d, 0, out);
}

/// [`separable_serial`] with taps one pixel apart, handing each output row
/// to `row(y, values)` in order instead of writing a plane: it holds only
/// the kernel's rows of the horizontal pass (a prefiltered 24-megapixel
/// frame is two 96 MB planes otherwise). The values are
/// [`separable_serial`]'s, bit for bit (the same passes, row by row).
pub fn separable_rows(
    src: &[f32],
    width: usize,
    height: usize,
    kernel: &[f32],
    row: impl FnMut(usize, &[f32]),
) {
    separable_rows_in(src, width, height, kernel, 0..height, row)
}

/// [`separable_rows`] for the output rows `ys` only (each row's values
/// are the same as in the whole pass): bands of one large plane can be
/// filtered in parallel.
pub fn separable_rows_in(
    src: &[f32],
    width: usize,
    height: usize,
    kernel: &[f32],
    ys: std::ops::Range<usize>,
    row: impl FnMut(usize, &[f32]),
) {
    separable_rows_ring(src, width, height, kernel, ys, 1, row)
}

/// [`separable_rows_in`] keeping the last `keep` output rows: `row(y,
/// ring)` gets them all, row `y` at `ring[(y % keep) * width ..]`, so a
/// filter over several output rows (a Laplacian) reads them in place
/// instead of copying each row out.
pub fn separable_rows_ring(
    src: &[f32],
    width: usize,
    height: usize,
    kernel: &[f32],
    ys: std::ops::Range<usize>,
    keep: usize,
    mut row: impl FnMut(usize, &[f32]),
) {
    assert_eq!(src.len(), width * height);
    assert!(kernel.len() % 2 == 1, "kernel length must be odd");
    let ys = ys.start..ys.end.min(height);
    if width == 0 || ys.is_empty() {
        return;
    }
    let r = kernel.len() / 2;
    // Ring of horizontally filtered rows: input row y sits at y % len.
    let len = kernel.len().min(height);
    let mut ring = vec![0.0f32; len * width];
    let mut next = ys.start.saturating_sub(r); // the next input row to filter
    let keep = keep.max(1);
    let mut out = vec![0.0f32; keep * width];
    for y in ys {
        let last = (y + r).min(height - 1);
        while next <= last {
            let slot = next % len;
            h_rows(
                src,
                width,
                kernel,
                1,
                next,
                &mut ring[slot * width..(slot + 1) * width],
            );
            next += 1;
        }
        let rows: Vec<&[f32]> = (0..kernel.len())
            .map(|k| {
                let sy = (y + k).saturating_sub(r).min(height - 1);
                &ring[(sy % len) * width..(sy % len + 1) * width]
            })
            .collect();
        let slot = y % keep;
        combine_rows(kernel, &rows, &mut out[slot * width..(slot + 1) * width]);
        row(y, &out);
    }
}

/// `out = Σ_k kernel[k] · rows[k]`, summed per pixel in kernel order from
/// 0 (what [`v_rows`] computes for one output row).
fn combine_rows(kernel: &[f32], rows: &[&[f32]], out: &mut [f32]) {
    crate::simd::wide(
        #[inline(always)]
        || {
            fused!(combine_fused, kernel, rows, out);
            out.fill(0.0);
            for (kv, src) in kernel.iter().zip(rows) {
                for (o, v) in out.iter_mut().zip(src.iter()) {
                    *o += kv * v;
                }
            }
        },
    )
}

/// [`combine_rows`] for `K` rows (the pixel loop vectorises).
#[inline(always)]
fn combine_fused<const K: usize>(kernel: &[f32; K], rows: &[&[f32]], out: &mut [f32]) {
    let n = out.len();
    let rows: [&[f32]; K] = std::array::from_fn(|k| &rows[k][..n]);
    for (x, o) in out.iter_mut().enumerate() {
        let mut acc = 0.0f32;
        for k in 0..K {
            acc += kernel[k] * rows[k][x];
        }
        *o = acc;
    }
}

/// Gaussian blur of one plane.
pub fn gaussian_blur(
    ctx: &StageCtx,
    src: &[f32],
    width: usize,
    height: usize,
    sigma: f32,
) -> Result<Vec<f32>, StageError> {
    let mut out = vec![0.0; src.len()];
    separable(
        ctx,
        src,
        width,
        height,
        &gaussian_kernel(sigma),
        1,
        &mut out,
    )?;
    Ok(out)
}

/// Applies `f` to each channel plane of an interleaved image and re-interleaves.
pub fn per_channel(
    data: &[f32],
    channels: usize,
    mut f: impl FnMut(&[f32]) -> Result<Vec<f32>, StageError>,
) -> Result<Vec<f32>, StageError> {
    if channels == 1 {
        return f(data);
    }
    let mut out = vec![0.0; data.len()];
    for k in 0..channels {
        let plane: Vec<f32> = data.iter().skip(k).step_by(channels).copied().collect();
        let res = f(&plane)?;
        for (i, v) in res.into_iter().enumerate() {
            out[i * channels + k] = v;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::ThreadBackend;

    /// The per-pixel form of the horizontal pass (taps clamped at the edges).
    fn h_rows_per_pixel(src: &[f32], width: usize, kernel: &[f32], d: isize) -> Vec<f32> {
        let r = (kernel.len() / 2) as isize;
        let mut out = vec![0.0; src.len()];
        for (row, row_out) in src.chunks(width).zip(out.chunks_mut(width)) {
            for (x, o) in row_out.iter_mut().enumerate() {
                let mut acc = 0.0;
                for (k, kv) in kernel.iter().enumerate() {
                    let sx = (x as isize + (k as isize - r) * d).clamp(0, width as isize - 1);
                    acc += kv * row[sx as usize];
                }
                *o = acc;
            }
        }
        out
    }

    #[test]
    fn tap_by_tap_rows_equal_the_per_pixel_sums_bit_for_bit() {
        for (w, h) in [(37usize, 5usize), (3, 4), (1, 2)] {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 37 % 101) as f32).sin()).collect();
            // Fused lengths (5, 7, 9 taps one apart) and the general loop
            // (15 taps, and dilated taps).
            for (kernel, d) in [
                (gaussian_kernel(1.3), 1),
                (gaussian_kernel(1.0), 1),
                (B3_SPLINE.to_vec(), 1),
                (gaussian_kernel(2.3), 1),
                (gaussian_kernel(2.0), 4),
                (vec![0.25, 0.5, 0.25], 16),
            ] {
                let mut out = vec![0.0; w * h];
                h_rows(&src, w, &kernel, d, 0, &mut out);
                assert_eq!(out, h_rows_per_pixel(&src, w, &kernel, d), "{w}×{h} d={d}");
                // The vertical pass against the same sums down the columns.
                let transposed: Vec<f32> = (0..w * h).map(|i| src[(i % h) * w + i / h]).collect();
                let mut down = vec![0.0; w * h];
                v_rows(&transposed, h, w, &kernel, d, 0, &mut down);
                let want = h_rows_per_pixel(&src, w, &kernel, d);
                for y in 0..w {
                    for x in 0..h {
                        assert_eq!(
                            down[y * h + x],
                            want[x * w + y],
                            "v {w}×{h} d={d} ({x},{y})"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn streamed_rows_equal_the_whole_plane_bit_for_bit() {
        for (w, h) in [(37usize, 23usize), (5, 3), (9, 1), (1, 6)] {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 53 % 97) as f32).cos()).collect();
            for kernel in [gaussian_kernel(1.0), gaussian_kernel(2.3), vec![1.0]] {
                let mut want = vec![0.0; w * h];
                separable_serial(&src, w, h, &kernel, 1, &mut want);
                let mut got = vec![f32::NAN; w * h];
                let mut order = Vec::new();
                separable_rows(&src, w, h, &kernel, |y, row| {
                    order.push(y);
                    got[y * w..(y + 1) * w].copy_from_slice(row);
                });
                assert_eq!(order, (0..h).collect::<Vec<_>>());
                assert_eq!(got, want, "{w}×{h}, {} taps", kernel.len());
                // Bands of rows, each on its own: the same rows.
                for ys in [0..h.min(2), h / 3..h, h - 1..h, h / 2..h / 2 + 1] {
                    let mut band = Vec::new();
                    separable_rows_in(&src, w, h, &kernel, ys.clone(), |y, row| {
                        band.push((y, row.to_vec()));
                    });
                    assert_eq!(band.len(), ys.len());
                    for (y, row) in band {
                        assert_eq!(row, want[y * w..(y + 1) * w], "{w}×{h} row {y} of {ys:?}");
                    }
                }
            }
        }
    }

    /// Obviously-right 2-D reference: sum over all taps with clamped coordinates.
    fn reference(src: &[f32], w: usize, h: usize, k: &[f32], d: usize) -> Vec<f32> {
        let r = (k.len() / 2) as isize;
        let d = d as isize;
        let mut out = vec![0.0; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut acc = 0.0;
                for (j, kj) in k.iter().enumerate() {
                    for (i, ki) in k.iter().enumerate() {
                        let sx = (x + (i as isize - r) * d).clamp(0, w as isize - 1) as usize;
                        let sy = (y + (j as isize - r) * d).clamp(0, h as isize - 1) as usize;
                        acc += kj * ki * src[sy * w + sx];
                    }
                }
                out[y as usize * w + x as usize] = acc;
            }
        }
        out
    }

    #[test]
    fn matches_direct_2d_convolution() {
        let (w, h) = (37, 23);
        let src: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919) % 101) as f32 / 100.0)
            .collect();
        let be = ThreadBackend::new(3);
        for (k, d) in [
            (gaussian_kernel(1.5), 1),
            (B3_SPLINE.to_vec(), 4),
            (gaussian_kernel(0.7), 2),
        ] {
            let mut out = vec![0.0; w * h];
            be.with_ctx("t", |ctx| separable(ctx, &src, w, h, &k, d, &mut out))
                .unwrap();
            let r = reference(&src, w, h, &k, d);
            let err = out
                .iter()
                .zip(&r)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-5, "max error {err}");
        }
    }

    #[test]
    fn kernel_is_normalised() {
        let k = gaussian_kernel(2.0);
        assert_eq!(k.len(), 13);
        assert!((k.iter().sum::<f32>() - 1.0).abs() < 1e-6);
    }
}
