//! e2e: end-to-end benchmark of `jupiter-host run` on generated captures,
//! side by side with PlanetarySystemStacker and Siril, plus scaling and
//! memory sweeps. Prints Markdown tables (pasted into `docs/BENCHMARKS.md`).
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release -p jupiter-bench --bin e2e -- [--dir DIR] [--host PATH] [--repeat R]
//!     [--cases] [--peers] [--cold] [--scaling] [--sizes] [--limited] [--post] [--drizzle] [--ceiling] [--budget] [--quick]
//! cargo run --release -p jupiter-bench --bin e2e -- --psnr OUT.tif TRUTH.tif
//! cargo run --release -p jupiter-bench --bin e2e -- --repeat-frames SRC.ser DST.ser TIMES
//! ```
//!
//! With no section flag every section runs. Captures are generated once into
//! `DIR` (default `target/e2e`) by the host's synthetic generator, with their
//! truth saved beside them, and reused by later runs. `--host` times another
//! build of `jupiter-host` (e.g. an older commit's, for before/after figures;
//! its plugins are the ones beside it).
//!
//! * `--cases`: the three reference captures (1000×640×480 8-bit mono planet,
//!   500×1024² 16-bit mono lunar surface, 1000×640×480 8-bit Bayer RGGB).
//!   For each: time of `cat FILE > /dev/null` from the page cache, jupiter
//!   with its default (multi-point) and with global alignment (`--aligner
//!   align-phase`; min / median of R runs, peak
//!   RSS, PSNR against the truth), and with `--peers` PlanetarySystemStacker
//!   and Siril on the same file with the same selection (25 %) and mean
//!   stacking, no sharpening.
//! * `--cold`: the page cache of the capture is dropped (`posix_fadvise
//!   DONTNEED`) before each run; reports bytes read from the disk (`wait4`'s
//!   `ru_inblock`) and time, for jupiter and for a plain `cat`.
//! * `--scaling`: 250 … 4000 frames of 640×480 (each file the first N frames
//!   of one generated 4000-frame capture): time and peak RSS.
//! * `--sizes`: 200 frames at 640×480, 320² … 2048², planet and lunar surface: time, peak RSS and time per pixel·frame over 640×480.
//! * `--limited`: the largest scaling capture run inside a memory cgroup
//!   (v1, `/sys/fs/cgroup/memory`, needs root) whose limit is a fraction of
//!   the file's size, page cache included: a capture larger than the memory
//!   the run may use. Skipped with a message where no cgroup can be made.
//! * `--drizzle`: undersampled captures (2× truth, frames binned 2×2), 1×
//!   mean upscaled vs 2× drizzle (pixfrac sweep), global and multi-point;
//!   the time of 2× drizzle on 250 frames of 640×480.
//! * `--ceiling`: the `--post` captures' default and global stacks against
//!   ceilings (a) and (b): the plain mean of the truly sharpest frames of
//!   the same capture rendered without motion (25 %, and the best fraction).
//! * `--budget`: the same captures' default stacks under fixed selections
//!   (global fraction × per-point share) against `--select auto`: the frame
//!   budget the run chooses should score within 0.3 dB of the best fixed one.
//! * `--large`: 30 frames of 6000×4000 16-bit (the lunar capture's frames
//!   tiled), jupiter's default and `--select 25%` against PlanetarySystemStacker.
//! * `--post`: eight 320×256 captures (planet and surface, mild and strong
//!   seeing, clean and noisy), stacked globally and multi-point: PSNR of the
//!   unsharpened stack, of the default post-processing's output, and of
//!   Richardson–Lucy at the best and at the estimated PSF width.
//!
//! PSNR: the output is registered to the truth (phase correlation, bicubic
//! resampling), a per-channel gain and offset are fitted by least squares
//! (peers scale their output differently), then PSNR (peak 1) is taken over
//! the interior 24 px away from the edges.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use jupiter_host::io::write::write_image;
use jupiter_kit::fft::PhaseCorrelator;
use jupiter_kit::stats::luminance;
use jupiter_kit::warp::{Interp, RowWindow};
use jupiter_plugin_api::Image;
use jupiter_testkit::capture::{generate, Scene, SynthColor, SynthOptions};
use jupiter_testkit::ser::Cfa;

mod args;
mod captures;
mod ceiling;
mod drizzle;
mod large;
mod measure;
mod peers;
mod post;
mod runs;
mod score;

use args::*;
use captures::*;
use ceiling::{budget, ceiling};
use drizzle::drizzle;
use large::large;
use measure::*;
use peers::*;
use post::post;
use runs::*;
use score::*;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, out, truth] = args.as_slice() {
        if flag == "--psnr" {
            // `e2e --psnr OUT TRUTH`: one stack scored as the sections score them.
            let r = read_image(Path::new(out))
                .and_then(|o| psnr_vs_truth(&o, &read_image(Path::new(truth))?));
            return match r {
                Ok(p) => {
                    println!("{p:.3}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("e2e: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    if let [flag, src, dst, times] = args.as_slice() {
        if flag == "--repeat-frames" {
            // `e2e --repeat-frames SRC DST TIMES`: a long SER from a short
            // one, for runs on machines that do not generate captures.
            let r = times
                .parse()
                .map_err(|_| format!("--repeat-frames: '{times}' is not a count"))
                .and_then(|n| repeat_ser(Path::new(src), Path::new(dst), n));
            return match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("e2e: {e}");
                    ExitCode::FAILURE
                }
            };
        }
    }
    let o = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let host = o
        .host
        .clone()
        .or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("jupiter-host")))
        })
        .filter(|p| p.exists());
    let Some(host) = host else {
        eprintln!("jupiter-host is not built next to this harness: run `cargo build --release --workspace` first");
        return ExitCode::FAILURE;
    };
    let work = o.dir.join("work");
    if let Err(e) = std::fs::create_dir_all(&work) {
        eprintln!("{}: {e}", work.display());
        return ExitCode::FAILURE;
    }
    let t = Tools {
        host,
        work,
        sets: o.sets.clone(),
    };
    println!(
        "Machine: {} cores, {:.0} GiB RAM; {}; host {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        mem_gib(),
        std::process::Command::new("date")
            .arg("-u")
            .arg("+%Y-%m-%d")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default(),
        t.host.display()
    );
    let mut result = Ok(());
    let finish = |r: &Result<(), String>| {
        println!(
            "\nThis harness's own peak RSS: {:.0} MB (a floor under the peers' peak RSS figures, which come from `wait4`).",
            jupiter_host::pipeline::peak_rss_mb()
        );
        r.is_ok()
    };
    for (on, f) in [
        (o.cases, cases as fn(&Opts, &Tools) -> Result<(), String>),
        (o.cold, cold),
        (o.scaling, scaling),
        (o.sizes, sizes),
        (o.limited, limited),
        (o.devices, devices),
        (o.post, post),
        (o.drizzle, drizzle),
        (o.ceiling, ceiling),
        (o.budget, budget),
        (o.large, large),
    ] {
        if on && result.is_ok() {
            result = f(&o, &t);
        }
    }
    finish(&result);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("e2e: {e}");
            ExitCode::FAILURE
        }
    }
}
