//! `--drizzle`: undersampled captures (truth at 2×, frames blurred and
//! binned 2×2): the 2× drizzle against the 1× mean stack upscaled with
//! bicubic interpolation, both scored against the full-resolution truth; a
//! pixfrac sweep; the time of 2× drizzle on 250 frames of 640×480.

use jupiter_testkit::capture::{generate_with_seeing, Seeing, SynthCapture};

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
    let local = Seeing {
        warp: (0.5, 1.5),
        scale: (25.0, 50.0),
        blur_variation: 0.3,
    };
    let mut out = Vec::new();
    for (k, (scene, label)) in [(Scene::Planet, "planet"), (Scene::Lunar, "lunar")]
        .into_iter()
        .enumerate()
    {
        for (j, seeing) in [Seeing::default(), local.clone()].into_iter().enumerate() {
            let on = !seeing.is_off();
            out.push((
                CaseSpec {
                    name: format!("drizzle-{label}{}", if on { "-local" } else { "" }),
                    what: format!(
                        "200 × 240×200 16-bit, binned 2×2 from 480×400 ({label}{})",
                        if on {
                            ", local seeing 0.5–1.5 px"
                        } else {
                            ""
                        }
                    ),
                    opts: SynthOptions {
                        seed: 71 + 2 * k as u64 + j as u64,
                        scene,
                        ..base.clone()
                    },
                },
                seeing,
            ));
        }
    }
    out
}

/// Generates one capture (always: its true warps are needed for the
/// perfect-registration rows); the truth is at 2×.
fn undersampled(
    dir: &Path,
    spec: &CaseSpec,
    seeing: &Seeing,
) -> Result<(PathBuf, SynthCapture), String> {
    let path = dir.join(format!("{}.ser", spec.name));
    eprintln!("generating {}", path.display());
    let c = generate_with_seeing(&path, &spec.opts, seeing)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((path, c))
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

const PIXFRACS: [f32; 6] = [0.3, 0.4, 0.5, 0.6, 0.7, 1.0];

pub(crate) fn drizzle(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Drizzle on undersampled captures\n");
    println!("Selection 25 %, no post-processing. PSNR in dB against the 2× truth after registration and a gain/offset fit; the 1× stacks are upscaled 2× with bicubic interpolation first. `--drizzle 2` also makes the multi-point grid twice as dense (`align.density = 2`); the 1× multi-point stack is shown at both densities. Perfect registration: the generator's true warps, the truly sharpest 25 %, in process. Time: one run, whole process.\n");
    println!("| capture | stack | PSNR (dB) | vs the upscaled 1× stack above it | time (s) |");
    println!("|---|---|---|---|---|");
    for (spec, seeing) in specs() {
        if o.only
            .as_ref()
            .is_some_and(|n| !spec.name.contains(n.as_str()))
        {
            continue;
        }
        let (path, cap) = undersampled(&o.dir, &spec, &seeing)?;
        let row = |what: &str, p: f64, base: Option<f64>, secs: Option<f64>| {
            println!(
                "| {} | {what} | {p:.2} | {} | {} |",
                spec.what,
                base.map_or(String::new(), |b| format!("{:+.2}", p - b)),
                secs.map_or(String::new(), |s| format!("{s:.2}"))
            )
        };
        for (label, align) in [
            ("global", &["--aligner", "align-phase"][..]),
            ("multi-point", &[][..]),
            ("multi-point, density 2", &["--set", "align.density=2"][..]),
        ] {
            let one = t.work.join(format!("{}-1x.tif", spec.name));
            let mut args = vec!["--stacker", "stack-mean"];
            args.extend_from_slice(align);
            let secs = timed(t, &path, &one, &args)?;
            let base = psnr_vs_truth(&upscale(&read_image(&one)?, 2), &cap.truth)?;
            row(
                &format!("1× mean, {label}, bicubic ×2"),
                base,
                None,
                Some(secs),
            );
            if label.contains("density") {
                continue;
            }
            for pixfrac in PIXFRACS {
                let out = t.work.join(format!("{}-drizzle.tif", spec.name));
                let set = format!("stack.pixfrac={pixfrac}");
                let mut args = vec!["--drizzle", "2", "--set", &set];
                args.extend_from_slice(&align[..align.len().min(2)]);
                let secs = timed(t, &path, &out, &args)?;
                let p = psnr_vs_truth(&read_image(&out)?, &cap.truth)?;
                row(
                    &format!("drizzle 2×, pixfrac {pixfrac}, {label}"),
                    p,
                    Some(base),
                    Some(secs),
                );
            }
        }
        let (mean, drizzled) = perfect(&path, &spec.opts, &cap)?;
        let base = psnr_vs_truth(&upscale(&mean, 2), &cap.truth)?;
        row(
            "perfect registration: 1× mean, bicubic ×2",
            base,
            None,
            None,
        );
        row(
            "perfect registration: drizzle 2×, pixfrac 0.5",
            psnr_vs_truth(&drizzled, &cap.truth)?,
            Some(base),
            None,
        );
    }
    drizzle_time(o, t)
}

/// One timed run (selection 25 %, no post-processing) with `extra`
/// (the stacker or `--drizzle`, the aligner).
fn timed(t: &Tools, input: &Path, out: &Path, extra: &[&str]) -> Result<f64, String> {
    let mut c = Command::new(&t.host);
    c.args(["-q", "run"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .args(["--select", "25%", "--no-post", "--force"])
        .args(extra);
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
    println!("\n250 × 640×480 8-bit (the first frames of planet-mono8), selection 25 %, no post-processing; min of {} runs, seconds:\n", o.repeat);
    println!("| stack | global | multi-point |");
    println!("|---|---|---|");
    for (label, extra) in [
        ("1× mean", &["--stacker", "stack-mean"][..]),
        ("2× drizzle", &["--drizzle", "2"][..]),
    ] {
        let mut cells = Vec::new();
        for align in [&["--aligner", "align-phase"][..], &[][..]] {
            let out = t.work.join("drizzle-time.tif");
            let mut args: Vec<&str> = extra.to_vec();
            args.extend_from_slice(align);
            let best = (0..o.repeat)
                .map(|_| timed(t, &short, &out, &args))
                .collect::<Result<Vec<f64>, String>>()?
                .into_iter()
                .fold(f64::MAX, f64::min);
            cells.push(format!("{best:.2}"));
        }
        println!("| {label} | {} | {} |", cells[0], cells[1]);
    }
    Ok(())
}

/// The 1× mean and the 2× drizzle (pixfrac 0.5) under the generator's true
/// warps (global shift plus the local displacement sampled every 4 px),
/// of the truly sharpest quarter of the frames.
fn perfect(path: &Path, o: &SynthOptions, cap: &SynthCapture) -> Result<(Image, Image), String> {
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
    use jupiter_plugin_api::{FrameWarp, StackRequest, WarpField};
    use jupiter_plugin_stack_drizzle::{cpu as dz, geometry::Geometry, params::DrizzleParams};
    let ser = jupiter_host::io::ser::SerFile::open(path, Default::default())
        .map_err(|e| e.to_string())?;
    let (w, h) = (o.width as usize, o.height as usize);
    let mut order: Vec<usize> = (0..o.frames).collect();
    order.sort_by(|a, b| cap.blur[*a].total_cmp(&cap.blur[*b]));
    order.truncate(o.frames / 4);
    let frames = order
        .iter()
        .map(|&i| ser.decode_frame(i).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let b = o.bin as f64;
    let warps: Vec<FrameWarp> = order
        .iter()
        .map(|&i| {
            let (dx, dy) = cap.shifts[i];
            let Some(ls) = cap.local.get(i) else {
                return FrameWarp::shift(dx, dy);
            };
            // The local displacement is in fine pixels at fine positions.
            let step = 4usize;
            let (cols, rows) = (w / step + 1, h / step + 1);
            let (mut fx, mut fy) = (Vec::new(), Vec::new());
            for r in 0..rows {
                for c in 0..cols {
                    let at = |v: usize| (v as f64 + 0.5) * b - 0.5;
                    let (ddx, ddy) = ls.displacement(at(c * step), at(r * step));
                    fx.push((ddx / b) as f32);
                    fy.push((ddy / b) as f32);
                }
            }
            let n = fx.len();
            let field = WarpField::new(
                (cols, rows),
                (0.0, 0.0),
                (step as f32, step as f32),
                [fx, fy, vec![1.0; n]],
            );
            FrameWarp::with_field(dx, dy, field)
        })
        .collect();
    let mem = MemFrames::new(w as u32, h as u32, 1, frames);
    let req = StackRequest::new(warps);
    let be = ThreadBackend::new(2);
    let mean = be
        .with_ctx("stack-mean", |ctx| {
            jupiter_plugin_stack_mean::cpu::stack(ctx, &mem.as_ref(), &req, &Default::default())
        })
        .map_err(|e| e.to_string())?;
    let g = Geometry::new(w, h, 2.0, 0.5);
    let p = DrizzleParams::default();
    let mut d = be
        .with_ctx("stack-drizzle", |ctx| {
            dz::drizzle(ctx, &mem.as_ref(), &req, &g, &p)
        })
        .map_err(|e| e.to_string())?;
    dz::fill_holes(&mut d.data, &d.weight, g.out_w, g.out_h, 1);
    Ok((
        mean,
        Image::from_vec(g.out_w as u32, g.out_h as u32, 1, d.data),
    ))
}
