//! Demosaicing of Bayer mosaics to interleaved RGB: bilinear (3×3, one
//! raw row of margin) or Malvar–He–Cutler (MHC, 5×5 gradient-corrected,
//! two rows of margin), chosen by [`Demosaic`] (`--demosaic`).

/// The 2×2 colour filter layout, named by its top-left row pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum BayerPattern {
    Rggb,
    Grbg,
    Gbrg,
    Bggr,
}

impl BayerPattern {
    pub fn name(self) -> &'static str {
        match self {
            BayerPattern::Rggb => "BAYER_RGGB",
            BayerPattern::Grbg => "BAYER_GRBG",
            BayerPattern::Gbrg => "BAYER_GBRG",
            BayerPattern::Bggr => "BAYER_BGGR",
        }
    }
    /// Every pattern, in the order SER numbers them.
    pub const ALL: [BayerPattern; 4] = [
        BayerPattern::Rggb,
        BayerPattern::Grbg,
        BayerPattern::Gbrg,
        BayerPattern::Bggr,
    ];
    /// The four letters (`RGGB`), as `--bayer` and FITS `BAYERPAT` spell it.
    pub fn short_name(self) -> &'static str {
        &self.name()[6..]
    }
    /// Parses `RGGB`, `grbg`, … (what `--bayer`, the pipeline's `bayer` key
    /// and FITS `BAYERPAT` hold); `None` for anything else.
    pub fn parse(s: &str) -> Option<BayerPattern> {
        let s = s.trim();
        BayerPattern::ALL
            .into_iter()
            .find(|p| p.short_name().eq_ignore_ascii_case(s))
    }
    /// Colour (0 = R, 1 = G, 2 = B) of the filter over pixel `(x, y)`.
    pub fn color_at(self, x: usize, y: usize) -> usize {
        let layout: [usize; 4] = match self {
            BayerPattern::Rggb => [0, 1, 1, 2],
            BayerPattern::Grbg => [1, 0, 2, 1],
            BayerPattern::Gbrg => [1, 2, 0, 1],
            BayerPattern::Bggr => [2, 1, 1, 0],
        };
        layout[(y % 2) * 2 + (x % 2)]
    }
    /// The pattern as one word: the colour of pixel `(x, y)` of a 2×2 cell
    /// in bits `2 · (x + 2y)` (how `decode.wgsl` and stages read it, see
    /// [`jupiter_plugin_api::mosaic_color`]).
    pub fn code(self) -> u32 {
        (0..4).fold(0, |acc, i| {
            acc | ((self.color_at(i % 2, i / 2) as u32) << (2 * i))
        })
    }
}

/// How a Bayer mosaic is turned into RGB (`--demosaic`, the pipeline's
/// `demosaic` key). `Mhc` is the default: on the synthetic Bayer captures
/// with known truth it beats bilinear (docs/BENCHMARKS.md, "Demosaic").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Demosaic {
    /// Mean of the nearest samples of each colour (3×3).
    Bilinear,
    /// Malvar, He & Cutler (2004), "High-quality linear interpolation for
    /// demosaicing of Bayer-patterned color images": bilinear corrected by
    /// the own-colour Laplacian (5×5 kernels).
    #[default]
    Mhc,
}

impl Demosaic {
    /// Raw rows needed above and below the output rows: the kernel's reach.
    /// Every banded reader (capture, SER, calibration) pads by this.
    pub fn margin(self) -> usize {
        match self {
            Demosaic::Bilinear => 1,
            Demosaic::Mhc => 2,
        }
    }
    /// The name `--demosaic` and the `demosaic` key take.
    pub fn name(self) -> &'static str {
        match self {
            Demosaic::Bilinear => "bilinear",
            Demosaic::Mhc => "mhc",
        }
    }
    /// Parses `bilinear` or `mhc` (any case).
    pub fn parse(s: &str) -> Option<Demosaic> {
        [Demosaic::Bilinear, Demosaic::Mhc]
            .into_iter()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
    }
}

/// Demosaics output rows `y0 .. y0 + rows` with `method`; `raw` holds
/// mosaic rows `raw_y0 ..`, with [`Demosaic::margin`] rows above and below
/// the output rows where the image has them. Arguments as [`debayer_rows`].
#[allow(clippy::too_many_arguments)]
pub fn demosaic_rows(
    method: Demosaic,
    raw: &[f32],
    width: usize,
    height: usize,
    raw_y0: usize,
    pattern: BayerPattern,
    y0: usize,
    rows: usize,
    out: &mut [f32],
) {
    match method {
        Demosaic::Bilinear => debayer_rows(raw, width, height, raw_y0, pattern, y0, rows, out),
        Demosaic::Mhc => mhc_rows(raw, width, height, raw_y0, pattern, y0, rows, out),
    }
}

/// Debayers output rows `y0 .. y0 + rows` of an image of `width × height`.
/// `raw` holds mosaic rows `raw_y0 ..` (at least one row above and below the
/// output rows where the image has them). Each output channel is the mean of
/// the nearest samples of that colour in the 3×3 neighbourhood (the pixel's
/// own sample when it has that colour): classic bilinear interpolation, with
/// edges handled by using only the neighbours that exist.
///
/// Preconditions (checked; a violation is a bug in the caller and panics with
/// a message): `raw` holds whole rows covering at least `y0 .. y0 + rows`,
/// and `out` holds exactly `rows × width × 3` samples.
#[allow(clippy::too_many_arguments)]
pub fn debayer_rows(
    raw: &[f32],
    width: usize,
    height: usize,
    raw_y0: usize,
    pattern: BayerPattern,
    y0: usize,
    rows: usize,
    out: &mut [f32],
) {
    if width == 0 || rows == 0 {
        return;
    }
    let raw_rows = raw.len() / width;
    assert!(
        raw_rows * width == raw.len() && raw_y0 <= y0 && y0 + rows <= raw_y0 + raw_rows && y0 + rows <= height && out.len() == rows * width * 3,
        "debayer_rows: raw rows {raw_y0}..{} of width {width} do not cover output rows {y0}..{} of height {height}, or out has {} samples",
        raw_y0 + raw_rows,
        y0 + rows,
        out.len()
    );
    let raw_end = raw_y0 + raw_rows;
    for oy in 0..rows {
        let y = y0 + oy;
        let o_row = &mut out[oy * width * 3..(oy + 1) * width * 3];
        // Rows with a raw row above and below: fixed neighbour sets for
        // every pixel but the first and last (same sums, same order as the
        // per-pixel form, so the results are identical).
        if y >= 1 && y + 1 < height && y > raw_y0 && y + 1 < raw_end && width >= 3 {
            let row = |yy: usize| &raw[(yy - raw_y0) * width..(yy - raw_y0 + 1) * width];
            let (up, mid, dn) = (row(y - 1), row(y), row(y + 1));
            // Green at odd x or at even x, and the row's other colour:
            // four row kinds, each with its colour indices fixed at compile time.
            let green_odd = pattern.color_at(1, y) == 1;
            let rb = if green_odd {
                pattern.color_at(0, y)
            } else {
                pattern.color_at(1, y)
            };
            match (green_odd, rb) {
                (true, 0) => interior_row::<true, 0>(up, mid, dn, o_row),
                (true, _) => interior_row::<true, 2>(up, mid, dn, o_row),
                (false, 0) => interior_row::<false, 0>(up, mid, dn, o_row),
                (false, _) => interior_row::<false, 2>(up, mid, dn, o_row),
            }
            for x in [0, width - 1] {
                let px = pixel(raw, width, height, raw_y0, raw_rows, pattern, x, y);
                o_row[x * 3..x * 3 + 3].copy_from_slice(&px);
            }
        } else {
            for x in 0..width {
                let px = pixel(raw, width, height, raw_y0, raw_rows, pattern, x, y);
                o_row[x * 3..x * 3 + 3].copy_from_slice(&px);
            }
        }
    }
}

/// Pixels `1 .. width - 1` of one output row from the raw rows above, at
/// and below it. `GREEN_ODD`: green sits at odd x; `RB`: the row's other
/// colour (0 = R, 2 = B), so its column neighbours have colour `2 - RB`.
/// The sums are those of [`pixel`] in the same order (samples are never
/// -0.0, so leaving out its leading `0.0 +` changes nothing).
#[inline(always)]
fn interior_row<const GREEN_ODD: bool, const RB: usize>(
    up: &[f32],
    mid: &[f32],
    dn: &[f32],
    out: &mut [f32],
) {
    let w = mid.len();
    assert!(up.len() == w && dn.len() == w && out.len() == 3 * w && w >= 3);
    let green = |x: usize, px: &mut [f32]| green_px::<RB>(up, mid, dn, x, px);
    let red_blue = |x: usize, px: &mut [f32]| red_blue_px::<RB>(up, mid, dn, x, px);
    // Pairs (x, x + 1) starting at x = 1 (odd), then a last odd pixel.
    let pairs = (w - 2) / 2;
    for (k, pair) in out[3..3 + 6 * pairs].chunks_exact_mut(6).enumerate() {
        let x = 1 + 2 * k;
        let (a, b) = pair.split_at_mut(3);
        if GREEN_ODD {
            green(x, a);
            red_blue(x + 1, b);
        } else {
            red_blue(x, a);
            green(x + 1, b);
        }
    }
    if (w - 2) % 2 == 1 {
        let x = w - 2;
        let px = &mut out[3 * x..3 * x + 3];
        if GREEN_ODD {
            green(x, px);
        } else {
            red_blue(x, px);
        }
    }
}

/// A green pixel at `x` of a row whose other colour is `RB`.
#[inline(always)]
fn green_px<const RB: usize>(up: &[f32], mid: &[f32], dn: &[f32], x: usize, px: &mut [f32]) {
    px[1] = mid[x];
    px[RB] = (mid[x - 1] + mid[x + 1]) / 2.0;
    px[2 - RB] = (up[x] + dn[x]) / 2.0;
}

/// A pixel of colour `RB` at `x`.
#[inline(always)]
fn red_blue_px<const RB: usize>(up: &[f32], mid: &[f32], dn: &[f32], x: usize, px: &mut [f32]) {
    px[RB] = mid[x];
    px[1] = (up[x] + mid[x - 1] + mid[x + 1] + dn[x]) / 4.0;
    px[2 - RB] = (up[x - 1] + up[x + 1] + dn[x - 1] + dn[x + 1]) / 4.0;
}

/// One output pixel by the general rule (any position, edges included).
#[allow(clippy::too_many_arguments)]
fn pixel(
    raw: &[f32],
    width: usize,
    height: usize,
    raw_y0: usize,
    raw_rows: usize,
    pattern: BayerPattern,
    x: usize,
    y: usize,
) -> [f32; 3] {
    let own = pattern.color_at(x, y);
    let mut sum = [0.0f32; 3];
    let mut cnt = [0u32; 3];
    for dy in -1isize..=1 {
        let yy = y as isize + dy;
        if yy < 0
            || yy >= height as isize
            || (yy as usize) < raw_y0
            || (yy as usize) >= raw_y0 + raw_rows
        {
            continue;
        }
        for dx in -1isize..=1 {
            let xx = x as isize + dx;
            if xx < 0 || xx >= width as isize {
                continue;
            }
            let c = pattern.color_at(xx as usize, yy as usize);
            // Only the nearest samples: direct neighbours for G, and for
            // R/B the 4 diagonals or the 2 same-row/column neighbours.
            let v = raw[(yy as usize - raw_y0) * width + xx as usize];
            if dx == 0 && dy == 0 {
                sum[c] += v;
                cnt[c] += 1;
            } else if c != own {
                if c == 1 && dx != 0 && dy != 0 {
                    continue; // diagonal greens are farther than the 4 direct ones
                }
                sum[c] += v;
                cnt[c] += 1;
            }
        }
    }
    let mut px = [0.0f32; 3];
    for c in 0..3 {
        px[c] = if c == own {
            raw[(y - raw_y0) * width + x]
        } else if cnt[c] > 0 {
            sum[c] / cnt[c] as f32
        } else {
            0.0
        };
    }
    px
}

/// Index `i` reflected into `0 .. n` about the edge samples (-1 → 1,
/// n → n - 2): a reflection by an even step keeps the Bayer colour of
/// the sample, so MHC's kernels see the colours they expect. Clamped
/// for images under 3 samples a side. `decode.wgsl` mirrors the same way.
fn mirror(i: isize, n: usize) -> usize {
    let last = n as isize - 1;
    let i = if i < 0 { -i } else { i };
    let i = if i > last { 2 * last - i } else { i };
    i.clamp(0, last.max(0)) as usize
}

/// Malvar–He–Cutler demosaic of output rows `y0 .. y0 + rows` (arguments
/// as [`debayer_rows`]; `raw` needs two rows of margin). Samples beyond
/// the image are mirrored ([`mirror`]); results are clamped to `[0, 1]`
/// (the kernels overshoot at sharp edges, like any sharpening filter).
#[allow(clippy::too_many_arguments)]
pub fn mhc_rows(
    raw: &[f32],
    width: usize,
    height: usize,
    raw_y0: usize,
    pattern: BayerPattern,
    y0: usize,
    rows: usize,
    out: &mut [f32],
) {
    assert_eq!(
        out.len(),
        rows * width * 3,
        "mhc_rows: out has {} samples",
        out.len()
    );
    let mut interior = MhcRow::default();
    mhc_walk(raw, width, height, raw_y0, pattern, y0, rows, |oy, px| {
        let o_row = &mut out[oy * width * 3..(oy + 1) * width * 3];
        match px {
            MhcOut::Edge { x, rgb } => o_row[3 * x..3 * x + 3].copy_from_slice(&rgb),
            MhcOut::Interior { window, colors } => {
                let m = width - 4;
                interior.fill(&window, width);
                let sources = [
                    interior.sources(&window, colors, 0),
                    interior.sources(&window, colors, 1),
                ];
                jupiter_plugin_api::simd::wide(
                    #[inline(always)]
                    || interleave_pairs(sources, &mut o_row[6..6 + 3 * m]),
                );
            }
        }
    });
}

/// Writes pixel `i` of `out` (3 channels, interleaved) from `sources[i %
/// 2]` (per channel, index `i`), clamped to `[0, 1]`: two pixels (six
/// samples) per step, each parity from its own slices, so that the loop
/// needs no per-pixel choice of source.
#[inline(always)]
fn interleave_pairs(sources: [[&[f32]; 3]; 2], out: &mut [f32]) {
    let m = out.len() / 3;
    let [[e0, e1, e2], [o0, o1, o2]] = sources.map(|s| s.map(|c| &c[..m]));
    let c = |v: f32| v.clamp(0.0, 1.0);
    for (j, o) in out.chunks_exact_mut(6).enumerate() {
        let (a, b) = (2 * j, 2 * j + 1);
        o[0] = c(e0[a]);
        o[1] = c(e1[a]);
        o[2] = c(e2[a]);
        o[3] = c(o0[b]);
        o[4] = c(o1[b]);
        o[5] = c(o2[b]);
    }
    if m % 2 == 1 {
        let a = m - 1;
        out[3 * a..].copy_from_slice(&[c(e0[a]), c(e1[a]), c(e2[a])]);
    }
}

/// The luminance of [`mhc_rows`]' output (the mean of the three clamped
/// channels, summed R, G, B as `channel_mean` sums them: bit for bit
/// `mhc_rows` then the mean), straight from the mosaic: no interleaved
/// rows written and read again. `out` holds `rows × width` samples.
#[allow(clippy::too_many_arguments)]
pub fn mhc_luminance_rows(
    raw: &[f32],
    width: usize,
    height: usize,
    raw_y0: usize,
    pattern: BayerPattern,
    y0: usize,
    rows: usize,
    out: &mut [f32],
) {
    assert_eq!(
        out.len(),
        rows * width,
        "mhc_luminance_rows: out has {} samples",
        out.len()
    );
    mhc_walk(raw, width, height, raw_y0, pattern, y0, rows, |oy, px| {
        let o_row = &mut out[oy * width..(oy + 1) * width];
        match px {
            // Edge values arrive clamped; clamping again changes nothing.
            MhcOut::Edge { x, rgb } => o_row[x] = mean_clamped(rgb[0], rgb[1], rgb[2]),
            MhcOut::Interior { window, colors } => {
                let o = &mut o_row[2..width - 2];
                // The row's colour besides green, and whether green is at even x.
                let green_even = colors[0] == 1;
                match (green_even, colors[usize::from(green_even)]) {
                    (true, 0) => luminance_interior::<true, 0>(&window, o),
                    (true, _) => luminance_interior::<true, 2>(&window, o),
                    (false, 0) => luminance_interior::<false, 0>(&window, o),
                    (false, _) => luminance_interior::<false, 2>(&window, o),
                }
            }
        }
    });
}

/// The interior of one row of [`mhc_luminance_rows`] in one pass: the
/// kernels and both parities' channel means per column, nothing stored
/// between them (`out[i]` is column `i + 2`). `GREEN_EVEN`: green sits at
/// even columns; `RB`: the row's other colour (0 red, 2 blue).
#[inline(always)]
fn luminance_interior<const GREEN_EVEN: bool, const RB: usize>(
    window: &[&[f32]; 5],
    out: &mut [f32],
) {
    let nb = Neighbours::of(window, out.len());
    jupiter_plugin_api::simd::wide(
        #[inline(always)]
        || {
            let nb = nb.cut(out.len());
            for (i, o) in out.iter_mut().enumerate() {
                let (ctr, [hz, vt, gr, op]) = nb.kernels(i);
                // Summed R, G, B, as `mhc_rows` lays the channels out.
                let (green, colour) = if RB == 0 {
                    (mean_clamped(hz, ctr, vt), mean_clamped(ctr, gr, op))
                } else {
                    (mean_clamped(vt, ctr, hz), mean_clamped(op, gr, ctr))
                };
                *o = if (i % 2 == 0) == GREEN_EVEN {
                    green
                } else {
                    colour
                };
            }
        },
    );
}

/// The mean of three channels clamped to `[0, 1]`, summed R, G, B.
#[inline(always)]
fn mean_clamped(r: f32, g: f32, b: f32) -> f32 {
    (r.clamp(0.0, 1.0) + g.clamp(0.0, 1.0) + b.clamp(0.0, 1.0)) / 3.0
}

/// What [`mhc_walk`] hands over for one output row.
enum MhcOut<'a> {
    /// A pixel within two columns of an edge, clamped to `[0, 1]`.
    Edge { x: usize, rgb: [f32; 3] },
    /// Columns `2 .. width − 2` (`width > 4`): the five raw rows around
    /// the row (`window[2]` the row itself) and its colours at even and
    /// odd x.
    Interior {
        window: [&'a [f32]; 5],
        colors: [usize; 2],
    },
}

/// The MHC demosaic's row walk shared by [`mhc_rows`] and
/// [`mhc_luminance_rows`]: for each output row `oy`, `emit` gets the edge
/// pixels and then the interior's kernel results.
#[allow(clippy::too_many_arguments)]
fn mhc_walk(
    raw: &[f32],
    width: usize,
    height: usize,
    raw_y0: usize,
    pattern: BayerPattern,
    y0: usize,
    rows: usize,
    mut emit: impl FnMut(usize, MhcOut),
) {
    if width == 0 || rows == 0 {
        return;
    }
    let raw_rows = raw.len() / width;
    let raw_end = raw_y0 + raw_rows;
    assert!(
        raw_rows * width == raw.len() && raw_y0 <= y0 && y0 + rows <= raw_end && y0 + rows <= height,
        "mhc_rows: raw rows {raw_y0}..{raw_end} of width {width} do not cover output rows {y0}..{} of height {height}",
        y0 + rows,
    );
    for oy in 0..rows {
        let y = y0 + oy;
        let window: [&[f32]; 5] = std::array::from_fn(|k| {
            let yy = mirror(y as isize + k as isize - 2, height);
            assert!(
                (raw_y0..raw_end).contains(&yy),
                "mhc_rows: row {yy} (for output row {y}) is outside the raw rows {raw_y0}..{raw_end}"
            );
            &raw[(yy - raw_y0) * width..(yy - raw_y0 + 1) * width]
        });
        // The row's two colours, at even and odd x.
        let colors = [pattern.color_at(0, y), pattern.color_at(1, y)];
        // Within 2 of an edge: mirrored columns.
        let edges = (0..width.min(2)).chain(width.saturating_sub(2).max(2)..width);
        for x in edges {
            let cols: [usize; 5] =
                std::array::from_fn(|k| mirror(x as isize + k as isize - 2, width));
            let rgb = mhc_px(
                |dy, dx| window[dy][cols[dx]],
                colors[x % 2],
                colors[(x + 1) % 2],
            );
            emit(
                oy,
                MhcOut::Edge {
                    x,
                    rgb: rgb.map(|v| v.clamp(0.0, 1.0)),
                },
            );
        }
        if width > 4 {
            emit(oy, MhcOut::Interior { window, colors });
        }
    }
}

/// The four MHC results of [`mhc_px`] along the interior of one row
/// (columns 2 .. width − 2, index x − 2): at a green pixel the colours of
/// its horizontal and vertical neighbours, at a red or blue one green and
/// the opposite colour.
#[derive(Default)]
struct MhcRow {
    horizontal: Vec<f32>,
    vertical: Vec<f32>,
    green: Vec<f32>,
    opposite: Vec<f32>,
}

impl MhcRow {
    /// From the five raw rows around it (`window[2]` the row itself).
    fn fill(&mut self, window: &[&[f32]; 5], width: usize) {
        let m = width - 4;
        for v in [
            &mut self.horizontal,
            &mut self.vertical,
            &mut self.green,
            &mut self.opposite,
        ] {
            v.resize(m, 0.0);
        }
        let (hz, vt) = (&mut self.horizontal[..m], &mut self.vertical[..m]);
        let (gr, op) = (&mut self.green[..m], &mut self.opposite[..m]);
        let nb = Neighbours::of(window, m);
        jupiter_plugin_api::simd::wide(
            #[inline(always)]
            || {
                let nb = nb.cut(m);
                for i in 0..m {
                    [hz[i], vt[i], gr[i], op[i]] = nb.kernels(i).1;
                }
            },
        );
    }

    /// For columns of parity `parity` (after [`fill`](Self::fill)), the
    /// slice each output channel comes from (index x − 2): each pixel takes
    /// the two kernel results its colour needs, as `mhc_px` computes them.
    fn sources<'a>(
        &'a self,
        window: &[&'a [f32]; 5],
        colors: [usize; 2],
        parity: usize,
    ) -> [&'a [f32]; 3] {
        let m = self.horizontal.len();
        let ctr = &window[2][2..2 + m];
        let (own, right) = (colors[parity], colors[1 - parity]);
        let mut s = [ctr; 3];
        if own == 1 {
            s[right] = &self.horizontal;
            s[2 - right] = &self.vertical;
        } else {
            s[1] = &self.green;
            s[2 - own] = &self.opposite;
        }
        s
    }
}

/// The interior of a row's five raw rows (`window[2]` the row itself) as
/// slices aligned with the centre, `m` long (index x − 2): each pixel's
/// neighbours at one index, so that loops over them vectorise.
struct Neighbours<'a> {
    /// Centre; left and right at 1; left and right at 2.
    c: &'a [f32],
    l1: &'a [f32],
    r1: &'a [f32],
    l2: &'a [f32],
    r2: &'a [f32],
    /// Up and down at 1 and at 2.
    u1: &'a [f32],
    d1: &'a [f32],
    u2: &'a [f32],
    d2: &'a [f32],
    /// The diagonals: up-left, up-right, down-left, down-right.
    diag: [&'a [f32]; 4],
}

impl<'a> Neighbours<'a> {
    fn of(window: &[&'a [f32]; 5], m: usize) -> Neighbours<'a> {
        let at = |dy: usize, dx: usize| &window[dy][dx..dx + m];
        Neighbours {
            c: at(2, 2),
            l1: at(2, 1),
            r1: at(2, 3),
            l2: at(2, 0),
            r2: at(2, 4),
            u1: at(1, 2),
            d1: at(3, 2),
            u2: at(0, 2),
            d2: at(4, 2),
            diag: [at(1, 1), at(1, 3), at(3, 1), at(3, 3)],
        }
    }

    /// Every slice cut to `m`: called in the loop's function, so that the
    /// compiler sees each length and checks no index in the loop.
    #[inline(always)]
    fn cut(&self, m: usize) -> Neighbours<'a> {
        let [ul, ur, dl, dr] = self.diag;
        Neighbours {
            c: &self.c[..m],
            l1: &self.l1[..m],
            r1: &self.r1[..m],
            l2: &self.l2[..m],
            r2: &self.r2[..m],
            u1: &self.u1[..m],
            d1: &self.d1[..m],
            u2: &self.u2[..m],
            d2: &self.d2[..m],
            diag: [&ul[..m], &ur[..m], &dl[..m], &dr[..m]],
        }
    }

    /// The centre sample at index `i` and [`mhc_kernels`] there, the
    /// neighbours summed as [`mhc_px`] sums them.
    #[inline(always)]
    fn kernels(&self, i: usize) -> (f32, [f32; 4]) {
        let ctr = self.c[i];
        let h1 = self.l1[i] + self.r1[i];
        let v1 = self.u1[i] + self.d1[i];
        let h2 = self.l2[i] + self.r2[i];
        let v2 = self.u2[i] + self.d2[i];
        let [ul, ur, dl, dr] = self.diag;
        let diag = ul[i] + ur[i] + dl[i] + dr[i];
        (ctr, mhc_kernels(ctr, [h1, v1], [h2, v2], diag))
    }
}

/// MHC's four kernels (coefficients /8) from the centre sample and the
/// sums of its neighbours: `near` = horizontal and vertical ones at
/// distance 1, `far` = at distance 2, `diag` = the four diagonal ones.
/// Returns the horizontal neighbours' colour and the vertical neighbours'
/// colour at a green pixel, then green and the opposite colour at a red or
/// blue one.
#[inline(always)]
fn mhc_kernels(ctr: f32, [h1, v1]: [f32; 2], [h2, v2]: [f32; 2], diag: f32) -> [f32; 4] {
    [
        (5.0 * ctr + 4.0 * h1 - diag - h2 + 0.5 * v2) / 8.0,
        (5.0 * ctr + 4.0 * v1 - diag - v2 + 0.5 * h2) / 8.0,
        (4.0 * ctr + 2.0 * (h1 + v1) - (h2 + v2)) / 8.0,
        (6.0 * ctr + 2.0 * diag - 1.5 * (h2 + v2)) / 8.0,
    ]
}

/// The MHC kernels (coefficients /8) at one pixel: `at(dy, dx)` the sample
/// at row y-2+dy, column x-2+dx (both 0 ..= 4), `own` the pixel's colour
/// and `right` the colour of its right-hand neighbour (for a green pixel,
/// the colour interpolated horizontally). Sums in the order `decode.wgsl`
/// makes them.
#[inline(always)]
fn mhc_px(at: impl Fn(usize, usize) -> f32, own: usize, right: usize) -> [f32; 3] {
    let ctr = at(2, 2);
    let h1 = at(2, 1) + at(2, 3);
    let v1 = at(1, 2) + at(3, 2);
    let h2 = at(2, 0) + at(2, 4);
    let v2 = at(0, 2) + at(4, 2);
    let diag = at(1, 1) + at(1, 3) + at(3, 1) + at(3, 3);
    let [hz, vt, gr, op] = mhc_kernels(ctr, [h1, v1], [h2, v2], diag);
    let mut px = [0.0f32; 3];
    px[own] = ctr;
    if own == 1 {
        // Green: the horizontal neighbours' colour, then the vertical's.
        px[right] = hz;
        px[2 - right] = vt;
    } else {
        px[1] = gr;
        px[2 - own] = op;
    }
    px
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_fast_path_equals_the_per_pixel_rule_bit_for_bit() {
        let patterns = [
            BayerPattern::Rggb,
            BayerPattern::Grbg,
            BayerPattern::Gbrg,
            BayerPattern::Bggr,
        ];
        for (w, h) in [(7usize, 6usize), (2, 5), (16, 9), (3, 3), (1, 4)] {
            let raw: Vec<f32> = (0..w * h)
                .map(|i| ((i * 7919 % 1009) as f32) / 1009.0)
                .collect();
            for p in patterns {
                // Whole image, and windows of rows (as decode_rows asks).
                for (y0, rows) in [(0, h), (1, h - 2), (h - 1, 1), (0, 1), (h / 2, 1)] {
                    let lo = y0.saturating_sub(1);
                    let hi = (y0 + rows + 1).min(h);
                    let win = &raw[lo * w..hi * w];
                    let mut out = vec![0.0; rows * w * 3];
                    debayer_rows(win, w, h, lo, p, y0, rows, &mut out);
                    for r in 0..rows {
                        for x in 0..w {
                            let want = pixel(win, w, h, lo, hi - lo, p, x, y0 + r);
                            let got = &out[(r * w + x) * 3..(r * w + x) * 3 + 3];
                            assert_eq!(got, want, "{p:?} {w}×{h} pixel ({x}, {})", y0 + r);
                        }
                    }
                }
            }
        }
    }

    /// A mosaic of per-colour planes `f(colour, x, y)` under `p`.
    fn mosaic(
        w: usize,
        h: usize,
        p: BayerPattern,
        f: impl Fn(usize, usize, usize) -> f32,
    ) -> Vec<f32> {
        (0..w * h)
            .map(|i| f(p.color_at(i % w, i / w), i % w, i / w))
            .collect()
    }

    fn run(m: Demosaic, raw: &[f32], w: usize, h: usize, p: BayerPattern) -> Vec<f32> {
        let mut out = vec![0.0; w * h * 3];
        demosaic_rows(m, raw, w, h, 0, p, 0, h, &mut out);
        out
    }

    #[test]
    fn mhc_reproduces_flat_colours_everywhere_and_linear_gradients_away_from_the_edges() {
        let (w, h) = (12usize, 10usize);
        // Multiples of 1/1024 below 1: every kernel sum is exact in f32.
        let flat = |c: usize, _: usize, _: usize| [0.25, 0.5, 0.75][c];
        let ramp = |c: usize, x: usize, y: usize| {
            ([64.0, 200.0, 400.0][c]
                + [3.0, 5.0, 7.0][c] * x as f32
                + [8.0, 2.0, 4.0][c] * y as f32)
                / 1024.0
        };
        for p in BayerPattern::ALL {
            let out = run(Demosaic::Mhc, &mosaic(w, h, p, flat), w, h, p);
            for (i, px) in out.chunks_exact(3).enumerate() {
                assert_eq!(px, [0.25, 0.5, 0.75], "{p:?} flat at {i}");
            }
            let out = run(Demosaic::Mhc, &mosaic(w, h, p, ramp), w, h, p);
            for y in 2..h - 2 {
                for x in 2..w - 2 {
                    let want: [f32; 3] = std::array::from_fn(|c| ramp(c, x, y));
                    assert_eq!(
                        &out[(y * w + x) * 3..(y * w + x) * 3 + 3],
                        want,
                        "{p:?} ramp at ({x}, {y})"
                    );
                }
            }
        }
    }

    #[test]
    fn mhc_beats_bilinear_on_a_sharp_pattern() {
        // A disc with a sharp limb and fine stripes, grey (the colours equal):
        // where bilinear leaves colour fringes, MHC's gradient term removes them.
        let (w, h) = (64usize, 48usize);
        let truth = |x: usize, y: usize| {
            let (dx, dy) = (x as f32 - 30.3, y as f32 - 22.7);
            let disc = if dx * dx + dy * dy < 18.0 * 18.0 {
                0.7
            } else {
                0.1
            };
            disc + 0.2 * ((x as f32 * 0.9).sin() * (y as f32 * 0.6).cos()).abs()
        };
        for p in BayerPattern::ALL {
            let raw = mosaic(w, h, p, |_, x, y| truth(x, y));
            let err = |m| {
                let out = run(m, &raw, w, h, p);
                let mut se = 0.0f64;
                for y in 2..h - 2 {
                    for x in 2..w - 2 {
                        for c in 0..3 {
                            se += (out[(y * w + x) * 3 + c] - truth(x, y)).powi(2) as f64;
                        }
                    }
                }
                se
            };
            let (bl, mhc) = (err(Demosaic::Bilinear), err(Demosaic::Mhc));
            assert!(
                mhc < 0.7 * bl,
                "{p:?}: MHC squared error {mhc} vs bilinear {bl}"
            );
        }
    }

    #[test]
    fn mhc_row_slices_equal_the_per_pixel_kernels_bit_for_bit() {
        for (w, h) in [(13usize, 9usize), (6, 5), (5, 6)] {
            let raw: Vec<f32> = (0..w * h)
                .map(|i| ((i * 7919 % 1009) as f32) / 1009.0 * 1.2 - 0.1)
                .collect();
            for p in BayerPattern::ALL {
                let got = run(Demosaic::Mhc, &raw, w, h, p);
                for y in 0..h {
                    for x in 0..w {
                        let at = |dy: usize, dx: usize| {
                            let yy = mirror(y as isize + dy as isize - 2, h);
                            raw[yy * w + mirror(x as isize + dx as isize - 2, w)]
                        };
                        let want = mhc_px(at, p.color_at(x, y), p.color_at(x + 1, y))
                            .map(|v| v.clamp(0.0, 1.0));
                        let i = 3 * (y * w + x);
                        assert_eq!(got[i..i + 3], want, "{p:?} {w}×{h} ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn mhc_bands_with_two_rows_of_margin_equal_the_whole_image() {
        let (w, h) = (9usize, 11usize);
        let raw: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919 % 1009) as f32) / 1009.0)
            .collect();
        for p in BayerPattern::ALL {
            let full = run(Demosaic::Mhc, &raw, w, h, p);
            for (y0, rows) in [(0, 1), (1, 2), (4, 3), (h - 1, 1), (h - 2, 2), (0, h)] {
                let m = Demosaic::Mhc.margin();
                let lo = y0.saturating_sub(m);
                let hi = (y0 + rows + m).min(h);
                let mut band = vec![0.0; rows * w * 3];
                demosaic_rows(
                    Demosaic::Mhc,
                    &raw[lo * w..hi * w],
                    w,
                    h,
                    lo,
                    p,
                    y0,
                    rows,
                    &mut band,
                );
                assert_eq!(
                    band,
                    full[y0 * w * 3..(y0 + rows) * w * 3],
                    "{p:?} rows {y0}+{rows}"
                );
            }
        }
        // Degenerate sizes do not panic.
        for (w, h) in [(1usize, 1usize), (2, 2), (1, 5), (5, 1), (3, 2)] {
            run(Demosaic::Mhc, &vec![0.5; w * h], w, h, BayerPattern::Rggb);
        }
    }

    #[test]
    fn mhc_luminance_is_the_channel_mean_of_the_demosaic_bit_for_bit() {
        // Values beyond [0, 1] so that the clamps matter; odd and even
        // widths, the degenerate ones, and bands with their margin.
        for (w, h) in [
            (13usize, 9usize),
            (6, 5),
            (5, 6),
            (4, 4),
            (1, 3),
            (2, 2),
            (3, 7),
        ] {
            let raw: Vec<f32> = (0..w * h)
                .map(|i| ((i * 7919 % 1009) as f32) / 1009.0 * 1.4 - 0.2)
                .collect();
            for p in BayerPattern::ALL {
                let want = jupiter_plugin_api::channel_mean(&run(Demosaic::Mhc, &raw, w, h, p), 3);
                for (y0, rows) in [(0, h), (h - 1, 1), (h / 2, h - h / 2)] {
                    let lo = y0.saturating_sub(2);
                    let hi = (y0 + rows + 2).min(h);
                    let mut got = vec![f32::NAN; rows * w];
                    mhc_luminance_rows(&raw[lo * w..hi * w], w, h, lo, p, y0, rows, &mut got);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(
                        bits(&got),
                        bits(&want[y0 * w..(y0 + rows) * w]),
                        "{p:?} {w}×{h} rows {y0}+{rows}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_method_names_parse_back() {
        for m in [Demosaic::Bilinear, Demosaic::Mhc] {
            assert_eq!(Demosaic::parse(&m.name().to_uppercase()), Some(m));
        }
        assert_eq!(Demosaic::parse("vng"), None);
    }

    /// Timing probe, not a check (`cargo test -p jupiter-host --lib
    /// demosaic_speed -- --ignored --nocapture`): ms per 1024² frame.
    #[test]
    #[ignore = "timing probe; run by hand"]
    fn demosaic_speed() {
        let (w, h) = (1024usize, 1024usize);
        let raw: Vec<f32> = (0..w * h)
            .map(|i| ((i * 7919 % 1009) as f32) / 1009.0)
            .collect();
        let mut out = vec![0.0; w * h * 3];
        for m in [Demosaic::Bilinear, Demosaic::Mhc] {
            let t = std::time::Instant::now();
            for _ in 0..10 {
                demosaic_rows(m, &raw, w, h, 0, BayerPattern::Rggb, 0, h, &mut out);
            }
            let ms = t.elapsed().as_secs_f64() * 100.0;
            eprintln!("{}: {ms:.2} ms per {w}×{h} frame (one thread)", m.name());
        }
        let mut lum = vec![0.0; w * h];
        let t = std::time::Instant::now();
        for _ in 0..10 {
            mhc_luminance_rows(&raw, w, h, 0, BayerPattern::Rggb, 0, h, &mut lum);
        }
        let ms = t.elapsed().as_secs_f64() * 100.0;
        eprintln!("mhc luminance: {ms:.2} ms per {w}×{h} frame (one thread)");
    }
}
