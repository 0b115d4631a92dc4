//! `run`: one capture, or a batch of captures sharing the plugins, the
//! device and its buffers; a capture that fails is reported and the others
//! still run.

use std::path::Path;

use anyhow::{Context, Result};

use crate::backend::HostBackend;
use crate::cli::{backend_choice, build_spec, output_path, Cli, RunArgs};
use crate::io::write::check_output;
use crate::pipeline::{run, Report, RunRequest, Session};

use super::{is_cancelled, load_registry, setup_device};

/// Runs every capture of `args` and writes the report when asked.
pub fn cmd_run(cli: &Cli, backend: &mut HostBackend, args: &RunArgs) -> Result<()> {
    let spec = build_spec(args)?;
    check_outputs(args)?;
    let reg = load_registry(cli, backend)?;
    crate::timeline::mark("plugins loaded");
    let device = setup_device(backend, backend_choice(cli, Some(&spec)));
    crate::timeline::mark("device ready");
    let session = Session::new(&reg, backend);
    let batch = args.files.len() > 1;
    let mut reports = Vec::new();
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
            keep_stacked: false,
            next: args.files.get(k + 1).map(|p| p.as_path()),
        };
        match run(&session, &req) {
            Ok(out) => {
                if !cli.quiet {
                    eprintln!("{}", summary(&out.report));
                }
                reports.push(serde_json::to_value(&out.report)?);
            }
            // Cancelled, or the only capture: stop with this error.
            Err(e) if !batch || is_cancelled(&e) => return Err(e),
            Err(e) => {
                reports.push(failure(session.backend, input, &e));
                failed += 1;
            }
        }
    }
    drop(session);
    if let Some(rp) = &args.report {
        write_report(rp, reports, batch)?;
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
/// capture's output that cannot be written, before any plugin is loaded.
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
    }
    Ok(())
}
