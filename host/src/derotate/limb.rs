//! The planet's disc in an image: found on dark sky, its limb traced along
//! rays from the centroid and fitted with an ellipse (an oblate planet's
//! outline), robust to what is not limb (Saturn's rings, moons).

use anyhow::{bail, Result};

/// A fitted disc (pixels): centre, semi-axes, and the direction of the
/// short axis (the pole's line, as a position angle in `[0, 180)`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Disc {
    pub cx: f64,
    pub cy: f64,
    /// Equatorial (long) semi-axis.
    pub a: f64,
    /// Polar (short) semi-axis.
    pub b: f64,
    pub minor_deg: f64,
    /// RMS distance of the kept limb points from the ellipse (px).
    pub rms: f64,
}

/// A grey image, row-major.
pub struct Grey<'a> {
    pub data: &'a [f32],
    pub width: usize,
    pub height: usize,
}

impl Grey<'_> {
    pub fn at(&self, x: usize, y: usize) -> f32 {
        self.data[y * self.width + x]
    }
    /// Bilinear sample; `None` outside.
    pub fn sample(&self, x: f64, y: f64) -> Option<f64> {
        if !(x >= 0.0 && y >= 0.0) {
            return None;
        }
        let (x0, y0) = (x.floor() as usize, y.floor() as usize);
        if x0 + 1 >= self.width || y0 + 1 >= self.height {
            return None;
        }
        let (fx, fy) = (x - x0 as f64, y - y0 as f64);
        let v = |xx, yy| self.at(xx, yy) as f64;
        let top = v(x0, y0) * (1.0 - fx) + v(x0 + 1, y0) * fx;
        let bot = v(x0, y0 + 1) * (1.0 - fx) + v(x0 + 1, y0 + 1) * fx;
        Some(top * (1.0 - fy) + bot * fy)
    }
}

/// The sky level and the disc's bright level of an image: the median of
/// its border and its 99th percentile.
pub fn levels(img: &Grey) -> (f64, f64) {
    let (w, h) = (img.width, img.height);
    let mut border: Vec<f64> = (0..w)
        .flat_map(|x| [img.at(x, 0), img.at(x, h - 1)])
        .chain((0..h).flat_map(|y| [img.at(0, y), img.at(w - 1, y)]))
        .map(f64::from)
        .collect();
    let mut all: Vec<f64> = img.data.iter().step_by(7).map(|&v| v as f64).collect();
    let sky = quantile(&mut border, 0.5);
    let peak = quantile(&mut all, 0.99);
    (sky, peak)
}

/// The intensity-weighted centroid of the pixels well above the sky, and
/// the radius of a disc of their area; `None` when nothing stands out.
pub fn centroid(img: &Grey, sky: f64, peak: f64) -> Option<(f64, f64, f64)> {
    let thr = sky + 0.25 * (peak - sky);
    let (mut sw, mut sx, mut sy, mut n) = (0.0, 0.0, 0.0, 0usize);
    for y in 0..img.height {
        for x in 0..img.width {
            let v = img.at(x, y) as f64 - thr;
            if v > 0.0 {
                sw += v;
                sx += v * x as f64;
                sy += v * y as f64;
                n += 1;
            }
        }
    }
    (sw > 0.0).then(|| (sx / sw, sy / sw, (n as f64 / std::f64::consts::PI).sqrt()))
}

/// Rays cast from the centroid to find the limb.
const RAYS: usize = 360;

/// Finds the planet's disc in `img` (a mean of centred frames is best: the
/// seeing averages out), or says why there is none. With the body's
/// `flattening` known, the outline is fitted as an ellipse of that shape
/// (only its centre, size and orientation free): with a ring hiding the limb
/// near the equator, a free ellipse has no points to fix its long axis.
pub fn fit_disc(img: &Grey, flattening: Option<f64>) -> Result<Disc> {
    let (sky, peak) = levels(img);
    let contrast = peak - sky;
    let bright = |v: f32| v as f64 > sky + 0.5 * contrast;
    let (w, h) = (img.width, img.height);
    let edge_bright = (0..w)
        .flat_map(|x| [img.at(x, 0), img.at(x, h - 1)])
        .chain((0..h).flat_map(|y| [img.at(0, y), img.at(w - 1, y)]))
        .filter(|&v| bright(v))
        .count();
    if !(contrast > 0.02) || edge_bright * 50 > 2 * (w + h) {
        bail!("no planetary disc found: the image is not a bright disc on dark sky (a surface filling the frame, or a disc cut by the frame's edge)");
    }
    let Some((cx, cy, r0)) = centroid(img, sky, peak) else {
        bail!("no planetary disc found: nothing stands out from the sky");
    };
    if r0 < 8.0 {
        bail!("no planetary disc found: the brightest object is only {r0:.1} px across");
    }
    let points = limb_points(img, (cx, cy), r0, (sky, contrast));
    if points.len() < RAYS / 2 {
        bail!(
            "no planetary disc found: a limb was traced on {} of {RAYS} rays only",
            points.len()
        );
    }
    let mut disc = robust_ellipse(&points, (cx, cy))?;
    if let Some(f) = flattening {
        disc = oblate_fit(&points, &disc, f)?;
    }
    if disc.cx - disc.a < 0.0
        || disc.cy - disc.a < 0.0
        || disc.cx + disc.a > w as f64
        || disc.cy + disc.a > h as f64
    {
        bail!("no planetary disc found: the disc fitted to the limb does not fit in the frame");
    }
    Ok(disc)
}

/// Along each ray from `c`, the limb: the steepest fall of brightness
/// between 0.6 and 1.5 times the area radius `r0`, refined to a sub-pixel
/// position; rays whose fall is weak, or not followed by dark sky to the
/// end of the ray (an edge of a ring, a moon beyond the limb), are dropped.
fn limb_points(img: &Grey, c: (f64, f64), r0: f64, (sky, contrast): (f64, f64)) -> Vec<(f64, f64)> {
    let min_drop = 0.1 * contrast;
    const STEP: f64 = 0.25;
    let (lo, hi) = (0.6 * r0, 1.5 * r0);
    let n = ((hi - lo) / STEP) as usize;
    let mut out = Vec::with_capacity(RAYS);
    for k in 0..RAYS {
        let (s, co) = (k as f64 / RAYS as f64 * std::f64::consts::TAU).sin_cos();
        let profile: Vec<f64> = (0..=n)
            .map_while(|i| {
                img.sample(
                    c.0 + (lo + i as f64 * STEP) * co,
                    c.1 + (lo + i as f64 * STEP) * s,
                )
            })
            .collect();
        // The derivative over ±1 px, so that noise does not pick the edge.
        let d = 4;
        let best = (d..profile.len().saturating_sub(d))
            .map(|i| (i, profile[i - d] - profile[i + d]))
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let Some((i, drop)) = best else { continue };
        // A limb falls to the sky and the sky stays dark beyond it (a
        // ring's edge falls onto the globe, or into a gap with more ring
        // beyond).
        let dark_beyond = profile[(i + 2 * d).min(profile.len())..]
            .iter()
            .all(|&v| v < sky + 0.2 * contrast);
        if drop < min_drop || !dark_beyond {
            continue;
        }
        let g = |j: usize| profile[j - d] - profile[j + d];
        let frac = if i > d && i + 1 + d < profile.len() {
            let (gm, g0, gp) = (g(i - 1), g(i), g(i + 1));
            let den = gm - 2.0 * g0 + gp;
            if den < 0.0 {
                (0.5 * (gm - gp) / den).clamp(-1.0, 1.0)
            } else {
                0.0
            }
        } else {
            0.0
        };
        let r = lo + (i as f64 + frac) * STEP;
        out.push((c.0 + r * co, c.1 + r * s));
    }
    out
}

/// An ellipse fitted to `points`, refitted twice without the points far
/// from it (rings, moons, a bad ray).
fn robust_ellipse(points: &[(f64, f64)], c: (f64, f64)) -> Result<Disc> {
    // First only the points near the median distance from the centroid
    // (a planet is nearly round): a least-squares fit through every point
    // would be pulled far off by a fifth of them on a ring.
    let dist = |p: &(f64, f64)| (p.0 - c.0).hypot(p.1 - c.1);
    let mut r: Vec<f64> = points.iter().map(dist).collect();
    let median = quantile(&mut r, 0.5);
    let mut kept: Vec<(f64, f64)> = points
        .iter()
        .filter(|p| (dist(p) - median).abs() < 0.12 * median)
        .copied()
        .collect();
    if kept.len() < 20 {
        bail!("no planetary disc found: the limb is not an ellipse");
    }
    let mut disc = conic_fit(&kept, c)?;
    for _ in 0..3 {
        let res: Vec<f64> = points.iter().map(|&p| distance(&disc, p)).collect();
        let mut sorted = res.clone();
        let mad = quantile(&mut sorted, 0.5).max(0.05);
        let limit = (4.0 * 1.4826 * mad).max(0.5);
        kept = points
            .iter()
            .zip(&res)
            .filter(|(_, &r)| r <= limit)
            .map(|(p, _)| *p)
            .collect();
        if kept.len() < 20 {
            bail!("no planetary disc found: the limb is not an ellipse");
        }
        disc = conic_fit(&kept, c)?;
    }
    let rms = (kept
        .iter()
        .map(|&p| distance(&disc, p).powi(2))
        .sum::<f64>()
        / kept.len() as f64)
        .sqrt();
    Ok(Disc { rms, ..disc })
}

/// The disc as an ellipse of flattening `f` whose short axis lies along
/// `first`'s: in coordinates stretched by `1 / (1 − f)` along that axis the
/// limb is a circle, fitted by least squares, twice more without the
/// points far from it.
fn oblate_fit(points: &[(f64, f64)], first: &Disc, f: f64) -> Result<Disc> {
    let (s, c) = first.minor_deg.to_radians().sin_cos();
    let (pole, major) = ((-s, -c), (c, -s));
    let k = 1.0 - f;
    let to_uv = |p: &(f64, f64)| {
        let (x, y) = (p.0 - first.cx, p.1 - first.cy);
        (x * major.0 + y * major.1, (x * pole.0 + y * pole.1) / k)
    };
    let uv: Vec<(f64, f64)> = points.iter().map(to_uv).collect();
    let mut circle = (0.0, 0.0, first.a);
    let mut rms = 0.0;
    let off = |c: (f64, f64, f64), q: &(f64, f64)| ((q.0 - c.0).hypot(q.1 - c.1) - c.2).abs();
    for _ in 0..4 {
        let mut res: Vec<f64> = uv.iter().map(|q| off(circle, q)).collect();
        let limit = (3.0 * 1.4826 * quantile(&mut res, 0.5)).max(0.75);
        let kept: Vec<(f64, f64)> = uv
            .iter()
            .filter(|q| off(circle, q) <= limit)
            .copied()
            .collect();
        if kept.len() < 20 {
            bail!("no planetary disc found: the limb is not an ellipse");
        }
        circle = circle_fit(&kept)?;
        rms = (kept.iter().map(|q| off(circle, q).powi(2)).sum::<f64>() / kept.len() as f64).sqrt();
    }
    let (u0, v0, r) = circle;
    Ok(Disc {
        cx: first.cx + u0 * major.0 + v0 * k * pole.0,
        cy: first.cy + u0 * major.1 + v0 * k * pole.1,
        a: r,
        b: r * k,
        minor_deg: first.minor_deg,
        rms,
    })
}

/// Least-squares circle `x² + y² + D x + E y + F = 0`: centre and radius.
fn circle_fit(pts: &[(f64, f64)]) -> Result<(f64, f64, f64)> {
    let rows = pts.iter().map(|&(x, y)| ([x, y, 1.0], -(x * x + y * y)));
    let Some([d, e, f]) = least_squares(rows) else {
        bail!("no planetary disc found: the limb points do not determine a circle");
    };
    let (u0, v0) = (-d / 2.0, -e / 2.0);
    let r2 = u0 * u0 + v0 * v0 - f;
    if !(r2 > 0.0) {
        bail!("no planetary disc found: the limb is not a circle");
    }
    Ok((u0, v0, r2.sqrt()))
}

/// The `q` quantile of `v` (nearest rank; `v` is reordered).
fn quantile(v: &mut [f64], q: f64) -> f64 {
    let k = ((v.len() - 1) as f64 * q).round() as usize;
    v.select_nth_unstable_by(k, f64::total_cmp);
    v[k]
}

/// Distance of `p` from the ellipse, along the ray from its centre
/// (close to the true distance for a near-circular outline).
fn distance(d: &Disc, p: (f64, f64)) -> f64 {
    let (x, y) = (p.0 - d.cx, p.1 - d.cy);
    let r = x.hypot(y);
    if r == 0.0 {
        return d.b;
    }
    // Components along the minor axis (pole) and the major axis.
    let (s, co) = d.minor_deg.to_radians().sin_cos();
    let pole = (-s, -co);
    let along = (x * pole.0 + y * pole.1) / r;
    let across = (1.0 - along * along).max(0.0).sqrt();
    let re = 1.0 / ((across / d.a).powi(2) + (along / d.b).powi(2)).sqrt();
    (r - re).abs()
}

/// Least-squares conic `A x² + B xy + C y² + D x + E y = 1` through the
/// points (relative to `c`, near the centre, so the constant term is not
/// zero), converted to centre, semi-axes and orientation.
fn conic_fit(points: &[(f64, f64)], c: (f64, f64)) -> Result<Disc> {
    let rows = points.iter().map(|&(px, py)| {
        let (x, y) = (px - c.0, py - c.1);
        ([x * x, x * y, y * y, x, y], 1.0)
    });
    let Some([a, b, cc, d, e]) = least_squares(rows) else {
        bail!("no planetary disc found: the limb points do not determine an ellipse");
    };
    // Centre: gradient of the conic vanishes.
    let det = 4.0 * a * cc - b * b;
    if !(det > 0.0) {
        bail!("no planetary disc found: the limb is not an ellipse");
    }
    let x0 = (b * e - 2.0 * cc * d) / det;
    let y0 = (b * d - 2.0 * a * e) / det;
    let k = 1.0 - (a * x0 * x0 + b * x0 * y0 + cc * y0 * y0 + d * x0 + e * y0);
    // Eigenvalues of [[a, b/2], [b/2, cc]]: the larger one is the short axis.
    let mean = 0.5 * (a + cc);
    let dev = (0.25 * (a - cc).powi(2) + 0.25 * b * b).sqrt();
    let (l_big, l_small) = (mean + dev, mean - dev);
    if !(k > 0.0 && l_small > 0.0) {
        bail!("no planetary disc found: the limb is not an ellipse");
    }
    // Eigenvector of the larger eigenvalue (image x, y).
    let v = if b.abs() > 1e-15 {
        (b / 2.0, l_big - a)
    } else if a >= cc {
        (1.0, 0.0)
    } else {
        (0.0, 1.0)
    };
    let minor_deg = super::globe::angle_of(v).rem_euclid(180.0);
    Ok(Disc {
        cx: c.0 + x0,
        cy: c.1 + y0,
        a: (k / l_small).sqrt(),
        b: (k / l_big).sqrt(),
        minor_deg,
        rms: 0.0,
    })
}

/// Least squares `row · p ≈ rhs` over `rows` (the conic and the circle
/// fits): the normal equations, solved by Gaussian elimination with
/// partial pivoting; `None` when they are singular.
fn least_squares<const N: usize>(rows: impl Iterator<Item = ([f64; N], f64)>) -> Option<[f64; N]> {
    let (mut a, mut b) = ([[0.0f64; N]; N], [0.0f64; N]);
    for (row, rhs) in rows {
        for i in 0..N {
            for j in 0..N {
                a[i][j] += row[i] * row[j];
            }
            b[i] += row[i] * rhs;
        }
    }
    for col in 0..N {
        let piv = (col..N).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        b.swap(col, piv);
        for r in 0..N {
            if r != col {
                let f = a[r][col] / a[col][col];
                for k in col..N {
                    a[r][k] -= f * a[col][k];
                }
                b[r] -= f * b[col];
            }
        }
    }
    Some(std::array::from_fn(|i| b[i] / a[i][i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derotate::globe::angle_diff;

    fn fit_disc_test(g: &Grey) -> Result<Disc> {
        fit_disc(g, None)
    }

    /// A limb-darkened oblate disc on dark sky, anti-aliased.
    fn disc_image(w: usize, h: usize, c: (f64, f64), a: f64, b: f64, pole_deg: f64) -> Vec<f32> {
        let (s, co) = pole_deg.to_radians().sin_cos();
        let (p, e) = ((-s, -co), (co, -s));
        let mut out = vec![0.02f32; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut acc = 0.0;
                for sy in 0..4 {
                    for sx in 0..4 {
                        let qx = x as f64 + (sx as f64 + 0.5) / 4.0 - 0.5 - c.0;
                        let qy = y as f64 + (sy as f64 + 0.5) / 4.0 - 0.5 - c.1;
                        let u = (qx * e.0 + qy * e.1) / a;
                        let v = (qx * p.0 + qy * p.1) / b;
                        let r2 = u * u + v * v;
                        if r2 < 1.0 {
                            acc += 0.8 * (0.3 + 0.7 * (1.0 - r2).sqrt().powf(0.6));
                        }
                    }
                }
                out[y * w + x] += (acc / 16.0) as f32;
            }
        }
        out
    }

    #[test]
    fn an_oblate_disc_is_fitted_to_a_tenth_of_a_pixel() {
        for pole in [0.0, 30.0, 125.0] {
            let img = disc_image(220, 200, (104.3, 97.8), 80.0, 74.8, pole);
            let d = fit_disc_test(&Grey {
                data: &img,
                width: 220,
                height: 200,
            })
            .unwrap();
            assert!(
                (d.cx - 104.3).abs() < 0.1 && (d.cy - 97.8).abs() < 0.1,
                "{d:?}"
            );
            assert!(
                (d.a - 80.0).abs() < 0.3 && (d.b - 74.8).abs() < 0.3,
                "{d:?}"
            );
            assert!(
                angle_diff(d.minor_deg, pole.rem_euclid(180.0)) < 2.0
                    || angle_diff(d.minor_deg + 180.0, pole) < 2.0,
                "{d:?}"
            );
        }
    }

    #[test]
    fn a_moon_beside_the_disc_does_not_move_the_fit() {
        let (w, h) = (240, 200);
        let mut img = disc_image(w, h, (110.0, 100.0), 70.0, 65.5, 10.0);
        for y in 95..105 {
            for x in 190..200 {
                img[y * w + x] = 0.7;
            }
        }
        let d = fit_disc_test(&Grey {
            data: &img,
            width: w,
            height: h,
        })
        .unwrap();
        assert!(
            (d.cx - 110.0).abs() < 0.2 && (d.a - 70.0).abs() < 0.4,
            "{d:?}"
        );
    }

    /// Saturn seen 20° above its ring plane: rings 1.24–2.27 equatorial
    /// radii (with the Cassini division), in front of the globe below it
    /// and hidden behind it above.
    #[test]
    fn saturns_rings_do_not_spoil_the_fit() {
        let (w, h) = (400, 240);
        let c = (200.3, 120.6);
        let (a, b) = (70.0, 63.0);
        let mut img = disc_image(w, h, c, a, b, 0.0);
        let tilt = 20f64.to_radians().sin();
        for y in 0..h {
            for x in 0..w {
                let (dx, dy) = (x as f64 - c.0, y as f64 - c.1);
                // Distance in the ring plane, in equatorial radii.
                let r = (dx * dx + (dy / tilt).powi(2)).sqrt() / a;
                let ring = (1.24..2.27).contains(&r) && !(1.95..2.03).contains(&r);
                let on_globe = (dx / a).powi(2) + (dy / b).powi(2) < 1.0;
                // Behind the globe where the ring's far side (above) is.
                if ring && !(on_globe && dy < 0.0) {
                    img[y * w + x] = if r < 1.95 { 0.6 } else { 0.45 };
                }
            }
        }
        let d = fit_disc(
            &Grey {
                data: &img,
                width: w,
                height: h,
            },
            Some(0.1),
        )
        .unwrap();
        assert!(
            (d.cx - c.0).abs() < 0.3 && (d.cy - c.1).abs() < 0.3,
            "{d:?}"
        );
        assert!((d.a - a).abs() < 0.8 && (d.b - b).abs() < 0.8, "{d:?}");
    }

    #[test]
    fn a_surface_filling_the_frame_is_no_disc() {
        let (w, h) = (100, 80);
        let img: Vec<f32> = (0..w * h)
            .map(|i| 0.4 + 0.3 * ((i % 17) as f32 / 17.0))
            .collect();
        let e = fit_disc_test(&Grey {
            data: &img,
            width: w,
            height: h,
        })
        .unwrap_err();
        assert!(e.to_string().contains("no planetary disc"), "{e}");
        let cut = disc_image(w, h, (20.0, 40.0), 50.0, 47.0, 0.0);
        assert!(fit_disc_test(&Grey {
            data: &cut,
            width: w,
            height: h
        })
        .is_err());
    }
}
