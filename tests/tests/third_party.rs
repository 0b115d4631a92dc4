//! A third-party plugin built out of tree: `examples/third-party-stacker` is
//! built with cargo as its author would (its own project, depending on
//! plugin-api only), copied into a plugin directory next to the standard
//! plugins, and used by the unchanged host binary.

use jupiter_tests::synth::{generate, psnr_interior, render, SynthOptions};
use jupiter_tests::*;

#[test]
fn an_out_of_tree_stacker_runs_in_the_unchanged_host() {
    let lib = third_party_stacker();
    let dir = scratch("third-party");
    let plugins = plugin_dir(&dir.join("plugins"), NO_POST_PLUGINS, &[lib]);

    // The host lists it with its parameters.
    let o = run_ok([
        "--plugins".as_ref(),
        plugins.as_os_str(),
        "plugins".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.lines().any(|l| l.starts_with("stack-trimmed-mean")),
        "{text}"
    );
    assert!(text.contains("trim = 0.1 (0 ..= 0.45"), "{text}");

    // A capture with bright artifacts (streaks, hot pixels, cosmic rays) in a third of the frames.
    let o = SynthOptions {
        width: 160,
        height: 128,
        frames: 60,
        depth: 16,
        seed: 23,
        jitter: 4.0,
        blur: (0.8, 1.8),
        full_well: 250.0,
        artifacts: 0.35,
        ..Default::default()
    };
    let ser = dir.join("cap.ser");
    let cap = generate(&ser, &o).unwrap();
    let stack = |stacker: &str, out: &str, more: &[&str]| {
        let (out, report) = (dir.join(out), dir.join(format!("{stacker}.json")));
        let mut args = vec!["--stacker", stacker, "--no-post", "--select", "75%"];
        args.extend_from_slice(more);
        let r = run_reported(&plugins, &ser, (&out, &report), &args);
        (read_tiff(&out), r)
    };
    let (trimmed, report) = stack(
        "stack-trimmed-mean",
        "trimmed.tif",
        &["--set", "stack.trim=0.2"],
    );
    let (mean, _) = stack("stack-mean", "mean.tif", &[]);
    assert_eq!(report["timings"][2]["plugin"], "stack-trimmed-mean");

    // PSNR against the truth at the reference (best) frame's position.
    let (w, h) = (o.width as usize, o.height as usize);
    let best = cap.shifts[report["selected"][0].as_u64().unwrap() as usize];
    let truth = render(o.scene, w, h, 1, best.0 as f64, best.1 as f64);
    let single = best_frame_psnr(&ser, &o, &cap, &cap.artifact_frames);
    let p_trim = psnr_interior(&trimmed.data, &truth, w, h, 1, 8);
    let p_mean = psnr_interior(&mean.data, &truth, w, h, 1, 8);
    eprintln!("PSNR: best clean frame {single:.2} dB, stack-mean {p_mean:.2} dB, stack-trimmed-mean {p_trim:.2} dB");
    assert!(
        p_trim >= single + 3.0,
        "trimmed mean {p_trim:.2} dB vs best single frame {single:.2} dB"
    );
    // The artifacts fall in the trimmed tails: better than the plain mean.
    assert!(
        p_trim > p_mean,
        "trimmed mean {p_trim:.2} dB vs mean {p_mean:.2} dB"
    );

    its_parameters_are_checked_by_the_host(&plugins, &ser, &dir);
}

/// Its parameters are validated by the host like any plugin's.
fn its_parameters_are_checked_by_the_host(
    plugins: &std::path::Path,
    ser: &std::path::Path,
    dir: &std::path::Path,
) {
    let out = try_run_capture(
        plugins,
        ser,
        &[
            "--stacker".as_ref(),
            "stack-trimmed-mean".as_ref(),
            "--set".as_ref(),
            "stack.trim=0.9".as_ref(),
            "-o".as_ref(),
            dir.join("bad.tif").as_os_str(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'trim'") && err.contains("0 ..= 0.45"),
        "{err}"
    );
}

/// The example's own unit tests (an author's `cargo test`), which are outside
/// the workspace and so not run by `cargo test --workspace` otherwise.
#[test]
fn the_example_plugin_passes_its_own_unit_tests() {
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["test", "--quiet", "--manifest-path"])
        .arg(ws.join("examples/third-party-stacker/Cargo.toml"))
        .arg("--target-dir")
        .arg(fixtures_target_dir())
        .output()
        .expect("cannot run cargo test");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "cargo test of examples/third-party-stacker failed:\n{text}"
    );
    assert!(text.contains("4 passed"), "{text}");
}
