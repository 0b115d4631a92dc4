//! CPU path of `stack-drizzle`: bands of output rows, each built from every
//! frame's rows that can drop into it (decoded on demand: memory is the
//! output and its weights plus one band of accumulators and input rows per
//! worker, never the frame set).

use jupiter_kit::stats::quality_weights;
use jupiter_kit::warp::dy_range;
use jupiter_plugin_api::prelude::*;

use crate::geometry::{overlaps, Geometry};
use crate::params::DrizzleParams;

/// Output rows per band (one parallel task).
pub const BAND_ROWS: usize = 32;

/// The drizzled image (interleaved) and each output pixel's summed drop
/// weight, before holes are filled.
pub struct Drizzled {
    pub data: Vec<f32>,
    pub weight: Vec<f32>,
}

/// Drizzles the frames under the alignment into `g`'s grid.
pub fn drizzle(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    req: &StackRequest,
    g: &Geometry,
    p: &DrizzleParams,
) -> Result<Drizzled, StageError> {
    let weights = frame_weights(frames, req, p)?;
    let bands = g.out_h.div_ceil(BAND_ROWS);
    let parts = ctx.par_try_map(bands, 1, |b| {
        let v0 = b * BAND_ROWS;
        band(frames, req, g, &weights, v0, BAND_ROWS.min(g.out_h - v0))
    })?;
    let (mut data, mut weight) = (Vec::new(), Vec::new());
    for (d, w) in parts {
        data.extend(d);
        weight.extend(w);
    }
    Ok(Drizzled { data, weight })
}

/// Checks the request; the per-frame quality weights (all 1 unless asked).
pub fn frame_weights(
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &DrizzleParams,
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    req.check(&info)?;
    Ok(quality_weights(
        &req.scores,
        info.count as usize,
        p.quality_weighting,
        p.weight_power,
    ))
}

/// One band of output rows: `(values, weights)`; a pixel no drop reached
/// has weight 0 and value 0.
fn band(
    frames: &FrameSourceRef,
    req: &StackRequest,
    g: &Geometry,
    weights: &[f32],
    v0: usize,
    rows: usize,
) -> Result<(Vec<f32>, Vec<f32>), StageError> {
    let ch = frames.info().channels as usize;
    let ow = g.out_w;
    let mut sum = vec![0.0f64; rows * ow * ch];
    let mut wsum = vec![0.0f64; rows * ow];
    let mut buf = Vec::new();
    for (i, warp) in req.alignment.warps.iter().enumerate() {
        // The field as interpolated, refined once for both uses.
        let dense = warp.dense_field();
        let field = dense.as_deref();
        let (y0, n_rows) = input_rows(g, warp.dy, field, v0, rows);
        buf.resize(n_rows * g.w * ch, 0.0f32);
        frames
            .read_rows(i, y0, n_rows, (&mut buf[..]).into())
            .into_result()?;
        let window = Window {
            data: &buf,
            y0,
            rows: n_rows,
            w: g.w,
            ch,
        };
        accumulate(
            g,
            (warp, field),
            weights[i],
            &window,
            v0,
            rows,
            &mut sum,
            &mut wsum,
        );
    }
    let data = sum
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let ws = wsum[k / ch];
            if ws > 0.0 {
                (s / ws) as f32
            } else {
                0.0
            }
        })
        .collect();
    Ok((data, wsum.iter().map(|&w| w as f32).collect()))
}

/// Decoded input rows `y0 .. y0 + rows` of one frame.
struct Window<'a> {
    data: &'a [f32],
    y0: usize,
    rows: usize,
    w: usize,
    ch: usize,
}

/// The frame rows whose drops can reach output rows `v0 .. v0 + rows`
/// under a warp of global `dy` and `field` (as interpolated): `(first, count)`.
fn input_rows(
    g: &Geometry,
    dy: f32,
    field: Option<&WarpField>,
    v0: usize,
    rows: usize,
) -> (usize, usize) {
    let (lo, hi) = dy_range(dy, field);
    let (r0, r1) = g.ref_rows(v0, rows);
    let half = 0.5 * g.pixfrac;
    let y0 = ((r0 + lo - half).floor() as isize - 1).clamp(0, g.h as isize - 1) as usize;
    let y1 = ((r1 + hi + half).ceil() as isize + 2).clamp(y0 as isize + 1, g.h as isize) as usize;
    (y0, y1 - y0)
}

/// Adds one frame's drops to the band's sums (`field`: the warp's field as
/// interpolated, [`FrameWarp::dense_field`]).
#[allow(clippy::too_many_arguments)]
fn accumulate(
    g: &Geometry,
    (warp, field): (&FrameWarp, Option<&WarpField>),
    frame_weight: f32,
    win: &Window,
    v0: usize,
    rows: usize,
    sum: &mut [f64],
    wsum: &mut [f64],
) {
    if frame_weight <= 0.0 {
        return;
    }
    let (ow, ch) = (g.out_w, win.ch);
    let cols = field.map_or(0, |f| f.cols as usize);
    let nodes: Vec<(usize, usize, f32)> = match field {
        Some(f) => (0..ow).map(|u| f.column_nodes(g.ref_x(u))).collect(),
        None => Vec::new(),
    };
    let mut at_row = vec![0.0f32; 3 * cols];
    for ry in 0..rows {
        let v = v0 + ry;
        if let Some(f) = field {
            f.along_row(g.ref_y(v), &mut at_row);
        }
        let (a0y, a1y) = (v as f32 / g.sy - 0.5, (v + 1) as f32 / g.sy - 0.5);
        for u in 0..ow {
            let (mut dx, mut dy, mut wt) = (warp.dx, warp.dy, frame_weight);
            if field.is_some() {
                let (i0, i1, tx) = nodes[u];
                let lerp =
                    |k: usize| at_row[k * cols + i0] * (1.0 - tx) + at_row[k * cols + i1] * tx;
                dx += lerp(0);
                dy += lerp(1);
                wt *= lerp(2);
                if wt <= 0.0 {
                    continue;
                }
            }
            let (a0x, a1x) = (u as f32 / g.sx - 0.5, (u + 1) as f32 / g.sx - 0.5);
            let px = ry * ow + u;
            overlaps(a0y, a1y, dy, g.pixfrac, g.h, |yf, oy| {
                if yf < win.y0 || yf >= win.y0 + win.rows {
                    return;
                }
                let row = &win.data[(yf - win.y0) * win.w * ch..];
                overlaps(a0x, a1x, dx, g.pixfrac, g.w, |xf, ox| {
                    let k = (wt * ox * oy) as f64;
                    wsum[px] += k;
                    for c in 0..ch {
                        sum[px * ch + c] += k * row[xf * ch + c] as f64;
                    }
                });
            });
        }
    }
}

/// Fills every pixel of weight 0 with the mean of its filled 3×3
/// neighbours, pass after pass until none is left (a region no drop
/// reached grows in from its rim); returns how many were filled.
pub fn fill_holes(data: &mut [f32], weight: &[f32], w: usize, h: usize, ch: usize) -> usize {
    let mut filled: Vec<bool> = weight.iter().map(|&x| x > 0.0).collect();
    let holes = filled.iter().filter(|f| !**f).count();
    if holes == 0 || holes == w * h {
        return if holes == 0 { 0 } else { holes };
    }
    loop {
        let mut next = filled.clone();
        let mut any = false;
        for y in 0..h {
            for x in 0..w {
                if filled[y * w + x] {
                    continue;
                }
                let mut acc = vec![0.0f32; ch];
                let mut n = 0;
                for ny in y.saturating_sub(1)..(y + 2).min(h) {
                    for nx in x.saturating_sub(1)..(x + 2).min(w) {
                        if filled[ny * w + nx] {
                            for c in 0..ch {
                                acc[c] += data[(ny * w + nx) * ch + c];
                            }
                            n += 1;
                        }
                    }
                }
                if n > 0 {
                    for c in 0..ch {
                        data[(y * w + x) * ch + c] = acc[c] / n as f32;
                    }
                    next[y * w + x] = true;
                    any = true;
                }
            }
        }
        filled = next;
        if !any {
            return holes;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};

    fn run(
        frames: &MemFrames,
        warps: Vec<FrameWarp>,
        scale: f32,
        pixfrac: f32,
    ) -> (Geometry, Drizzled) {
        let info = frames.as_ref().info();
        let g = Geometry::new(info.width as usize, info.height as usize, scale, pixfrac);
        let p = DrizzleParams {
            scale,
            pixfrac,
            ..Default::default()
        };
        let req = StackRequest::new(warps);
        let be = ThreadBackend::new(2);
        let d = be
            .with_ctx("stack-drizzle", |ctx| {
                drizzle(ctx, &frames.as_ref(), &req, &g, &p)
            })
            .unwrap();
        (g, d)
    }

    fn smooth(w: usize, h: usize, k: usize) -> Vec<f32> {
        (0..w * h)
            .map(|i| {
                let (x, y) = ((i % w) as f32, (i / w) as f32);
                0.5 + 0.3 * (0.21 * x + 0.05 * k as f32).sin() * (0.17 * y).cos()
            })
            .collect()
    }

    #[test]
    fn scale_one_pixfrac_one_with_integer_shifts_is_the_mean() {
        let (w, h) = (40, 33);
        let shifts = [(0.0, 0.0), (2.0, -1.0), (-3.0, 2.0), (1.0, 3.0)];
        let frames: Vec<Vec<f32>> = (0..shifts.len()).map(|k| smooth(w, h, k)).collect();
        let mem = MemFrames::new(w as u32, h as u32, 1, frames.clone());
        let warps = shifts
            .iter()
            .map(|&(dx, dy)| FrameWarp::shift(dx, dy))
            .collect();
        let (_, d) = run(&mem, warps, 1.0, 1.0);
        // Where every frame covers the pixel: the mean of frame(x + d).
        for y in 4..h - 4 {
            for x in 4..w - 4 {
                let want: f32 = frames
                    .iter()
                    .zip(&shifts)
                    .map(|(f, (dx, dy))| f[(y as f32 + dy) as usize * w + (x as f32 + dx) as usize])
                    .sum::<f32>()
                    / shifts.len() as f32;
                let got = d.data[y * w + x];
                assert!((got - want).abs() < 1e-5, "({x}, {y}): {got} vs {want}");
                assert!((d.weight[y * w + x] - 4.0).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn flux_is_conserved() {
        let (w, h) = (48, 40);
        let shifts = [
            (0.0, 0.0),
            (0.3, -0.7),
            (-0.45, 0.25),
            (0.8, 0.6),
            (-0.2, -0.35),
            (0.55, 0.1),
        ];
        let frames: Vec<Vec<f32>> = (0..shifts.len()).map(|k| smooth(w, h, k)).collect();
        let mem = MemFrames::new(w as u32, h as u32, 1, frames.clone());
        let warps = shifts
            .iter()
            .map(|&(dx, dy)| FrameWarp::shift(dx, dy))
            .collect();
        let (g, mut d) = run(&mem, warps, 2.0, 0.7);
        fill_holes(&mut d.data, &d.weight, g.out_w, g.out_h, 1);
        let mean_in = frames.iter().flatten().sum::<f32>() / (frames.len() * w * h) as f32;
        let mean_out = d.data.iter().sum::<f32>() / d.data.len() as f32;
        assert!((mean_in - mean_out).abs() < 2e-3, "{mean_in} vs {mean_out}");
    }

    #[test]
    fn a_known_sub_pixel_shift_lands_where_it_should() {
        // One bright pixel at frame (10, 12); the frame's content is
        // displaced by (+0.5, −0.5) (frame(x + d) ≈ reference(x)), so the
        // point is at reference (9.5, 12.5), output (×2) centre
        // (9.5 + ½)·2 − ½ = 19.5 and (12.5 + ½)·2 − ½ = 25.5.
        let (w, h) = (24, 24);
        let mut f = vec![0.0f32; w * h];
        f[12 * w + 10] = 1.0;
        let mem = MemFrames::new(w as u32, h as u32, 1, vec![f]);
        let (g, mut d) = run(&mem, vec![FrameWarp::shift(0.5, -0.5)], 2.0, 0.5);
        fill_holes(&mut d.data, &d.weight, g.out_w, g.out_h, 1);
        let (mut sx, mut sy, mut s) = (0.0f32, 0.0f32, 0.0f32);
        for (i, v) in d.data.iter().enumerate() {
            sx += v * (i % g.out_w) as f32;
            sy += v * (i / g.out_w) as f32;
            s += v;
        }
        let (cx, cy) = (sx / s, sy / s);
        assert!(
            (cx - 19.5).abs() < 0.05 && (cy - 25.5).abs() < 0.05,
            "centroid ({cx}, {cy})"
        );
    }

    #[test]
    fn holes_fill_from_their_neighbours() {
        let (w, h) = (5, 4);
        let mut data = vec![0.0f32; w * h];
        let mut weight = vec![0.0f32; w * h];
        for (i, (d, wt)) in data.iter_mut().zip(weight.iter_mut()).enumerate() {
            if i % w < 2 {
                *d = 3.0;
                *wt = 1.0;
            }
        }
        assert_eq!(fill_holes(&mut data, &weight, w, h, 1), 12);
        assert!(data.iter().all(|&v| (v - 3.0).abs() < 1e-6), "{data:?}");
    }
}
