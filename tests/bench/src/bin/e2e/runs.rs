//! The report sections: each runs jupiter (and the peers) and prints a table.

use super::*;

/// The pipeline of the harness's jupiter runs besides the selection (25 %
/// unless a row says otherwise): mean stacking, no post-processing.
pub(crate) const RUN_ARGS: [&str; 4] = ["--stacker", "stack-mean", "--no-post", "--force"];

/// Paths of the tools.
pub(crate) struct Tools {
    pub(crate) host: PathBuf,
    pub(crate) work: PathBuf,
    /// `--set` arguments for every jupiter run.
    pub(crate) sets: Vec<String>,
}

impl Tools {
    /// Appends the harness's `--set` arguments (default-pipeline runs only:
    /// the global runs are the fixed baseline).
    pub(crate) fn add_sets(&self, c: &mut Command) {
        for s in &self.sets {
            c.arg("--set").arg(s);
        }
    }

    /// `jupiter-host run` with the harness's pipeline: the default aligner
    /// (multi-point), or global alignment (`--aligner align-phase`).
    fn jupiter(&self, input: &Path, out: &Path, global: bool) -> Command {
        self.jupiter_with(input, out, global, "25%")
    }

    /// [`Self::jupiter`] with another `--select`.
    pub(crate) fn jupiter_with(
        &self,
        input: &Path,
        out: &Path,
        global: bool,
        select: &str,
    ) -> Command {
        let mut c = Command::new(&self.host);
        c.args(["-q", "run"])
            .arg(input)
            .arg("-o")
            .arg(out)
            .args(["--select", select])
            .args(RUN_ARGS);
        if global {
            c.args(["--aligner", "align-phase"]);
        } else {
            self.add_sets(&mut c);
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
pub(crate) fn devices(o: &Opts, t: &Tools) -> Result<(), String> {
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
pub(crate) fn batch_run(
    o: &Opts,
    t: &Tools,
    spec: &CaseSpec,
    cap: &Capture,
) -> Result<Vec<String>, String> {
    let links: Vec<PathBuf> = (0..o.batch)
        .map(|k| o.dir.join(format!("{}-batch{k}.ser", spec.name)))
        .collect();
    // A relative target would resolve from the link's own folder.
    let target =
        std::fs::canonicalize(&cap.path).map_err(|e| format!("{}: {e}", cap.path.display()))?;
    for l in &links {
        let _ = std::fs::remove_file(l);
        std::os::unix::fs::symlink(&target, l).map_err(|e| format!("{}: {e}", l.display()))?;
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
                    .args(["--select", "25%"])
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

/// The fastest of `o.repeat` runs of `cat FILE > /dev/null` (after a
/// warm-up): the floor a run's reading cannot beat.
fn cat_time(o: &Opts, t: &Tools, path: &Path) -> Result<f64, String> {
    let cat = || {
        let mut c = Command::new("cat");
        c.arg(path);
        c
    };
    let runs = repeat(o.repeat, true, cat, &t.work.join("cat.log"))?;
    Ok(summary(&runs).0)
}

pub(crate) fn cases(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Whole pipeline on the reference captures\n");
    println!("Selection 25 % (the default run: `--select auto`), mean stacking, no sharpening; times in seconds (min / median of {} runs after one warm-up), peak RSS in MB, PSNR in dB against the generator's truth.\n", o.repeat);
    println!("| capture | size (MB) | `cat` from page cache (s) | tool | time min / median (s) | peak RSS (MB) | PSNR (dB) | time ÷ `cat` | peer time ÷ jupiter default time |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for spec in case_specs(o.quick) {
        let cap = capture(&o.dir, &spec)?;
        let cat_min = cat_time(o, t, &cap.path)?;
        let mut jupiter_default = 0.0;
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
        for (label, global, auto) in [
            (
                "jupiter (default: multi-point, `--select auto`)",
                false,
                true,
            ),
            ("jupiter (multi-point, `--select 25%`)", false, false),
            ("jupiter (global: --aligner align-phase)", true, false),
        ] {
            let out = t.work.join(format!(
                "{}-{}.tif",
                spec.name,
                if global {
                    "global"
                } else if auto {
                    "auto"
                } else {
                    "default"
                }
            ));
            let runs = repeat(
                o.repeat,
                true,
                || t.jupiter_with(&cap.path, &out, global, if auto { "auto" } else { "25%" }),
                &t.work.join("jupiter.log"),
            )?;
            if !global && !auto {
                jupiter_default = summary(&runs).0;
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
                        format!("{:.1} (vs `--select 25%`)", summary(&m).0 / jupiter_default),
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
                    let ratio = summary(&m).0 / jupiter_default;
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

pub(crate) fn cold(o: &Opts, t: &Tools) -> Result<(), String> {
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

pub(crate) fn scaling(o: &Opts, t: &Tools) -> Result<(), String> {
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

pub(crate) fn sizes(o: &Opts, t: &Tools) -> Result<(), String> {
    let frames = if o.quick { 20 } else { 200 };
    println!("\n### Scaling with the frame size ({frames} frames, 8-bit mono, the default pipeline with `--select 25%`)\n");
    println!("Each scene's 640×480 capture runs first: the last column is each size's time per pixel·frame over it (same frame count, same run).\n");
    println!("| scene | frame | file (MB) | time min / median (s) | peak RSS (MB) | time per megapixel·frame (ms) | ÷ 640×480 |");
    println!("|---|---|---|---|---|---|---|");
    for scene in [Scene::Planet, Scene::Lunar] {
        let mut base = None;
        for (w, h) in [
            (640u32, 480u32),
            (320, 320),
            (512, 512),
            (1024, 1024),
            (2048, 2048),
        ] {
            let (row, per) = size_run(o, t, scene, w, h, frames)?;
            let base = *base.get_or_insert(per);
            println!("{row} {:.2} |", per / base);
        }
    }
    Ok(())
}

/// One `--sizes` row up to its time per megapixel·frame, and that time
/// (for the ratio column).
fn size_run(
    o: &Opts,
    t: &Tools,
    scene: Scene,
    w: u32,
    h: u32,
    frames: usize,
) -> Result<(String, f64), String> {
    let tag = if scene == Scene::Lunar {
        "lunar"
    } else {
        "planet"
    };
    let name = if w == h {
        format!("size-{tag}-{w}-{frames}")
    } else {
        format!("size-{tag}-{w}x{h}-{frames}")
    };
    let spec = CaseSpec {
        name,
        what: format!("{w}×{h}"),
        opts: SynthOptions {
            width: w,
            height: h,
            frames,
            seed: 31,
            scene,
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
    let per = min * 1e3 / (frames as f64 * (w * h) as f64 / 1e6);
    let row = format!(
        "| {tag} | {w}×{h} | {:.0} | {} | {per:.2} |",
        cap.bytes as f64 / 1e6,
        fmt_run(&runs),
    );
    Ok((row, per))
}

pub(crate) fn limited(o: &Opts, t: &Tools) -> Result<(), String> {
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
