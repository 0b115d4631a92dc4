//! `--drizzle`: undersampled captures (truth at 2×, frames blurred and
//! binned 2×2): the 2× drizzle against the 1× mean stack upscaled with
//! bicubic interpolation, both scored against the full-resolution truth; a
//! pixfrac sweep; the time of 2× drizzle on 250 frames of 640×480.

use jupiter_testkit::capture::{generate_with_seeing, Seeing};

use super::*;

fn specs() -> Vec<(CaseSpec, Seeing)> {
    let base = SynthOptions {
        width: 240,
        height: 200,
        frames: 200,
        seed: 71,
        jitter: 3.0,
        blur: (0.25, 0.9),
        full_well: 4000.0,
        read_noise: 2.0,
        depth: 16,
        bin: 2,
        ..SynthOptions::default()
    };
    vec![
        (
            CaseSpec {
                name: "drizzle-planet".into(),
                what: "200 × 240×200 16-bit, binned 2×2 from 480×400 (planet)".into(),
                opts: base.clone(),
            },
            Seeing::default(),
        ),
        (
            CaseSpec {
                name: "drizzle-planet-local".into(),
                what: "the same with local seeing (0.5–1.5 px distortions)".into(),
                opts: SynthOptions { seed: 72, ..base },
            },
            Seeing {
                warp: (0.5, 1.5),
                scale: (25.0, 50.0),
                blur_variation: 0.3,
            },
        ),
    ]
}

/// Generates one capture unless it is there; the truth is at 2×.
fn undersampled(dir: &Path, spec: &CaseSpec, seeing: &Seeing) -> Result<Capture, String> {
    let path = dir.join(format!("{}.ser", spec.name));
    let truth_path = dir.join(format!("{}.truth.tif", spec.name));
    if !(path.exists() && truth_path.exists()) {
        eprintln!("generating {}", path.display());
        let c = generate_with_seeing(&path, &spec.opts, seeing)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        write_image(&c.truth, &truth_path, false, true).map_err(|e| e.to_string())?;
    }
    Ok(Capture {
        truth: read_image(&truth_path)?,
        bytes: std::fs::metadata(&path).map_err(|e| e.to_string())?.len(),
        path,
    })
}

/// `image` upscaled `k`× with bicubic interpolation (output pixel `u`'s
/// centre at input `(u + ½)/k − ½`).
fn upscale(image: &Image, k: usize) -> Image {
    let (w, h, c) = (
        image.width as usize,
        image.height as usize,
        image.channels as usize,
    );
    let win = RowWindow::whole(&image.data, w, h, c);
    let (ow, oh) = (w * k, h * k);
    let at = |u: usize| (u as f32 + 0.5) / k as f32 - 0.5;
    let data = (0..ow * oh * c)
        .map(|i| {
            let (p, ch) = (i / c, i % c);
            win.sample(at(p % ow), at(p / ow), ch, Interp::Bicubic)
        })
        .collect();
    Image::from_vec(ow as u32, oh as u32, c as u32, data)
}

pub(crate) fn drizzle(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Drizzle on undersampled captures\n");
    println!("Selection 25 %, no post-processing. PSNR in dB against the 2× truth after registration and a gain/offset fit; the 1× stacks are upscaled 2× with bicubic interpolation first. Time: one run, whole process.\n");
    println!("| capture | stack | PSNR (dB) | vs upscaled 1× of the same alignment | time (s) |");
    println!("|---|---|---|---|---|");
    for (spec, seeing) in specs() {
        if o.only
            .as_ref()
            .is_some_and(|n| !spec.name.contains(n.as_str()))
        {
            continue;
        }
        let cap = undersampled(&o.dir, &spec, &seeing)?;
        for (label, align) in [
            ("global", &["--aligner", "align-phase"][..]),
            ("multi-point", &[][..]),
        ] {
            let one = t.work.join(format!("{}-{label}-1x.tif", spec.name));
            let mut args = vec!["--stacker", "stack-mean"];
            args.extend_from_slice(align);
            let secs = timed_drizzle(t, &cap.path, &one, &args)?;
            let base = psnr_vs_truth(&upscale(&read_image(&one)?, 2), &cap.truth)?;
            println!(
                "| {} | 1× mean, {label}, bicubic ×2 | {base:.2} | | {secs:.2} |",
                spec.what
            );
            let pixfracs: Vec<f32> = std::env::var("E2E_PIXFRACS")
                .map_or(vec![0.5, 0.6, 0.7, 0.8, 1.0], |v| {
                    v.split(',').map(|x| x.parse().unwrap()).collect()
                });
            for pixfrac in pixfracs {
                let out = t
                    .work
                    .join(format!("{}-{label}-drizzle-{pixfrac}.tif", spec.name));
                let set = format!("stack.pixfrac={pixfrac}");
                let mut args = vec!["--drizzle", "2", "--set", &set];
                args.extend_from_slice(align);
                let secs = timed_drizzle(t, &cap.path, &out, &args)?;
                let p = psnr_vs_truth(&read_image(&out)?, &cap.truth)?;
                println!(
                    "| {} | drizzle 2×, pixfrac {pixfrac}, {label} | {p:.2} | {:+.2} | {secs:.2} |",
                    spec.what,
                    p - base
                );
            }
        }
    }
    if std::env::var("E2E_NO_TIME").is_ok() {
        return Ok(());
    }
    drizzle_time(o, t)
}

/// One timed run (selection 25 %, no post-processing) with `extra`
/// (the stacker or `--drizzle`, the aligner).
fn timed_drizzle(t: &Tools, input: &Path, out: &Path, extra: &[&str]) -> Result<f64, String> {
    let mut c = Command::new(&t.host);
    c.args(["-q", "run"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--select", "25%", "--no-post", "--force"])
        .args(extra);
    if let (Ok(more), false) = (std::env::var("E2E_EXTRA"), extra.contains(&"align-phase")) {
        c.args(more.split_whitespace());
    }
    Ok(measure(&mut c, &t.work.join("drizzle.log"))?.secs)
}

/// 2× drizzle of 250 frames of 640×480 (the first frames of the planet
/// reference capture), global and multi-point, beside the 1× mean.
fn drizzle_time(o: &Opts, t: &Tools) -> Result<(), String> {
    let spec = case_specs(false)
        .into_iter()
        .next()
        .expect("the planet case");
    let cap = capture(&o.dir, &spec)?;
    let short = o.dir.join("planet-mono8-250.ser");
    if !short.exists() {
        truncate_ser(&cap.path, &short, 250)?;
    }
    println!("\n250 × 640×480 8-bit (the first frames of planet-mono8), selection 25 %, no post-processing; min of {} runs:\n", o.repeat);
    println!("| stack | global (s) | multi-point (s) |");
    println!("|---|---|---|");
    for (label, extra) in [
        ("1× mean", &["--stacker", "stack-mean"][..]),
        ("2× drizzle (pixfrac default)", &["--drizzle", "2"][..]),
    ] {
        let mut cells = Vec::new();
        for align in [&["--aligner", "align-phase"][..], &[][..]] {
            let out = t.work.join("drizzle-time.tif");
            let mut args: Vec<&str> = extra.to_vec();
            args.extend_from_slice(align);
            let best = (0..o.repeat)
                .map(|_| timed_drizzle(t, &short, &out, &args))
                .collect::<Result<Vec<f64>, String>>()?
                .into_iter()
                .fold(f64::MAX, f64::min);
            cells.push(format!("{best:.2}"));
        }
        println!("| {label} | {} | {} |", cells[0], cells[1]);
    }
    Ok(())
}
