//! The default post-processing (`deconvolve` with the PSF estimated from the
//! stack, then `stretch`) on stacks with a known truth: it must raise PSNR
//! over the unsharpened stack on a planet and a surface, stacked globally
//! and with alignment points, say what it chose in the report, and leave no
//! dark ring at a planet's limb.

use jupiter_kit::fft::PhaseCorrelator;
use jupiter_kit::stats::luminance;
use jupiter_plugin_api::Image;
use jupiter_tests::synth::{
    fitted_to, generate_with_seeing, psnr_interior, render, Scene, Seeing, SynthOptions,
};
use jupiter_tests::*;

const MARGIN: usize = 12;

fn options(scene: Scene, seed: u64) -> SynthOptions {
    SynthOptions {
        width: 192,
        height: 160,
        frames: 80,
        scene,
        depth: 16,
        seed,
        jitter: 3.0,
        blur: (0.8, 2.4),
        full_well: 4000.0,
        read_noise: 2.0,
        ..SynthOptions::default()
    }
}

/// The plain stack and the default pipeline's output of one capture, each
/// fitted (gain, offset) to the truth at the stack's registered position.
struct Outputs {
    truth: Vec<f32>,
    plain: Vec<f32>,
    post: Vec<f32>,
    /// The former default, `sharpen-wavelet` (fixed gains) and `stretch`:
    /// what the ring measure must see.
    wavelet: Vec<f32>,
    report: serde_json::Value,
}

fn outputs(name: &str, o: &SynthOptions, aligner: Option<&str>) -> Outputs {
    let dir = scratch(name);
    let ser = dir.join("cap.ser");
    generate_with_seeing(
        &ser,
        o,
        &Seeing {
            warp: (0.5, 1.5),
            ..Seeing::turbulent()
        },
    )
    .unwrap();
    let run = |out: &str, extra: &[&str]| -> (Image, serde_json::Value) {
        let (out, report) = (dir.join(out), dir.join(format!("{name}-{out}.json")));
        let mut more: Vec<&str> = extra.to_vec();
        if let Some(a) = aligner {
            more.extend(["--aligner", a]);
        }
        let r = run_reported(build(), &ser, (&out, &report), &more);
        (read_tiff(&out), r)
    };
    let (plain, _) = run("plain.tif", &["--no-post"]);
    let (post, report) = run("post.tif", &[]);
    let wavelet_pipeline = dir.join("wavelet.toml");
    std::fs::write(
        &wavelet_pipeline,
        "version = 1\n[[post]]\nplugin = \"sharpen-wavelet\"\n[[post]]\nplugin = \"stretch\"\n",
    )
    .unwrap();
    let (wavelet, _) = run(
        "wavelet.tif",
        &["--pipeline", wavelet_pipeline.to_str().unwrap()],
    );
    let (w, h) = (o.width as usize, o.height as usize);
    let pc = PhaseCorrelator::new(&render(o.scene, w, h, 1, 0.0, 0.0), w, h);
    let s = pc.shift_of(&luminance(&plain.data, 1));
    let truth = render(o.scene, w, h, 1, s.dx as f64, s.dy as f64);
    let fit = |img: &Image| fitted_to(&img.data, &truth, w, h, 1, MARGIN);
    Outputs {
        plain: fit(&plain),
        post: fit(&post),
        wavelet: fit(&wavelet),
        truth,
        report,
    }
}

/// Depth of the dark ring outside a planet's limb: over the sky pixels
/// (truth 0) within 6 px of the disc (truth > 0.05), the mean of the fitted
/// image below the sky's own median level, as a fraction of the disc's mean
/// brightness within 6 px inside the limb. 0 = no ring.
fn ring_depth(img: &[f32], truth: &[f32], w: usize, h: usize) -> f64 {
    let near = |x: usize, y: usize, inside: bool| {
        let r = 6isize;
        (-r..=r).any(|dy| {
            (-r..=r).any(|dx| {
                let (u, v) = (x as isize + dx, y as isize + dy);
                u >= 0 && v >= 0 && (u as usize) < w && (v as usize) < h && {
                    let t = truth[v as usize * w + u as usize];
                    if inside {
                        t <= 0.0
                    } else {
                        t > 0.05
                    }
                }
            })
        })
    };
    let (mut ring, mut rim, mut sky) = (Vec::new(), Vec::new(), Vec::new());
    for y in MARGIN..h - MARGIN {
        for x in MARGIN..w - MARGIN {
            let (i, t) = (y * w + x, truth[y * w + x]);
            if t <= 0.0 && near(x, y, false) {
                ring.push(img[i] as f64);
            } else if t <= 0.0 {
                sky.push(img[i] as f64);
            } else if t > 0.05 && near(x, y, true) {
                rim.push(img[i] as f64);
            }
        }
    }
    sky.sort_by(f64::total_cmp);
    let sky_level = sky[sky.len() / 2];
    let below: f64 = ring.iter().map(|v| (sky_level - v).max(0.0)).sum::<f64>() / ring.len() as f64;
    below / (rim.iter().sum::<f64>() / rim.len() as f64)
}

#[test]
fn the_default_post_processing_improves_every_stack() {
    for (scene, seed) in [(Scene::Planet, 61), (Scene::Lunar, 62)] {
        let o = options(scene, seed);
        for aligner in [None, Some("align-phase")] {
            let name = format!("post-{scene:?}-{}", aligner.unwrap_or("default"));
            let out = outputs(&name, &o, aligner);
            let (w, h) = (o.width as usize, o.height as usize);
            let psnr = |v: &[f32]| psnr_interior(v, &out.truth, w, h, 1, MARGIN);
            let (plain, post) = (psnr(&out.plain), psnr(&out.post));
            eprintln!(
                "{name}: plain stack {plain:.2} dB, default post {post:.2} dB ({:+.2})",
                post - plain
            );
            assert!(post >= plain + 0.5, "{name}: {post:.2} vs {plain:.2} dB");
            // The report says what the deconvolution chose and measured.
            let said: Vec<&str> = out.report["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m.as_str())
                .filter(|m| m.contains("deconvolve: rl with a gaussian PSF of sigma"))
                .collect();
            assert!(
                said.len() == 1 && said[0].contains("estimated") && said[0].contains("iterations"),
                "{:?}",
                out.report["messages"]
            );
            if scene == Scene::Planet {
                let ring = ring_depth(&out.post, &out.truth, w, h);
                let before = ring_depth(&out.plain, &out.truth, w, h);
                let wavelet = ring_depth(&out.wavelet, &out.truth, w, h);
                eprintln!(
                    "{name}: dark ring {:.3} % of the limb's brightness (plain stack {:.3} %, sharpen-wavelet {:.3} %)",
                    100.0 * ring,
                    100.0 * before,
                    100.0 * wavelet
                );
                assert!(
                    ring < 0.005 && wavelet > 4.0 * ring,
                    "{name}: ring {ring}, wavelet's {wavelet}"
                );
            }
        }
    }
}
