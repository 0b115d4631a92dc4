//! The residual shift of a patch against its reference from the reference's
//! gradients (a Lucas–Kanade step), for the measurement passes after the
//! first: there the frame has been resampled under the field measured so
//! far and what is left is a fraction of a pixel, which one linear fit
//! measures at a few operations per pixel, where a phase correlation costs
//! two FFTs of the patch and a whitened cross-power spectrum.
//!
//! The fit is `patch ≈ c + a · ref + bx · ∂ref/∂x + by · ∂ref/∂y` under a
//! smooth window, so that a change of brightness or contrast (seeing blurs
//! some frames more) does not read as a shift; the shift is `-(bx, by) / a`,
//! in the phase correlator's sign convention (`patch(x) = ref(x - shift)`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jupiter_kit::stats::dot;

/// A reference patch prepared for [`Gradient::shift`]: the inverse of the
/// fit's normal matrix. The windowed basis images (`w`, `w·ref`,
/// `w·∂x ref`, `w·∂y ref`) are formed again from the reference patch at
/// each call rather than kept: four images per point were most of the
/// aligner's memory on large frames (thousands of points).
pub struct Gradient {
    /// The window `w` (`s²`, 0 on the border), shared by every point of
    /// the same size.
    taper: Arc<[f32]>,
    inverse: [[f64; 4]; 4],
}

/// Residuals larger than this (px) are outside the linear fit's range: the
/// caller falls back to a correlation.
pub const MAX_SHIFT: f32 = 0.75;

/// The separable sin² window of an `s × s` patch, 0 on its border, made
/// once per size.
fn taper(s: usize) -> Arc<[f32]> {
    static CACHE: OnceLock<Mutex<HashMap<usize, Arc<[f32]>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry(s)
        .or_insert_with(|| {
            let t = taper_line(s);
            let mut w = vec![0.0f32; s * s];
            for y in 1..s - 1 {
                for x in 1..s - 1 {
                    w[y * s + x] = t[x] * t[y];
                }
            }
            w.into()
        })
        .clone()
}

/// The 1-D factor of [`taper`]: `sin²(π (u + ½) / s)` (the window of
/// point `(x, y)` is `t[x] · t[y]` inside the border, 0 on it); the device
/// path forms the window from it.
pub fn taper_line(s: usize) -> Vec<f32> {
    (0..s)
        .map(|u| {
            (std::f32::consts::PI * (u as f32 + 0.5) / s as f32)
                .sin()
                .powi(2)
        })
        .collect()
}

/// An `s × s` patch read in place: row `y` is `data[y · stride ..][.. s]`
/// (a copied patch has `stride = s`; one inside its frame is read there,
/// with the frame's width as stride, instead of being copied out first).
#[derive(Clone, Copy)]
pub struct PatchRef<'a> {
    pub data: &'a [f32],
    pub stride: usize,
}

impl<'a> PatchRef<'a> {
    /// A patch stored alone (`s × s` values).
    pub fn packed(data: &'a [f32], s: usize) -> PatchRef<'a> {
        PatchRef { data, stride: s }
    }

    /// The `s × s` values, contiguous: these where already packed, else
    /// copied into `buf`.
    pub fn packed_into<'b>(&self, s: usize, buf: &'b mut [f32]) -> &'b [f32]
    where
        'a: 'b,
    {
        if self.stride == s {
            return &self.data[..s * s];
        }
        for (y, out) in buf[..s * s].chunks_exact_mut(s).enumerate() {
            out.copy_from_slice(self.row(y, s));
        }
        &buf[..s * s]
    }

    #[inline(always)]
    fn row(&self, y: usize, s: usize) -> &'a [f32] {
        &self.data[y * self.stride..y * self.stride + s]
    }
}

/// The basis values of row `y` (interior columns; 0 at both ends):
/// `w·ref`, `w·∂x ref` and `w·∂y ref` with central differences.
#[inline(always)]
fn basis_row(w: &[f32], reference: PatchRef, s: usize, y: usize, out: &mut [Vec<f32>; 3]) {
    let (row, up, dn) = (
        reference.row(y, s),
        reference.row(y - 1, s),
        reference.row(y + 1, s),
    );
    let wr = &w[y * s..(y + 1) * s];
    for x in 1..s - 1 {
        out[0][x] = wr[x] * row[x];
        out[1][x] = wr[x] * 0.5 * (row[x + 1] - row[x - 1]);
        out[2][x] = wr[x] * 0.5 * (dn[x] - up[x]);
    }
}

impl Gradient {
    /// Prepares the reference patch (`s × s`); `None` when it has too
    /// little structure for the fit (a flat or one-dimensional patch).
    pub fn new(reference: &[f32], s: usize) -> Option<Gradient> {
        jupiter_kit::simd::wide(
            #[inline(always)]
            || {
                if s < 8 {
                    return None;
                }
                let taper = taper(s);
                // Normal matrix Σ w·b_j·b_k with b = (1, ref, ∂x, ∂y).
                let mut m = [[0.0f64; 4]; 4];
                let mut rows: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0f32; s]);
                for y in 1..s - 1 {
                    basis_row(&taper, PatchRef::packed(reference, s), s, y, &mut rows);
                    for x in 1..s - 1 {
                        let w = taper[y * s + x] as f64;
                        if w <= 0.0 {
                            continue;
                        }
                        let b = [
                            1.0,
                            rows[0][x] as f64 / w,
                            rows[1][x] as f64 / w,
                            rows[2][x] as f64 / w,
                        ];
                        for j in 0..4 {
                            for k in 0..4 {
                                m[j][k] += w * b[j] * b[k];
                            }
                        }
                    }
                }
                let inverse = invert(m)?;
                Some(Gradient { taper, inverse })
            },
        )
    }

    /// The shift of `patch` against `reference` (the patch this was
    /// prepared on; `patch(x) = ref(x - shift)`), `None` when the fit finds
    /// no contrast to measure against.
    pub fn shift(&self, reference: &[f32], patch: &[f32]) -> Option<(f32, f32)> {
        let s = self.side();
        self.shift_in(PatchRef::packed(reference, s), PatchRef::packed(patch, s))
    }

    /// The patch side this was prepared for.
    fn side(&self) -> usize {
        (self.taper.len() as f64).sqrt() as usize
    }

    /// [`Self::shift`] of patches read in place: the same sums, bit for bit.
    pub fn shift_in(&self, reference: PatchRef, patch: PatchRef) -> Option<(f32, f32)> {
        jupiter_kit::simd::wide(
            #[inline(always)]
            || {
                let s = self.side();
                let mut v = [0.0f64; 4];
                let mut rows: [Vec<f32>; 3] = std::array::from_fn(|_| vec![0.0f32; s]);
                for y in 1..s - 1 {
                    basis_row(&self.taper, reference, s, y, &mut rows);
                    let p = patch.row(y, s);
                    v[0] += dot(&self.taper[y * s..(y + 1) * s], p) as f64;
                    for (j, r) in rows.iter().enumerate() {
                        v[j + 1] += dot(r, p) as f64;
                    }
                }
                self.solve(v)
            },
        )
    }

    /// The shift from the fit's sums `v` (`Σ w·p`, `Σ w·ref·p`,
    /// `Σ w·∂x ref·p`, `Σ w·∂y ref·p` over the patch's interior), as
    /// [`Gradient::shift`] forms them; the device path computes the sums.
    pub fn solve(&self, v: [f64; 4]) -> Option<(f32, f32)> {
        let coef: Vec<f64> = self
            .inverse
            .iter()
            .map(|row| row.iter().zip(&v).map(|(a, b)| a * b).sum())
            .collect();
        let a = coef[1];
        if !(a > 0.1) {
            return None;
        }
        // patch ≈ a·(ref + ∇ref·(b/a)) = a·ref(x + b/a): shift = -b/a.
        Some(((-coef[2] / a) as f32, (-coef[3] / a) as f32))
    }
}

/// The inverse of a symmetric 4×4 matrix by Gauss–Jordan elimination with
/// partial pivoting; `None` when it is (numerically) singular.
fn invert(mut m: [[f64; 4]; 4]) -> Option<[[f64; 4]; 4]> {
    let mut inv = [[0.0f64; 4]; 4];
    for (i, row) in inv.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    let scale = (0..4).map(|i| m[i][i].abs()).fold(0.0, f64::max);
    for col in 0..4 {
        let p = (col..4).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[p][col].abs() <= 1e-9 * scale.max(1e-30) {
            return None;
        }
        m.swap(col, p);
        inv.swap(col, p);
        let d = m[col][col];
        for k in 0..4 {
            m[col][k] /= d;
            inv[col][k] /= d;
        }
        for r in 0..4 {
            if r != col {
                let f = m[r][col];
                for k in 0..4 {
                    m[r][k] -= f * m[col][k];
                    inv[r][k] -= f * inv[col][k];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_kit::fft::PhaseCorrelator;

    /// A smooth texture (a few blobs and ripples) at real coordinates.
    fn scene(x: f32, y: f32) -> f32 {
        0.5 + 0.2 * (x * 0.31).sin() * (y * 0.23).cos()
            + 0.15 * (-((x - 20.0).powi(2) + (y - 14.0).powi(2)) / 30.0).exp()
            + 0.1 * ((x + 2.0 * y) * 0.17).sin()
    }

    fn patch(s: usize, dx: f32, dy: f32, gain: f32, offset: f32) -> Vec<f32> {
        (0..s * s)
            .map(|i| offset + gain * scene((i % s) as f32 - dx, (i / s) as f32 - dy))
            .collect()
    }

    #[test]
    fn recovers_known_subpixel_shifts_like_the_correlator() {
        let s = 40;
        let reference = patch(s, 0.0, 0.0, 1.0, 0.0);
        let g = Gradient::new(&reference, s).unwrap();
        let pc = PhaseCorrelator::new(&reference, s, s);
        for (dx, dy) in [(0.3, -0.2), (-0.5, 0.45), (0.1, 0.6), (0.0, 0.0)] {
            let p = patch(s, dx, dy, 1.0, 0.0);
            let (gx, gy) = g.shift(&reference, &p).unwrap();
            assert!(
                (gx - dx).abs() < 0.03 && (gy - dy).abs() < 0.03,
                "gradient ({gx}, {gy}) for ({dx}, {dy})"
            );
            // The reference implementation: the phase correlator's estimate
            // of the same shift, in the same sign convention.
            let m = pc.shift_of(&p);
            assert!(
                (gx - m.dx).abs() < 0.1 && (gy - m.dy).abs() < 0.1,
                "gradient ({gx}, {gy}) vs correlation ({}, {})",
                m.dx,
                m.dy
            );
        }
    }

    /// Patches read in place in wider planes fit what their packed copies
    /// fit, bit for bit.
    #[test]
    fn patches_read_in_place_fit_as_their_copies() {
        let (s, w, at) = (24, 61, 3 * 61 + 5);
        let embed = |p: &[f32]| {
            let mut plane = vec![7.0f32; w * (s + 6)];
            for y in 0..s {
                plane[at + y * w..at + y * w + s].copy_from_slice(&p[y * s..(y + 1) * s]);
            }
            plane
        };
        let reference = patch(s, 0.0, 0.0, 1.0, 0.0);
        let moved = patch(s, 0.35, -0.2, 0.9, 0.05);
        let g = Gradient::new(&reference, s).unwrap();
        let (rp, mp) = (embed(&reference), embed(&moved));
        fn view(plane: &[f32], at: usize, w: usize) -> PatchRef<'_> {
            PatchRef {
                data: &plane[at..],
                stride: w,
            }
        }
        let packed = g.shift(&reference, &moved).unwrap();
        let in_place = g.shift_in(view(&rp, at, w), view(&mp, at, w)).unwrap();
        assert_eq!(
            (packed.0.to_bits(), packed.1.to_bits()),
            (in_place.0.to_bits(), in_place.1.to_bits())
        );
        let mut buf = vec![0.0; s * s];
        assert_eq!(view(&mp, at, w).packed_into(s, &mut buf), &moved[..]);
    }

    #[test]
    fn brightness_and_contrast_do_not_read_as_a_shift() {
        let s = 32;
        let reference = patch(s, 0.0, 0.0, 1.0, 0.0);
        let g = Gradient::new(&reference, s).unwrap();
        let (gx, gy) = g
            .shift(&reference, &patch(s, 0.25, -0.15, 0.6, 0.2))
            .unwrap();
        assert!(
            (gx - 0.25).abs() < 0.03 && (gy + 0.15).abs() < 0.03,
            "({gx}, {gy})"
        );
    }

    #[test]
    fn flat_patches_are_refused() {
        assert!(Gradient::new(&vec![0.4; 32 * 32], 32).is_none());
        // Structure along one axis only: the other shift is not measurable.
        let stripes: Vec<f32> = (0..32 * 32)
            .map(|i| ((i % 32) as f32 * 0.4).sin())
            .collect();
        assert!(Gradient::new(&stripes, 32).is_none());
    }
}
