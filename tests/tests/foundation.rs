//! End-to-end: the built host and plugins on generated SER captures with a
//! known truth (shifts, image), checking numbers.

use jupiter_testkit::ser::Cfa;
use jupiter_tests::synth::{generate, psnr_interior, render, Scene, SynthColor, SynthOptions};
use jupiter_tests::*;

fn base_options() -> SynthOptions {
    SynthOptions {
        width: 160,
        height: 128,
        frames: 40,
        scene: Scene::Planet,
        color: SynthColor::Mono,
        depth: 16,
        seed: 11,
        jitter: 5.0,
        blur: (0.8, 1.8),
        full_well: 250.0,
        read_noise: 3.0,
        artifacts: 0.0,
        bin: 1,
    }
}

#[test]
fn recovers_shifts_and_beats_the_best_frame_by_3_db() {
    let o = base_options();
    let (dir, ser, cap) = generated("shifts", &o);
    let (out, report) = (dir.join("stack.tif"), dir.join("report.json"));
    // The global aligner's shifts are what this test checks.
    let more = ["--select", "50%", "--no-post", "--aligner", "align-phase"];
    let r = run_reported(build(), &ser, (&out, &report), &more);
    let selected: Vec<usize> = r["selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect();
    let shifts: Vec<(f64, f64)> = r["shifts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s[0].as_f64().unwrap(), s[1].as_f64().unwrap()))
        .collect();
    assert_eq!(selected.len(), 20);
    // Shifts are relative to the best frame (the reference position).
    let best = cap.shifts[selected[0]];
    let mut worst = 0.0f64;
    for (k, &i) in selected.iter().enumerate() {
        let want = (
            (cap.shifts[i].0 - best.0) as f64,
            (cap.shifts[i].1 - best.1) as f64,
        );
        let err = (shifts[k].0 - want.0)
            .abs()
            .max((shifts[k].1 - want.1).abs());
        eprintln!(
            "frame {i}: want ({:.3},{:.3}) got ({:.3},{:.3}) blur {:.2}",
            want.0, want.1, shifts[k].0, shifts[k].1, cap.blur[i]
        );
        worst = worst.max(err);
    }
    assert!(worst < 0.1, "worst shift error {worst:.3} px");
    // Integer and fractional shifts both occur in the capture.
    assert!(cap.shifts.iter().any(|s| (s.0 - s.0.round()).abs() > 0.2));

    let (w, h) = (o.width as usize, o.height as usize);
    let truth = render(o.scene, w, h, 1, best.0 as f64, best.1 as f64);
    let stacked = read_tiff(&out);
    let single = best_frame_psnr(&ser, &o, &cap, &[]);
    let stack = psnr_interior(&stacked.data, &truth, w, h, 1, 8);
    assert!(
        stack >= single + 3.0,
        "stack {stack:.2} dB vs best single frame {single:.2} dB"
    );
    eprintln!(
        "worst shift error {worst:.3} px; PSNR best frame {single:.2} dB, stack {stack:.2} dB"
    );
}

#[test]
fn bayer_capture_gives_rgb_with_the_right_colours() {
    let dir = scratch("bayer");
    let o = SynthOptions {
        color: SynthColor::Bayer(Cfa::Rggb),
        depth: 8,
        frames: 24,
        jitter: 0.0,
        seed: 5,
        ..base_options()
    };
    let ser = dir.join("bayer.ser");
    let _cap = generate(&ser, &o).unwrap();
    let out = dir.join("bayer.tif");
    run_capture(
        build(),
        &ser,
        &[
            "-o".as_ref(),
            out.as_os_str(),
            "--no-post".as_ref(),
            "--select".as_ref(),
            "100%".as_ref(),
        ],
    );
    let img = read_tiff(&out);
    assert_eq!(img.channels, 3);
    let (w, h) = (o.width as usize, o.height as usize);
    let truth = render(o.scene, w, h, 3, 0.0, 0.0);
    let chan = |d: &[f32], c: usize| -> Vec<f32> { d.iter().skip(c).step_by(3).copied().collect() };
    for c in 0..3 {
        let p = psnr_interior(&chan(&img.data, c), &chan(&truth, c), w, h, 1, 8);
        assert!(p > 26.0, "channel {c}: PSNR {p:.2} dB");
        // And it is that channel, not another: red and blue differ a lot on this planet.
        if c != 1 {
            let swapped = psnr_interior(&chan(&img.data, c), &chan(&truth, 2 - c), w, h, 1, 8);
            assert!(
                p > swapped + 5.0,
                "channel {c}: {p:.2} dB vs swapped {swapped:.2} dB"
            );
        }
    }
}

#[test]
fn plugins_command_lists_the_stages() {
    let out = run_ok([
        "--plugins".as_ref(),
        build().as_os_str(),
        "plugins".as_ref(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    for stage in ["quality", "align-phase", "stack-mean"] {
        assert!(
            text.lines().any(|l| l.starts_with(stage)),
            "{stage} missing from:\n{text}"
        );
    }
}

#[test]
fn a_foreign_library_in_the_plugin_dir_is_skipped_with_a_warning() {
    let dir = scratch("foreign");
    let plugins = plugin_dir(&dir.join("plugins"), NO_POST_PLUGINS, &[]);
    std::fs::write(
        plugins.join(format!(
            "{}notaplugin{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        )),
        b"\x7fELF garbage",
    )
    .unwrap();
    // A real shared library (a built cdylib) that is not a jupiter plugin.
    let lib = fixture_file("not-a-plugin");
    let lib_name = lib.file_name().unwrap().to_string_lossy().to_string();
    std::fs::copy(&lib, plugins.join(&lib_name)).unwrap();
    let ser = dir.join("cap.ser");
    generate(
        &ser,
        &SynthOptions {
            frames: 8,
            ..base_options()
        },
    )
    .unwrap();
    let out = run_capture(
        &plugins,
        &ser,
        &[
            "-o".as_ref(),
            dir.join("o.tif").as_os_str(),
            "--no-post".as_ref(),
        ],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    for name in ["notaplugin", lib_name.as_str()] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("skipped")),
            "{name} not skipped with a warning; stderr:\n{err}"
        );
    }
    assert!(dir.join("o.tif").exists());
}

#[test]
fn info_shows_the_header() {
    let o = SynthOptions {
        frames: 5,
        ..base_options()
    };
    let (_, ser, _) = generated("info", &o);
    let out = run_ok(["info".as_ref(), ser.as_os_str()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("160×128")
            && text.contains("MONO")
            && text.contains("timestamps:  present (5 frames"),
        "{text}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_naming_the_file() {
    let dir = scratch("bad");
    let ser = dir.join("broken.ser");
    std::fs::write(&ser, b"LUCAM-RECORDER but far too short").unwrap();
    let out = try_run_capture(build(), &ser, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("broken.ser") && err.contains("truncated"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
}
