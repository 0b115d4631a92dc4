//! `jupiter-host demo`: a synthetic Jupiter capture through the default
//! pipeline, with the quality gain measured against the known truth.

use std::fmt::Write;
use std::path::Path;

use anyhow::{Context, Result};

use crate::config::PipelineSpec;
use crate::io::capture::CaptureFile;
use crate::io::ser::OpenOptions;
use crate::pipeline::{run, RunRequest, Session};
use jupiter_testkit::capture::{
    generate, psnr_fitted, psnr_interior, render, SynthColor, SynthOptions,
};

/// Generates `dir/demo.ser`, runs the default pipeline, writes
/// `dir/demo_jupiter.tif` and `dir/report.json`, and prints what happened.
pub fn run_demo(
    session: &Session,
    dir: &Path,
    (frames, width, height): (usize, u32, u32),
    device: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("{}: cannot create the demo directory", dir.display()))?;
    let opts = SynthOptions {
        width: width.max(32),
        height: height.max(32),
        frames: frames.max(2),
        color: SynthColor::Rgb,
        seed: 2026,
        blur: (0.7, 2.6),
        full_well: 300.0,
        // Planet scene, 8-bit, ±6 px jitter, read noise 3: the defaults.
        ..Default::default()
    };
    let ser_path = dir.join("demo.ser");
    crate::errln!(
        "generating {}: synthetic Jupiter, {} frames of {}×{} RGB, seeing blur σ {:.1}–{:.1} px, jitter ±{} px, Poisson + read noise",
        ser_path.display(),
        opts.frames,
        opts.width,
        opts.height,
        opts.blur.0,
        opts.blur.1,
        opts.jitter
    );
    let capture = generate(&ser_path, &opts)
        .with_context(|| format!("{}: cannot write the demo capture", ser_path.display()))?;
    let spec = PipelineSpec::default();
    let output = dir.join("demo_jupiter.tif");
    let req = RunRequest {
        input: &ser_path,
        output: output.clone(),
        spec: &spec,
        open: OpenOptions::default(),
        force: true,
        png8: false,
        device: device.to_string(),
        keep_stacked: true,
        next: None,
        calibration: None,
    };
    let out = run(session, &req)?;
    let r = &out.report;
    std::fs::write(dir.join("report.json"), serde_json::to_string_pretty(r)?)?;
    let pics = crate::pipeline::html::Pictures {
        best: out.best.as_ref(),
        stacked: out.stacked.as_ref(),
        result: &out.image,
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let page = crate::pipeline::html::page(r, &pics, &command).map_err(anyhow::Error::msg)?;
    crate::io::write::write_text_atomic(&dir.join("report.html"), &page)?;

    // Quality gain against the truth, at the position of the reference frame.
    let (w, h, ch) = (opts.width as usize, opts.height as usize, 3);
    let best = r.selected[0];
    let (bx, by) = capture.shifts[best];
    let truth_at_best = render(opts.scene, w, h, ch, bx as f64, by as f64);
    let ser = CaptureFile::open(&ser_path, Default::default())?;
    let single = psnr_interior(&ser.decode_frame(best)?, &truth_at_best, w, h, ch, 8);
    let stacked_img = out.stacked.as_ref().expect("keep_stacked was asked");
    let stacked = psnr_interior(&stacked_img.data, &truth_at_best, w, h, ch, 8);
    // The post-processing's gain: both after a gain/offset fit (the stretch
    // rescales the final image).
    let fitted = |data: &[f32]| psnr_fitted(data, &truth_at_best, w, h, ch, 8);
    let (stack_fit, final_fit) = (fitted(&stacked_img.data), fitted(&out.image.data));
    let times: Vec<String> = r
        .timings
        .iter()
        .map(|t| format!("{} {:.2} s", t.plugin, t.seconds))
        .collect();
    let mut text = String::from("jupiter demo\n");
    writeln!(
        text,
        "  capture:  {} ({} frames, {}×{} RGB)",
        ser_path.display(),
        r.frames,
        w,
        h
    )?;
    let share = match spec.select {
        crate::config::Selection::Auto => {
            "--select auto; each alignment point stacks the sharpest of them there".into()
        }
        crate::config::Selection::Percent(p) => format!("{p}% of the capture"),
        crate::config::Selection::Count(n) => format!("{n} frames of the capture"),
    };
    writeln!(
        text,
        "  kept:     {} best frames ({share})",
        r.selected.len()
    )?;
    writeln!(text, "  device:   {}", r.device)?;
    writeln!(text, "  stages:   {}", times.join(", "))?;
    writeln!(text, "  PSNR vs truth: best single frame {single:.2} dB → stack {stacked:.2} dB (gain {:+.2} dB)", stacked - single)?;
    writeln!(
        text,
        "  post-processing: stack {stack_fit:.2} dB → final image {final_fit:.2} dB (gain {:+.2} dB; both after a gain/offset fit to the truth)",
        final_fit - stack_fit
    )?;
    for m in r.messages.iter().filter(|m| m.contains("deconvolve:")) {
        writeln!(text, "  {m}")?;
    }
    writeln!(
        text,
        "  output:   {} (16-bit RGB TIFF, deconvolved and stretched for viewing)",
        output.display()
    )?;
    writeln!(
        text,
        "  report:   {} and {} (open in a browser)",
        dir.join("report.json").display(),
        dir.join("report.html").display()
    )?;
    crate::commands::print_out(&text)
}
