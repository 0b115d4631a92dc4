//! The commands: `run` (one capture or a batch), `tune`, `master`, `plugins`, `info`, `demo`.
//! [`crate::cli`] parses; each command lives in its own file here.

mod derotate;
mod info;
mod master;
mod plugins;
mod run;
mod tune;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use clap::Parser;

use crate::backend::{select_device, BackendChoice, HostBackend};
use crate::cli::{backend_choice, Cli, Command};
use crate::pipeline::{RunError, Session};
use crate::registry::{default_plugin_dir, Registry};

/// Writes a command's output to stdout; a reader that went away (`info x.ser
/// | head -1`) ends the command quietly instead of failing.
pub(crate) fn print_out(text: &str) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// The device a run would use, for the last line of `info` and `plugins`.
pub(crate) fn device_text(cli: &Cli) -> String {
    crate::backend::describe_device(backend_choice(cli, None))
}

/// True when the error is a user cancellation (exit code 130).
pub fn is_cancelled(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<RunError>(), Some(RunError::Cancelled))
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let mut backend = HostBackend::new(cli.threads, ctrl_c_flag())?;
    backend.quiet = cli.quiet;
    backend.verbose = cli.verbose;
    match &cli.command {
        Command::Plugins => plugins::cmd_plugins(&cli, &backend),
        Command::Info { file, open } => info::cmd_info(&cli, file, open),
        Command::Run(args) => run::cmd_run(&cli, &mut backend, args),
        Command::Tune(args) => tune::cmd_tune(&cli, &mut backend, args),
        Command::Master(args) => master::cmd_master(args, cli.quiet),
        Command::Derotate(args) => derotate::cmd_derotate(args, cli.quiet),
        Command::Demo {
            dir,
            frames,
            width,
            height,
        } => {
            let reg = load_registry(&cli, &backend)?;
            let device = setup_device(&mut backend, backend_choice(&cli, None));
            let session = Session::new(&reg, &backend);
            crate::demo::run_demo(&session, dir, (*frames, *width, *height), &device)
        }
    }
}

/// The cancellation flag, set by the first Ctrl-C (stages stop at their
/// next check); a second Ctrl-C leaves at once, removing any output still
/// being written.
fn ctrl_c_flag() -> Arc<AtomicBool> {
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            crate::io::write::remove_temporaries();
            std::process::exit(130);
        }
    });
    cancel
}

/// Opens the device for a run; prints the one warning when the GPU was asked
/// for and is not usable. Returns the device description.
pub(crate) fn setup_device(backend: &mut HostBackend, choice: BackendChoice) -> String {
    let sel = select_device(choice);
    if let Some(w) = &sel.warning {
        backend.message(&format!("warning: {w}"));
    }
    backend.set_gpu(sel.gpu);
    sel.description
}

/// Loads every plugin of `--plugins` (or the executable's directory) and
/// shows the libraries that were skipped.
pub(crate) fn load_registry(cli: &Cli, backend: &HostBackend) -> Result<Registry> {
    let dir = match &cli.plugins {
        Some(d) => d.clone(),
        None => default_plugin_dir()?,
    };
    let reg = Registry::load_dir(&dir)?;
    for w in &reg.warnings {
        backend.message(&format!("warning: {w}"));
    }
    Ok(reg)
}
