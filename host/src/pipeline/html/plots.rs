//! The report's plots, as SVG text drawn with `plotters`.

use plotters::prelude::*;

/// Plot size in px.
const SIZE: (u32, u32) = (640, 260);

type Result<T> = std::result::Result<T, String>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// Every frame's score in capture order, the kept frames marked, and the
/// selection threshold (the lowest kept score) as a line.
pub fn scores_in_order(scores: &[f32], selected: &[usize]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (lo, hi) = range(scores);
        let mut chart = ChartBuilder::on(&root)
            .caption("Quality by frame (capture order)", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f32..scores.len().max(1) as f32, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("frame")
            .y_desc("score")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                scores.iter().enumerate().map(|(i, &s)| (i as f32, s)),
                &RGBColor(120, 120, 120),
            ))
            .map_err(err)?;
        chart
            .draw_series(
                selected
                    .iter()
                    .map(|&i| Circle::new((i as f32, scores[i]), 2, BLUE.filled())),
            )
            .map_err(err)?
            .label(format!("kept ({})", selected.len()))
            .legend(|(x, y)| Circle::new((x, y), 3, BLUE.filled()));
        if let Some(t) = selected.iter().map(|&i| scores[i]).reduce(f32::min) {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, t), (scores.len() as f32, t)],
                    RED.stroke_width(1),
                ))
                .map_err(err)?
                .label("selection threshold")
                .legend(|(x, y)| PathElement::new([(x - 8, y), (x + 8, y)], RED));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Scores sorted best first, with the kept count marked (AutoStakkert!'s
/// graph: where the curve bends is how many frames are worth keeping).
pub fn scores_sorted(scores: &[f32], kept: usize) -> Result<String> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (lo, hi) = range(&sorted);
        let n = sorted.len().max(1) as f32;
        let mut chart = ChartBuilder::on(&root)
            .caption("Quality sorted (best first)", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f32..100f32, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("% of frames")
            .y_desc("score")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(LineSeries::new(
                sorted
                    .iter()
                    .enumerate()
                    .map(|(i, &s)| (100.0 * i as f32 / n, s)),
                BLUE.stroke_width(2),
            ))
            .map_err(err)?;
        let x = 100.0 * kept as f32 / n;
        chart
            .draw_series(LineSeries::new([(x, lo), (x, hi)], RED.stroke_width(1)))
            .map_err(err)?
            .label(format!("kept: {kept} frames ({x:.0} %)"))
            .legend(|(x, y)| PathElement::new([(x - 8, y), (x + 8, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// Histogram of the scores (32 bins).
pub fn histogram(scores: &[f32]) -> Result<String> {
    const BINS: usize = 32;
    let (lo, hi) = range(scores);
    let width = (hi - lo) / BINS as f32;
    let mut counts = [0u32; BINS];
    for &s in scores {
        let k = (((s - lo) / width) as usize).min(BINS - 1);
        counts[k] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Score histogram", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(lo..hi, 0u32..top + top / 10 + 1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("score")
            .y_desc("frames")
            .draw()
            .map_err(err)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(k, &c)| {
                let x0 = lo + k as f32 * width;
                Rectangle::new([(x0, 0), (x0 + width, c)], BLUE.mix(0.6).filled())
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The kept frames' global shifts against their capture index: the
/// tracking drift and the jitter.
pub fn shifts(selected: &[usize], shifts: &[[f32; 2]]) -> Result<String> {
    let mut pts: Vec<(usize, [f32; 2])> = selected
        .iter()
        .copied()
        .zip(shifts.iter().copied())
        .collect();
    pts.sort_by_key(|p| p.0);
    let all: Vec<f32> = pts.iter().flat_map(|p| p.1).collect();
    let (lo, hi) = range(&all);
    let last = pts.last().map_or(1, |p| p.0 + 1) as f32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Global shift of the kept frames", ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f32..last, lo..hi)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("frame")
            .y_desc("shift (px)")
            .draw()
            .map_err(err)?;
        for (axis, color, name) in [(0usize, BLUE, "dx"), (1, RED, "dy")] {
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|p| (p.0 as f32, p.1[axis])),
                    color.stroke_width(1),
                ))
                .map_err(err)?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x - 8, y), (x + 8, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A non-empty value range with a little margin.
fn range(v: &[f32]) -> (f32, f32) {
    let lo = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::INFINITY, f32::min);
    let hi = v
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .fold(f32::NEG_INFINITY, f32::max);
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(1e-6 * hi.abs().max(1.0));
    (lo - pad, hi + pad)
}
