//! End-to-end: the same host binary runs every stacker by name, rejects
//! outliers with median and sigma-clip, runs from a partial plugin directory,
//! and applies the default post-processing.

use jupiter_kit::fft::PhaseCorrelator;
use jupiter_kit::stats::{luminance, psnr_fitted};
use jupiter_tests::synth::{generate, psnr_interior, render, SynthColor, SynthOptions};
use jupiter_tests::*;

fn outlier_capture(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    SynthOptions,
    jupiter_tests::synth::SynthCapture,
) {
    let o = SynthOptions {
        width: 128,
        height: 112,
        frames: 40,
        depth: 16,
        seed: 21,
        jitter: 4.0,
        // One seeing blur for every frame, so the expected stack is known
        // exactly (the truth blurred by it) and the artifacts dominate the error.
        blur: (1.0, 1.0),
        full_well: 5000.0,
        read_noise: 2.0,
        artifacts: 0.1,
        ..Default::default()
    };
    let ser = dir.join("outliers.ser");
    let cap = generate(&ser, &o).unwrap();
    (ser, o, cap)
}

#[test]
fn stackers_swap_by_name_and_reject_outliers() {
    let dir = scratch("swap-stackers");
    let (ser, o, cap) = outlier_capture(&dir);
    assert!(
        !cap.artifact_frames.is_empty(),
        "the capture must carry artifacts"
    );
    let (w, h) = (o.width as usize, o.height as usize);
    let mut psnr = std::collections::BTreeMap::new();
    for stacker in ["stack-mean", "stack-median", "stack-sigma-clip"] {
        let out = dir.join(format!("{stacker}.tif"));
        let report = dir.join(format!("{stacker}.json"));
        // Half the frames at each point (a fixed share: the stackers are
        // compared on the same frames, with artifacts among them).
        let more = [
            "--select",
            "100%",
            "--set",
            "align.keep=0.5",
            "--stacker",
            stacker,
            "--no-post",
        ];
        let r = run_reported(build(), &ser, (&out, &report), &more);
        assert_eq!(
            r["timings"][2]["plugin"], stacker,
            "the report names the stacker that ran"
        );
        let best = cap.shifts[r["selected"][0].as_u64().unwrap() as usize];
        let sharp = render(o.scene, w, h, 1, best.0 as f64, best.1 as f64);
        let mut truth = vec![0.0; sharp.len()];
        jupiter_kit::conv::separable_serial(
            &sharp,
            w,
            h,
            &jupiter_kit::conv::gaussian_kernel(1.0),
            1,
            &mut truth,
        );
        psnr.insert(
            stacker,
            psnr_interior(&read_tiff(&out).data, &truth, w, h, 1, 8),
        );
    }
    eprintln!(
        "PSNR vs truth with {} of {} frames carrying artifacts: {psnr:?}",
        cap.artifact_frames.len(),
        o.frames
    );
    assert!(psnr["stack-mean"] > 25.0, "{psnr:?}");
    assert!(psnr["stack-median"] >= psnr["stack-mean"] + 2.0, "{psnr:?}");
    assert!(
        psnr["stack-sigma-clip"] >= psnr["stack-mean"] + 2.0,
        "{psnr:?}"
    );
}

#[test]
fn a_partial_plugin_dir_runs_and_names_what_is_missing() {
    let o = SynthOptions {
        width: 96,
        height: 80,
        frames: 10,
        ..Default::default()
    };
    let (dir, ser, _) = generated("partial", &o);
    let plugins = plugin_dir(&dir.join("plugins"), NO_POST_PLUGINS, &[]);
    // The default pipeline: its post stages are absent, which is a warning.
    let out = run_capture(
        &plugins,
        &ser,
        &["-o".as_ref(), dir.join("a.tif").as_os_str()],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'deconvolve' is not installed") && err.contains("'stretch' is not installed"),
        "{err}"
    );
    assert!(dir.join("a.tif").exists());
    // Asking for an absent stacker is an error that lists the available
    // ones; so is a pipeline file naming an absent post stage.
    let pipeline = dir.join("p.toml");
    std::fs::write(&pipeline, "[[post]]\nplugin = \"sharpen-wavelet\"\n").unwrap();
    let cases = [
        (
            "b.tif",
            "--stacker",
            "stack-median".as_ref(),
            "'stack-median'",
        ),
        (
            "c.tif",
            "--pipeline",
            pipeline.as_os_str(),
            "'sharpen-wavelet'",
        ),
    ];
    for (out, flag, value, named) in cases {
        let out = dir.join(out);
        let err = refused_run(
            &plugins,
            &ser,
            &["-o".as_ref(), out.as_os_str(), flag.as_ref(), value],
        );
        assert!(err.contains(named), "{err}");
        if flag == "--stacker" {
            assert!(err.contains("available stack stages: stack-mean"), "{err}");
        }
        assert!(!out.exists());
    }
}

#[test]
fn the_default_pipeline_sharpens_and_stretches() {
    let o = SynthOptions {
        width: 96,
        height: 80,
        frames: 12,
        color: SynthColor::Rgb,
        ..Default::default()
    };
    let (dir, ser, _) = generated("default-post", &o);
    let report = dir.join("r.json");
    run_capture(build(), &ser, &["--report".as_ref(), report.as_os_str()]);
    let r = read_report(&report);
    let plugins: Vec<&str> = r["timings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["plugin"].as_str().unwrap())
        .collect();
    assert_eq!(
        plugins,
        [
            "quality",
            "align-multipoint",
            "stack-mean",
            "deconvolve",
            "stretch"
        ]
    );
    // Default output name beside the capture; stretched to the full range.
    let img = read_tiff(&dir.join("cap_jupiter.tif"));
    let max = img.data.iter().copied().fold(0.0f32, f32::max);
    let min = img.data.iter().copied().fold(1.0f32, f32::min);
    assert!(max > 0.99 && min < 0.01, "stretched range {min}..{max}");
    // Sharpened: more fine detail than the plain stack of the same frames,
    // measured after normalising both to their own range (so that the
    // stretch alone does not count).
    let plain = dir.join("plain.tif");
    run_capture(
        build(),
        &ser,
        &["--no-post".as_ref(), "-o".as_ref(), plain.as_os_str()],
    );
    let plain = read_tiff(&plain);
    let (sharp, soft) = (detail(&img), detail(&plain));
    // Closer to the truth: the restoration removes blur rather than adding
    // contrast (each image fitted to the truth by a gain and an offset per
    // channel, at the stack's registered position).
    let (w, h) = (o.width as usize, o.height as usize);
    let pc = PhaseCorrelator::new(&render(o.scene, w, h, 1, 0.0, 0.0), w, h);
    let s = pc.shift_of(&luminance(&plain.data, 3));
    let truth = render(o.scene, w, h, 3, s.dx as f64, s.dy as f64);
    let psnr = |img: &jupiter_plugin_api::Image| psnr_fitted(&img.data, &truth, w, h, 3, 8);
    let (p_post, p_plain) = (psnr(&img), psnr(&plain));
    eprintln!(
        "detail: default post {sharp:.3e}, plain stack {soft:.3e}; PSNR {p_post:.2} vs {p_plain:.2} dB"
    );
    // The gain follows the blur the stack shows (the deconvolution's PSF is
    // measured on it, and Richardson-Lucy stops at the noise): 1.17× here
    // since the stacks resample with the sharper cubic and `--select auto`
    // averages 2 of the 3 frames (1.6× with one frame and Catmull-Rom).
    assert!(
        sharp > 1.1 * soft,
        "the default post-processing should sharpen: detail {sharp} vs the plain stack's {soft}"
    );
    assert!(
        p_post > p_plain + 0.2,
        "the default post-processing should come closer to the truth: {p_post:.2} vs {p_plain:.2} dB"
    );
}

/// Mean squared Laplacian of the first channel, the image scaled to [0, 1]
/// by its own range: fine detail independent of brightness and contrast.
fn detail(img: &jupiter_plugin_api::Image) -> f64 {
    let (w, h, c) = img.dims();
    let v = |x: usize, y: usize| img.data[(y * w + x) * c] as f64;
    let (lo, hi) = img
        .data
        .iter()
        .step_by(c)
        .fold((f64::MAX, f64::MIN), |(a, b), &x| {
            (a.min(x as f64), b.max(x as f64))
        });
    let mut sum = 0.0;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let lap = 4.0 * v(x, y) - v(x - 1, y) - v(x + 1, y) - v(x, y - 1) - v(x, y + 1);
            sum += (lap / (hi - lo)).powi(2);
        }
    }
    sum / ((w - 2) * (h - 2)) as f64
}
