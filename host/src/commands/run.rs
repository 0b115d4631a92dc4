//! `run`: one capture, or a batch of captures sharing the plugins, the
//! device and its buffers; a capture that fails is reported and the others
//! still run.

use std::path::Path;

use anyhow::{Context, Result};

use crate::backend::HostBackend;
use crate::cli::{backend_choice, build_spec, output_path, Cli, RunArgs};
use crate::io::write::check_output;
use crate::pipeline::{html, prepare_calibration, run, Report, RunOutput, RunRequest, Session};

use super::{is_cancelled, load_registry, setup_device};

/// Runs every capture of `args` and writes the report when asked.
pub fn cmd_run(cli: &Cli, backend: &mut HostBackend, args: &RunArgs) -> Result<()> {
    let spec = build_spec(&args.pipe)?;
    check_outputs(args)?;
    let reg = load_registry(cli, backend)?;
    crate::timeline::mark("plugins loaded");
    let device = setup_device(backend, backend_choice(cli, Some(&spec)));
    crate::timeline::mark("device ready");
    let session = Session::new(&reg, backend);
    let calibration = prepare_calibration(
        &spec,
        args.open.options(),
        args.files.first().map(|p| p.as_path()),
        session.backend,
    )?;
    let batch = args.files.len() > 1;
    let html_reports: Vec<&Path> = args
        .report
        .iter()
        .map(|p| p.as_path())
        .filter(|p| is_html(p))
        .collect();
    let mut reports = Vec::new();
    // Per HTML page written: its file name, the report and a thumbnail.
    let mut pages: Vec<Page> = Vec::new();
    let mut failed = 0;
    for (k, input) in args.files.iter().enumerate() {
        if batch && !cli.quiet {
            session.backend.message(&format!(
                "[{}/{}] {}",
                k + 1,
                args.files.len(),
                input.display()
            ));
        }
        let req = RunRequest {
            input,
            output: output_path(args, input),
            spec: &spec,
            open: args.open.options(),
            force: args.force,
            png8: args.png8,
            device: device.clone(),
            keep_stacked: !html_reports.is_empty(),
            next: args.files.get(k + 1).map(|p| p.as_path()),
            calibration: calibration.clone(),
        };
        match run(&session, &req) {
            Ok(out) => {
                if !cli.quiet {
                    crate::errln!("{}", summary(&out.report));
                }
                for page in &html_reports {
                    let path = if batch {
                        page_path(page, input)
                    } else {
                        page.to_path_buf()
                    };
                    write_html(&path, &out)?;
                    pages.push((
                        file_name(&path),
                        Ok((
                            out.report.clone(),
                            html::data_png(&html::thumbnail(&out.image, 120))
                                .map_err(anyhow::Error::msg)?,
                        )),
                    ));
                }
                reports.push(serde_json::to_value(&out.report)?);
            }
            // Cancelled, or the only capture: stop with this error.
            Err(e) if !batch || is_cancelled(&e) => return Err(e),
            Err(e) => {
                pages.push((input.display().to_string(), Err(format!("{e:#}"))));
                reports.push(failure(session.backend, input, &e));
                failed += 1;
            }
        }
    }
    drop(session);
    for rp in args.report.iter().filter(|p| !is_html(p)) {
        write_report(rp, reports.clone(), batch)?;
    }
    if batch {
        for index in &html_reports {
            // One row per capture, from this index's pages.
            let rows: Vec<html::IndexRow> = pages
                .iter()
                .filter(|(name, e)| e.is_err() || name.starts_with(&stem(index)))
                .map(|(name, e)| {
                    (
                        name.clone(),
                        e.as_ref()
                            .map(|(r, t)| (r, t.clone()))
                            .map_err(|m| m.clone()),
                    )
                })
                .collect();
            crate::io::write::write_text_atomic(index, &html::index(&rows))
                .with_context(|| format!("{}: cannot write the report index", index.display()))?;
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} captures failed", args.files.len());
    }
    Ok(())
}

/// The one line printed after a capture is stacked.
fn summary(r: &Report) -> String {
    format!(
        "stacked {} of {} frames ({}×{}, {} ch) on {} in {:.2} s → {}",
        r.selected.len(),
        r.frames,
        r.width,
        r.height,
        r.channels,
        r.device,
        r.total_seconds,
        r.output
    )
}

/// Reports a capture of a batch that failed (the error names the file
/// once) and returns its entry for the report.
fn failure(backend: &HostBackend, input: &Path, e: &anyhow::Error) -> serde_json::Value {
    let text = format!("{e:#}");
    let name = input.display().to_string();
    backend.message(&if text.starts_with(&name) {
        format!("error: {text}")
    } else {
        format!("error: {name}: {text}")
    });
    serde_json::json!({
        "input": name,
        "error": text,
    })
}

/// An HTML page written for a capture of a batch (see `html::IndexRow`).
type Page = (String, Result<(Report, String), String>);

fn is_html(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("html") || e.eq_ignore_ascii_case("htm"))
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned())
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |s| s.to_string_lossy().into_owned())
}

/// A batch capture's page beside the index: `INDEX-CAPTURE.html`.
fn page_path(index: &Path, input: &Path) -> std::path::PathBuf {
    index.with_file_name(format!("{}-{}.html", stem(index), stem(input)))
}

/// Writes one run's HTML report; the command line that ran it goes in.
fn write_html(path: &Path, out: &RunOutput) -> Result<()> {
    let pics = html::Pictures {
        best: out.best.as_ref(),
        stacked: out.stacked.as_ref(),
        result: &out.image,
    };
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let text = html::page(&out.report, &pics, &command).map_err(anyhow::Error::msg)?;
    crate::io::write::write_text_atomic(path, &text)
        .with_context(|| format!("{}: cannot write the report", path.display()))
}

/// Writes the JSON report: the run's object, or an array for a batch.
fn write_report(path: &Path, mut reports: Vec<serde_json::Value>, batch: bool) -> Result<()> {
    let value = if batch {
        serde_json::Value::Array(reports)
    } else {
        reports.pop().unwrap_or_default()
    };
    let text = serde_json::to_string_pretty(&value)?;
    crate::io::write::write_text_atomic(path, &text)
        .with_context(|| format!("{}: cannot write the report", path.display()))
}

/// Refuses a batch whose outputs would overwrite one another, and a single
/// capture that is missing or not a capture, or whose output cannot be
/// written, before any plugin is loaded or frame read.
fn check_outputs(args: &RunArgs) -> Result<()> {
    let mut seen = std::collections::HashMap::new();
    for input in &args.files {
        let out = output_path(args, input);
        if let Some(other) = seen.insert(out.clone(), input) {
            anyhow::bail!(
                "{} and {} would both be written to {}",
                other.display(),
                input.display(),
                out.display()
            );
        }
    }
    if let [input] = args.files.as_slice() {
        check_output(&output_path(args, input), args.png8, args.force)?;
        crate::io::capture::detect(input)?;
    }
    Ok(())
}
