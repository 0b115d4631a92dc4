//! `--post`: what the default post-processing does to stacks with a known
//! truth, and what deconvolution could do with the best PSF width (found
//! with the truth's help) and with the width the stage estimates.

use jupiter_plugin_api::testing::ThreadBackend;
use jupiter_plugin_deconvolve::{cpu::deconvolve, params::DeconvolveParams};
use jupiter_testkit::capture::{generate_with_seeing, Seeing};

use super::*;

/// Photon noise of a post capture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Noise {
    Clean,
    Medium,
    Noisy,
}

/// The post-processing captures: planet and surface, mild and strong
/// seeing (strong adds local distortions and a blur varying across the
/// field), clean (16-bit, deep wells) and noisy (8-bit, shallow wells).
pub(crate) fn post_specs() -> Vec<(CaseSpec, Seeing)> {
    specs_at(&[Noise::Clean, Noise::Noisy])
}

/// The post captures at these noise levels (`Medium`: 16-bit, 2000 e⁻
/// wells, between the two others; only the `--budget` sweep uses it).
pub(crate) fn specs_at(levels: &[Noise]) -> Vec<(CaseSpec, Seeing)> {
    let mut out = Vec::new();
    for scene in [Scene::Planet, Scene::Lunar] {
        for strong in [false, true] {
            for &level in levels {
                let noisy = level == Noise::Noisy;
                let name = format!(
                    "post-{}-{}-{}",
                    if scene == Scene::Planet {
                        "planet"
                    } else {
                        "lunar"
                    },
                    if strong { "strong" } else { "mild" },
                    match level {
                        Noise::Clean => "clean",
                        Noise::Medium => "medium",
                        Noise::Noisy => "noisy",
                    }
                );
                let opts = SynthOptions {
                    width: 320,
                    height: 256,
                    frames: 160,
                    scene,
                    depth: if noisy { 8 } else { 16 },
                    // The seeds the two-level set always had; medium ones apart.
                    seed: match level {
                        Noise::Medium => 140 + 2 * (scene == Scene::Lunar) as u64 + strong as u64,
                        _ => {
                            40 + 4 * (scene == Scene::Lunar) as u64
                                + 2 * strong as u64
                                + noisy as u64
                        }
                    },
                    jitter: 4.0,
                    blur: if strong { (1.2, 3.2) } else { (0.6, 1.8) },
                    full_well: match level {
                        Noise::Clean => 20000.0,
                        Noise::Medium => 2000.0,
                        Noise::Noisy => 400.0,
                    },
                    read_noise: if noisy { 3.0 } else { 1.0 },
                    ..SynthOptions::default()
                };
                let seeing = if strong {
                    Seeing::turbulent()
                } else {
                    Seeing::default()
                };
                out.push((
                    CaseSpec {
                        what: name.clone(),
                        name,
                        opts,
                    },
                    seeing,
                ));
            }
        }
    }
    out
}

/// Generates one post capture unless it is there.
pub(crate) fn post_capture(
    dir: &Path,
    spec: &CaseSpec,
    seeing: &Seeing,
) -> Result<Capture, String> {
    let path = dir.join(format!("{}.ser", spec.name));
    let truth_path = dir.join(format!("{}.truth.tif", spec.name));
    if !(path.exists() && truth_path.exists()) {
        eprintln!("generating {}", path.display());
        let c = generate_with_seeing(&path, &spec.opts, seeing)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        write_image(&c.truth, &truth_path, (false, true), &Default::default())
            .map_err(|e| e.to_string())?;
    }
    Ok(Capture {
        truth: read_image(&truth_path)?,
        bytes: std::fs::metadata(&path).map_err(|e| e.to_string())?.len(),
        path,
    })
}

/// Runs the host on `input` into `out` (default post-processing unless
/// `no_post`), global or default alignment.
pub(crate) fn run_host(
    t: &Tools,
    input: &Path,
    out: &Path,
    global: bool,
    no_post: bool,
) -> Result<(), String> {
    run_host_with(t, input, out, global, no_post, &[])
}

/// [`run_host`] with `extra` arguments after the harness's own.
pub(crate) fn run_host_with(
    t: &Tools,
    input: &Path,
    out: &Path,
    global: bool,
    no_post: bool,
    extra: &[&str],
) -> Result<(), String> {
    let mut c = Command::new(&t.host);
    c.args(["-q", "run"])
        .arg(input)
        .arg("-o")
        .arg(out)
        .arg("--force");
    if global {
        c.args(["--aligner", "align-phase"]);
    }
    if no_post {
        c.arg("--no-post");
    }
    if !global {
        t.add_sets(&mut c);
    }
    c.args(extra);
    let o = c.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!(
            "{}: {}",
            input.display(),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    Ok(())
}

/// Deconvolves `stack` with Richardson–Lucy (the stage's defaults) at
/// `sigma` (0 = the stage's estimate); returns PSNR and the sigma used.
fn rl_psnr(stack: &Image, truth: &Image, sigma: f32) -> Result<(f64, f32), String> {
    let p = DeconvolveParams {
        sigma,
        ..Default::default()
    };
    let be = ThreadBackend::new(2);
    let (img, applied) = be
        .with_ctx("deconvolve", |ctx| deconvolve(ctx, stack.clone(), &p))
        .map_err(|e| e.message.to_string())?;
    let used = applied.map_or(0.0, |a| a.sigma);
    Ok((psnr_vs_truth(&img, truth)?, used))
}

const SWEEP: [f32; 9] = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0];

pub(crate) fn post(o: &Opts, t: &Tools) -> Result<(), String> {
    println!("\n### Post-processing on stacks with a known truth\n");
    println!("320×256, 160 frames, default selection (25 %); PSNR in dB after registration and a gain/offset fit; gains over the unsharpened stack. RL: the `deconvolve` stage's Richardson-Lucy (discrepancy stop) at the best sigma of {SWEEP:?} (chosen with the truth) and at its own estimate.\n");
    println!("| capture | aligner | stack | default post (gain) | RL best sigma (gain) | RL estimated sigma (gain) |");
    println!("|---|---|---|---|---|---|");
    let mut gains = Vec::new();
    for (spec, seeing) in post_specs() {
        if o.only
            .as_ref()
            .is_some_and(|n| !spec.name.contains(n.as_str()))
        {
            continue;
        }
        let cap = post_capture(&o.dir, &spec, &seeing)?;
        for global in [false, true] {
            let tag = if global { "global" } else { "default" };
            let stack_path = t.work.join(format!("{}-{tag}-stack.tif", spec.name));
            let final_path = t.work.join(format!("{}-{tag}-post.tif", spec.name));
            run_host(t, &cap.path, &stack_path, global, true)?;
            run_host(t, &cap.path, &final_path, global, false)?;
            let stack = read_image(&stack_path)?;
            let base = psnr_vs_truth(&stack, &cap.truth)?;
            let post = psnr_vs_truth(&read_image(&final_path)?, &cap.truth)?;
            gains.push(post - base);
            let mut best = (f64::MIN, 0.0);
            for s in SWEEP {
                let (p, _) = rl_psnr(&stack, &cap.truth, s)?;
                if p > best.0 {
                    best = (p, s);
                }
            }
            let (est, s_est) = rl_psnr(&stack, &cap.truth, 0.0)?;
            println!(
                "| {} | {} | {base:.2} | {post:.2} ({:+.2}) | {:.2} at {} px ({:+.2}) | {est:.2} at {s_est:.2} px ({:+.2}) |",
                spec.name,
                if global { "global" } else { "multi-point" },
                post - base,
                best.0,
                best.1,
                best.0 - base,
                est - base
            );
        }
    }
    if !gains.is_empty() {
        let min = gains.iter().copied().fold(f64::MAX, f64::min);
        let mean = gains.iter().sum::<f64>() / gains.len() as f64;
        println!(
            "\nDefault post-processing: gain min {min:+.2} dB, mean {mean:+.2} dB over {} stacks.",
            gains.len()
        );
    }
    Ok(())
}
