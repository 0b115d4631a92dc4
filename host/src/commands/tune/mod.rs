//! `tune`: the post-processing tuned live in a browser. The stack (read
//! from a TIFF, or made from a capture with the pipeline's stacking stages)
//! stays in memory; a local page (`server.rs`, served on 127.0.0.1 behind a
//! random token) shows one control per parameter of every installed image
//! stage, generated from the stages' manifests, and re-runs the chosen chain
//! through the same plugins (`tuner.rs`) on a crop first, then on the whole
//! image. "Save" writes the image and a pipeline TOML for `run --pipeline`.

mod server;
mod tuner;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::backend::HostBackend;
use crate::cli::{backend_choice, build_spec, Cli, TuneArgs};
use crate::config::PipelineSpec;
use crate::io::write::OutputMeta;
use crate::pipeline::{prepare_calibration, run, RunRequest, Session};

use super::{load_registry, setup_device};
pub use tuner::Tuner;

/// Loads or stacks the input, then serves the page until Ctrl-C or "Quit".
pub fn cmd_tune(cli: &Cli, backend: &mut HostBackend, args: &TuneArgs) -> Result<()> {
    let spec = build_spec(&args.pipe)?;
    let save_as = save_name(args)?;
    let reg = load_registry(cli, backend)?;
    let device = setup_device(backend, backend_choice(cli, Some(&spec)));
    let (stack, meta, from_capture) = if is_stack_image(&args.input) {
        let img = crate::io::write::read_tiff(&args.input)
            .with_context(|| format!("{}: cannot read the stack", args.input.display()))?;
        (img, stack_meta(&args.input), false)
    } else {
        let (img, meta) = stack_capture(&Session::new(&reg, backend), args, &spec, &device)?;
        (img, meta, true)
    };
    // Every preview would print the stages' info lines: they go to the page.
    backend.quiet = true;
    let session = Session::new(&reg, backend);
    let tuner = Tuner::new(&session, stack, spec, from_capture, save_as, device).with_meta(meta);
    server::serve(&tuner, args.port, !args.no_browser)
}

/// A TIFF is taken as a finished stack; anything else is a capture.
fn is_stack_image(path: &Path) -> bool {
    matches!(
        path.extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("tif" | "tiff")
    )
}

/// What a saved image of a TIFF stack records: the stack's date (its
/// `DateTime`, or a capture program's name) and where it came from.
fn stack_meta(path: &Path) -> OutputMeta {
    OutputMeta {
        date_obs: crate::io::dates::tiff_time(path).or_else(|| {
            path.file_name()
                .and_then(|n| crate::io::dates::name_time(&n.to_string_lossy()))
        }),
        source: path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        ..OutputMeta::default()
    }
}

/// Where "Save" writes (without extension): a plain name in the working
/// directory, never a path elsewhere.
fn save_name(args: &TuneArgs) -> Result<PathBuf> {
    let name = match &args.save_as {
        Some(n) => n.clone(),
        None => {
            let stem = args
                .input
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "stack".into());
            format!("{stem}_tuned")
        }
    };
    let plain = Path::new(&name).components().count() == 1
        && !name.contains(['/', '\\'])
        && name != ".."
        && name != ".";
    if name.is_empty() || !plain {
        bail!("--save-as '{name}': give a plain file name (saves stay in the working directory)");
    }
    Ok(std::env::current_dir()?.join(name))
}

/// The plain stack of a capture and what its output records: the
/// pipeline without its post stages, in memory (the run's output goes to a temporary FITS file, removed after).
fn stack_capture(
    session: &Session,
    args: &TuneArgs,
    spec: &PipelineSpec,
    device: &str,
) -> Result<(jupiter_plugin_api::Image, OutputMeta)> {
    let mut plain = spec.clone();
    plain.post.clear();
    plain.default_post = false;
    let dir = std::env::temp_dir().join(format!("jupiter-tune-{}", std::process::id()));
    let req = RunRequest {
        input: &args.input,
        output: dir.join("stack.fits"),
        spec: &plain,
        open: args.open.options(),
        force: true,
        png8: false,
        device: device.to_string(),
        keep_stacked: false,
        next: None,
        calibration: prepare_calibration(
            &plain,
            args.open.options(),
            Some(&args.input),
            session.backend,
        )?,
    };
    let out = run(session, &req);
    let _ = std::fs::remove_dir_all(&dir);
    let out = out?;
    let r = &out.report;
    crate::errln!(
        "stacked {} of {} frames of {} in {:.2} s",
        r.selected.len(),
        r.frames,
        args.input.display(),
        r.total_seconds
    );
    Ok((out.image, out.meta))
}
