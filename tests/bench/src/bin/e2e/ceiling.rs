//! `--ceiling`: how far the default stack is from what perfect
//! registration and selection give. For each of the `--post` captures, its
//! twin is rendered with the same per-frame blur and noise but no motion
//! (no jitter, no local distortion), and the plain mean of the twin's truly
//! sharpest frames (by the generator's blur) is scored: ceiling (a) keeps
//! the sharpest 25 %, ceiling (b) the fraction of 3–50 % that scores best.

use jupiter_testkit::capture::{generate_with_seeing, Seeing};

use super::post::{post_capture, post_specs, run_host, run_host_with, specs_at, Noise};
use super::*;

const FRACTIONS: [f32; 9] = [0.03, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50];

pub(crate) fn ceiling(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Distance to the perfect-registration ceiling\n");
    println!("PSNR in dB against the truth (registration and gain/offset fit); stacks without post-processing, default selection (`--select auto`, which is 25 % for global alignment); \"default on the still twin\": the default run on the motionless twin below (what registration costs is the difference to the default column). Ceilings: the same capture rendered without motion (same per-frame blur sigma and noise draws), plain mean of its truly sharpest frames: (a) 25 %, (b) the best fraction of {FRACTIONS:?}.\n");
    println!("| capture | global | default (multi-point) | default on the still twin | ceiling (a) | ceiling (b) (fraction) | default − (b) |");
    println!("|---|---|---|---|---|---|---|");
    for (spec, seeing) in post_specs() {
        if o.only
            .as_ref()
            .is_some_and(|n| !spec.name.contains(n.as_str()))
        {
            continue;
        }
        let cap = post_capture(&o.dir, &spec, &seeing)?;
        let mut got = Vec::new();
        for global in [true, false] {
            let out = t.work.join(format!("{}-ceiling-run.tif", spec.name));
            run_host(t, &cap.path, &out, global, true)?;
            got.push(psnr_vs_truth(&read_image(&out)?, &cap.truth)?);
        }
        let twin_out = t.work.join(format!("{}-ceiling-still.tif", spec.name));
        let ((a, still), (b, frac)) = ceilings(o, &spec, &seeing, &cap.truth, |twin| {
            run_host(t, twin, &twin_out, false, true)?;
            psnr_vs_truth(&read_image(&twin_out)?, &cap.truth)
        })?;
        println!(
            "| {} | {:.2} | {:.2} | {:.2} | {a:.2} | {b:.2} ({:.0} %) | {:+.2} |",
            spec.name,
            got[0],
            got[1],
            still,
            100.0 * frac,
            got[1] - b
        );
    }
    Ok(())
}

/// Ceilings (a) and (b, its fraction) of one capture, with what `run`
/// (given the twin's path) scores on the still twin: ((a, run), (b, fraction)).
fn ceilings(
    o: &Opts,
    spec: &CaseSpec,
    seeing: &Seeing,
    truth: &Image,
    run: impl Fn(&Path) -> Result<f64, String>,
) -> Result<((f64, f64), (f64, f32)), String> {
    let twin = o.dir.join(format!("{}-still.ser", spec.name));
    let still = SynthOptions {
        jitter: 0.0,
        ..spec.opts.clone()
    };
    let still_seeing = Seeing {
        warp: (0.0, 0.0),
        ..seeing.clone()
    };
    let cap = generate_with_seeing(&twin, &still, &still_seeing).map_err(|e| e.to_string())?;
    let ser = jupiter_host::io::ser::SerFile::open(&twin, Default::default())
        .map_err(|e| e.to_string())?;
    let mut order: Vec<usize> = (0..still.frames).collect();
    order.sort_by(|a, b| cap.blur[*a].total_cmp(&cap.blur[*b]));
    let (w, h, c) = (still.width, still.height, truth.channels);
    let mut sum = vec![0.0f64; (w * h * c) as usize];
    let mut scores = Vec::new();
    let mut taken = 0usize;
    for f in FRACTIONS {
        let want = ((still.frames as f32 * f).round() as usize).max(1);
        while taken < want {
            let frame = ser.decode_frame(order[taken]).map_err(|e| e.to_string())?;
            sum.iter_mut()
                .zip(&frame)
                .for_each(|(s, v)| *s += *v as f64);
            taken += 1;
        }
        let mean = Image::from_vec(
            w,
            h,
            c,
            sum.iter().map(|s| (s / taken as f64) as f32).collect(),
        );
        scores.push((psnr_vs_truth(&mean, truth)?, f));
    }
    let a = scores
        .iter()
        .find(|s| (s.1 - 0.25).abs() < 1e-6)
        .map_or(f64::NAN, |s| s.0);
    let b = scores
        .iter()
        .copied()
        .fold((f64::MIN, 0.0), |m, s| if s.0 > m.0 { s } else { m });
    let still_run = run(&twin)?;
    let _ = std::fs::remove_file(&twin);
    Ok(((a, still_run), b))
}

/// Global fractions of the `--budget` sweep (each with every selected frame
/// kept at every point: `align.keep=1`).
const GLOBAL: [f32; 10] = [0.03, 0.05, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50, 1.0];
/// Per-point shares of the `--budget` sweep, over half the frames.
const PER_POINT: [f32; 5] = [0.06, 0.1, 0.2, 0.3, 0.6];

/// `--budget`: how the frame budget decides the default stack. Each `--post`
/// capture is stacked (no post-processing) with fixed global fractions, with
/// half the frames and fixed per-point shares, with the former default (25 %
/// and half of them per point) and with `--select auto`; the best fixed
/// budget is what the automatic one must come within 0.3 dB of. With
/// `--quick`, only the automatic run.
pub(crate) fn budget(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Frame budget: fixed selections against `--select auto`\n");
    println!("PSNR in dB against the truth, default (multi-point) stacks without post-processing. Global: `--select F --set align.keep=1` for F in {GLOBAL:?}; per point: `--select 50% --set align.keep=K` for K in {PER_POINT:?}.\n");
    println!("| capture | best global (F) | best per point (K) | 25 %, keep 0.5 | auto | auto − best fixed |");
    println!("|---|---|---|---|---|---|");
    for (spec, seeing) in specs_at(&[Noise::Clean, Noise::Medium, Noise::Noisy]) {
        if o.only
            .as_ref()
            .is_some_and(|n| !spec.name.contains(n.as_str()))
        {
            continue;
        }
        let cap = post_capture(&o.dir, &spec, &seeing)?;
        let out = t.work.join(format!("{}-budget-run.tif", spec.name));
        let score = |args: &[&str]| -> Result<f64, String> {
            run_host_with(t, &cap.path, &out, false, true, args)?;
            psnr_vs_truth(&read_image(&out)?, &cap.truth)
        };
        let best = |runs: Vec<(f64, f32)>| {
            runs.into_iter()
                .fold((f64::MIN, 0.0), |m, s| if s.0 > m.0 { s } else { m })
        };
        if o.quick {
            let auto = score(&["--select", "auto"])?;
            println!("| {} | | | | {auto:.2} | |", spec.name);
            continue;
        }
        let mut global = Vec::new();
        for f in GLOBAL {
            let sel = format!("{}%", 100.0 * f);
            global.push((score(&["--select", &sel, "--set", "align.keep=1"])?, f));
        }
        let mut local = Vec::new();
        for k in PER_POINT {
            let keep = format!("align.keep={k}");
            local.push((score(&["--select", "50%", "--set", &keep])?, k));
        }
        eprintln!(
            "{}: global {global:.2?}\n  per point {local:.2?}",
            spec.name
        );
        let former = score(&["--select", "25%", "--set", "align.keep=0.5"])?;
        let auto = score(&["--select", "auto"]).ok();
        let (g, l) = (best(global), best(local));
        let fixed = g.0.max(l.0);
        println!(
            "| {} | {:.2} ({:.0} %) | {:.2} ({:.2}) | {former:.2} | {} | {} |",
            spec.name,
            g.0,
            100.0 * g.1,
            l.0,
            l.1,
            auto.map_or("—".into(), |a| format!("{a:.2}")),
            auto.map_or("—".into(), |a| format!("{:+.2}", a - fixed)),
        );
    }
    Ok(())
}
