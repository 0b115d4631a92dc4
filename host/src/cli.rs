//! The command line: what `run`, `plugins`, `info` and `demo` accept, parsed
//! with clap. The commands themselves are in [`crate::commands`].

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crate::backend::BackendChoice;
use crate::config::{PipelineSpec, Selection, StageChoice};
use crate::io::calibrate::Combine;
use crate::io::ser::{ByteOrder, OpenOptions};

/// jupiter: planetary lucky imaging. Scores every frame of a capture (SER,
/// uncompressed AVI, FITS cube, or a directory of FITS/TIFF/PNG frames),
/// keeps the sharpest, aligns and stacks them, sharpens and stretches the
/// result, and writes a 16-bit TIFF, PNG or FITS. Every stage is a plugin.
#[derive(Parser, Debug)]
#[command(name = "jupiter-host", version, about, long_about = None, after_help = "Examples:\n  jupiter-host demo\n  jupiter-host run capture.ser\n  jupiter-host run night/*.ser -o stacked/ --format png\n  jupiter-host --plugins ./plugins run capture.ser -o jupiter.tif --select 20% --stacker stack-median\n  jupiter-host run capture.ser --set deconvolve.sigma=1.2 --report report.json\n  jupiter-host run capture.ser --dark darks.ser --flat flats.ser --flat-dark flatdarks.ser\n  jupiter-host master darks.ser -o master_dark.fits\n  jupiter-host tune capture.ser   (the post-processing in a browser page)\n  jupiter-host plugins\n  jupiter-host info capture.ser")]
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
    /// Stack a capture (SER, AVI, FITS cube, image directory) into one image.
    ///
    /// Example: jupiter-host run capture.ser -o jupiter.tif --select 25% --stacker stack-sigma-clip
    Run(RunArgs),
    /// List the stages found in the plugin directory.
    ///
    /// Example: jupiter-host --plugins ./plugins plugins
    Plugins,
    /// Show a capture's header, frame count, size, colour and timestamps.
    ///
    /// Example: jupiter-host info capture.ser
    Info {
        /// The capture (SER, AVI, FITS, or a directory of images).
        file: PathBuf,
        #[command(flatten)]
        open: OpenArgs,
    },
    /// Tune the post-processing live in a browser page served on 127.0.0.1.
    ///
    /// Example: jupiter-host tune capture_stack.tif    (or a capture, stacked first)
    Tune(TuneArgs),
    /// Combine a dark, flat or bias capture into a master, for reuse as
    /// `run --dark OUT.fits` (raw samples, not debayered, 32-bit float FITS).
    ///
    /// Example: jupiter-host master darks.ser -o master_dark.fits --combine sigma-clip
    Master(MasterArgs),
    /// Bring stacks of a turning planet taken minutes apart to one time and
    /// combine them (a mean, or R, G and B stacks into one colour image).
    ///
    /// Example: jupiter-host derotate 2024-11-25-2130_4.tif 2024-11-25-2134_0.tif -o j.tif --derotate jupiter
    Derotate(DerotateArgs),
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

/// How to read a SER file.
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
    /// The reader options these flags ask for.
    pub fn options(&self) -> OpenOptions {
        OpenOptions {
            byte_order: self.byte_order,
            allow_truncated: self.allow_truncated,
        }
    }
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The capture(s): SER, uncompressed AVI, FITS cube, or a directory of
    /// FITS/TIFF/PNG frames. Several captures run as one batch: the device,
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
    #[command(flatten)]
    pub pipe: PipelineArgs,
    /// Write a report: FILE.json (scores, selection, shifts, timings,
    /// plugins) or FILE.html (a self-contained page with the quality graph,
    /// the alignment, before/after images); may be given more than once.
    /// A batch writes one HTML page per capture beside FILE.html, which
    /// becomes their index.
    #[arg(long, value_name = "FILE.json|FILE.html")]
    pub report: Vec<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(short, long)]
    pub force: bool,
    /// Write 8-bit PNG instead of 16-bit.
    #[arg(long)]
    pub png8: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// The flags that choose the pipeline (shared by `run` and `tune`).
#[derive(Args, Debug, Clone, Default)]
pub struct PipelineArgs {
    /// Frames to keep: auto (the default: the sharpest 100, within 25–50%
    /// of the frames, go to the multi-point aligner, which keeps at each
    /// point the count its sharpness and noise call for; 25% with global
    /// alignment), a percentage (25%) or a count (300).
    #[arg(long)]
    pub select: Option<String>,
    /// Stacker stage to use (e.g. stack-mean, stack-median, stack-sigma-clip).
    #[arg(long)]
    pub stacker: Option<String>,
    /// Drizzle onto a grid this many times finer (1.5, 2, 3; 1–4): the
    /// shorthand for `--stacker stack-drizzle --set stack.scale=N` (with
    /// align-multipoint, also `--set align.density=N`: alignment points N×
    /// denser, and `align.keep=0.5` unless set: half the frames per point).
    #[arg(long, value_name = "SCALE", conflicts_with = "stacker")]
    pub drizzle: Option<f32>,
    /// Aligner stage to use. Default: align-multipoint (alignment points,
    /// planet or surface mode chosen from the capture); align-phase is
    /// global alignment only, the fast path for previews.
    #[arg(long)]
    pub aligner: Option<String>,
    /// Pipeline file (TOML): stages, parameters, selection, backend.
    #[arg(long, value_name = "FILE.toml")]
    pub pipeline: Option<PathBuf>,
    /// Set a stage parameter: quality.metric=tenengrad, stack.kappa_low=2, deconvolve.sigma=1.2.
    #[arg(long = "set", value_name = "STAGE.PARAM=VALUE")]
    pub set: Vec<String>,
    /// Bayer pattern of a raw-mosaic capture whose file does not say
    /// (RGGB, GRBG, GBRG, BGGR): its frames are debayered to RGB. Overrides
    /// the pattern a file declares.
    #[arg(long, value_name = "PATTERN", value_parser = crate::config::parse_bayer)]
    pub bayer: Option<crate::io::debayer::BayerPattern>,
    /// How Bayer mosaics become RGB: mhc (Malvar–He–Cutler 5×5
    /// gradient-corrected, the default) or bilinear.
    #[arg(long, value_name = "METHOD", value_parser = crate::config::parse_demosaic)]
    pub demosaic: Option<crate::io::debayer::Demosaic>,
    /// Derotate a turning planet: every frame is brought to mid-capture by
    /// the planet's rotation (its disc, pole and sense fitted from the
    /// capture; see `--set derotate.pole_angle=DEG`, `derotate.mirrored`,
    /// `derotate.period_hours`, `derotate.latitude`).
    #[arg(long, value_enum, value_name = "BODY", help_heading = "Derotation")]
    pub derotate: Option<crate::derotate::Body>,
    /// Frames per second, for a derotation of a capture without frame
    /// timestamps (overrides the file's own rate).
    #[arg(long, value_name = "FPS", help_heading = "Derotation")]
    pub fps: Option<f64>,
    /// Skip post-processing (sharpening, filters): write the plain stack.
    #[arg(long)]
    pub no_post: bool,
    /// Dark frames (same exposure and gain as the capture): a capture in
    /// any input format, combined into a master (see --combine), or a
    /// master image (FITS, TIFF, PNG; `jupiter-host master` makes one).
    /// Subtracted from every frame's raw samples, before the debayer.
    #[arg(long, value_name = "FILE", help_heading = "Calibration")]
    pub dark: Option<PathBuf>,
    /// Flat frames (capture or master): every frame is divided by the flat
    /// minus its flat-dark (or bias), each colour normalised to its own mean.
    #[arg(long, value_name = "FILE", help_heading = "Calibration")]
    pub flat: Option<PathBuf>,
    /// Bias frames (capture or master): taken off the flat when there is no
    /// --flat-dark, and off the frames when there is no --dark.
    #[arg(long, value_name = "FILE", help_heading = "Calibration")]
    pub bias: Option<PathBuf>,
    /// Darks for the flats (the flats' exposure), taken off the flat.
    #[arg(long, value_name = "FILE", help_heading = "Calibration")]
    pub flat_dark: Option<PathBuf>,
    /// How calibration captures are combined into masters (default median).
    #[arg(long, value_enum, help_heading = "Calibration")]
    pub combine: Option<Combine>,
    /// Find and repair hot pixels even without masters (from outliers in
    /// the capture's own frames); the default whenever a master is given.
    #[arg(long, conflicts_with = "no_hot_pixels", help_heading = "Calibration")]
    pub hot_pixels: bool,
    /// Leave hot pixels alone (dark and flat still apply).
    #[arg(long, help_heading = "Calibration")]
    pub no_hot_pixels: bool,
}

/// `derotate`: stacks brought to one time.
#[derive(Args, Debug)]
pub struct DerotateArgs {
    /// Stacks of the same planet (TIFF, PNG, FITS), dated by their
    /// metadata (FITS DATE-OBS, TIFF DateTime, PNG Creation Time) or a
    /// capture program's file name (2024-11-25-2130_4-…).
    #[arg(required_unless_present = "rgb")]
    pub images: Vec<PathBuf>,
    /// Three mono stacks taken through red, green and blue filters, in
    /// that order: derotated to one time and written as one colour image.
    #[arg(long, num_args = 3, value_names = ["R", "G", "B"], conflicts_with = "images")]
    pub rgb: Option<Vec<PathBuf>>,
    /// Output image (.tif, .png, .fits).
    #[arg(short, long)]
    pub output: PathBuf,
    /// The planet (its rotation period).
    #[arg(long, value_enum, value_name = "BODY")]
    pub derotate: Option<crate::derotate::Body>,
    /// derotate.KEY=VALUE: pole_angle (fitted from the stacks when absent),
    /// mirrored, latitude, period_hours.
    #[arg(long = "set", value_name = "derotate.KEY=VALUE")]
    pub set: Vec<String>,
    /// The time to derotate to (ISO 8601 UTC, e.g. 2024-11-25T21:32:00);
    /// default half-way through the stacks' times.
    #[arg(long, value_name = "UTC")]
    pub time: Option<String>,
    /// Replace an existing output file.
    #[arg(long)]
    pub force: bool,
}

/// `master`: one calibration capture combined into a master FITS.
#[derive(Args, Debug)]
pub struct MasterArgs {
    /// The dark, flat, bias or flat-dark capture (SER, AVI, FITS cube, or
    /// a directory of FITS/TIFF/PNG frames).
    pub file: PathBuf,
    /// The master to write (32-bit float FITS: .fits, .fit or .fts).
    #[arg(short, long, value_name = "OUT.fits")]
    pub output: PathBuf,
    /// How the frames are combined, pixel by pixel.
    #[arg(long, value_enum, default_value_t = Combine::Median)]
    pub combine: Combine,
    /// Bayer pattern of a raw mosaic whose file does not say (as for `run`).
    #[arg(long, value_name = "PATTERN", value_parser = crate::config::parse_bayer)]
    pub bayer: Option<crate::io::debayer::BayerPattern>,
    /// Replace the output file if it exists.
    #[arg(short, long)]
    pub force: bool,
    #[command(flatten)]
    pub open: OpenArgs,
}

/// `tune`: a stack (or a capture, stacked first) and the local page.
#[derive(Args, Debug)]
pub struct TuneArgs {
    /// A stack (16-bit TIFF as `run` writes it) or a capture (SER), which
    /// is stacked first with the pipeline's stacking stages.
    pub input: PathBuf,
    /// Port on 127.0.0.1 (0: any free port, the default).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Print the URL without opening a browser.
    #[arg(long)]
    pub no_browser: bool,
    /// Base name of what "Save" writes in the working directory
    /// (`NAME.tif|png|fits` and `NAME.toml`). Default: `<input>_tuned`.
    #[arg(long, value_name = "NAME")]
    pub save_as: Option<String>,
    #[command(flatten)]
    pub pipe: PipelineArgs,
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
    /// The file extension of the format.
    pub fn extension(self) -> &'static str {
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

/// Builds the pipeline from the file, the defaults and the CLI flags.
pub fn build_spec(args: &PipelineArgs) -> Result<PipelineSpec> {
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
        spec.default_align = false;
    }
    if let Some(scale) = args.drizzle {
        if !(1.0..=4.0).contains(&scale) {
            anyhow::bail!("--drizzle {scale}: the scale must lie in 1 ..= 4 (1.5, 2 and 3 are the usual choices)");
        }
        spec.stack = StageChoice::new("stack-drizzle");
        spec.stack
            .params
            .insert("scale".into(), serde_json::json!(scale));
        // A finer output grid needs a finer warp field.
        if spec.align.plugin == crate::config::DEFAULT_ALIGNER {
            spec.align
                .params
                .insert("density".into(), serde_json::json!(scale));
            // Drops fill the finer grid from many frames' different
            // sub-pixel offsets: a fixed half of the frames at each point,
            // not the few sharpest the automatic budget picks for a mean.
            spec.align
                .params
                .entry("keep")
                .or_insert(serde_json::json!(DRIZZLE_KEEP));
        }
    }
    if let Some(b) = args.bayer {
        spec.bayer = Some(b);
    }
    if let Some(d) = args.demosaic {
        spec.demosaic = d;
    }
    calibration_flags(args, &mut spec);
    if let Some(b) = args.derotate {
        spec.derotate.body = Some(b);
    }
    if let Some(f) = args.fps {
        spec.derotate.fps = Some(f);
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

/// `--dark`, `--flat`, `--bias`, `--flat-dark`, `--combine` and the hot
/// pixel switches over the pipeline file's `[calibration]`.
fn calibration_flags(args: &PipelineArgs, spec: &mut PipelineSpec) {
    let c = &mut spec.calibration;
    for (flag, key) in [
        (&args.dark, &mut c.dark),
        (&args.flat, &mut c.flat),
        (&args.bias, &mut c.bias),
        (&args.flat_dark, &mut c.flat_dark),
    ] {
        if let Some(p) = flag {
            *key = Some(p.clone());
        }
    }
    if let Some(m) = args.combine {
        c.combine = m;
    }
    if args.hot_pixels {
        c.hot_pixels = Some(true);
    }
    if args.no_hot_pixels {
        c.hot_pixels = Some(false);
    }
}

/// Where stages may run: `--cpu`/`--gpu`, else the pipeline's `backend` key.
pub fn backend_choice(cli: &Cli, spec: Option<&PipelineSpec>) -> BackendChoice {
    if cli.cpu {
        BackendChoice::Cpu
    } else if cli.gpu {
        BackendChoice::Gpu
    } else {
        spec.map(|s| s.backend).unwrap_or(BackendChoice::Auto)
    }
}

/// The per-point share `--drizzle` gives align-multipoint unless set: on
/// the drizzle e2e test's capture the automatic budget (a few frames per
/// point) left the drizzle 0.9 dB over the upscaled mean, half of the
/// frames 1 dB or more.
const DRIZZLE_KEEP: f64 = 0.5;
