//! The report's plots, as SVG text drawn with `plotters`.

use std::ops::Range;

use plotters::coord::types::RangedCoordf32;
use plotters::prelude::*;

/// Plot size in px.
const SIZE: (u32, u32) = (640, 260);

type Result<T> = std::result::Result<T, String>;

/// A chart of f32 axes on the SVG backend.
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf32, RangedCoordf32>>;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

/// One plot: white background, caption, axes with their descriptions;
/// `draw` adds the series; a legend when `legend`.
fn plot(
    caption: &str,
    (x, y): (Range<f32>, Range<f32>),
    (x_desc, y_desc): (&str, &str),
    legend: bool,
    draw: impl FnOnce(&mut Chart) -> Result<()>,
) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(caption, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(x, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        draw(&mut chart)?;
        if legend {
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .draw()
                .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A legend entry: a short line of `color`.
fn line_key(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new([(x - 8, y), (x + 8, y)], color)
}

/// Every frame's score in capture order, the kept frames marked, and the
/// selection threshold (the lowest kept score) as a line.
pub fn scores_in_order(scores: &[f32], selected: &[usize]) -> Result<String> {
    let (lo, hi) = range(scores);
    let n = scores.len().max(1) as f32;
    plot(
        "Quality by frame (capture order)",
        (0.0..n, lo..hi),
        ("frame", "score"),
        true,
        |chart| {
            let order = scores.iter().enumerate().map(|(i, &s)| (i as f32, s));
            chart
                .draw_series(LineSeries::new(order, &RGBColor(120, 120, 120)))
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
                    .draw_series(LineSeries::new([(0.0, t), (n, t)], RED.stroke_width(1)))
                    .map_err(err)?
                    .label("selection threshold")
                    .legend(line_key(RED));
            }
            Ok(())
        },
    )
}

/// Scores sorted best first, with the kept count marked (AutoStakkert!'s
/// graph: where the curve bends is how many frames are worth keeping).
pub fn scores_sorted(scores: &[f32], kept: usize) -> Result<String> {
    let mut sorted = scores.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let (lo, hi) = range(&sorted);
    let n = sorted.len().max(1) as f32;
    plot(
        "Quality sorted (best first)",
        (0.0..100.0, lo..hi),
        ("% of frames", "score"),
        true,
        |chart| {
            let curve = sorted
                .iter()
                .enumerate()
                .map(|(i, &s)| (100.0 * i as f32 / n, s));
            chart
                .draw_series(LineSeries::new(curve, BLUE.stroke_width(2)))
                .map_err(err)?;
            let x = 100.0 * kept as f32 / n;
            chart
                .draw_series(LineSeries::new([(x, lo), (x, hi)], RED.stroke_width(1)))
                .map_err(err)?
                .label(format!("kept: {kept} frames ({x:.0} %)"))
                .legend(line_key(RED));
            Ok(())
        },
    )
}

/// Histogram of the scores (32 bins).
pub fn histogram(scores: &[f32]) -> Result<String> {
    const BINS: usize = 32;
    let (lo, hi) = range(scores);
    let width = (hi - lo) / BINS as f32;
    let mut counts = [0u32; BINS];
    for &s in scores {
        counts[(((s - lo) / width) as usize).min(BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f32;
    plot(
        "Score histogram",
        (lo..hi, 0.0..top * 1.1),
        ("score", "frames"),
        false,
        |chart| {
            let bars = counts.iter().enumerate().map(|(k, &c)| {
                let x0 = lo + k as f32 * width;
                Rectangle::new([(x0, 0.0), (x0 + width, c as f32)], BLUE.mix(0.6).filled())
            });
            chart.draw_series(bars).map_err(err)?;
            Ok(())
        },
    )
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
    plot(
        "Global shift of the kept frames",
        (0.0..last, lo..hi),
        ("frame", "shift (px)"),
        true,
        |chart| {
            for (axis, color, name) in [(0usize, BLUE, "dx"), (1, RED, "dy")] {
                let line = pts.iter().map(|p| (p.0 as f32, p.1[axis]));
                chart
                    .draw_series(LineSeries::new(line, color.stroke_width(1)))
                    .map_err(err)?
                    .label(name)
                    .legend(line_key(color));
            }
            Ok(())
        },
    )
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
