//! The self-contained HTML report (`--report FILE.html`): no network, no
//! external scripts or fonts; plots as inline SVG (`plots.rs`, drawn with
//! `plotters`), images as embedded PNG. It shows what a planetary imager
//! judges a run by: the quality graph (how many frames are worth keeping),
//! the tracking, the alignment points over the reference, the best frame,
//! the plain stack and the final image side by side at 1:1, and what the
//! run did and took.

mod plots;

use base64::Engine;
use jupiter_plugin_api::Image;

use super::report::{ApSummary, Report};
use crate::derotate::DerotationSummary;
use crate::io::calibrate::CalibrationSummary;

/// The images a report shows (host memory).
pub struct Pictures<'a> {
    /// The best single frame (decoded).
    pub best: Option<&'a Image>,
    /// The stack before post-processing.
    pub stacked: Option<&'a Image>,
    /// The written result.
    pub result: &'a Image,
}

/// An SVG for inline use in HTML: without the XML namespace attribute
/// (the HTML parser needs none), so the page names no URL at all.
fn inline(svg: String) -> String {
    svg.replace(" xmlns=\"http://www.w3.org/2000/svg\"", "")
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The whole report page of one run.
pub fn page(r: &Report, pics: &Pictures, command: &str) -> Result<String, String> {
    let mut h = String::new();
    h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">";
    h += &format!("<title>jupiter report: {}</title>", esc(&r.input));
    h += &format!(
        "<style>{}</style></head><body>\n",
        include_str!("report.css")
    );
    h += &format!("<h1>jupiter report: {}</h1>\n", esc(&r.input));
    h += &format!(
        "<p>{} of {} frames kept ({}×{}, {} channel{}), output {}×{} → <code>{}</code>, {:.2} s on {}.</p>\n",
        r.selected.len(),
        r.frames,
        r.width,
        r.height,
        r.channels,
        if r.channels == 1 { "" } else { "s" },
        r.output_width,
        r.output_height,
        esc(&r.output),
        r.total_seconds,
        esc(&r.device)
    );
    h += "<h2>Quality</h2>\n<div class=\"plots\">";
    h += &inline(plots::scores_in_order(&r.scores, &r.selected)?);
    h += &inline(plots::scores_sorted(&r.scores, r.selected.len())?);
    h += &inline(plots::histogram(&r.scores)?);
    h += "</div>\n<h2>Alignment</h2>\n<div class=\"plots\">";
    h += &inline(plots::shifts(&r.selected, &r.shifts)?);
    if let (Some(ap), Some(stack)) = (&r.alignment_points, pics.stacked) {
        h += &ap_overlay(ap, stack)?;
    }
    h += "</div>\n";
    if let Some(d) = &r.derotation {
        h += &derotation_section(d, pics.stacked)?;
    }
    h += &before_after(pics)?;
    h += &run_facts(r, command);
    h += &format!(
        "<script>{}</script>\n</body></html>\n",
        include_str!("report.js")
    );
    Ok(h)
}

/// The three images at 1:1 over a crop chosen on a thumbnail.
fn before_after(pics: &Pictures) -> Result<String, String> {
    let mut h = String::from("<h2>Before / after</h2>\n<p>Click the thumbnail to move the crop; <button data-zoom=\"1\">1:1</button> <button data-zoom=\"2\">2:1</button> <span id=\"crop\"></span>. Each image is shown stretched between its own darkest and brightest 0.1 %.</p>\n");
    h += &format!(
        "<img id=\"thumb\" alt=\"final image (thumbnail)\" src=\"{}\">\n<div class=\"views\">",
        data_png(&thumbnail(pics.result, 300))?
    );
    for (label, img) in [
        ("best single frame", pics.best),
        ("stack, before post-processing", pics.stacked),
        ("final image", Some(pics.result)),
    ] {
        let Some(img) = img else { continue };
        h += &format!(
            "<div><div class=\"view\"><img alt=\"{label}\" src=\"{}\"></div><div class=\"cap\">{label}: {}×{}, sharpness {:.3e}</div></div>",
            data_png(img)?,
            img.width,
            img.height,
            sharpness(img)
        );
    }
    h += "</div>\n";
    Ok(h)
}

/// Timings, plugins, messages, and how to reproduce the run.
fn run_facts(r: &Report, command: &str) -> String {
    let mut h = String::from("<h2>Run</h2>\n<table><tr><th>stage</th><th>plugin</th><th>version</th><th>seconds</th></tr>");
    for t in &r.timings {
        h += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td></tr>",
            esc(&t.stage),
            esc(&t.plugin),
            esc(&t.version),
            t.seconds
        );
    }
    h += &format!(
        "<tr><td colspan=\"3\">whole run</td><td>{:.3}</td></tr></table>\n",
        r.total_seconds
    );
    h += &format!(
        "<p>Device: {}; peak memory {:.0} MB.</p>\n",
        esc(&r.device),
        r.peak_rss_mb
    );
    if let Some(c) = &r.calibration {
        h += &calibration_table(c);
    }
    if !r.warnings.is_empty() || !r.messages.is_empty() {
        h += "<h2>Messages</h2>\n<ul>";
        for w in &r.warnings {
            h += &format!("<li class=\"warn\">warning: {}</li>", esc(w));
        }
        for m in &r.messages {
            let class = if m.starts_with("warning") || m.starts_with("error") {
                " class=\"warn\""
            } else {
                ""
            };
            h += &format!("<li{class}>{}</li>", esc(m));
        }
        h += "</ul>\n";
    }
    let pipeline = serde_json::to_string_pretty(&r.pipeline).unwrap_or_default();
    h += &format!(
        "<h2>Reproduce</h2>\n<pre>{}</pre>\n<p>Pipeline (as run):</p>\n<pre>{}</pre>\n",
        esc(command),
        esc(&pipeline)
    );
    h
}

/// The calibration: each master and how it was built, the formula, the
/// repaired pixels.
fn calibration_table(c: &CalibrationSummary) -> String {
    let mut h = String::from(
        "<h2>Calibration</h2>\n<table><tr><th>master</th><th>file</th><th>built</th></tr>",
    );
    for m in &c.masters {
        h += &format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.role),
            esc(&m.path),
            esc(&m.built)
        );
    }
    h += "</table>\n";
    h += &format!(
        "<p>Applied to the raw samples before the debayer: {}. Hot pixels repaired: {} (from the {}); dead pixels: {}.</p>\n",
        esc(&c.formula),
        c.hot_pixels,
        esc(&c.hot_pixels_from),
        c.dead_pixels
    );
    h
}

/// The derotation's fit: the disc outline, the pole and the direction the
/// surface turns drawn over the stack, and the figures beside it.
fn derotation_section(d: &DerotationSummary, stack: Option<&Image>) -> Result<String, String> {
    let mut h = String::from("<h2>Derotation</h2>\n<div class=\"plots\">");
    if let Some(stack) = stack {
        h += &derotation_overlay(d, stack)?;
    }
    h += "</div>\n<table>";
    let rows = [
        ("planet", format!("{} ({:.4} h)", d.body, d.period_hours)),
        (
            "derotated to",
            d.reference_time
                .clone()
                .unwrap_or_else(|| format!("{:.1} s after the first frame", d.reference_seconds)),
        ),
        ("frame times from", d.times_from.clone()),
        ("frames span", format!("{:.1} s", d.span_seconds)),
        (
            "disc (blue)",
            format!(
                "centre ({:.1}, {:.1}), radii {:.1} × {:.1} px, limb RMS {:.2} px",
                d.disc.cx,
                d.disc.cy,
                d.disc.equatorial_radius,
                d.disc.polar_radius,
                d.disc.limb_rms
            ),
        ),
        (
            "pole (orange, N)",
            format!(
                "{:.1}° from up, counter-clockwise ({}{}){}",
                d.pole_angle_deg,
                if d.pole_angle_fitted {
                    "fitted"
                } else {
                    "given"
                },
                d.pole_fit_ratio
                    .map_or(String::new(), |r| format!(", fit ratio {r:.2}")),
                if d.mirrored { ", mirrored image" } else { "" }
            ),
        ),
        (
            "rotation (green)",
            format!("near-side features move towards {:.1}°", d.motion_angle_deg),
        ),
        (
            "largest shift at the centre",
            format!("{:.2} px", d.centre_shift_px),
        ),
    ];
    for (k, v) in rows {
        h += &format!("<tr><th>{}</th><td>{}</td></tr>", esc(k), esc(&v));
    }
    h += "</table>\n<p>The fit ratio compares the mismatch between the early and the late frames at the fitted pole with that at the opposite pole: well below 1 means the capture showed the rotation clearly; near 1, give the pole with <code>--set derotate.pole_angle=DEG</code>.</p>\n";
    Ok(h)
}

/// The stack with the fitted disc (blue), the pole's direction (orange)
/// and the direction the near side turns (green).
fn derotation_overlay(d: &DerotationSummary, stack: &Image) -> Result<String, String> {
    let (w, ht) = (stack.width as f64, stack.height as f64);
    let s = 400.0 / w.max(ht);
    let (cx, cy) = (d.disc.cx * s, d.disc.cy * s);
    let (a, b) = (d.disc.equatorial_radius * s, d.disc.polar_radius * s);
    let (ps, pc) = d.pole_angle_deg.to_radians().sin_cos();
    let (ms, mc) = d.motion_angle_deg.to_radians().sin_cos();
    let (nx, ny) = (cx - 1.2 * b * ps, cy - 1.2 * b * pc);
    let (tx, ty) = (cx - 0.5 * a * ms, cy - 0.5 * a * mc);
    let (sw, sh) = (w * s, ht * s);
    // SVG turns clockwise on screen; the pole angle is counter-clockwise.
    let rot = -d.pole_angle_deg;
    Ok(format!(
        "<svg width=\"{sw:.0}\" height=\"{sh:.0}\" viewBox=\"0 0 {sw:.0} {sh:.0}\"><image width=\"{sw:.0}\" height=\"{sh:.0}\" href=\"{}\"/>\
         <ellipse cx=\"{cx:.1}\" cy=\"{cy:.1}\" rx=\"{a:.1}\" ry=\"{b:.1}\" transform=\"rotate({rot:.2} {cx:.1} {cy:.1})\" fill=\"none\" stroke=\"#4fc3f7\" stroke-width=\"1\"/>\
         <line x1=\"{cx:.1}\" y1=\"{cy:.1}\" x2=\"{nx:.1}\" y2=\"{ny:.1}\" stroke=\"#ffb74d\" stroke-width=\"1.5\"/><text x=\"{nx:.1}\" y=\"{ny:.1}\" fill=\"#ffb74d\" font-size=\"12\">N</text>\
         <line x1=\"{cx:.1}\" y1=\"{cy:.1}\" x2=\"{tx:.1}\" y2=\"{ty:.1}\" stroke=\"#81c784\" stroke-width=\"1.5\"/><circle cx=\"{tx:.1}\" cy=\"{ty:.1}\" r=\"3\" fill=\"#81c784\"/></svg>",
        data_png(stack)?
    ))
}

/// The alignment-point field over the stack: one circle per grid node,
/// its colour the RMS of the local shifts measured there (blue 0 → red at
/// the largest), its size the fraction of frames kept there.
fn ap_overlay(ap: &ApSummary, stack: &Image) -> Result<String, String> {
    let (w, h) = (stack.width as f32, stack.height as f32);
    let scale = 400.0 / w.max(h);
    let (sw, sh) = (w * scale, h * scale);
    let top = ap.rms.iter().copied().fold(0.0f32, f32::max).max(1e-6);
    let mut s = format!(
        "<svg width=\"{sw:.0}\" height=\"{:.0}\" viewBox=\"0 0 {sw:.0} {:.0}\"><image width=\"{sw:.0}\" height=\"{sh:.0}\" href=\"{}\"/>",
        sh,
        sh,
        data_png(stack)?
    );
    let r_max = (ap.step_x.min(ap.step_y) * scale * 0.45).max(2.0);
    for j in 0..ap.rows {
        for i in 0..ap.cols {
            let k = j * ap.cols + i;
            let (x, y) = (
                (ap.x0 + i as f32 * ap.step_x) * scale,
                (ap.y0 + j as f32 * ap.step_y) * scale,
            );
            let t = (ap.rms[k] / top).clamp(0.0, 1.0);
            let (red, blue) = ((255.0 * t) as u8, (255.0 * (1.0 - t)) as u8);
            s += &format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{:.1}\" fill=\"rgb({red},60,{blue})\" fill-opacity=\"0.7\"><title>local shift RMS {:.2} px, kept {:.0} %</title></circle>",
                (r_max * ap.kept[k].sqrt()).max(1.0),
                ap.rms[k],
                100.0 * ap.kept[k]
            );
        }
    }
    s += "</svg>";
    Ok(format!(
        "<figure>{s}<figcaption class=\"cap\">Warp-field nodes over the stack: colour = RMS of the local shift<br>(blue 0, red {top:.2} px); size = fraction of frames kept there.</figcaption></figure>"
    ))
}

/// Fine detail: mean squared Laplacian of the luminance scaled to [0, 1]
/// by its own range (independent of brightness and stretch).
pub fn sharpness(img: &Image) -> f64 {
    let (w, h, c) = (
        img.width as usize,
        img.height as usize,
        img.channels as usize,
    );
    if w < 3 || h < 3 {
        return 0.0;
    }
    let lum: Vec<f64> = img
        .data
        .chunks(c)
        .map(|p| p.iter().map(|&v| v as f64).sum::<f64>() / c as f64)
        .collect();
    let (lo, hi) = lum
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let range = (hi - lo).max(1e-12);
    let mut sum = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let v = |dx: isize, dy: isize| {
                lum[(y as isize + dy) as usize * w + (x as isize + dx) as usize]
            };
            let l = 4.0 * v(0, 0) - v(-1, 0) - v(1, 0) - v(0, -1) - v(0, 1);
            sum += (l / range).powi(2);
        }
    }
    sum / ((w - 2) * (h - 2)) as f64
}

/// An image as a PNG data URL, levels from its 0.1 and 99.9 percentiles
/// (a plain stack is dim and a frame may be noisy: this shows them alike).
pub fn data_png(img: &Image) -> Result<String, String> {
    let png = png_bytes(img, Some(auto_levels(img)))?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    ))
}

/// The 0.1 and 99.9 percentiles of the finite samples (black and white
/// points for display).
pub fn auto_levels(img: &Image) -> (f32, f32) {
    let mut v: Vec<f32> = img.data.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (0.0, 1.0);
    }
    let k = |q: f64| ((v.len() - 1) as f64 * q) as usize;
    let (a, b) = (k(0.001), k(0.999));
    let lo = *v.select_nth_unstable_by(a, f32::total_cmp).1;
    let hi = *v.select_nth_unstable_by(b, f32::total_cmp).1;
    (lo, if hi > lo { hi } else { lo + 1.0 })
}

/// An 8-bit PNG (grey, or RGB from the first three channels) of `img`
/// mapped from `levels` (black, white) to 0..255; `None`: 0..1 as it is.
pub fn png_bytes(img: &Image, levels: Option<(f32, f32)>) -> Result<Vec<u8>, String> {
    let c = img.channels as usize;
    let (lo, hi) = levels.unwrap_or((0.0, 1.0));
    let bytes: Vec<u8> = img
        .data
        .iter()
        .map(|&x| (((x - lo) / (hi - lo)).clamp(0.0, 1.0) * 255.0).round() as u8)
        .collect();
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, img.width, img.height);
        enc.set_color(if c >= 3 {
            png::ColorType::Rgb
        } else {
            png::ColorType::Grayscale
        });
        enc.set_depth(png::BitDepth::Eight);
        let mut wr = enc.write_header().map_err(|e| e.to_string())?;
        let data: Vec<u8> = if c > 3 {
            bytes.chunks(c).flat_map(|p| [p[0], p[1], p[2]]).collect()
        } else {
            bytes
        };
        wr.write_image_data(&data).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// A copy at most `max` px wide or high (box average over whole blocks),
/// for thumbnails.
pub fn thumbnail(img: &Image, max: u32) -> Image {
    let k = img.width.max(img.height).div_ceil(max).max(1) as usize;
    let (w, h, c) = (
        img.width as usize / k,
        img.height as usize / k,
        img.channels as usize,
    );
    if k == 1 || w == 0 || h == 0 {
        return img.clone();
    }
    let mut data = vec![0.0f32; w * h * c];
    let sw = img.width as usize;
    for y in 0..h * k {
        for x in 0..w * k {
            for ch in 0..c {
                data[((y / k) * w + x / k) * c + ch] += img.data[(y * sw + x) * c + ch];
            }
        }
    }
    let n = (k * k) as f32;
    data.iter_mut().for_each(|v| *v /= n);
    Image::from_vec(w as u32, h as u32, c as u32, data)
}

/// One capture of a batch for the index: its page's file name, and its
/// report with a thumbnail (a PNG data URL), or the error.
pub type IndexRow<'a> = (String, Result<(&'a Report, String), String>);

/// The index page of a batch: one row per capture with a thumbnail, key
/// figures and a link to its report (or the error).
pub fn index(entries: &[IndexRow]) -> String {
    let mut h = String::from("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>jupiter batch</title>");
    h += &format!("<style>{}</style></head><body><h1>jupiter batch: {} captures</h1>\n<table><tr><th></th><th>capture</th><th>kept</th><th>output</th><th>seconds</th></tr>", include_str!("report.css"), entries.len());
    for (name, e) in entries {
        match e {
            Ok((r, thumb)) => {
                h += &format!(
                    "<tr><td><img width=\"120\" alt=\"\" src=\"{thumb}\"></td><td><a href=\"{}\">{}</a></td><td>{} / {}</td><td>{}</td><td>{:.2}</td></tr>",
                    esc(name),
                    esc(&r.input),
                    r.selected.len(),
                    r.frames,
                    esc(&r.output),
                    r.total_seconds
                )
            }
            Err(msg) => h += &format!("<tr><td></td><td>{}</td><td colspan=\"3\" class=\"warn\">{}</td></tr>", esc(name), esc(msg)),
        }
    }
    h += "</table></body></html>\n";
    h
}
