//! The flat's gain: `1 / normalised(flat − flat-dark)`, each colour of a
//! mosaic (and each channel of RGB frames) normalised to its own mean, so
//! that the flat corrects vignetting and dust without tinting the image
//! with the flat light's colour.

use super::Layout;

/// A normalised flat below this is a dead pixel (or a dust speck so dark
/// the division would only amplify noise): it is repaired like a hot pixel
/// and left undivided.
pub const MIN_FLAT: f32 = 0.05;

/// The per-sample gain of a flat (`flat − dark` when a flat-dark or bias
/// is given) and the samples too dark to divide by (sorted). An error
/// names the colour with no signal.
pub fn flat_gain(
    flat: &[f32],
    dark: Option<&[f32]>,
    layout: &Layout,
) -> Result<(Vec<f32>, Vec<usize>), String> {
    let signal: Vec<f32> = match dark {
        Some(d) => flat.iter().zip(d).map(|(f, d)| f - d).collect(),
        None => flat.to_vec(),
    };
    let means = class_means(&signal, layout);
    if let Some(k) = means.iter().position(|m| m.is_nan() || *m <= 0.0) {
        return Err(format!(
            "the flat{} has no signal in {} (mean {:.4})",
            if dark.is_some() {
                " minus its dark"
            } else {
                ""
            },
            layout.class_name(k),
            means[k]
        ));
    }
    let mut dead = Vec::new();
    let gain = signal
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let norm = s / means[layout.class_of(i)];
            if norm.is_finite() && norm >= MIN_FLAT {
                1.0 / norm
            } else {
                dead.push(i);
                1.0
            }
        })
        .collect();
    Ok((gain, dead))
}

/// The mean of each colour class (see [`Layout::class_of`]).
pub fn class_means(data: &[f32], layout: &Layout) -> Vec<f32> {
    let mut sum = vec![0.0f64; layout.classes()];
    let mut n = vec![0usize; layout.classes()];
    for (i, v) in data.iter().enumerate() {
        let k = layout.class_of(i);
        sum[k] += *v as f64;
        n[k] += 1;
    }
    sum.iter()
        .zip(&n)
        .map(|(s, n)| (s / (*n).max(1) as f64) as f32)
        .collect()
}
