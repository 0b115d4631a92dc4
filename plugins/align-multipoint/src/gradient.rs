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

/// A reference patch prepared for [`Gradient::shift`]: the four windowed
/// basis images and the inverse of their normal matrix.
pub struct Gradient {
    /// `w`, `w·ref`, `w·∂x ref`, `w·∂y ref` (each `s²`), `ref` mean-free.
    basis: [Vec<f32>; 4],
    inverse: [[f64; 4]; 4],
}

/// Residuals larger than this (px) are outside the linear fit's range: the
/// caller falls back to a correlation.
pub const MAX_SHIFT: f32 = 0.75;

impl Gradient {
    /// Prepares the reference patch (`s × s`); `None` when it has too
    /// little structure for the fit (a flat or one-dimensional patch).
    pub fn new(reference: &[f32], s: usize) -> Option<Gradient> {
        if s < 8 {
            return None;
        }
        let taper: Vec<f32> = (0..s)
            .map(|u| {
                (std::f32::consts::PI * (u as f32 + 0.5) / s as f32)
                    .sin()
                    .powi(2)
            })
            .collect();
        let mut basis: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0.0f32; s * s]);
        for y in 1..s - 1 {
            for x in 1..s - 1 {
                let i = y * s + x;
                let w = taper[x] * taper[y];
                basis[0][i] = w;
                basis[1][i] = w * reference[i];
                basis[2][i] = w * 0.5 * (reference[i + 1] - reference[i - 1]);
                basis[3][i] = w * 0.5 * (reference[i + s] - reference[i - s]);
            }
        }
        // Normal matrix Σ w·b_j·b_k with b = (1, ref, ∂x, ∂y): from the
        // windowed basis divided by w once.
        let mut m = [[0.0f64; 4]; 4];
        for i in 0..s * s {
            let w = basis[0][i] as f64;
            if w <= 0.0 {
                continue;
            }
            let b = [
                1.0,
                basis[1][i] as f64 / w,
                basis[2][i] as f64 / w,
                basis[3][i] as f64 / w,
            ];
            for j in 0..4 {
                for k in 0..4 {
                    m[j][k] += w * b[j] * b[k];
                }
            }
        }
        let inverse = invert(m)?;
        Some(Gradient { basis, inverse })
    }

    /// The shift of `patch` against the reference (`patch(x) = ref(x -
    /// shift)`), `None` when the fit finds no contrast to measure against.
    pub fn shift(&self, patch: &[f32]) -> Option<(f32, f32)> {
        let mut v = [0.0f64; 4];
        for (j, b) in self.basis.iter().enumerate() {
            v[j] = jupiter_kit::stats::dot(b, patch) as f64;
        }
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
            let (gx, gy) = g.shift(&p).unwrap();
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

    #[test]
    fn brightness_and_contrast_do_not_read_as_a_shift() {
        let s = 32;
        let g = Gradient::new(&patch(s, 0.0, 0.0, 1.0, 0.0), s).unwrap();
        let (gx, gy) = g.shift(&patch(s, 0.25, -0.15, 0.6, 0.2)).unwrap();
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
