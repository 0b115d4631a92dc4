//! e2e: end-to-end benchmark of `jupiter-host run` on generated captures,
//! side by side with PlanetarySystemStacker and Siril, plus scaling and
//! memory sweeps. Prints Markdown tables (pasted into `docs/BENCHMARKS.md`).
//!
//! ```text
//! cargo build --release --workspace
//! cargo run --release -p jupiter-bench --bin e2e -- [--dir DIR] [--host PATH] [--repeat R]
//!     [--cases] [--peers] [--cold] [--scaling] [--sizes] [--limited] [--quick]
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
//!   with global and with multi-point alignment (min / median of R runs, peak
//!   RSS, PSNR against the truth), and with `--peers` PlanetarySystemStacker
//!   and Siril on the same file with the same selection (25 %) and mean
//!   stacking, no sharpening.
//! * `--cold`: the page cache of the capture is dropped (`posix_fadvise
//!   DONTNEED`) before each run; reports bytes read from the disk (`wait4`'s
//!   `ru_inblock`) and time, for jupiter and for a plain `cat`.
//! * `--scaling`: 250 … 4000 frames of 640×480 (each file the first N frames
//!   of one generated 4000-frame capture): time and peak RSS.
//! * `--sizes`: 200 frames at 320² … 2048²: time and peak RSS.
//! * `--limited`: the largest scaling capture run inside a memory cgroup
//!   (v1, `/sys/fs/cgroup/memory`, needs root) whose limit is a fraction of
//!   the file's size, page cache included: a capture larger than the memory
//!   the run may use. Skipped with a message where no cgroup can be made.
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

const USAGE: &str = "usage: e2e [--dir DIR] [--host PATH] [--repeat R] [--cases] [--peers] [--cold] [--scaling] [--sizes] [--limited] [--devices] [--only NAME] [--quick] [--batch N]";

struct Opts {
    dir: PathBuf,
    host: Option<PathBuf>,
    repeat: usize,
    cases: bool,
    peers: bool,
    cold: bool,
    scaling: bool,
    sizes: bool,
    limited: bool,
    devices: bool,
    /// Only the reference captures whose name contains this.
    only: Option<String>,
    quick: bool,
    /// Captures per batch in the `--devices` batch rows.
    batch: usize,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        dir: PathBuf::from("target/e2e"),
        host: None,
        repeat: 3,
        cases: false,
        peers: false,
        cold: false,
        scaling: false,
        sizes: false,
        limited: false,
        devices: false,
        only: None,
        quick: false,
        batch: 5,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--dir" => o.dir = it.next().ok_or("--dir needs a value")?.into(),
            "--host" => o.host = Some(it.next().ok_or("--host needs a value")?.into()),
            "--repeat" => {
                o.repeat = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&r| r > 0)
                    .ok_or("--repeat needs a positive integer")?
            }
            "--cases" => o.cases = true,
            "--peers" => o.peers = true,
            "--cold" => o.cold = true,
            "--scaling" => o.scaling = true,
            "--sizes" => o.sizes = true,
            "--limited" => o.limited = true,
            "--devices" => o.devices = true,
            "--only" => o.only = Some(it.next().ok_or("--only needs a value")?.clone()),
            "--quick" => o.quick = true,
            "--batch" => {
                o.batch = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&b: &usize| b >= 1)
                    .ok_or("--batch needs a count of at least 1")?
            }
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    if !(o.cases || o.peers || o.cold || o.scaling || o.sizes || o.limited || o.devices) {
        (o.cases, o.peers, o.cold, o.scaling, o.sizes, o.limited) =
            (true, true, true, true, true, true);
    }
    if o.peers {
        o.cases = true;
    }
    Ok(o)
}

/// One capture to generate.
#[derive(Clone)]
struct CaseSpec {
    name: String,
    what: String,
    opts: SynthOptions,
}

fn case_specs(quick: bool) -> Vec<CaseSpec> {
    let scale = if quick { 10 } else { 1 };
    let base = SynthOptions {
        width: 640,
        height: 480,
        frames: 1000 / scale,
        seed: 11,
        ..SynthOptions::default()
    };
    vec![
        CaseSpec {
            name: "planet-mono8".into(),
            what: format!("{} × 640×480 8-bit mono (Jupiter)", base.frames),
            opts: base.clone(),
        },
        CaseSpec {
            name: "lunar-mono16".into(),
            what: format!("{} × 1024×1024 16-bit mono (lunar surface)", 500 / scale),
            opts: SynthOptions {
                width: 1024,
                height: 1024,
                frames: 500 / scale,
                depth: 16,
                scene: Scene::Lunar,
                seed: 12,
                ..base.clone()
            },
        },
        CaseSpec {
            name: "planet-bayer8".into(),
            what: format!("{} × 640×480 8-bit Bayer RGGB", base.frames),
            opts: SynthOptions {
                color: SynthColor::Bayer(Cfa::Rggb),
                seed: 13,
                ..base
            },
        },
    ]
}

/// A generated capture and its truth.
struct Capture {
    path: PathBuf,
    truth: Image,
    bytes: u64,
}

/// Generates `spec` into `dir` unless it is already there.
fn capture(dir: &Path, spec: &CaseSpec) -> Result<Capture, String> {
    let path = dir.join(format!("{}.ser", spec.name));
    let truth_path = dir.join(format!("{}.truth.tif", spec.name));
    if !(path.exists() && truth_path.exists()) {
        eprintln!("generating {} ({})", path.display(), spec.what);
        let t = Instant::now();
        let c = generate(&path, &spec.opts).map_err(|e| format!("{}: {e}", path.display()))?;
        write_image(&c.truth, &truth_path, false, true).map_err(|e| e.to_string())?;
        eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(Capture {
        truth: read_image(&truth_path)?,
        bytes: std::fs::metadata(&path).map_err(|e| e.to_string())?.len(),
        path,
    })
}

/// Opens a SER file for copying: the file (positioned after the header),
/// the header, bytes per frame and frame count.
fn open_ser(src: &Path) -> std::io::Result<(File, Vec<u8>, u64, u64)> {
    let mut f = File::open(src)?;
    let mut header = vec![0u8; 178];
    f.read_exact(&mut header)?;
    let (frame, total) = ser_layout(&header);
    Ok((f, header, frame, total))
}

/// Bytes per frame and frame count from a SER header (178 bytes).
fn ser_layout(header: &[u8]) -> (u64, u64) {
    let field = |o: usize| i32::from_le_bytes(header[o..o + 4].try_into().unwrap());
    let (w, h, depth, total) = (
        field(26) as u64,
        field(30) as u64,
        field(34),
        field(38) as u64,
    );
    let planes = if matches!(field(18), 100 | 101) { 3 } else { 1 };
    (w * h * planes * if depth > 8 { 2 } else { 1 }, total)
}

/// Writes the SER `src` with its frames repeated `times` times (no
/// timestamps) to `dst`: a long capture from a short generated one.
fn repeat_ser(src: &Path, dst: &Path, times: usize) -> Result<(), String> {
    if dst.exists() {
        return Ok(());
    }
    let err = |e: std::io::Error| format!("{}: {e}", src.display());
    let (mut f, mut header, frame, total) = open_ser(src).map_err(err)?;
    let bytes = frame * total;
    header[38..42].copy_from_slice(&((total as usize * times) as i32).to_le_bytes());
    let tmp = dst.with_extension("ser.part");
    let mut o = std::io::BufWriter::new(File::create(&tmp).map_err(err)?);
    o.write_all(&header).map_err(err)?;
    for _ in 0..times {
        f.seek(SeekFrom::Start(178)).map_err(err)?;
        std::io::copy(&mut (&mut f).take(bytes), &mut o).map_err(err)?;
    }
    o.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, dst).map_err(err)
}

/// Writes the first `frames` frames of the SER `src` (header, frames and
/// their timestamps) to `dst`: the same capture generated with fewer frames.
fn truncate_ser(src: &Path, dst: &Path, frames: usize) -> Result<(), String> {
    if dst.exists() {
        return Ok(());
    }
    let err = |e: std::io::Error| format!("{}: {e}", src.display());
    let (mut f, mut header, frame, total) = open_ser(src).map_err(err)?;
    header[38..42].copy_from_slice(&(frames as i32).to_le_bytes());
    let tmp = dst.with_extension("ser.part");
    let mut o = std::io::BufWriter::new(File::create(&tmp).map_err(err)?);
    o.write_all(&header).map_err(err)?;
    // Streamed (copy), so that this process stays small: Linux carries the
    // parent's peak RSS into the children it starts.
    std::io::copy(&mut (&mut f).take(frame * frames as u64), &mut o).map_err(err)?;
    let mut ts = vec![0u8; frames * 8];
    f.seek(SeekFrom::Start(178 + frame * total)).map_err(err)?;
    f.read_exact(&mut ts).map_err(err)?;
    o.write_all(&ts).map_err(err)?;
    o.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, dst).map_err(err)
}

/// Wall time, peak RSS and bytes read from the disk of one child process.
#[derive(Clone, Copy, Debug)]
struct Measured {
    secs: f64,
    rss_mb: f64,
    read_mb: f64,
}

/// Runs `cmd` to completion and measures it (`wait4`'s resource usage).
fn measure(cmd: &mut Command, log: &Path) -> Result<Measured, String> {
    // Both streams go to the log (Siril reports on stdout, jupiter on
    // stderr), except for `cat`, whose output is the data: /dev/null.
    let errfile = File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    if cmd.get_program() == "cat" {
        cmd.stdout(Stdio::null());
    } else {
        let outfile = errfile
            .try_clone()
            .map_err(|e| format!("{}: {e}", log.display()))?;
        cmd.stdout(outfile);
    }
    cmd.stderr(errfile);
    let t = Instant::now();
    let child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let mut status = 0i32;
    // SAFETY: rusage is plain old data, zero is a valid value for every field.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pid is our own unreaped child; the pointers are valid.
    let r = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    let secs = t.elapsed().as_secs_f64();
    if r < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    if !(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: String = text
            .lines()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join(" | ");
        return Err(format!(
            "{:?} failed (status {status}): {tail}",
            cmd.get_program()
        ));
    }
    // `ru_maxrss` of a child is at least this process's peak RSS at the
    // fork (Linux carries it across exec); a jupiter run's report holds its
    // own peak (VmHWM), which is used when present.
    let args: Vec<_> = cmd.get_args().collect();
    let reported = args
        .iter()
        .position(|a| *a == "--report")
        .and_then(|i| args.get(i + 1))
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v["peak_rss_mb"].as_f64())
        .filter(|&v| v > 0.0);
    Ok(Measured {
        secs,
        rss_mb: reported.unwrap_or(ru.ru_maxrss as f64 / 1024.0),
        read_mb: ru.ru_inblock as f64 * 512.0 / 1e6,
    })
}

/// Drops the file's pages from the page cache (clean pages only; ours are).
fn evict(path: &Path) -> Result<(), String> {
    use std::os::fd::AsRawFd;
    let f = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.sync_all().ok();
    // SAFETY: valid open descriptor; advisory call.
    let r = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if r != 0 {
        return Err(format!("posix_fadvise({}): error {r}", path.display()));
    }
    Ok(())
}

/// Runs `make` `repeat` times (after one warm-up when `warm`); all results.
fn repeat(
    n: usize,
    warm: bool,
    mut make: impl FnMut() -> Command,
    log: &Path,
) -> Result<Vec<Measured>, String> {
    if warm {
        measure(&mut make(), log)?;
    }
    (0..n).map(|_| measure(&mut make(), log)).collect()
}

/// (min, median) of the wall times, and the largest peak RSS.
fn summary(runs: &[Measured]) -> (f64, f64, f64) {
    let mut t: Vec<f64> = runs.iter().map(|m| m.secs).collect();
    t.sort_by(f64::total_cmp);
    let rss = runs.iter().map(|m| m.rss_mb).fold(0.0, f64::max);
    (t[0], t[t.len() / 2], rss)
}

fn read_image(path: &Path) -> Result<Image, String> {
    use tiff::decoder::{Decoder, DecodingResult};
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut dec = Decoder::new(std::io::BufReader::new(
        File::open(path).map_err(|e| err(&e))?,
    ))
    .map_err(|e| err(&e))?;
    let (w, h) = dec.dimensions().map_err(|e| err(&e))?;
    let channels = match dec.colortype().map_err(|e| err(&e))? {
        tiff::ColorType::Gray(_) => 1,
        tiff::ColorType::RGB(_) => 3,
        tiff::ColorType::RGBA(_) => 4,
        other => return Err(err(&format!("unsupported colour type {other:?}"))),
    };
    let data: Vec<f32> = match dec.read_image().map_err(|e| err(&e))? {
        DecodingResult::U8(v) => v.iter().map(|&x| x as f32 / 255.0).collect(),
        DecodingResult::U16(v) => v.iter().map(|&x| x as f32 / 65535.0).collect(),
        DecodingResult::F32(v) => v,
        _ => return Err(err(&"unsupported sample type")),
    };
    let data = if channels == 4 {
        data.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    } else {
        data
    };
    Ok(Image::from_vec(w, h, channels.min(3), data))
}

/// The PSNR of the image at `out` against `truth`, for a table cell.
fn psnr_text(out: &Path, truth: &Image) -> String {
    read_image(out)
        .and_then(|img| psnr_vs_truth(&img, truth))
        .map_or_else(|e| format!("n/a ({e})"), |p| format!("{p:.2}"))
}

/// PSNR (dB) of `out` against `truth` after registration and a per-channel
/// gain/offset fit (see the module doc). An output smaller than the truth
/// (PlanetarySystemStacker crops its borders) is placed centred on a canvas
/// of the truth's size for registration and scored where it has data.
fn psnr_vs_truth(out: &Image, truth: &Image) -> Result<f64, String> {
    let (w, h) = (truth.width as usize, truth.height as usize);
    let (ow, oh) = (out.width as usize, out.height as usize);
    if ow > w || oh > h {
        return Err(format!(
            "output is {ow}×{oh}, larger than the truth ({w}×{h})"
        ));
    }
    let (ox, oy) = ((w - ow) / 2, (h - oh) / 2);
    let (tc, oc) = (truth.channels as usize, out.channels as usize);
    // Output planes on the truth-sized canvas (edges replicated).
    let canvas = |plane: &[f32]| -> Vec<f32> {
        let win = RowWindow {
            data: plane,
            y0: 0,
            rows: oh,
            width: ow,
            channels: 1,
        };
        (0..w * h)
            .map(|i| {
                win.sample(
                    (i % w) as f32 - ox as f32,
                    (i / w) as f32 - oy as f32,
                    0,
                    Interp::Bilinear,
                )
            })
            .collect()
    };
    let out_planes: Vec<Vec<f32>> = if oc == tc {
        (0..tc)
            .map(|c| {
                canvas(
                    &out.data
                        .iter()
                        .skip(c)
                        .step_by(oc)
                        .copied()
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    } else {
        vec![canvas(&luminance(&out.data, oc)); tc]
    };
    let truth_lum = luminance(&truth.data, tc);
    let out_lum: Vec<f32> = (0..w * h)
        .map(|i| out_planes.iter().map(|p| p[i]).sum::<f32>() / tc as f32)
        .collect();
    let s = PhaseCorrelator::new(&truth_lum, w, h).shift_of(&out_lum);
    // Truth pixels whose registered position lies 24 px inside the output.
    let m = 24.0;
    let inside = |x: usize, y: usize| {
        let (u, v) = (x as f32 + s.dx - ox as f32, y as f32 + s.dy - oy as f32);
        u >= m && v >= m && u <= ow as f32 - 1.0 - m && v <= oh as f32 - 1.0 - m
    };
    let (mut se, mut n) = (0.0f64, 0usize);
    for (c, plane) in out_planes.iter().enumerate() {
        let win = RowWindow {
            data: plane,
            y0: 0,
            rows: h,
            width: w,
            channels: 1,
        };
        let mut pairs = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if inside(x, y) {
                    let v = win.sample(x as f32 + s.dx, y as f32 + s.dy, 0, Interp::Bicubic) as f64;
                    pairs.push((v, truth.data[(y * w + x) * tc + c] as f64));
                }
            }
        }
        if pairs.is_empty() {
            return Err("no overlap with the truth".into());
        }
        let m = pairs.len() as f64;
        let (sx, sy) = pairs.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let (mx, my) = (sx / m, sy / m);
        let (sxy, sxx) = pairs.iter().fold((0.0, 0.0), |a, p| {
            (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx).powi(2))
        });
        let gain = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        for (v, t) in pairs {
            se += (my + gain * (v - mx) - t).powi(2);
            n += 1;
        }
    }
    Ok(10.0 * (n as f64 / se.max(1e-30)).log10())
}

/// The pipeline of the harness's jupiter runs: 25 % of the frames, mean
/// stacking, no post-processing.
const RUN_ARGS: [&str; 6] = [
    "--select",
    "25%",
    "--stacker",
    "stack-mean",
    "--no-post",
    "--force",
];

/// Paths of the tools.
struct Tools {
    host: PathBuf,
    work: PathBuf,
}

impl Tools {
    fn jupiter(&self, input: &Path, out: &Path, multipoint: bool) -> Command {
        let mut c = Command::new(&self.host);
        c.args(["-q", "run"])
            .arg(input)
            .arg("-o")
            .arg(out)
            .args(RUN_ARGS);
        if multipoint {
            c.args(["--aligner", "align-multipoint"]);
        }
        let report = self.work.join("report.json");
        let _ = std::fs::remove_file(&report);
        c.arg("--report").arg(report);
        c
    }
}

/// The whole pipeline with `--cpu` and with `--gpu` on the same captures:
/// wall time of the process, the stages' own total from the report, the
/// three frame stages, and PSNR against the truth.
fn devices(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Whole pipeline: GPU against the CPU path on this machine\n");
    println!("`jupiter-host --cpu|--gpu run` (selection 25 %, mean stacking, no sharpening), {} runs after one warm-up; wall = the whole process (start, plugin loading, device start-up, writing), stages = the report's `total_seconds` and per-stage times of the last run.\n", o.repeat);
    println!("| capture | device | wall min / median (s) | stages total (s) | quality | align | stack | PSNR (dB) | CPU ÷ GPU wall | CPU ÷ GPU stages |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    // Besides the reference captures, 1000 frames of 1024×1024: 100
    // generated frames repeated 10 times (the generator is serial; the
    // pipeline's work per frame does not depend on repeats).
    let big_frames = if o.quick { 10 } else { 100 };
    let big = CaseSpec {
        name: "big-mono8".into(),
        what: format!(
            "{} × 1024×1024 8-bit mono (Jupiter; {big_frames} frames × 10)",
            10 * big_frames
        ),
        opts: SynthOptions {
            width: 1024,
            height: 1024,
            frames: big_frames,
            seed: 14,
            ..SynthOptions::default()
        },
    };
    let mut specs = case_specs(o.quick);
    specs.push(big);
    let mut batch_rows = Vec::new();
    for spec in specs
        .into_iter()
        .filter(|s| o.only.as_ref().is_none_or(|n| s.name.contains(n.as_str())))
    {
        let mut cap = capture(&o.dir, &spec)?;
        if spec.name == "big-mono8" {
            let long = o.dir.join("big-mono8-x10.ser");
            repeat_ser(&cap.path, &long, 10)?;
            cap.bytes = std::fs::metadata(&long).map_err(|e| e.to_string())?.len();
            cap.path = long;
        }
        let mut cpu: Option<(f64, f64)> = None;
        for dev in ["--cpu", "--gpu"] {
            let out = t.work.join(format!("{}{dev}.tif", spec.name));
            let runs = repeat(
                o.repeat,
                true,
                || {
                    let mut c = Command::new(&t.host);
                    c.arg(dev);
                    let inner = t.jupiter(&cap.path, &out, false);
                    c.args(inner.get_args());
                    c
                },
                &t.work.join("jupiter.log"),
            )?;
            let report: serde_json::Value = std::fs::read_to_string(t.work.join("report.json"))
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok())
                .ok_or("no report from jupiter-host")?;
            let stage = |name: &str| {
                report["timings"]
                    .as_array()
                    .and_then(|a| a.iter().find(|v| v["stage"] == name))
                    .and_then(|v| v["seconds"].as_f64())
                    .unwrap_or(f64::NAN)
            };
            let total = report["total_seconds"].as_f64().unwrap_or(f64::NAN);
            let psnr = psnr_text(&out, &cap.truth);
            let (min, med, _) = summary(&runs);
            let ratios = match cpu {
                None => {
                    cpu = Some((min, total));
                    " | ".to_string()
                }
                Some((cw, ct)) => format!("{:.1} | {:.1}", cw / min, ct / total),
            };
            println!(
                "| {} | {} ({}) | {min:.3} / {med:.3} | {total:.3} | {:.3} | {:.3} | {:.3} | {psnr} | {ratios} |",
                spec.what,
                &dev[2..],
                report["device"].as_str().unwrap_or("?"),
                stage("quality"),
                stage("align"),
                stage("stack"),
            );
        }
        batch_rows.extend(batch_run(o, t, &spec, &cap)?);
    }
    let n = o.batch;
    println!("\nThe same captures as one batch of {n} (`jupiter-host --cpu|--gpu run C1.ser … C{n}.ser -o DIR`, links to one file; `--batch N`): the device, the plugins and the GPU buffers are set up once; wall = the whole process.\n");
    println!("| capture | device | batch wall min / median (s) | per capture (s) | PSNR (dB) | CPU ÷ GPU |");
    println!("|---|---|---|---|---|---|");
    for r in batch_rows {
        println!("{r}");
    }
    Ok(())
}

/// Runs `o.batch` copies (links) of `cap` as one `run` with `--cpu` and
/// with `--gpu`; returns the table rows.
fn batch_run(o: &Opts, t: &Tools, spec: &CaseSpec, cap: &Capture) -> Result<Vec<String>, String> {
    let links: Vec<PathBuf> = (0..o.batch)
        .map(|k| o.dir.join(format!("{}-batch{k}.ser", spec.name)))
        .collect();
    for l in &links {
        let _ = std::fs::remove_file(l);
        std::os::unix::fs::symlink(&cap.path, l).map_err(|e| format!("{}: {e}", l.display()))?;
    }
    let mut rows = Vec::new();
    let mut cpu = None;
    for dev in ["--cpu", "--gpu"] {
        let dir = t.work.join(format!("batch{dev}"));
        let runs = repeat(
            o.repeat,
            true,
            || {
                let mut c = Command::new(&t.host);
                c.arg(dev)
                    .args(["-q", "run"])
                    .args(&links)
                    .arg("-o")
                    .arg(&dir)
                    .args(RUN_ARGS);
                c
            },
            &t.work.join("jupiter.log"),
        )?;
        let out = dir.join(format!("{}-batch{}_jupiter.tif", spec.name, o.batch - 1));
        let psnr = psnr_text(&out, &cap.truth);
        let (min, med, _) = summary(&runs);
        let ratio = match cpu {
            None => {
                cpu = Some(min);
                String::new()
            }
            Some(c) => format!("{:.1}", c / min),
        };
        rows.push(format!(
            "| {} | {} | {min:.3} / {med:.3} | {:.3} | {psnr} | {ratio} |",
            spec.what,
            &dev[2..],
            min / o.batch as f64
        ));
    }
    Ok(rows)
}

fn fmt_run(runs: &[Measured]) -> String {
    let (min, med, rss) = summary(runs);
    format!("{min:.2} / {med:.2} | {rss:.0}")
}

/// Runs PlanetarySystemStacker on a copy of the capture in its own folder
/// (it writes `<name>_pss.tiff` beside the input). Returns the measurement
/// and the output path.
fn run_pss(t: &Tools, cap: &Capture, surface: bool) -> Result<(Measured, PathBuf), String> {
    let dir = t.work.join("pss");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join(cap.path.file_name().unwrap());
    link_or_copy(&cap.path, &input)?;
    let mut c = Command::new("PlanetarySystemStacker");
    c.env("QT_QPA_PLATFORM", "offscreen")
        .arg(&input)
        .args(["--out_format", "tiff", "-s", "25", "-m"])
        .arg(if surface { "Surface" } else { "Planet" });
    let m = measure(&mut c, &t.work.join("pss.log"))?;
    let stem = input.file_stem().unwrap().to_string_lossy().to_string();
    let out = dir.join(format!("{stem}_pss.tiff"));
    if !out.exists() {
        return Err(format!("PlanetarySystemStacker wrote no {}", out.display()));
    }
    Ok((m, out))
}

/// Runs Siril (`siril-cli -s`): global star registration with a shift
/// transform, then a mean stack of the best 25 % (by registration quality)
/// without rejection or normalisation, saved as a 16-bit TIFF. Siril 1.0's
/// command-line registration is star-based and needs 10 star pairs, which a
/// planet or lunar capture does not have; then it is timed stacking all
/// frames unregistered (its reading + stacking cost, a lower bound on its
/// time), and the registration's own error is returned beside it.
fn run_siril(t: &Tools, cap: &Capture) -> Result<(Measured, PathBuf, Option<String>), String> {
    let dir = t.work.join("siril");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let name = cap.path.file_stem().unwrap().to_string_lossy().to_string();
    link_or_copy(&cap.path, &dir.join(format!("{name}.ser")))?;
    let script = |body: &str| -> Result<Command, String> {
        let path = dir.join("stack.ssf");
        std::fs::write(
            &path,
            format!(
                "requires 1.0.0\nsetcpu 2\ncd {}\n{body}load result\nsavetif result\n",
                dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut c = Command::new("siril-cli");
        c.arg("-s").arg(path);
        Ok(c)
    };
    let log = t.work.join("siril.log");
    let registered = script(&format!(
        "register {name} -transf=shift\nstack r_{name} rej n -nonorm -filter-quality=25% -out=result\n"
    ))?;
    let (m, note) = match measure(&mut { registered }, &log) {
        Ok(m) => (m, None),
        Err(e) => {
            let why = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .rfind(|l| l.contains("star") && !l.contains("Findstar"))
                .map_or(e, |l| l.trim_start_matches("log: ").to_string());
            let m = measure(
                &mut script(&format!("stack {name} rej n -nonorm -out=result\n"))?,
                &log,
            )?;
            (m, Some(why))
        }
    };
    let out = dir.join("result.tif");
    if !out.exists() {
        return Err("Siril wrote no result".into());
    }
    Ok((m, out, note))
}

fn link_or_copy(src: &Path, dst: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(dst);
    std::fs::hard_link(src, dst)
        .or_else(|_| std::fs::copy(src, dst).map(|_| ()))
        .map_err(|e| format!("{} → {}: {e}", src.display(), dst.display()))
}

fn cases(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Whole pipeline on the reference captures\n");
    println!("Selection 25 %, mean stacking, no sharpening; times in seconds (min / median of {} runs after one warm-up), peak RSS in MB, PSNR in dB against the generator's truth.\n", o.repeat);
    println!("| capture | size (MB) | `cat` from page cache (s) | tool | time min / median (s) | peak RSS (MB) | PSNR (dB) | time ÷ `cat` | peer time ÷ jupiter time |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for spec in case_specs(o.quick) {
        let cap = capture(&o.dir, &spec)?;
        let cat = repeat(
            o.repeat,
            true,
            || {
                let mut c = Command::new("cat");
                c.arg(&cap.path);
                c
            },
            &t.work.join("cat.log"),
        )?;
        let (cat_min, _, _) = summary(&cat);
        let mut jupiter_global = 0.0;
        let row = |tool: &str, m: &[Measured], out: &Path, ratio: String| {
            let psnr = psnr_text(out, &cap.truth);
            let (min, _, _) = summary(m);
            println!(
                "| {} | {:.0} | {cat_min:.3} | {tool} | {} | {psnr} | {:.1} | {ratio} |",
                spec.what,
                cap.bytes as f64 / 1e6,
                fmt_run(m),
                min / cat_min
            );
        };
        for (label, mp) in [("jupiter (global)", false), ("jupiter (multi-point)", true)] {
            let out = t.work.join(format!(
                "{}-{}.tif",
                spec.name,
                if mp { "mp" } else { "global" }
            ));
            let runs = repeat(
                o.repeat,
                true,
                || t.jupiter(&cap.path, &out, mp),
                &t.work.join("jupiter.log"),
            )?;
            if !mp {
                jupiter_global = summary(&runs).0;
            }
            row(label, &runs, &out, "".into());
        }
        if o.peers {
            let surface = spec.opts.scene == Scene::Lunar;
            // Peers run `repeat` times too (no warm-up: their first run
            // reads the same cached file); the fastest run is compared.
            let pss: Result<Vec<(Measured, PathBuf)>, String> =
                (0..o.repeat).map(|_| run_pss(t, &cap, surface)).collect();
            match pss {
                Ok(runs) => {
                    let m: Vec<Measured> = runs.iter().map(|r| r.0).collect();
                    row(
                        "PlanetarySystemStacker (multi-point, always)",
                        &m,
                        &runs[0].1,
                        format!("{:.1}", summary(&m).0 / jupiter_global),
                    )
                }
                Err(e) => println!(
                    "| {} | | | PlanetarySystemStacker | failed: {e} | | | | |",
                    spec.what
                ),
            }
            let siril: Result<Vec<_>, String> = (0..o.repeat).map(|_| run_siril(t, &cap)).collect();
            match siril {
                Ok(runs) => {
                    let m: Vec<Measured> = runs.iter().map(|r| r.0).collect();
                    let ratio = summary(&m).0 / jupiter_global;
                    let (_, out, why) = &runs[0];
                    match why {
                        None => row(
                            "Siril (star registration, shift)",
                            &m,
                            out,
                            format!("{ratio:.1}"),
                        ),
                        Some(why) => row(
                            &format!("Siril: cannot register ({why}); timed stacking all frames unregistered"),
                            &m,
                            out,
                            format!("{ratio:.1} (lower bound)"),
                        ),
                    }
                }
                Err(e) => println!(
                    "| {} | | | Siril | failed: {} | | | | |",
                    spec.what,
                    e.replace('|', "/")
                ),
            }
        }
    }
    Ok(())
}

fn cold(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Cold page cache: bytes read from the disk\n");
    println!("The capture's pages are dropped from the page cache before every run (`posix_fadvise(DONTNEED)`); bytes read = `ru_inblock` × 512 of the process.\n");
    println!("| capture | file (MB) | command | time (s) | read from disk (MB) | read ÷ file | time ÷ cold `cat` |");
    println!("|---|---|---|---|---|---|---|");
    let spec = &case_specs(o.quick)[0];
    let cap = capture(&o.dir, spec)?;
    let out = t.work.join("cold.tif");
    let mut best_cat = None::<Measured>;
    let mut best_j = None::<Measured>;
    for _ in 0..o.repeat {
        evict(&cap.path)?;
        let mut c = Command::new("cat");
        c.arg(&cap.path);
        let m = measure(&mut c, &t.work.join("cat.log"))?;
        if best_cat.is_none_or(|b| m.secs < b.secs) {
            best_cat = Some(m);
        }
        evict(&cap.path)?;
        let m = measure(
            &mut t.jupiter(&cap.path, &out, false),
            &t.work.join("jupiter.log"),
        )?;
        if best_j.is_none_or(|b| m.secs < b.secs) {
            best_j = Some(m);
        }
    }
    let (c, j) = (best_cat.unwrap(), best_j.unwrap());
    let mb = cap.bytes as f64 / 1e6;
    for (label, m) in [("`cat FILE > /dev/null`", c), ("jupiter (global)", j)] {
        println!(
            "| {} | {mb:.0} | {label} | {:.2} | {:.0} | {:.2} | {:.2} |",
            spec.what,
            m.secs,
            m.read_mb,
            m.read_mb / mb,
            m.secs / c.secs
        );
    }
    Ok(())
}

fn scaling(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Scaling with the frame count (640×480 8-bit mono, global alignment)\n");
    println!(
        "| frames | file (MB) | time min / median (s) | peak RSS (MB) | time per frame (ms) |"
    );
    println!("|---|---|---|---|---|");
    let counts: &[usize] = if o.quick {
        &[50, 100, 200]
    } else {
        &[250, 500, 1000, 2000, 4000]
    };
    let max = *counts.last().unwrap();
    let spec = CaseSpec {
        name: format!("scale-{max}"),
        what: format!("{max} × 640×480 8-bit mono"),
        opts: SynthOptions {
            width: 640,
            height: 480,
            frames: max,
            seed: 21,
            ..SynthOptions::default()
        },
    };
    let big = capture(&o.dir, &spec)?;
    for &n in counts {
        let path = o.dir.join(format!("scale-{n}.ser"));
        truncate_ser(&big.path, &path, n)?;
        let out = t.work.join("scale.tif");
        let runs = repeat(
            o.repeat,
            true,
            || t.jupiter(&path, &out, false),
            &t.work.join("jupiter.log"),
        )?;
        let (min, _, _) = summary(&runs);
        println!(
            "| {n} | {:.0} | {} | {:.2} |",
            std::fs::metadata(&path).map_err(|e| e.to_string())?.len() as f64 / 1e6,
            fmt_run(&runs),
            min * 1e3 / n as f64
        );
    }
    Ok(())
}

fn sizes(o: &Opts, t: &Tools) -> Result<(), String> {
    let frames = if o.quick { 20 } else { 200 };
    println!("\n### Scaling with the frame size ({frames} frames, 8-bit mono, global alignment)\n");
    println!("| frame | file (MB) | time min / median (s) | peak RSS (MB) | time per megapixel·frame (ms) |");
    println!("|---|---|---|---|---|");
    for side in [320u32, 512, 1024, 2048] {
        let spec = CaseSpec {
            name: format!("size-{side}-{frames}"),
            what: format!("{side}²"),
            opts: SynthOptions {
                width: side,
                height: side,
                frames,
                seed: 31,
                ..SynthOptions::default()
            },
        };
        let cap = capture(&o.dir, &spec)?;
        let out = t.work.join("size.tif");
        let runs = repeat(
            o.repeat,
            true,
            || t.jupiter(&cap.path, &out, false),
            &t.work.join("jupiter.log"),
        )?;
        let (min, _, _) = summary(&runs);
        println!(
            "| {side}×{side} | {:.0} | {} | {:.2} |",
            cap.bytes as f64 / 1e6,
            fmt_run(&runs),
            min * 1e3 / (frames as f64 * (side * side) as f64 / 1e6)
        );
    }
    Ok(())
}

/// A memory cgroup (v1) that is removed on drop.
struct MemCgroup(PathBuf);

impl MemCgroup {
    fn new(limit_bytes: u64) -> Result<MemCgroup, String> {
        let dir = PathBuf::from(format!(
            "/sys/fs/cgroup/memory/jupiter-e2e-{}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let cg = MemCgroup(dir);
        std::fs::write(cg.0.join("memory.limit_in_bytes"), limit_bytes.to_string())
            .map_err(|e| format!("memory.limit_in_bytes: {e}"))?;
        Ok(cg)
    }

    /// `cmd` run inside the cgroup (through `sh`, which joins it and execs).
    fn wrap(&self, cmd: &Command) -> Command {
        let mut sh = Command::new("sh");
        sh.arg("-c")
            .arg(format!(
                "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
                self.0.display()
            ))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        sh
    }

    fn read(&self, name: &str) -> u64 {
        std::fs::read_to_string(self.0.join(name))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn limited(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### A capture larger than the memory the run may use\n");
    let counts_max = if o.quick { 200 } else { 4000 };
    let path = o.dir.join(format!("scale-{counts_max}.ser"));
    if !path.exists() {
        scaling(o, t)?;
    }
    let bytes = std::fs::metadata(&path).map_err(|e| e.to_string())?.len();
    let limit = (bytes / 5).max(64 << 20);
    let cg = match MemCgroup::new(limit) {
        Ok(cg) => cg,
        Err(e) => {
            println!("Skipped: no memory cgroup could be made here ({e}).");
            return Ok(());
        }
    };
    evict(&path)?;
    let out = t.work.join("limited.tif");
    let run = cg.wrap(&t.jupiter(&path, &out, false));
    let m = measure(&mut { run }, &t.work.join("jupiter.log"))?;
    println!("The run is placed in a memory cgroup (v1) limited to {:.0} MB — page cache included — on a {:.0} MB capture ({counts_max} × 640×480 8-bit), from a cold page cache.\n", limit as f64 / 1e6, bytes as f64 / 1e6);
    println!("| capture (MB) | cgroup limit (MB) | cgroup peak (MB) | process peak RSS (MB) | read from disk (MB) | read ÷ file | time (s) | OOM events |");
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {} |",
        bytes as f64 / 1e6,
        limit as f64 / 1e6,
        cg.read("memory.max_usage_in_bytes") as f64 / 1e6,
        m.rss_mb,
        m.read_mb,
        m.read_mb * 1e6 / bytes as f64,
        m.secs,
        std::fs::read_to_string(cg.0.join("memory.oom_control"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .unwrap_or("?")
    );
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
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
    let t = Tools { host, work };
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

fn mem_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| {
                    l.split_whitespace()
                        .nth(1)
                        .and_then(|v| v.parse::<f64>().ok())
                })
        })
        .map_or(0.0, |kb| kb / 1048576.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_host::io::ser::{OpenOptions, SerFile};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jupiter-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn truncated_capture_equals_the_first_frames() {
        let dir = scratch("trunc");
        let opts = SynthOptions {
            width: 40,
            height: 30,
            frames: 6,
            ..SynthOptions::default()
        };
        let full = dir.join("full.ser");
        generate(&full, &opts).unwrap();
        let short = dir.join("short.ser");
        truncate_ser(&full, &short, 4).unwrap();
        let (a, b) = (
            SerFile::open(&full, OpenOptions::default()).unwrap(),
            SerFile::open(&short, OpenOptions::default()).unwrap(),
        );
        assert_eq!(b.frame_count, 4);
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        assert_eq!(
            b.timestamps.as_deref(),
            a.timestamps.as_deref().map(|t| &t[..4])
        );
        for i in 0..4 {
            assert_eq!(a.decode_frame(i).unwrap(), b.decode_frame(i).unwrap());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn psnr_registers_rescales_and_crops_like_a_peer_output() {
        let (w, h) = (160usize, 120usize);
        let plane = jupiter_testkit::capture::render(Scene::Planet, w, h, 1, 0.0, 0.0);
        let truth = Image::from_vec(w as u32, h as u32, 1, plane.clone());
        // A peer's output: shifted by (1.5, -2.25), gain 0.8 + offset, 6 px cropped per side.
        let moved = jupiter_kit::warp::shift_plane(&plane, w, h, 1, 1.5, -2.25, Interp::Bicubic);
        let (cw, ch) = (w - 12, h - 12);
        let cropped: Vec<f32> = (0..cw * ch)
            .map(|i| 0.8 * moved[(i / cw + 6) * w + i % cw + 6] + 0.05)
            .collect();
        let out = Image::from_vec(cw as u32, ch as u32, 1, cropped);
        let p = psnr_vs_truth(&out, &truth).unwrap();
        assert!(p > 45.0, "{p}");
        // Noise lowers it as expected: σ = 0.01 → about 40 dB.
        let noisy: Vec<f32> = out
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.008 * (((i * 7919) % 1000) as f32 / 1000.0 * 2.0 - 1.0) * 1.732)
            .collect();
        let q = psnr_vs_truth(&Image::from_vec(cw as u32, ch as u32, 1, noisy), &truth).unwrap();
        assert!(q < p && q > 36.0 && q < 44.0, "{q}");
        // Larger than the truth: an error, not a panic.
        let big = Image::from_vec(w as u32 + 2, h as u32, 1, vec![0.0; (w + 2) * h]);
        assert!(psnr_vs_truth(&big, &truth).is_err());
    }

    #[test]
    fn measure_reports_failures_with_the_error_output() {
        let dir = scratch("measure");
        let log = dir.join("log");
        let ok = measure(Command::new("true").arg("x"), &log).unwrap();
        assert!(ok.secs >= 0.0 && ok.rss_mb > 0.0);
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo broken input >&2; exit 3"]);
        let e = measure(&mut bad, &log).unwrap_err();
        assert!(e.contains("broken input"), "{e}");
        assert!(measure(&mut Command::new("/nonexistent/tool"), &log).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
