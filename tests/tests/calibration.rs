//! End-to-end calibration: a capture rendered through a flawed sensor
//! (vignetting, dust, glow, hot pixels; `jupiter_testkit::flaws`) stacks
//! ≥ 3 dB closer to the truth with its darks, flats and flat-darks than
//! without, and within 0.5 dB of the same capture from a perfect sensor;
//! mono and Bayer. Masters built once with `master` give the same stack as
//! the captures (sigma-clipped both ways); a mismatched master is refused
//! naming both files.

use std::path::{Path, PathBuf};

use jupiter_testkit::flaws::{generate_flawed, write_darks, write_flat_darks, write_flats, Flaws};
use jupiter_testkit::ser::Cfa;
use jupiter_tests::synth::{generate, psnr_fitted, render, Scene, SynthColor, SynthOptions};
use jupiter_tests::*;

fn options(color: SynthColor) -> SynthOptions {
    SynthOptions {
        width: 160,
        height: 120,
        frames: 24,
        scene: Scene::Planet,
        color,
        depth: 8,
        seed: 23,
        jitter: 4.0,
        blur: (0.8, 1.8),
        full_well: 250.0,
        read_noise: 3.0,
        artifacts: 0.0,
        bin: 1,
    }
}

/// The clean and flawed captures and the calibration captures, in `dir`.
struct Captures {
    dir: PathBuf,
    clean: PathBuf,
    flawed: PathBuf,
    darks: PathBuf,
    flats: PathBuf,
    flat_darks: PathBuf,
    flaws: Flaws,
    /// Each frame's shift (the same through either sensor).
    shifts: Vec<(f32, f32)>,
}

fn captures(name: &str, o: &SynthOptions) -> Captures {
    let dir = scratch(name);
    let flaws = Flaws::synthetic(o, 77);
    let c = Captures {
        clean: dir.join("clean.ser"),
        flawed: dir.join("flawed.ser"),
        darks: dir.join("darks.ser"),
        flats: dir.join("flats.ser"),
        flat_darks: dir.join("flat_darks.ser"),
        dir,
        flaws,
        shifts: Vec::new(),
    };
    let clean = generate(&c.clean, o).unwrap();
    let flawed = generate_flawed(&c.flawed, o, &c.flaws).unwrap();
    assert_eq!(clean.shifts, flawed.shifts);
    let c = Captures {
        shifts: clean.shifts,
        ..c
    };
    write_darks(&c.darks, o, &c.flaws, 32, 101).unwrap();
    write_flats(&c.flats, o, &c.flaws, 32, 102).unwrap();
    write_flat_darks(&c.flat_darks, o, &c.flaws, 32, 103).unwrap();
    c
}

/// Stacks `input` (global alignment, no post-processing) with `more`
/// flags: the report and the PSNR against the truth at the reference
/// frame's shift (gain and offset fitted per channel).
fn stack(
    o: &SynthOptions,
    shifts: &[(f32, f32)],
    input: &Path,
    out: &Path,
    more: &[&str],
) -> (serde_json::Value, Vec<f32>, f64) {
    let report = out.with_extension("json");
    let mut args = vec!["--select", "50%", "--no-post", "--aligner", "align-phase"];
    args.extend_from_slice(more);
    let r = run_reported(build(), input, (out, &report), &args);
    let data = read_tiff(out).data.to_vec();
    let best = r["selected"][0].as_u64().unwrap() as usize;
    let (w, h) = (o.width as usize, o.height as usize);
    let ch = if o.color == SynthColor::Mono { 1 } else { 3 };
    let (dx, dy) = shifts[best];
    let truth = render(o.scene, w, h, ch, dx as f64, dy as f64);
    let psnr = psnr_fitted(&data, &truth, w, h, ch, 8);
    (r, data, psnr)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Calibrated vs uncalibrated vs clean; returns the calibrated run's report.
fn calibrated_is_close_to_clean(name: &str, color: SynthColor) -> (Captures, serde_json::Value) {
    let o = options(color);
    let c = captures(name, &o);
    let (_, _, clean) = stack(&o, &c.shifts, &c.clean, &c.dir.join("clean.tif"), &[]);
    let (_, _, raw) = stack(&o, &c.shifts, &c.flawed, &c.dir.join("raw.tif"), &[]);
    let masters = [
        "--dark",
        s(&c.darks),
        "--flat",
        s(&c.flats),
        "--flat-dark",
        s(&c.flat_darks),
    ];
    let html = c.dir.join("cal.html");
    let mut flags = masters.to_vec();
    flags.extend(["--report", s(&html)]);
    let (r, _, cal) = stack(&o, &c.shifts, &c.flawed, &c.dir.join("cal.tif"), &flags);
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("<h2>Calibration</h2>")
            && page.contains("normalised(flat − flat-dark)")
            && page.contains("darks.ser"),
        "the HTML report's calibration table"
    );
    eprintln!(
        "{name}: clean {clean:.2} dB, uncalibrated {raw:.2} dB, calibrated {cal:.2} dB ({:+.2} dB, {:+.2} dB vs clean)",
        cal - raw,
        cal - clean
    );
    assert!(
        cal - raw >= 3.0,
        "{name}: calibration gained {:.2} dB",
        cal - raw
    );
    assert!(
        cal - clean >= -0.5,
        "{name}: {:.2} dB from the clean stack",
        cal - clean
    );
    (c, r)
}

#[test]
fn mono_calibration_recovers_the_clean_stack() {
    let (c, r) = calibrated_is_close_to_clean("calibration-mono", SynthColor::Mono);
    let cal = &r["calibration"];
    assert_eq!(
        cal["formula"],
        "(frame − dark) / normalised(flat − flat-dark)"
    );
    assert_eq!(cal["masters"].as_array().unwrap().len(), 3);
    assert_eq!(cal["masters"][0]["built"], "median of 32 frames");
    assert_eq!(cal["hot_pixels_from"], "dark");
    let found = cal["hot_pixels"].as_u64().unwrap() as usize;
    let planted = c.flaws.hot.len();
    eprintln!("hot pixels: {found} found, {planted} planted");
    assert!(
        found >= planted * 9 / 10 && found <= planted + 2,
        "{found} hot pixels found, {planted} planted"
    );
    assert_eq!(r["pipeline"]["calibration"]["dark"], s(&c.darks));
}

#[test]
fn bayer_calibration_recovers_the_clean_stack() {
    let (_, r) = calibrated_is_close_to_clean("calibration-bayer", SynthColor::Bayer(Cfa::Rggb));
    assert_eq!(r["channels"], 3);
    assert!(r["calibration"]["hot_pixels"].as_u64().unwrap() > 0);
}

#[test]
fn masters_built_once_stack_like_the_captures() {
    let o = options(SynthColor::Bayer(Cfa::Rggb));
    let c = captures("calibration-master", &o);
    let mut flags: Vec<String> = Vec::new();
    for (flag, capture) in [
        ("--dark", &c.darks),
        ("--flat", &c.flats),
        ("--flat-dark", &c.flat_darks),
    ] {
        let master = capture.with_extension("fits");
        let made = run_ok([
            "master".as_ref(),
            capture.as_os_str(),
            "-o".as_ref(),
            master.as_os_str(),
            "--combine".as_ref(),
            "sigma-clip".as_ref(),
        ]);
        let said = String::from_utf8_lossy(&made.stderr);
        assert!(said.contains("sigma-clip of 32 frames"), "{said}");
        flags.extend([flag.to_string(), master.display().to_string()]);
    }
    let via_masters: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (r, from_masters, p1) = stack(
        &o,
        &c.shifts,
        &c.flawed,
        &c.dir.join("masters.tif"),
        &via_masters,
    );
    let direct = [
        "--dark",
        s(&c.darks),
        "--flat",
        s(&c.flats),
        "--flat-dark",
        s(&c.flat_darks),
        "--combine",
        "sigma-clip",
    ];
    let (direct_r, from_captures, p2) = stack(
        &o,
        &c.shifts,
        &c.flawed,
        &c.dir.join("captures.tif"),
        &direct,
    );
    let worst = from_masters
        .iter()
        .zip(&from_captures)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    eprintln!("masters {p1:.3} dB, captures {p2:.3} dB, largest difference {worst:e}");
    assert!(worst <= 1.5 / 65535.0, "largest difference {worst}");
    assert_eq!(r["calibration"]["masters"][0]["built"], "master image");
    assert_eq!(
        direct_r["calibration"]["masters"][1]["built"],
        "sigma-clip of 32 frames"
    );
    // The master keeps the mosaic and says so.
    let out = run_ok(["info".as_ref(), c.darks.with_extension("fits").as_os_str()]);
    let info = String::from_utf8_lossy(&out.stdout);
    assert!(info.contains("160×120") && info.contains("RGGB"), "{info}");
}

#[test]
fn a_mismatched_master_is_refused_naming_both_files_before_any_output() {
    let o = options(SynthColor::Mono);
    let c = captures("calibration-mismatch", &o);
    let small = SynthOptions {
        width: 120,
        ..o.clone()
    };
    let other = c.dir.join("other_darks.ser");
    write_darks(&other, &small, &Flaws::synthetic(&small, 5), 4, 9).unwrap();
    let out = c.dir.join("never.tif");
    let err = refused_run(
        build(),
        &c.flawed,
        &[
            "-o".as_ref(),
            out.as_os_str(),
            "--dark".as_ref(),
            other.as_os_str(),
        ],
    );
    assert!(
        err.contains("other_darks.ser")
            && err.contains("flawed.ser")
            && err.contains("120×120")
            && err.contains("160×120"),
        "{err}"
    );
    assert!(!out.exists());
    // The master command refuses a non-FITS output.
    let o2 = run_host([
        "master".as_ref(),
        c.darks.as_os_str(),
        "-o".as_ref(),
        c.dir.join("m.tif").as_os_str(),
    ]);
    let e2 = String::from_utf8_lossy(&o2.stderr);
    assert!(
        !o2.status.success() && e2.contains("m.tif") && e2.contains("FITS"),
        "{e2}"
    );
}
