//! CPU path of the `quality` stage.

use jupiter_kit::mem::Lender;
use jupiter_kit::{conv, stats};
use jupiter_plugin_api::prelude::*;

use crate::params::{Metric, QualityParams};

/// Sharpness of one plane (no prefilter), ignoring a 1-pixel border.
///
/// Works row by row on slices (the inner loops vectorise); each row's sums
/// are taken in eight `f32` lanes and added to `f64` totals.
pub fn sharpness(plane: &[f32], w: usize, h: usize, metric: Metric) -> f64 {
    let mut sum = Sharpness::new(w, metric);
    for y in 1..h.saturating_sub(1) {
        let row = |y: usize| &plane[y * w..(y + 1) * w];
        sum.add_row(row(y - 1), row(y), row(y + 1));
    }
    sum.finish(h)
}

/// The running sums of [`sharpness`], fed one interior row at a time with
/// its neighbours (so that a prefiltered frame need not be held whole).
struct Sharpness {
    metric: Metric,
    w: usize,
    s: f64,
    s2: f64,
    v: Vec<f32>,
}

impl Sharpness {
    fn new(w: usize, metric: Metric) -> Sharpness {
        Sharpness {
            metric,
            w,
            s: 0.0,
            s2: 0.0,
            v: vec![0.0f32; w.saturating_sub(2)],
        }
    }

    /// Adds the row `mid` (between `up` and `dn`).
    fn add_row(&mut self, up: &[f32], mid: &[f32], dn: &[f32]) {
        jupiter_kit::simd::wide(
            #[inline(always)]
            || {
                if self.w < 3 {
                    return;
                }
                // Each row's three column offsets as slices of the output's
                // length: no bounds check per pixel, so the loops vectorise.
                let n = self.v.len();
                let ([ul, uc, ur], [ml, mc, mr], [dl, dc, dr]) =
                    (columns(up, n), columns(mid, n), columns(dn, n));
                match self.metric {
                    Metric::Laplacian => {
                        for (x, o) in self.v.iter_mut().enumerate() {
                            *o = ml[x] + mr[x] + uc[x] + dc[x] - 4.0 * mc[x];
                        }
                    }
                    Metric::Tenengrad => {
                        for (x, o) in self.v.iter_mut().enumerate() {
                            let gx = (ur[x] + 2.0 * mr[x] + dr[x]) - (ul[x] + 2.0 * ml[x] + dl[x]);
                            let gy = (dl[x] + 2.0 * dc[x] + dr[x]) - (ul[x] + 2.0 * uc[x] + ur[x]);
                            *o = gx * gx + gy * gy;
                        }
                    }
                }
                let (rs, rs2) = lane_sums(&self.v);
                self.s += rs;
                self.s2 += rs2;
            },
        )
    }

    /// The score of a plane of `h` rows whose interior rows were added.
    fn finish(&self, h: usize) -> f64 {
        if self.w < 3 || h < 3 {
            return 0.0;
        }
        let n = ((self.w - 2) * (h - 2)) as f64;
        match self.metric {
            Metric::Laplacian => self.s2 / n - (self.s / n).powi(2),
            Metric::Tenengrad => self.s / n,
        }
    }
}

/// `row[0..n]`, `row[1..n + 1]` and `row[2..n + 2]`.
#[inline(always)]
fn columns(row: &[f32], n: usize) -> [&[f32]; 3] {
    std::array::from_fn(|i| &row[i..i + n])
}

/// Sum and sum of squares of `v`, accumulated in eight `f32` lanes.
fn lane_sums(v: &[f32]) -> (f64, f64) {
    let (a, b) = jupiter_kit::simd::lane_sums(v);
    let rest = &v[v.len() / 8 * 8..];
    let (mut s, mut s2) = (
        a.iter().map(|&x| x as f64).sum::<f64>(),
        b.iter().map(|&x| x as f64).sum::<f64>(),
    );
    for &x in rest {
        s += x as f64;
        s2 += (x * x) as f64;
    }
    (s, s2)
}

/// Scores one frame's luminance with the given parameters.
pub fn score_plane(lum: &[f32], w: usize, h: usize, p: &QualityParams) -> f32 {
    let s = if p.prefilter_sigma > 0.0 {
        let kernel = conv::gaussian_kernel(p.prefilter_sigma);
        band_sharpness(lum, w, h, &kernel, 1..h.saturating_sub(1).max(1), p.metric).finish(h)
    } else {
        sharpness(lum, w, h, p.metric)
    };
    normalised(s, p, || stats::mean(lum))
}

/// A score `s`, divided by the square of the frame's mean level (asked of
/// `mean` only then) when `p.normalize`.
fn normalised(s: f64, p: &QualityParams, mean: impl FnOnce() -> f64) -> f32 {
    if !p.normalize {
        return s as f32;
    }
    let m = mean();
    (s / (m * m).max(1e-12)) as f32
}

/// The prefiltered metric's sums over the interior rows `ys` of `lum`
/// (`w × lh`), streamed: three filtered rows at a time, not a plane.
fn band_sharpness(
    lum: &[f32],
    w: usize,
    lh: usize,
    kernel: &[f32],
    ys: std::ops::Range<usize>,
    metric: Metric,
) -> Sharpness {
    let mut sum = Sharpness::new(w, metric);
    let rows = ys.start.saturating_sub(1)..(ys.end + 1).min(lh);
    conv::separable_rows_ring(lum, w, lh, kernel, rows, 3, |y, ring| {
        if y >= 2 && ys.contains(&(y - 1)) {
            let at = |y: usize| &ring[(y % 3) * w..(y % 3 + 1) * w];
            sum.add_row(at(y - 2), at(y - 1), at(y));
        }
    });
    sum
}

/// Rows per band when one large frame is scored on the pool.
const BAND_ROWS: usize = 64;

/// Frames of at least this many pixels are scored in bands of rows
/// ([`score_frame_in_bands`]) whatever the number of threads.
const BANDED_PIXELS: usize = 4 << 20;

/// What a frame is scored on ([`QualityParams::cells`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plane {
    /// The luminance, pixel by pixel.
    Full,
    /// The 2×2 cells of the luminance, `((a + b) + c + d) / 4`: half the
    /// resolution, a quarter of the pixels to filter. The prefilter's blur
    /// already takes out most of what a cell averages away; ranking frames
    /// by their seeing needs the scales above it (PSS also ranks on every
    /// second pixel).
    Cells,
    /// The 2×2 cells of a raw colour (Bayer) mosaic's samples, `(R + 2G +
    /// B) / 4`: only what the sensor measured, no demosaic computed first.
    MosaicCells,
}

impl Plane {
    /// The plane frames of `frames` are scored on: cells when asked for and
    /// at least 3 a side (of the mosaic where the source has one), else
    /// the full luminance.
    pub fn of(frames: &FrameSourceRef, p: &QualityParams) -> Plane {
        let info = frames.info();
        if !p.cells || info.width / 2 < 3 || info.height / 2 < 3 {
            Plane::Full
        } else if frames.mosaic().is_some() {
            Plane::MosaicCells
        } else {
            Plane::Cells
        }
    }

    /// The plane's size for frames of `w × h`.
    pub fn dims(self, (w, h): (usize, usize)) -> (usize, usize) {
        match self {
            Plane::Full => (w, h),
            Plane::Cells | Plane::MosaicCells => (w / 2, h / 2),
        }
    }

    /// `p` in the plane's pixels: a cell is two pixels a side, so the
    /// prefilter's sigma halves (the same blur on the sky).
    pub fn params(self, p: &QualityParams) -> QualityParams {
        let mut q = p.clone();
        if self != Plane::Full {
            q.prefilter_sigma /= 2.0;
        }
        q
    }

    /// Rows `y0 .. y0 + rows` of frame `i`'s plane into `out`
    /// (`rows × plane width`); cells are read into `pixels` first.
    fn read(
        self,
        frames: &FrameSourceRef,
        (i, y0, rows): (usize, usize, usize),
        out: &mut [f32],
        pixels: &mut Vec<f32>,
    ) -> Result<(), StageError> {
        if self == Plane::Full {
            return frames
                .read_luminance_rows(i, y0, rows, out.into())
                .into_result();
        }
        let w = frames.info().width as usize;
        jupiter_kit::mem::fit(pixels, 2 * rows * w);
        let into = pixels.as_mut_slice().into();
        match self {
            Plane::MosaicCells => frames.read_mosaic_rows(i, 2 * y0, 2 * rows, into),
            _ => frames.read_luminance_rows(i, 2 * y0, 2 * rows, into),
        }
        .into_result()?;
        cells_of(pixels, w, out);
        Ok(())
    }
}

/// A task's buffers: the rows of the plane scored and the pixel rows its
/// cells are read from (handed from task to task, freed with the stage).
type Rows = Lender<(Vec<f32>, Vec<f32>)>;

/// The 2×2 cells of pixel rows (`w` wide, an even count) into `out`
/// (`w / 2` a row): `((a + b) + c + d) / 4` of each cell's samples in row
/// order, as `shaders/quality.wgsl` sums them.
pub fn cells_of(pixels: &[f32], w: usize, out: &mut [f32]) {
    let cw = w / 2;
    if cw == 0 {
        return;
    }
    for (pair, o) in pixels.chunks_exact(2 * w).zip(out.chunks_exact_mut(cw)) {
        let (a, b) = pair.split_at(w);
        for (x, v) in o.iter_mut().enumerate() {
            *v = (a[2 * x] + a[2 * x + 1] + b[2 * x] + b[2 * x + 1]) * 0.25;
        }
    }
}

/// [`score_plane`] of frame `i`'s `plane` (`w × h` its size), read and
/// scored in bands of rows in parallel on the pool: no plane of the whole
/// frame, and the decoding spread over the threads. Each band reads its
/// rows and the filter's margin; its sums are added in band order (the
/// score equals `score_plane`'s up to the order of the sums).
fn score_frame_in_bands(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    (i, plane): (usize, Plane),
    (w, h): (usize, usize),
    p: &QualityParams,
    bands: &Rows,
) -> Result<f32, StageError> {
    if p.prefilter_sigma <= 0.0 {
        let mut whole = vec![0.0; w * h];
        plane.read(frames, (i, 0, h), &mut whole, &mut Vec::new())?;
        return Ok(score_plane(&whole, w, h, p));
    }
    let kernel = conv::gaussian_kernel(p.prefilter_sigma);
    let r = kernel.len() / 2;
    let parts = ctx.par_map(h.div_ceil(BAND_ROWS), |b| {
        let own = b * BAND_ROWS..((b + 1) * BAND_ROWS).min(h);
        let (lo, hi) = (own.start.saturating_sub(1 + r), (own.end + 1 + r).min(h));
        bands.with(|(rows, pixels)| {
            jupiter_kit::mem::fit(rows, (hi - lo) * w);
            plane.read(frames, (i, lo, hi - lo), rows, pixels)?;
            let level = stats::mean(&rows[(own.start - lo) * w..(own.end - lo) * w])
                * (own.len() * w) as f64;
            // Interior rows of the frame (1 .. h − 1) this band owns, in its rows.
            let (a, z) = (own.start.max(1), own.end.min(h.saturating_sub(1)));
            let ys = if a < z { a - lo..z - lo } else { 0..0 };
            Ok::<_, StageError>((
                band_sharpness(rows, w, hi - lo, &kernel, ys, p.metric),
                level,
            ))
        })
    })?;
    let (mut total, mut level) = (Sharpness::new(w, p.metric), 0.0f64);
    for part in parts {
        let (sum, l) = part?;
        total.s += sum.s;
        total.s2 += sum.s2;
        level += l;
    }
    Ok(normalised(total.finish(h), p, || {
        level / (w * h).max(1) as f64
    }))
}

/// Scores every frame of the source, in parallel over frames.
pub fn score_all(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    p: &QualityParams,
) -> Result<Vec<f32>, StageError> {
    let info = frames.info();
    let plane = Plane::of(frames, p);
    let (w, h) = plane.dims((info.width as usize, info.height as usize));
    let p = &plane.params(p);
    let n = info.count as usize;
    // A plane of cells is read from four times its samples of pixels.
    let planes = if plane == Plane::Full { 1 } else { 5 };
    if w * h >= BANDED_PIXELS
        || jupiter_kit::align::frames_in_flight(ctx, w, h, planes) < ctx.threads()
    {
        // Large frames: in bands of rows, scored in parallel, each read
        // into a buffer a finished band handed back; no plane of the
        // whole frame (whose samples would be cold by the time the filter
        // reads them back).
        let bands = Lender::default();
        let mut scores = Vec::with_capacity(n);
        for i in 0..n {
            ctx.check_cancelled()?;
            scores.push(score_frame_in_bands(
                ctx,
                frames,
                (i, plane),
                (w, h),
                p,
                &bands,
            )?);
            ctx.progress(i as u64 + 1, n as u64);
        }
        return Ok(scores);
    }
    let planes = Rows::default();
    ctx.par_try_map(n, 16, |i| {
        planes.with(|(buf, pixels)| {
            jupiter_kit::mem::fit(buf, w * h);
            plane.read(frames, (i, 0, h), buf, pixels)?;
            Ok(score_plane(buf, w, h, p))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::MemFrames;
    use jupiter_plugin_api::testing::ThreadBackend;

    fn texture(w: usize, h: usize) -> Vec<f32> {
        (0..w * h)
            .map(|i| 0.5 + 0.3 * (((i % w) as f32 * 0.9).sin() * ((i / w) as f32 * 0.7).cos()))
            .collect()
    }

    #[test]
    fn a_frame_scored_in_bands_on_the_pool_scores_as_alone() {
        let (w, h) = (61, 3 * BAND_ROWS + 7);
        let frames = MemFrames::new(w as u32, h as u32, 1, vec![texture(w, h)]);
        let be = ThreadBackend::new(3);
        be.with_ctx("quality", |ctx| {
            for metric in [Metric::Laplacian, Metric::Tenengrad] {
                for normalize in [false, true] {
                    let p = QualityParams {
                        metric,
                        prefilter_sigma: 1.2,
                        normalize,
                        ..Default::default()
                    };
                    let alone = score_plane(&texture(w, h), w, h, &p);
                    let banded = score_frame_in_bands(
                        ctx,
                        &frames.as_ref(),
                        (0, Plane::Full),
                        (w, h),
                        &p,
                        &Lender::default(),
                    )
                    .unwrap();
                    // Only the order of the sums differs.
                    let rel = (alone - banded).abs() / alone.abs();
                    assert!(rel <= 1e-6, "{metric:?} {normalize}: {alone} vs {banded}");
                }
            }
        });
    }

    /// Frames are scored on 2×2 cells with half the prefilter, whole or in
    /// bands: of the luminance, or of a Bayer mosaic's samples (the
    /// pixels' own colours, summed as `cells_of` sums them); with `cells`
    /// off, on the full luminance.
    #[test]
    fn frames_are_scored_on_cells_of_the_luminance_or_the_mosaic() {
        let (w, h) = (46, 2 * BAND_ROWS + 22);
        let rgb: Vec<f32> = (0..w * h * 3)
            .map(|i| 0.5 + 0.4 * ((i as f32 * 0.37).sin() * ((i / (3 * w)) as f32 * 0.5).cos()))
            .collect();
        let code = 97; // GRBG
        let plain = MemFrames::new(w as u32, h as u32, 3, vec![rgb.clone()]);
        let mosaic = MemFrames::new(w as u32, h as u32, 3, vec![rgb.clone()]).with_mosaic(code);
        let own: Vec<f32> = (0..w * h)
            .map(|k| rgb[k * 3 + jupiter_plugin_api::mosaic_color(code, k % w, k / w)])
            .collect();
        let lum = jupiter_plugin_api::channel_mean(&rgb, 3);
        let cells = |px: &[f32]| {
            let mut c = vec![0.0; (w / 2) * (h / 2)];
            cells_of(px, w, &mut c);
            c
        };
        assert_eq!(
            cells(&own)[0],
            (own[0] + own[1] + own[w] + own[w + 1]) * 0.25
        );
        let p = QualityParams::default();
        let half = QualityParams {
            prefilter_sigma: p.prefilter_sigma / 2.0,
            ..p.clone()
        };
        let off = QualityParams {
            cells: false,
            ..p.clone()
        };
        let be = ThreadBackend::new(2);
        be.with_ctx("quality", |ctx| {
            for (src, plane, px) in [
                (mosaic.as_ref(), Plane::MosaicCells, &own),
                (plain.as_ref(), Plane::Cells, &lum),
            ] {
                let want = score_plane(&cells(px), w / 2, h / 2, &half);
                assert_eq!(Plane::of(&src, &p), plane);
                assert_eq!(score_all(ctx, &src, &p).unwrap(), vec![want]);
                let banded = score_frame_in_bands(
                    ctx,
                    &src,
                    (0, plane),
                    (w / 2, h / 2),
                    &half,
                    &Lender::default(),
                )
                .unwrap();
                assert!(
                    (banded - want).abs() <= 1e-6 * want.abs(),
                    "{plane:?}: {banded} vs {want}"
                );
                assert_eq!(Plane::of(&src, &off), Plane::Full);
                assert_eq!(
                    score_all(ctx, &src, &off).unwrap(),
                    vec![score_plane(&lum, w, h, &p)]
                );
            }
        });
    }

    #[test]
    fn blur_lowers_the_score_for_both_metrics() {
        let (w, h) = (64, 48);
        let sharp = texture(w, h);
        let be = ThreadBackend::new(2);
        let soft = be
            .with_ctx("t", |ctx| conv::gaussian_blur(ctx, &sharp, w, h, 1.5))
            .unwrap();
        let softer = be
            .with_ctx("t", |ctx| conv::gaussian_blur(ctx, &sharp, w, h, 3.0))
            .unwrap();
        for metric in [Metric::Laplacian, Metric::Tenengrad] {
            let p = QualityParams {
                metric,
                ..Default::default()
            };
            let (a, b, c) = (
                score_plane(&sharp, w, h, &p),
                score_plane(&soft, w, h, &p),
                score_plane(&softer, w, h, &p),
            );
            assert!(a > b && b > c, "{metric:?}: {a} {b} {c}");
        }
    }

    #[test]
    fn the_streamed_prefilter_scores_what_the_whole_plane_scores() {
        let (w, h) = (41, 29);
        let lum = texture(w, h);
        for metric in [Metric::Laplacian, Metric::Tenengrad] {
            for sigma in [0.7f32, 1.0, 2.5] {
                let mut filtered = vec![0.0; w * h];
                let kernel = conv::gaussian_kernel(sigma);
                conv::separable_serial(&lum, w, h, &kernel, 1, &mut filtered);
                let p = QualityParams {
                    metric,
                    prefilter_sigma: sigma,
                    normalize: false,
                    ..Default::default()
                };
                let want = sharpness(&filtered, w, h, metric) as f32;
                assert_eq!(
                    score_plane(&lum, w, h, &p),
                    want,
                    "{metric:?} sigma {sigma}"
                );
            }
        }
    }

    #[test]
    fn normalisation_ignores_brightness() {
        let (w, h) = (32, 32);
        let a = texture(w, h);
        let dim: Vec<f32> = a.iter().map(|v| v * 0.5).collect();
        let p = QualityParams::default();
        let (sa, sd) = (score_plane(&a, w, h, &p), score_plane(&dim, w, h, &p));
        assert!((sa - sd).abs() / sa < 1e-4, "{sa} vs {sd}");
    }

    #[test]
    fn scores_every_frame_in_order() {
        let (w, h) = (32, 24);
        let be = ThreadBackend::new(2);
        let sharp = texture(w, h);
        let soft = be
            .with_ctx("t", |ctx| conv::gaussian_blur(ctx, &sharp, w, h, 2.0))
            .unwrap();
        let frames = MemFrames::new(
            w as u32,
            h as u32,
            1,
            vec![soft.clone(), sharp.clone(), soft],
        );
        let scores = be
            .with_ctx("quality", |ctx| {
                score_all(ctx, &frames.as_ref(), &QualityParams::default())
            })
            .unwrap();
        assert_eq!(scores.len(), 3);
        assert!(scores[1] > scores[0] && (scores[0] - scores[2]).abs() < 1e-6);
    }
}
