//! Command line: `run`, `plugins`, `info`, `demo`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};

use crate::backend::cpu::HostBackend;
use crate::backend::{describe_device, select_device, BackendChoice};
use crate::config::{PipelineSpec, Selection, StageChoice};
use crate::io::ser::{ByteOrder, OpenOptions, SerFile};
use crate::pipeline::{run, RunError, RunRequest};
use crate::registry::{default_plugin_dir, Registry};

/// jupiter: planetary lucky imaging. Scores every frame of a SER capture,
/// keeps the sharpest, aligns and stacks them, sharpens and stretches the
/// result, and writes a 16-bit TIFF, PNG or FITS. Every stage is a plugin.
#[derive(Parser, Debug)]
#[command(name = "jupiter-host", version, about, long_about = None, after_help = "Examples:\n  jupiter-host demo\n  jupiter-host run capture.ser\n  jupiter-host run night/*.ser -o stacked/ --format png\n  jupiter-host --plugins ./plugins run capture.ser -o jupiter.tif --select 20% --stacker stack-median\n  jupiter-host run capture.ser --set sharpen-wavelet.gains=[2.0,1.6,1.2,1,1,1] --report report.json\n  jupiter-host plugins\n  jupiter-host info capture.ser")]
pub struct Cli {
    /// Directory holding the plugin libraries (default: the executable's directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub plugins: Option<PathBuf>,
    /// Worker threads of the shared pool (default: one per core).
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Run every stage on the CPU.
    #[arg(long, global = true, conflicts_with = "gpu")]
    pub cpu: bool,
    /// Ask for the GPU (falls back to the CPU with a warning when none is usable).
    #[arg(long, global = true)]
    pub gpu: bool,
    /// Only warnings and errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Debug messages from stages.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Stack a SER capture into one image.
    ///
    /// Example: jupiter-host run capture.ser -o jupiter.tif --select 25% --stacker stack-sigma-clip
    Run(RunArgs),
    /// List the stages found in the plugin directory.
    ///
    /// Example: jupiter-host --plugins ./plugins plugins
    Plugins,
    /// Show a SER file's header, frame count, size, colour and timestamps.
    ///
    /// Example: jupiter-host info capture.ser
    Info {
        /// The SER file.
        file: PathBuf,
        #[command(flatten)]
        open: OpenArgs,
    },
    /// Generate a synthetic Jupiter capture and run the default pipeline on it.
    ///
    /// Example: jupiter-host demo ./jupiter-demo
    Demo {
        /// Where to write the capture, the result and the report.
        #[arg(default_value = "jupiter-demo")]
        dir: PathBuf,
        /// Frames in the synthetic capture.
        #[arg(long, default_value_t = 300)]
        frames: usize,
        /// Frame width of the synthetic capture.
        #[arg(long, default_value_t = 256)]
        width: u32,
        /// Frame height of the synthetic capture.
        #[arg(long, default_value_t = 224)]
        height: u32,
    },
}

/// How to read the SER file.
#[derive(Args, Debug, Clone)]
pub struct OpenArgs {
    /// Byte order of 16-bit samples (auto decides from the data; the header flag is unreliable).
    #[arg(long, value_enum, default_value_t = ByteOrder::Auto)]
    pub byte_order: ByteOrder,
    /// Use the complete frames present when the header claims more.
    #[arg(long)]
    pub allow_truncated: bool,
}

impl OpenArgs {
    fn options(&self) -> OpenOptions {
        OpenOptions {
            byte_order: self.byte_order,
            allow_truncated: self.allow_truncated,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The SER capture(s). Several captures run as one batch: the device,
    /// the plugins and the GPU buffers are set up once for all of them; a
    /// capture that fails is reported and the others still run.
    #[arg(required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
    /// Output image (.tif, .png, .fits); with several captures, a directory
    /// for `<capture>_jupiter.<format>`. Default: beside each capture.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Image format of outputs named by jupiter (with several captures, or
    /// without `--output`).
    #[arg(long, value_enum, default_value_t = OutFormat::Tif)]
    pub format: OutFormat,
    /// Frames to keep: a percentage (25%) or a count (300).
    #[arg(long)]
    pub select: Option<String>,
    /// Stacker stage to use (e.g. stack-mean, stack-median, stack-sigma-clip).
    #[arg(long)]
    pub stacker: Option<String>,
    /// Aligner stage to use.
    #[arg(long)]
    pub aligner: Option<String>,
    /// Pipeline file (TOML): stages, parameters, selection, backend.
    #[arg(long, value_name = "FILE.toml")]
    pub pipeline: Option<PathBuf>,
    /// Set a stage parameter: quality.metric=tenengrad, stack.kappa_low=2, sharpen-wavelet.gains=[2,1.5,1,1,1,1].
    #[arg(long = "set", value_name = "STAGE.PARAM=VALUE")]
    pub set: Vec<String>,
    /// Skip post-processing (sharpening, filters): write the plain stack.
    #[arg(long)]
    pub no_post: bool,
    /// Write a JSON report (scores, selection, shifts, timings, plugins).
    #[arg(long, value_name = "FILE.json")]
    pub report: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Write 8-bit PNG instead of 16-bit.
    #[arg(long)]
    pub png8: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// Image format of outputs named by jupiter.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutFormat {
    /// 16-bit TIFF.
    Tif,
    /// 16-bit PNG (8-bit with `--png8`).
    Png,
    /// 32-bit float FITS.
    Fits,
}

impl OutFormat {
    fn extension(self) -> &'static str {
        match self {
            OutFormat::Tif => "tif",
            OutFormat::Png => "png",
            OutFormat::Fits => "fits",
        }
    }
}

/// Where the output of `input` goes: `-o` itself for a single capture,
/// else `<stem>_jupiter.<format>` in `-o`'s directory or beside the capture.
pub fn output_path(args: &RunArgs, input: &Path) -> PathBuf {
    match &args.output {
        Some(o) if args.files.len() == 1 => o.clone(),
        dir => {
            let stem = input
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "capture".into());
            let name = format!("{stem}_jupiter.{}", args.format.extension());
            match dir {
                Some(d) => d.join(name),
                None => input.with_file_name(name),
            }
        }
    }
}

/// True when the error is a user cancellation (exit code 130).
pub fn is_cancelled(e: &anyhow::Error) -> bool {
    matches!(e.downcast_ref::<RunError>(), Some(RunError::Cancelled))
}

fn load_registry(cli: &Cli, backend: &HostBackend) -> Result<Registry> {
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

fn backend_choice(cli: &Cli, spec: Option<&PipelineSpec>) -> BackendChoice {
    if cli.cpu {
        BackendChoice::Cpu
    } else if cli.gpu {
        BackendChoice::Gpu
    } else {
        spec.map(|s| s.backend).unwrap_or(BackendChoice::Auto)
    }
}

/// Entry point of the binary.
pub fn main() -> Result<()> {
    let cli = Cli::parse();
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        // First Ctrl-C: stages stop at their next check. Second: leave now,
        // removing any output still being written.
        let _ = ctrlc::set_handler(move || {
            if cancel.swap(true, Ordering::SeqCst) {
                crate::io::write::remove_temporaries();
                std::process::exit(130);
            }
        });
    }
    let mut backend = HostBackend::new(cli.threads, cancel)?;
    backend.quiet = cli.quiet;
    backend.verbose = cli.verbose;
    match &cli.command {
        Command::Plugins => cmd_plugins(&cli, &backend),
        Command::Info { file, open } => cmd_info(&cli, file, open),
        Command::Run(args) => cmd_run(&cli, &mut backend, args),
        Command::Demo {
            dir,
            frames,
            width,
            height,
        } => {
            let reg = load_registry(&cli, &backend)?;
            let device = setup_device(&mut backend, backend_choice(&cli, None));
            crate::demo::run_demo(&reg, &backend, dir, (*frames, *width, *height), &device)
        }
    }
}

/// Opens the device for a run; prints the one warning when the GPU was asked
/// for and is not usable. Returns the device description.
fn setup_device(backend: &mut HostBackend, choice: BackendChoice) -> String {
    let sel = select_device(choice);
    if let Some(w) = &sel.warning {
        backend.message(&format!("warning: {w}"));
    }
    backend.set_gpu(sel.gpu);
    sel.description
}

fn cmd_plugins(cli: &Cli, backend: &HostBackend) -> Result<()> {
    let reg = load_registry(cli, backend)?;
    println!("plugins in {}:", reg.dir.display());
    println!(
        "{:<20} {:<8} {:<8} {:<4} FILE",
        "NAME", "VERSION", "KIND", "GPU"
    );
    for s in reg.stages.values() {
        let m = &s.manifest;
        let file = s
            .file
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "{:<20} {:<8} {:<8} {:<4} {}",
            m.name,
            m.version,
            m.kind.as_str(),
            if m.gpu { "yes" } else { "no" },
            file
        );
        println!("{:<20} {}", "", m.summary);
        for p in m.params.iter() {
            println!(
                "{:<22}{} = {} ({}; {})",
                "",
                p.name,
                p.default,
                p.range_text(),
                p.doc
            );
        }
    }
    println!("device: {}", describe_device(backend_choice(cli, None)));
    Ok(())
}

fn cmd_info(cli: &Cli, file: &Path, open: &OpenArgs) -> Result<()> {
    let ser = SerFile::open(file, open.options())?;
    let h = &ser.header;
    println!("file:        {}", file.display());
    println!(
        "frames:      {} (header says {})",
        ser.frame_count, h.frame_count_header
    );
    println!("size:        {}×{}", h.width, h.height);
    println!(
        "colour:      {} (ID {}) → {} channel(s)",
        h.color.name(),
        h.color.code(),
        ser.channels()
    );
    println!(
        "bit depth:   {} bits per sample, {} byte(s) stored",
        h.depth,
        h.bytes_per_sample()
    );
    println!(
        "byte order:  {} (header LittleEndian flag = {})",
        if h.bytes_per_sample() == 1 {
            "n/a (8-bit)"
        } else if ser.little_endian {
            "little-endian"
        } else {
            "big-endian"
        },
        h.little_endian_flag
    );
    println!("observer:    {}", h.observer);
    println!("instrument:  {}", h.instrument);
    println!("telescope:   {}", h.telescope);
    println!("date (UTC):  {}", h.date_time_utc);
    match &ser.timestamps {
        Some(ts) => println!(
            "timestamps:  present ({} frames, span {:.3} s)",
            ts.len(),
            (ts.last().unwrap_or(&0) - ts.first().unwrap_or(&0)) as f64 * 1e-7
        ),
        None => println!("timestamps:  absent"),
    }
    for w in &ser.warnings {
        println!("warning:     {w}");
    }
    println!(
        "device:      {}",
        describe_device(backend_choice(cli, None))
    );
    Ok(())
}

/// Builds the pipeline from the file, the defaults and the CLI flags.
pub fn build_spec(args: &RunArgs) -> Result<PipelineSpec> {
    let mut spec = match &args.pipeline {
        Some(p) => PipelineSpec::from_file(p)?,
        None => PipelineSpec::default(),
    };
    if let Some(s) = &args.select {
        spec.select = Selection::parse(s)?;
    }
    if let Some(s) = &args.stacker {
        spec.stack = StageChoice::new(s);
    }
    if let Some(a) = &args.aligner {
        spec.align = StageChoice::new(a);
    }
    if args.no_post {
        spec.post.clear();
        spec.default_post = false;
    }
    for s in &args.set {
        spec.apply_set(s)?;
    }
    Ok(spec)
}

fn cmd_run(cli: &Cli, backend: &mut HostBackend, args: &RunArgs) -> Result<()> {
    let spec = build_spec(args)?;
    check_outputs(args)?;
    let reg = load_registry(cli, backend)?;
    crate::timeline::mark("plugins loaded");
    let device = setup_device(backend, backend_choice(cli, Some(&spec)));
    crate::timeline::mark("device ready");
    let backend = &*backend;
    let batch = args.files.len() > 1;
    let mut reports = Vec::new();
    let mut failed = 0;
    for (k, input) in args.files.iter().enumerate() {
        if batch && !cli.quiet {
            backend.message(&format!(
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
        match run(&reg, backend, &req) {
            Ok(out) => {
                if !cli.quiet {
                    let r = &out.report;
                    eprintln!(
                        "stacked {} of {} frames ({}×{}, {} ch) on {} in {:.2} s → {}",
                        r.selected.len(),
                        r.frames,
                        r.width,
                        r.height,
                        r.channels,
                        r.device,
                        r.total_seconds,
                        r.output
                    );
                }
                reports.push(serde_json::to_value(&out.report)?);
            }
            // Cancelled, or the only capture: stop with this error.
            Err(e) if !batch || is_cancelled(&e) => return Err(e),
            Err(e) => {
                let text = format!("{e:#}");
                let name = input.display().to_string();
                backend.message(&if text.starts_with(&name) {
                    format!("error: {text}")
                } else {
                    format!("error: {name}: {text}")
                });
                reports.push(serde_json::json!({
                    "input": input.display().to_string(),
                    "error": text,
                }));
                failed += 1;
            }
        }
    }
    backend.release_capture();
    if let Some(rp) = &args.report {
        let value = if batch {
            serde_json::Value::Array(reports)
        } else {
            reports.pop().unwrap_or_default()
        };
        let text = serde_json::to_string_pretty(&value)?;
        crate::io::write::write_text_atomic(rp, &text)
            .with_context(|| format!("{}: cannot write the report", rp.display()))?;
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} captures failed", args.files.len());
    }
    Ok(())
}

/// Refuses a batch whose outputs would overwrite one another.
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
    Ok(())
}
