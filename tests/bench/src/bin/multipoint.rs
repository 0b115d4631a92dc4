//! Multi-point alignment benchmarks (issue 6): alignment-point count vs time,
//! and the whole multi-point pipeline vs the global one.
//!
//! ```text
//! cargo build --release -p jupiter-host -p jupiter-plugin-quality -p jupiter-plugin-align-phase \
//!     -p jupiter-plugin-align-multipoint -p jupiter-plugin-stack-mean -p jupiter-plugin-sharpen-wavelet \
//!     -p jupiter-plugin-filters
//! cargo run --release -p jupiter-bench --bin multipoint -- [--frames 1000] [--width 640] [--height 480]
//!     [--threads T] [--sweep-frames 100] [--ap-sizes 128/64,96/48,…] [--repeat 1] [--dir DIR]
//!     [--skip-sweep] [--skip-pipeline]
//! ```
//!
//! 1. Generates a lunar capture with local seeing (`synth::Seeing::turbulent`:
//!    1–3 px local displacements varying over 50–100 px, blur varying ±50 %
//!    across the field; global jitter ±5 px; 8-bit mono), or reuses it while
//!    `DIR/lunar-WxH-N.ser` exists (default DIR: `target/bench-multipoint`).
//! 2. AP count vs time: `align-multipoint` (in-process, the host's rayon
//!    backend with `--threads` workers) on the first `--sweep-frames` frames
//!    for AP sizes 128 … 24 px (step = half the size), then size 64 with
//!    steps 64, 32, 16 and size 32 with step 8, with `align-phase` as the
//!    0-AP baseline; plus `stack-mean` on those frames with the fields
//!    versus with the global shifts only.
//! 3. Whole pipeline: the release `jupiter-host` (next to this binary) run on
//!    the whole capture with the default pipeline (quality → best 25 % →
//!    align-phase → stack-mean → sharpen-wavelet → stretch) and with
//!    `--aligner align-multipoint`; wall-clock times and the per-stage times
//!    of its `--report`, best of `--repeat`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use abi_stable::sabi_trait::TD_Opaque;
use jupiter_host::backend::HostBackend;
use jupiter_host::frames::CaptureFrames;
use jupiter_host::io::ser::SerFile;
use jupiter_kit::warp::{warped_rows, Interp};
use jupiter_plugin_align_multipoint::dewarp::dewarp_rows;
use jupiter_plugin_align_multipoint::params::MultipointParams;
use jupiter_plugin_api::frame::FrameSourceExt;
use jupiter_plugin_api::{Alignment, FrameSource_TO, FrameWarp, StackRequest, StageCtx};
use jupiter_testkit::capture::{generate_with_seeing, Scene, Seeing, SynthColor, SynthOptions};

const USAGE: &str = "usage: multipoint [--frames N] [--width W] [--height H] [--threads T] [--sweep-frames N] [--ap-sizes SIZE[/STEP],…] [--repeat R] [--dir DIR] [--skip-sweep] [--skip-pipeline]";

struct Opts {
    frames: usize,
    width: u32,
    height: u32,
    threads: usize,
    sweep_frames: usize,
    repeat: usize,
    dir: PathBuf,
    sweep: bool,
    pipeline: bool,
    /// (size, step) of each alignment-point grid of the sweep.
    sizes: Vec<(u32, u32)>,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    // The workspace root: this crate lives in tests/bench/.
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut o = Opts {
        frames: 1000,
        width: 640,
        height: 480,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        sweep_frames: 100,
        repeat: 1,
        dir: ws.join("target").join("bench-multipoint"),
        sweep: true,
        pipeline: true,
        sizes: vec![
            (128, 64),
            (96, 48),
            (64, 32),
            (48, 24),
            (32, 16),
            (24, 12),
            (64, 64),
            (64, 16),
            (32, 8),
        ],
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--skip-sweep" => o.sweep = false,
            "--skip-pipeline" => o.pipeline = false,
            "--dir" => o.dir = PathBuf::from(it.next().ok_or("--dir needs a value")?),
            "--ap-sizes" => {
                let v = it.next().ok_or("--ap-sizes needs a value")?;
                let entry = |e: &str| -> Option<(u32, u32)> {
                    let mut it = e.trim().split('/');
                    let size: u32 = it.next()?.parse().ok()?;
                    let step = match it.next() {
                        Some(t) => t.parse().ok()?,
                        None => size / 2,
                    };
                    Some((size, step))
                };
                o.sizes = v
                    .split(',')
                    .map(|e| {
                        entry(e)
                            .ok_or_else(|| format!("--ap-sizes: '{e}' is not SIZE or SIZE/STEP"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => {
                let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
                let n: usize = value
                    .parse()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| format!("{flag}: '{value}' is not a positive integer"))?;
                match flag.as_str() {
                    "--frames" => o.frames = n,
                    "--width" => o.width = n as u32,
                    "--height" => o.height = n as u32,
                    "--threads" => o.threads = n,
                    "--sweep-frames" => o.sweep_frames = n,
                    "--repeat" => o.repeat = n,
                    other => return Err(format!("unknown option '{other}'\n{USAGE}")),
                }
            }
        }
    }
    Ok(o)
}

/// The capture, generated once.
fn capture(o: &Opts) -> Result<PathBuf, String> {
    std::fs::create_dir_all(&o.dir).map_err(|e| format!("{}: {e}", o.dir.display()))?;
    let path = o
        .dir
        .join(format!("lunar-{}x{}-{}.ser", o.width, o.height, o.frames));
    if path.exists() {
        eprintln!("reusing {}", path.display());
        return Ok(path);
    }
    let so = SynthOptions {
        width: o.width,
        height: o.height,
        frames: o.frames,
        scene: Scene::Lunar,
        color: SynthColor::Mono,
        depth: 8,
        seed: 6,
        jitter: 5.0,
        blur: (0.8, 2.2),
        full_well: 400.0,
        read_noise: 3.0,
        artifacts: 0.0,
        bin: 1,
    };
    eprintln!(
        "generating {} ({} frames of {}×{}, local seeing) …",
        path.display(),
        o.frames,
        o.width,
        o.height
    );
    let t = Instant::now();
    let tmp = path.with_extension("ser.tmp");
    generate_with_seeing(&tmp, &so, &Seeing::turbulent())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("  generated in {:.1} s", t.elapsed().as_secs_f64());
    Ok(path)
}

fn sweep(o: &Opts, ser: &Path) -> Result<(), String> {
    let err = |e: jupiter_plugin_api::StageError| e.to_string();
    let file = SerFile::open(ser, Default::default()).map_err(|e| e.to_string())?;
    let n = o.sweep_frames.min(file.frame_count);
    let src = CaptureFrames {
        capture: Arc::new(file.into()),
        indices: (0..n).collect(),
        device: None,
    };
    let frames = FrameSource_TO::from_ptr(&src, TD_Opaque);
    let mut be =
        HostBackend::new(o.threads, Arc::new(AtomicBool::new(false))).map_err(|e| e.to_string())?;
    be.quiet = true;
    let ctx = StageCtx {
        backend: be.as_ref(),
        stage: "align-multipoint".into(),
    };
    let stack = |warps: Vec<FrameWarp>| -> Result<f64, String> {
        let req = StackRequest::new(warps);
        let t = Instant::now();
        jupiter_plugin_stack_mean::cpu::stack(&ctx, &frames, &req, &Default::default())
            .map_err(err)?;
        Ok(t.elapsed().as_secs_f64())
    };

    println!("AP count vs time: {n} frames of {}×{} mono, {} threads (the host's rayon backend, in-process)", o.width, o.height, o.threads);
    let t = Instant::now();
    let global =
        jupiter_plugin_align_phase::cpu::align(&ctx, &frames, &Default::default()).map_err(err)?;
    let phase_t = t.elapsed().as_secs_f64();
    let stack_global = stack(global.warps.to_vec())?;
    println!(
        "  {:<22} {:>9} {:>7} {:>10} {:>12} {:>14}",
        "aligner", "grid", "APs", "align (s)", "ms / frame", "stack-mean (s)"
    );
    println!(
        "  {:<22} {:>9} {:>7} {:>10.2} {:>12.1} {:>14.2}",
        "align-phase",
        "-",
        0,
        phase_t,
        1e3 * phase_t / n as f64,
        stack_global
    );
    let mut last = None;
    for &(size, step) in &o.sizes {
        let p = MultipointParams {
            ap_size: size,
            ap_step: step,
            ..Default::default()
        };
        let t = Instant::now();
        let (a, s) = jupiter_plugin_align_multipoint::cpu::align_with_summary(&ctx, &frames, &p)
            .map_err(err)?;
        let dt = t.elapsed().as_secs_f64();
        let st = stack(a.warps.to_vec())?;
        let name = format!("align-multipoint {size}/{step}");
        let grid = format!("{}×{}", s.grid.cols, s.grid.rows);
        println!(
            "  {:<22} {:>9} {:>7} {:>10.2} {:>12.1} {:>14.2}",
            name,
            grid,
            s.grid.active_count(),
            dt,
            1e3 * dt / n as f64,
            st
        );
        if size == 64 && step == 32 {
            last = Some(a);
        }
    }
    if let Some(a) = last {
        resampling(o, &frames, &a)?;
    }
    Ok(())
}

/// Resampling under a warp field: the stacker's per-pixel path versus the
/// aligner's row-wise one, one thread, every frame once (luminance only).
fn resampling(
    o: &Opts,
    frames: &jupiter_plugin_api::FrameSourceRef,
    a: &Alignment,
) -> Result<(), String> {
    let err = |e: jupiter_plugin_api::StageError| e.to_string();
    let n = a.warps.len();
    {
        let (w, h) = (o.width as usize, o.height as usize);
        let (mut out, mut wt, mut scratch) = (vec![0.0f32; w * h], vec![0.0f32; w * h], Vec::new());
        let t = Instant::now();
        for (i, warp) in a.warps.iter().enumerate() {
            warped_rows(
                frames,
                i,
                warp,
                Interp::Bicubic,
                0,
                h,
                &mut out,
                Some(&mut wt),
                &mut scratch,
            )
            .map_err(err)?;
        }
        let kit_t = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for (i, warp) in a.warps.iter().enumerate() {
            let plane = frames.frame(i).map_err(err)?;
            let f = warp.dense_field().ok_or("no field")?;
            dewarp_rows(&plane, w, h, warp.dx, warp.dy, &f, 0, &mut out);
        }
        let row_t = t.elapsed().as_secs_f64();
        println!(
            "  resampling the {n} frames under their 64/32 fields, 1 thread (incl. decoding): kit warped_rows {kit_t:.2} s, align-multipoint dewarp_rows {row_t:.2} s ({:.1}× faster)",
            kit_t / row_t
        );
    }
    Ok(())
}

/// (stage, plugin, seconds) of each stage of a run.
type StageTimes = Vec<(String, String, f64)>;

/// Per-stage seconds from a report.
fn stage_times(report: &Path) -> Result<StageTimes, String> {
    let text = std::fs::read_to_string(report).map_err(|e| format!("{}: {e}", report.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", report.display()))?;
    Ok(v["timings"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| {
                    (
                        t["stage"].as_str().unwrap_or("?").to_string(),
                        t["plugin"].as_str().unwrap_or("?").to_string(),
                        t["seconds"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect()
        })
        .unwrap_or_default())
}

fn pipeline(o: &Opts, ser: &Path) -> Result<(), String> {
    let exe_dir = std::env::current_exe()
        .map_err(|e| e.to_string())?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let host = exe_dir.join(format!("jupiter-host{}", std::env::consts::EXE_SUFFIX));
    if !host.exists() {
        return Err(format!("{} is missing: build the host and plugins in release first (see the top of tests/bench/src/bin/multipoint.rs)", host.display()));
    }
    let run = |name: &str, extra: &[&str]| -> Result<(f64, StageTimes), String> {
        let (out, report) = (
            o.dir.join(format!("{name}.tif")),
            o.dir.join(format!("{name}.json")),
        );
        let mut cmd = Command::new(&host);
        cmd.arg("--plugins")
            .arg(&exe_dir)
            .arg("-q")
            .arg("--threads")
            .arg(o.threads.to_string());
        cmd.arg("run")
            .arg(ser)
            .arg("-o")
            .arg(&out)
            .arg("--force")
            .arg("--report")
            .arg(&report)
            .args(extra);
        let t = Instant::now();
        let res = cmd
            .output()
            .map_err(|e| format!("{}: {e}", host.display()))?;
        let dt = t.elapsed().as_secs_f64();
        if !res.status.success() {
            return Err(format!(
                "{name}: jupiter-host failed: {}",
                String::from_utf8_lossy(&res.stderr)
            ));
        }
        Ok((dt, stage_times(&report)?))
    };
    let mut best: [Option<(f64, StageTimes)>; 2] = [None, None];
    for r in 0..o.repeat {
        // Alternate the order so that neither always runs on a warm cache.
        let order: [usize; 2] = if r % 2 == 0 { [0, 1] } else { [1, 0] };
        for k in order {
            eprintln!(
                "pipeline run {} of {}: {} …",
                r + 1,
                o.repeat,
                ["global", "multi-point"][k]
            );
            let res = if k == 0 {
                run("global", &[])?
            } else {
                run("multipoint", &["--aligner", "align-multipoint"])?
            };
            if best[k].as_ref().is_none_or(|b| res.0 < b.0) {
                best[k] = Some(res);
            }
        }
    }
    let [Some(g), Some(m)] = best else {
        return Err("no pipeline run".into());
    };
    println!(
        "whole pipeline on {} ({} frames of {}×{}, default selection 25 %, default post-processing), {} threads, best of {}:",
        ser.file_name().map(|f| f.to_string_lossy().to_string()).unwrap_or_default(),
        o.frames,
        o.width,
        o.height,
        o.threads,
        o.repeat
    );
    println!(
        "  {:<44} {:>10} {:>16}",
        "stage (plugin)", "global (s)", "multi-point (s)"
    );
    for (a, b) in g.1.iter().zip(&m.1) {
        let label = if a.1 == b.1 {
            format!("{} ({})", a.0, a.1)
        } else {
            format!("{} ({} / {})", a.0, a.1, b.1)
        };
        println!("  {:<44} {:>10.2} {:>16.2}", label, a.2, b.2);
    }
    println!(
        "  {:<44} {:>10.2} {:>16.2}   ratio {:.2}×",
        "total (wall clock: start-up, decode, writing)",
        g.0,
        m.0,
        m.0 / g.0
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let result = parse(&args).and_then(|o| {
        let ser = capture(&o)?;
        if o.sweep {
            sweep(&o, &ser)?;
        }
        if o.pipeline {
            pipeline(&o, &ser)?;
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multipoint: {e}");
            ExitCode::FAILURE
        }
    }
}
