//! Bilinear debayering of Bayer mosaics to interleaved RGB.

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
    for oy in 0..rows {
        let y = y0 + oy;
        for x in 0..width {
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
            let o = (oy * width + x) * 3;
            for c in 0..3 {
                out[o + c] = if c == own {
                    raw[(y - raw_y0) * width + x]
                } else if cnt[c] > 0 {
                    sum[c] / cnt[c] as f32
                } else {
                    0.0
                };
            }
        }
    }
}
