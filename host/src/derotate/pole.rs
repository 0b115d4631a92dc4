//! The pole's position angle from the capture itself: the surface seen
//! early in the capture, turned by the rotation the frame times predict,
//! must match the surface seen late. The angle that matches best gives the
//! pole and the sense of rotation at once (the opposite angle turns the
//! surface the other way).

use rayon::prelude::*;

use super::globe::Globe;
use super::limb::Grey;

/// The fitted orientation and how clearly the capture decided it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoleFit {
    pub pole_deg: f64,
    /// Mismatch at the best angle over the mismatch at the opposite one
    /// (< 1; near 1 when the rotation was too small to see).
    pub ratio: f64,
}

/// Two images of the centred disc, `alpha` radians of rotation apart.
pub struct Pair<'a> {
    pub early: Grey<'a>,
    pub late: Grey<'a>,
    /// The disc centre in each (fitted to each one's limb: a centroid
    /// moves with the bright features as they turn).
    pub centres: [(f64, f64); 2],
    pub alpha: f64,
}

/// Fits the pole angle of `shape` (whose `pole_deg` is ignored) to the pair.
pub fn fit_pole(pair: &Pair, shape: Globe) -> PoleFit {
    let early = high_pass(&pair.early, shape.a);
    let late = high_pass(&pair.late, shape.a);
    let hp = Pair {
        early: Grey {
            data: &early,
            ..pair.early
        },
        late: Grey {
            data: &late,
            ..pair.late
        },
        centres: pair.centres,
        alpha: pair.alpha,
    };
    let samples = samples(shape.a, shape.b);
    let cost = |deg: f64| {
        mismatch(
            &hp,
            Globe {
                pole_deg: deg,
                ..shape
            },
            &samples,
        )
    };
    let coarse: Vec<(f64, f64)> = (0..180)
        .into_par_iter()
        .map(|k| {
            let deg = k as f64 * 2.0;
            (deg, cost(deg))
        })
        .collect();
    let (best, _) = coarse
        .iter()
        .copied()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap_or((0.0, 0.0));
    let pole = golden_min(&cost, best - 2.0, best + 2.0).rem_euclid(360.0);
    let ratio = cost(pole) / cost(pole + 180.0).max(1e-30);
    PoleFit {
        pole_deg: pole,
        ratio,
    }
}

/// Offsets from the disc centre at which the two images are compared:
/// a grid over the disc (at most ~12 000 points).
fn samples(a: f64, b: f64) -> Vec<(f64, f64)> {
    let step = (a * a / 3000.0).sqrt().max(1.0);
    let n = (a / step).ceil() as i64;
    let r = a.max(b);
    (-n..=n)
        .flat_map(|j| (-n..=n).map(move |i| (i as f64 * step, j as f64 * step)))
        .filter(|(x, y)| x.hypot(*y) < r)
        .collect()
}

/// Mean squared difference between the late image and the early one
/// turned forward by `alpha`, over the samples that face the camera at
/// both times (away from the limb, where the model and the seeing are worst).
fn mismatch(pair: &Pair, globe: Globe, samples: &[(f64, f64)]) -> f64 {
    const MIN_MU: f64 = 0.35;
    let [ce, cl] = pair.centres;
    let (mut sum, mut n) = (0.0, 0usize);
    for &q in samples {
        let Some(back) = globe.turn(q, -pair.alpha) else {
            continue;
        };
        let mu_now = globe.turn(q, 0.0).map_or(0.0, |t| t.mu);
        if back.mu < MIN_MU || mu_now < MIN_MU {
            continue;
        }
        let (Some(l), Some(e)) = (
            pair.late.sample(cl.0 + q.0, cl.1 + q.1),
            pair.early
                .sample(ce.0 + back.offset.0, ce.1 + back.offset.1),
        ) else {
            continue;
        };
        sum += (l - e) * (l - e);
        n += 1;
    }
    if n < 16 {
        f64::MAX
    } else {
        sum / n as f64
    }
}

/// The image minus its blur over a tenth of the disc's radius: the
/// surface's detail, which turns with the planet, without the limb
/// darkening and the disc's outline, which do not.
fn high_pass(img: &Grey, radius: f64) -> Vec<f32> {
    let r = ((radius / 10.0).round() as usize).max(2);
    let mut blur = img.data.to_vec();
    for _ in 0..2 {
        blur = box_rows(&blur, img.width, r);
        blur = transpose(
            &box_rows(&transpose(&blur, img.width, img.height), img.height, r),
            img.height,
            img.width,
        );
    }
    img.data.iter().zip(&blur).map(|(v, b)| v - b).collect()
}

/// A box mean over `2r + 1` samples along each row (shorter at the ends),
/// by running sums.
fn box_rows(data: &[f32], w: usize, r: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    let mut prefix = vec![0.0f64; w + 1];
    for (row, o) in data.chunks(w).zip(out.chunks_mut(w)) {
        for (x, v) in row.iter().enumerate() {
            prefix[x + 1] = prefix[x] + *v as f64;
        }
        for (x, v) in o.iter_mut().enumerate() {
            let (lo, hi) = (x.saturating_sub(r), (x + r + 1).min(w));
            *v = ((prefix[hi] - prefix[lo]) / (hi - lo) as f64) as f32;
        }
    }
    out
}

fn transpose(data: &[f32], w: usize, h: usize) -> Vec<f32> {
    let mut out = vec![0.0; data.len()];
    for y in 0..h {
        for x in 0..w {
            out[x * h + y] = data[y * w + x];
        }
    }
    out
}

/// The minimum of `f` in `[lo, hi]` by golden-section search (to 0.01).
fn golden_min(f: &impl Fn(f64) -> f64, mut lo: f64, mut hi: f64) -> f64 {
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut x1, mut x2) = (hi - g * (hi - lo), lo + g * (hi - lo));
    let (mut f1, mut f2) = (f(x1), f(x2));
    while hi - lo > 0.01 {
        if f1 <= f2 {
            hi = x2;
            (x2, f2) = (x1, f1);
            x1 = hi - g * (hi - lo);
            f1 = f(x1);
        } else {
            lo = x1;
            (x1, f1) = (x2, f2);
            x2 = lo + g * (hi - lo);
            f2 = f(x2);
        }
    }
    0.5 * (lo + hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derotate::globe::angle_diff;

    /// A textured sphere (random-phase waves in latitude and longitude) at
    /// rotation `t` radians.
    fn render(w: usize, c: (f64, f64), g: &Globe, t: f64) -> Vec<f32> {
        let mut out = vec![0.0f32; w * w];
        let (e, p) = g.axes();
        for y in 0..w {
            for x in 0..w {
                let q = (x as f64 - c.0, y as f64 - c.1);
                let (u, v) = ((q.0 * e.0 + q.1 * e.1) / g.a, (q.0 * p.0 + q.1 * p.1) / g.b);
                let r2 = u * u + v * v;
                if r2 >= 1.0 {
                    continue;
                }
                let z = (1.0 - r2).sqrt();
                let (lat, lon) = (v.asin(), u.atan2(z) - t);
                let tex = 0.5
                    + 0.15 * (9.0 * lat).sin()
                    + 0.1 * (7.0 * lon + 3.0 * lat).sin()
                    + 0.08 * (13.0 * lon - 5.0 * lat + 1.0).sin()
                    + 0.05 * (23.0 * lon + 17.0 * lat).cos();
                out[y * w + x] = (tex * (0.3 + 0.7 * z)) as f32;
            }
        }
        out
    }

    #[test]
    fn the_pole_and_the_sense_are_found_over_the_full_circle() {
        let w = 160;
        let c = (80.0, 80.0);
        for (pole, mirrored) in [(0.0, false), (75.0, false), (190.0, false), (300.0, true)] {
            let g = Globe {
                a: 60.0,
                b: 56.1,
                pole_deg: pole,
                mirrored,
                latitude_deg: 0.0,
            };
            let (early, late) = (render(w, c, &g, -0.03), render(w, c, &g, 0.03));
            let pair = Pair {
                early: Grey {
                    data: &early,
                    width: w,
                    height: w,
                },
                late: Grey {
                    data: &late,
                    width: w,
                    height: w,
                },
                centres: [c, c],
                alpha: 0.06,
            };
            let fit = fit_pole(&pair, g);
            assert!(
                angle_diff(fit.pole_deg, pole) < 1.0,
                "{pole} {mirrored}: {fit:?}"
            );
            assert!(fit.ratio < 0.5, "{fit:?}");
        }
    }
}
