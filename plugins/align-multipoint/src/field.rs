//! From raw per-point measurements to warp fields: outlier cleanup per frame,
//! recentring per point, filling skipped points, and per-point frame
//! selection. Pure functions over small arrays (points × frames), so they are
//! tested on their own.

use crate::grid::ApGrid;

/// One local measurement: the shift of a point's patch on top of the frame's
/// global shift, the correlation peak (confidence), whether it passed the
/// checks, the patch's sharpness in that frame, and whether the shift was
/// measured at all (the aligner measures a frame only where it is kept and
/// around; elsewhere only its sharpness is known).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Local {
    pub dx: f32,
    pub dy: f32,
    pub peak: f32,
    pub sharpness: f32,
    pub valid: bool,
    pub measured: bool,
}

fn median(v: &mut [f32]) -> f32 {
    jupiter_kit::tile::median_sorted(v)
}

/// Cleans one frame's local shifts over the grid (`locals` indexed by grid
/// point; inactive points are ignored). Each active point is compared with
/// the median of its valid active neighbours; it is an outlier when it has at
/// least three and lies further from their median than both `outlier` pixels
/// and 5 × the frame's typical deviation (1.4826 × the median deviation over
/// the points, so a legitimately steep distortion is not flattened). A
/// failed measurement or an outlier is replaced by that median; a failure
/// with no valid neighbour becomes 0 (the global shift). Returns how many
/// were replaced.
pub fn clean(grid: &ApGrid, locals: &mut [Local], outlier: f32) -> usize {
    let snapshot: Vec<Local> = locals.to_vec();
    let (mut nx, mut ny) = (Vec::with_capacity(8), Vec::with_capacity(8));
    // Per active point: (neighbours' median, how many, distance to it).
    let mut near = Vec::with_capacity(grid.len());
    for k in 0..grid.len() {
        if !grid.active[k] {
            near.push(None);
            continue;
        }
        nx.clear();
        ny.clear();
        for j in grid.neighbours(k) {
            if grid.active[j] && snapshot[j].valid {
                nx.push(snapshot[j].dx);
                ny.push(snapshot[j].dy);
            }
        }
        let me = snapshot[k];
        let count = nx.len();
        let (mx, my) = if count > 0 {
            (median(&mut nx), median(&mut ny))
        } else {
            (0.0, 0.0)
        };
        let dist = ((me.dx - mx).powi(2) + (me.dy - my).powi(2)).sqrt();
        near.push(Some((mx, my, count, dist)));
    }
    let mut devs: Vec<f32> = (0..grid.len())
        .filter_map(|k| {
            near[k]
                .filter(|n| n.2 >= 3 && snapshot[k].valid)
                .map(|n| n.3)
        })
        .collect();
    let typical = if devs.is_empty() {
        0.0
    } else {
        1.4826 * median(&mut devs)
    };
    let limit = outlier.max(5.0 * typical);
    let mut replaced = 0;
    for k in 0..grid.len() {
        let Some((mx, my, count, dist)) = near[k] else {
            continue;
        };
        if !snapshot[k].valid || (count >= 3 && dist > limit) {
            locals[k].dx = mx;
            locals[k].dy = my;
            locals[k].valid = false;
            replaced += 1;
        }
    }
    replaced
}

/// Subtracts from every frame's local shift at each active point the mean of
/// that point's local shifts over the frames measured there (all frames when
/// none is marked measured), then adds back the mean of
/// those means over the points (so the global position is kept). With
/// zero-mean seeing the mean over many frames is the undistorted geometry,
/// while the reference (a mean of a few frames) keeps some distortion.
pub fn recentre(grid: &ApGrid, frames: &mut [Vec<Local>]) {
    let n = frames.len();
    if n == 0 {
        return;
    }
    // Per point: (sum, count) over the measured frames, and over all.
    let mut means = vec![(0.0f64, 0.0f64); grid.len()];
    let mut measured = vec![(0.0f64, 0.0f64, 0usize); grid.len()];
    for f in frames.iter() {
        for (k, l) in f.iter().enumerate() {
            means[k].0 += l.dx as f64;
            means[k].1 += l.dy as f64;
            if l.measured {
                measured[k].0 += l.dx as f64;
                measured[k].1 += l.dy as f64;
                measured[k].2 += 1;
            }
        }
    }
    let active: Vec<usize> = (0..grid.len()).filter(|&k| grid.active[k]).collect();
    if active.is_empty() {
        return;
    }
    let (mut gx, mut gy) = (0.0f64, 0.0f64);
    for &k in &active {
        let (sx, sy, c) = measured[k];
        if c > 0 {
            means[k] = (sx, sy);
        }
        let count = if c > 0 { c } else { n };
        means[k].0 /= count as f64;
        means[k].1 /= count as f64;
        gx += means[k].0;
        gy += means[k].1;
    }
    gx /= active.len() as f64;
    gy /= active.len() as f64;
    for f in frames.iter_mut() {
        for &k in &active {
            f[k].dx -= (means[k].0 - gx) as f32;
            f[k].dy -= (means[k].1 - gy) as f32;
        }
    }
}

/// Gives every inactive point the shift of its nearest active points: rings
/// of points around the active ones take the mean of their already-known
/// 8-neighbours, ring by ring, so the field continues smoothly past the last
/// measured point (no false gradient towards zero at a planet's limb). With
/// no active point at all, everything stays at 0 (global alignment).
pub fn fill(grid: &ApGrid, dx: &mut [f32], dy: &mut [f32]) {
    let mut known: Vec<bool> = grid.active.clone();
    if !known.iter().any(|k| *k) {
        dx.fill(0.0);
        dy.fill(0.0);
        return;
    }
    loop {
        let mut next = known.clone();
        let mut changed = false;
        for k in 0..grid.len() {
            if known[k] {
                continue;
            }
            let (mut sx, mut sy, mut c) = (0.0f32, 0.0f32, 0);
            for j in grid.neighbours(k) {
                if known[j] {
                    sx += dx[j];
                    sy += dy[j];
                    c += 1;
                }
            }
            if c > 0 {
                dx[k] = sx / c as f32;
                dy[k] = sy / c as f32;
                next[k] = true;
                changed = true;
            }
        }
        known = next;
        if !changed {
            break;
        }
    }
}

/// Per-point frame selection: at each active point the `keep` fraction of
/// frames (at least one) with the highest sharpness there get weight 1, the
/// others 0; valid measurements rank before failed ones. With `keep = 0`
/// each point keeps [`auto_count`] of its valid frames, given `noise[k]`,
/// the share of a frame's sharpness² that its noise makes at point `k`.
/// Inactive points keep every frame (weight 1), i.e. the host's global
/// selection; with `keep = 0` the first frames (the globally best), as many
/// as the median active point keeps. Returns `weights[frame][point]`.
pub fn select(grid: &ApGrid, frames: &[Vec<Local>], keep: f32, noise: &[f32]) -> Vec<Vec<f32>> {
    let n = frames.len();
    let mut weights = vec![vec![1.0f32; grid.len()]; n];
    if n == 0 {
        return weights;
    }
    let fixed = ((keep as f64 * n as f64).round() as usize).clamp(1, n);
    let mut order: Vec<usize> = (0..n).collect();
    let mut counts = Vec::new();
    for k in (0..grid.len()).filter(|&k| grid.active[k]) {
        order.sort_by(|&a, &b| {
            let (la, lb) = (&frames[a][k], &frames[b][k]);
            lb.valid
                .cmp(&la.valid)
                .then(lb.sharpness.total_cmp(&la.sharpness))
                .then(a.cmp(&b))
        });
        let k_keep = if keep > 0.0 {
            fixed
        } else {
            let sharp: Vec<f32> = order
                .iter()
                .map(|&f| &frames[f][k])
                .take_while(|l| l.valid)
                .map(|l| l.sharpness)
                .collect();
            auto_count(&sharp, noise.get(k).copied().unwrap_or(0.0))
        };
        for (rank, &f) in order.iter().enumerate() {
            weights[f][k] = if rank < k_keep { 1.0 } else { 0.0 };
        }
        counts.push(k_keep);
    }
    // Automatic: points without alignment (a planet's sky) stack the
    // globally best frames (the host's order), as many as the median point
    // keeps, rather than every frame of the pool.
    if keep == 0.0 && !counts.is_empty() {
        counts.sort_unstable();
        let typical = counts[counts.len() / 2];
        for (f, wt) in weights.iter_mut().enumerate() {
            for k in (0..grid.len()).filter(|&k| !grid.active[k]) {
                wt[k] = if f < typical { 1.0 } else { 0.0 };
            }
        }
    }
    weights
}

/// How many of the locally sharpest frames to stack at one point, from
/// their sharpness (best first, [`crate::grid::structure`]) and `noise`,
/// the sharpness² a frame's noise alone gives there.
///
/// A frame's detail at the point is `a = √(sharpness² − noise)`; the mean
/// of the best `k` frames keeps the mean of their `a` and a `1/k` share of
/// the noise. The count taken minimises the predicted error against the
/// true detail, `(A − mean a)² + noise / k` with `A` a little above the
/// sharpest frame's ([`BUDGET_DETAIL_MARGIN`]): few frames where the frames
/// are clean and differ in sharpness, many where noise dominates the
/// difference; at least [`BUDGET_MIN_FRAMES`] (or all there are).
pub fn auto_count(sharpness: &[f32], noise: f32) -> usize {
    let detail = |s: f32| ((s as f64).powi(2) - noise as f64).max(0.0).sqrt();
    let Some(&first) = sharpness.first() else {
        return 1;
    };
    let best = detail(first) * (1.0 + BUDGET_DETAIL_MARGIN);
    let (mut sum, mut chosen, mut least) = (0.0f64, 1usize, f64::INFINITY);
    for (i, &s) in sharpness.iter().enumerate() {
        sum += detail(s);
        let k = (i + 1) as f64;
        let err = (best - sum / k).powi(2) + noise as f64 / k;
        if err < least {
            (least, chosen) = (err, i + 1);
        }
    }
    chosen.max(BUDGET_MIN_FRAMES.min(sharpness.len()))
}

/// The true detail is taken 5 % above the sharpest frame's (that frame is
/// blurred too): the budget leans to fewer frames when they differ.
/// Measured over the `--budget` captures (BENCHMARKS "Frame budget"): 0 and
/// 0.15 move single captures by up to 0.3 dB either way.
const BUDGET_DETAIL_MARGIN: f64 = 0.05;

/// The fewest frames the automatic budget keeps at a point: one or two
/// frames carry their own noise and their registration error there
/// unaveraged (at 1, a strong-seeing planet lost 0.3 dB).
const BUDGET_MIN_FRAMES: usize = 3;

/// The refinement of a grid of node values the stacker interpolates
/// ([`jupiter_plugin_api::frame::refine_nodes`]).
pub use jupiter_plugin_api::frame::refine_nodes as refine;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refine_keeps_nodes_and_follows_a_smooth_field() {
        let (cols, rows, step) = (9, 7, 16.0f32);
        let f =
            |x: f32, y: f32| (x * 2.0 * std::f32::consts::PI / 60.0).sin() + 0.5 * (y / 45.0).cos();
        let coarse: Vec<f32> = (0..cols * rows)
            .map(|k| f((k % cols) as f32 * step, (k / cols) as f32 * step))
            .collect();
        let (fine, fc, fr) = refine(&coarse, cols, rows, 2);
        assert_eq!((fc, fr), (17, 13));
        for j in 0..rows {
            for i in 0..cols {
                assert_eq!(fine[2 * j * fc + 2 * i], coarse[j * cols + i]);
            }
        }
        // In between (away from the replicated edges) it is far closer to the
        // field than the bilinear midpoint of the coarse grid.
        let (mut e_cubic, mut e_lin) = (0.0f32, 0.0f32);
        for j in 2..fr - 3 {
            for i in 2..fc - 3 {
                let (x, y) = (i as f32 * step / 2.0, j as f32 * step / 2.0);
                e_cubic = e_cubic.max((fine[j * fc + i] - f(x, y)).abs());
                let (i0, j0) = (i / 2, j / 2);
                let (tx, ty) = ((i % 2) as f32 * 0.5, (j % 2) as f32 * 0.5);
                let c = |a: usize, b: usize| coarse[b * cols + a];
                let lin = (c(i0, j0) * (1.0 - tx) + c(i0 + 1, j0) * tx) * (1.0 - ty)
                    + (c(i0, j0 + 1) * (1.0 - tx) + c(i0 + 1, j0 + 1) * tx) * ty;
                e_lin = e_lin.max((lin - f(x, y)).abs());
            }
        }
        assert!(e_cubic < 0.5 * e_lin, "cubic {e_cubic} vs bilinear {e_lin}");
        assert_eq!(refine(&coarse, cols, rows, 1).0, coarse);
    }

    fn grid(cols: usize, rows: usize) -> ApGrid {
        ApGrid::new(16 + (cols - 1) * 8, 16 + (rows - 1) * 8, 16, 8)
    }

    fn at(dx: f32, dy: f32) -> Local {
        Local {
            dx,
            dy,
            peak: 0.5,
            sharpness: 1.0,
            valid: true,
            measured: true,
        }
    }

    #[test]
    fn clean_replaces_outliers_and_failures_by_the_neighbours_median() {
        let g = grid(3, 3);
        let mut l: Vec<Local> = (0..9).map(|k| at(1.0 + 0.01 * k as f32, -0.5)).collect();
        l[4] = at(4.0, 3.0); // outlier in the middle
        l[0].valid = false; // failure in a corner
        let replaced = clean(&g, &mut l, 1.0);
        assert_eq!(replaced, 2);
        assert!(
            (l[4].dx - 1.04).abs() < 0.03 && (l[4].dy + 0.5).abs() < 1e-6,
            "{:?}",
            l[4]
        );
        assert!((l[0].dx - 1.0).abs() < 0.05 && !l[0].valid);
        // Points near the outlier were judged on the median, which ignores it.
        assert!(l[1].valid && l[8].valid);
    }

    #[test]
    fn recentre_removes_the_mean_distortion_and_keeps_the_global_mean() {
        let g = grid(2, 1);
        // Point 0 sits +1 px (x) off in every frame: the reference's distortion.
        let mut frames: Vec<Vec<Local>> = (0..4)
            .map(|f| vec![at(1.0 + f as f32 * 0.1, 0.0), at(f as f32 * 0.1, 0.0)])
            .collect();
        recentre(&g, &mut frames);
        for (f, fr) in frames.iter().enumerate() {
            let want = f as f32 * 0.1 + 0.5;
            assert!(
                (fr[0].dx - want).abs() < 1e-5 && (fr[1].dx - want).abs() < 1e-5,
                "{fr:?}"
            );
        }
    }

    #[test]
    fn fill_continues_the_field_from_the_nearest_points() {
        let mut g = grid(4, 1);
        g.active = vec![true, true, false, false];
        let (mut dx, mut dy) = (vec![1.0, 2.0, 9.0, 9.0], vec![0.0, -1.0, 9.0, 9.0]);
        fill(&g, &mut dx, &mut dy);
        assert_eq!(dx, vec![1.0, 2.0, 2.0, 2.0]);
        assert_eq!(dy, vec![0.0, -1.0, -1.0, -1.0]);
        g.active = vec![false; 4];
        fill(&g, &mut dx, &mut dy);
        assert_eq!(dx, vec![0.0; 4]);
    }

    #[test]
    fn select_keeps_the_locally_sharpest_frames() {
        let mut g = grid(2, 1);
        g.active = vec![true, false];
        // Frame f has sharpness f at point 0; frame 3 failed there.
        let frames: Vec<Vec<Local>> = (0..4)
            .map(|f| {
                let mut a = at(0.0, 0.0);
                a.sharpness = f as f32;
                a.valid = f != 3;
                vec![a, at(0.0, 0.0)]
            })
            .collect();
        let w = select(&g, &frames, 0.5, &[]);
        let at0: Vec<f32> = w.iter().map(|f| f[0]).collect();
        assert_eq!(at0, vec![0.0, 1.0, 1.0, 0.0]);
        assert!(w.iter().all(|f| f[1] == 1.0));
        // keep rounds to at least one frame.
        let w = select(&g, &frames, 0.01, &[]);
        assert_eq!(w.iter().map(|f| f[0]).sum::<f32>(), 1.0);
    }

    #[test]
    fn automatic_selection_keeps_only_valid_frames() {
        let mut g = grid(1, 1);
        g.active = vec![true];
        // Equal sharpness and noise: every valid frame is worth keeping.
        let frames: Vec<Vec<Local>> = (0..5)
            .map(|f| {
                let mut a = at(0.0, 0.0);
                a.sharpness = 1.0;
                a.valid = f != 2;
                vec![a]
            })
            .collect();
        let w = select(&g, &frames, 0.0, &[0.5]);
        let kept: Vec<f32> = w.iter().map(|f| f[0]).collect();
        assert_eq!(kept, vec![1.0, 1.0, 0.0, 1.0, 1.0]);
    }

    #[test]
    fn automatic_selection_gives_the_sky_the_median_count_of_best_frames() {
        let mut g = grid(2, 1);
        g.active = vec![true, false];
        // Clean frames that differ in sharpness: the minimum at the point;
        // the unaligned point takes the same count of globally best frames.
        let frames: Vec<Vec<Local>> = (0..8)
            .map(|f| {
                let mut a = at(0.0, 0.0);
                a.sharpness = 1.0 + 0.1 * f as f32;
                vec![a, at(0.0, 0.0)]
            })
            .collect();
        let w = select(&g, &frames, 0.0, &[0.0, 0.0]);
        let point: Vec<f32> = w.iter().map(|f| f[0]).collect();
        let sky: Vec<f32> = w.iter().map(|f| f[1]).collect();
        assert_eq!(point, vec![0., 0., 0., 0., 0., 1., 1., 1.]);
        assert_eq!(sky, vec![1., 1., 1., 0., 0., 0., 0., 0.]);
        // A fixed share leaves the sky every frame.
        let w = select(&g, &frames, 0.5, &[0.0, 0.0]);
        assert!(w.iter().all(|f| f[1] == 1.0));
    }

    /// The predicted error of stacking the best `k`, written out directly.
    fn predicted(sharp: &[f32], noise: f32, k: usize) -> f64 {
        let a: Vec<f64> = sharp
            .iter()
            .map(|&s| ((s * s - noise) as f64).max(0.0).sqrt())
            .collect();
        let mean = a[..k].iter().sum::<f64>() / k as f64;
        (a[0] * (1.0 + BUDGET_DETAIL_MARGIN) - mean).powi(2) + noise as f64 / k as f64
    }

    #[test]
    fn automatic_count_trades_detail_for_noise() {
        // Clean frames that differ in sharpness: the fewest allowed.
        let sharp: Vec<f32> = (0..40).map(|i| 1.0 - 0.01 * i as f32).collect();
        assert_eq!(auto_count(&sharp, 0.0), BUDGET_MIN_FRAMES);
        // Frames alike in sharpness: all of them, whatever the noise.
        assert_eq!(auto_count(&[0.8; 30], 0.1), 30);
        assert_eq!(auto_count(&[0.8; 2], 0.0), 2);
        assert_eq!(auto_count(&[], 0.1), 1);
        // More noise never keeps fewer frames, and the count is the one
        // with the least predicted error (or the minimum).
        let mut last = 0;
        for noise in [0.0, 0.001, 0.01, 0.05, 0.1, 0.3] {
            let k = auto_count(&sharp, noise);
            assert!(k >= last, "noise {noise}: {k} < {last}");
            let best = (1..=sharp.len())
                .min_by(|&a, &b| {
                    predicted(&sharp, noise, a).total_cmp(&predicted(&sharp, noise, b))
                })
                .unwrap();
            assert_eq!(k, best.max(BUDGET_MIN_FRAMES), "noise {noise}");
            last = k;
        }
        assert!(last > 10, "heavy noise keeps many frames ({last})");
    }
}
