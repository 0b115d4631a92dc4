//! Hot pixels: found in the master dark (samples far above the median of
//! their same-colour neighbours, by a robust threshold) or, without a dark,
//! in the capture itself (samples that are such outliers in every one of a
//! few frames spread over it: a star or a limb moves, a hot pixel does
//! not); repaired in every frame with the median of their same-colour
//! neighbours that are not defective themselves.

use rayon::prelude::*;

use super::combine::median;
use super::{CalibrationError, Layout};
use crate::io::capture::CaptureFile;

/// A master dark's sample is hot this many robust standard deviations
/// (1.4826 × MAD of the residuals) above its neighbours' median.
pub const DARK_KAPPA: f32 = 8.0;

/// Without a dark: the threshold in each sampled frame (lower than the
/// dark's, since the sample must be an outlier in every frame).
pub const FRAME_KAPPA: f32 = 5.0;

/// The smallest robust deviation used (half an 8-bit step): a master of
/// many quantised frames can be so smooth that its MAD would make a pixel
/// a few tenths of a step high "hot"; weak warm pixels are taken care of
/// by the dark subtraction, the repair is for the strong ones.
pub const MIN_SIGMA: f32 = 0.5 / 255.0;

/// Frames looked at to find hot pixels without a dark.
pub const SAMPLED_FRAMES: usize = 8;

/// Each sample minus the median of its same-colour neighbours.
fn residuals(data: &[f32], layout: &Layout) -> Vec<f32> {
    let row = layout.width * layout.channels;
    let mut out = vec![0.0f32; data.len()];
    out.par_chunks_mut(row.max(1))
        .enumerate()
        .for_each(|(y, out_row)| {
            let mut near = Vec::with_capacity(24);
            for (j, o) in out_row.iter_mut().enumerate() {
                let i = y * row + j;
                near.clear();
                layout.neighbours(i, 0..layout.height, |n| near.push(data[n]));
                *o = data[i] - median(&mut near);
            }
        });
    out
}

/// Samples of `data` more than `kappa` robust standard deviations above
/// the median of their same-colour neighbours.
pub fn outliers(data: &[f32], layout: &Layout, kappa: f32) -> Vec<bool> {
    let r = residuals(data, layout);
    let mut sorted = r.clone();
    let centre = median(&mut sorted);
    let mut dev: Vec<f32> = r.iter().map(|v| (v - centre).abs()).collect();
    let mut sigma = 1.4826 * median(&mut dev);
    if sigma <= 0.0 {
        // Quantised, mostly flat data: the mean absolute deviation instead.
        sigma = 1.2533 * dev.iter().sum::<f32>() / dev.len().max(1) as f32;
    }
    let sigma = sigma.max(MIN_SIGMA);
    r.iter().map(|v| v - centre > kappa * sigma).collect()
}

/// The hot samples of a master dark (sorted indices).
pub fn hot_in_dark(dark: &[f32], layout: &Layout) -> Vec<usize> {
    indices(&outliers(dark, layout, DARK_KAPPA))
}

/// The samples that are outliers in every one of [`SAMPLED_FRAMES`] frames
/// spread over `file` (raw, uncalibrated).
pub fn hot_in_frames(file: &CaptureFile, layout: &Layout) -> Result<Vec<usize>, CalibrationError> {
    let n = file.frame_count();
    let picks: Vec<usize> = (0..SAMPLED_FRAMES.min(n))
        .map(|k| k * n / SAMPLED_FRAMES.min(n))
        .collect();
    let mut always = vec![true; layout.samples()];
    for &i in &picks {
        let mut frame = vec![0.0f32; layout.samples()];
        file.decode_raw_rows(i, 0, layout.height, &mut frame)?;
        for (a, o) in always.iter_mut().zip(outliers(&frame, layout, FRAME_KAPPA)) {
            *a &= o;
        }
    }
    Ok(indices(&always))
}

fn indices(mask: &[bool]) -> Vec<usize> {
    mask.iter()
        .enumerate()
        .filter_map(|(i, &m)| m.then_some(i))
        .collect()
}

/// Replaces each defective sample of rows `y0 .. y0 + rows` (held in
/// `raw`) with the median of its same-colour neighbours in those rows that
/// are not defective; `defects` sorted, `mask` marking them.
pub fn repair(
    raw: &mut [f32],
    y0: usize,
    rows: usize,
    layout: &Layout,
    defects: &[usize],
    mask: &[bool],
) {
    let row = layout.width * layout.channels;
    let base = y0 * row;
    let end = (y0 + rows) * row;
    let first = defects.partition_point(|&d| d < base);
    let mut near = Vec::with_capacity(24);
    for &d in defects[first..].iter().take_while(|&&d| d < end) {
        near.clear();
        layout.neighbours(d, y0..y0 + rows, |n| {
            if !mask[n] {
                near.push(raw[n - base]);
            }
        });
        if !near.is_empty() {
            raw[d - base] = median(&mut near);
        }
    }
}
