//! End-to-end: a capture that shrinks while being read — a SER, AVI or FITS
//! cube cut short by another process, a frame of an image sequence deleted
//! — ends the run with exit code 1 and an error naming the file and the
//! frame, never SIGBUS, and leaves no output. The run is paused at a known
//! frame through the test-only `JUPITER_TEST_PAUSE_AT_FRAME` hook
//! (`host/src/io/capture/pause.rs`) while the test changes the capture.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jupiter_host::io::ser::SerFile;
use jupiter_testkit::avi::{write_avi, AviPixels, AviSpec};
use jupiter_testkit::fits::{write_fits, FitsSpec};
use jupiter_testkit::sequence::write_png;
use jupiter_tests::synth::SynthOptions;
use jupiter_tests::*;

const FRAMES: usize = 24;
/// Reads of this frame and later ones wait while the test shrinks the capture.
const PAUSE_AT: usize = 12;

/// The capture as SER, AVI, FITS cube and PNG directory.
fn captures(name: &str) -> (PathBuf, Vec<PathBuf>) {
    let o = SynthOptions {
        width: 64,
        height: 48,
        frames: FRAMES,
        ..Default::default()
    };
    let (dir, ser, _) = generated(name, &o);
    let s = SerFile::open(&ser, Default::default()).unwrap();
    let frames: Vec<Vec<u16>> = (0..FRAMES)
        .map(|i| {
            let f = s.decode_frame(i).unwrap();
            f.iter().map(|v| (v * 255.0).round() as u16).collect()
        })
        .collect();
    let (w, h) = (o.width, o.height);
    let avi = dir.join("cap.avi");
    write_avi(&avi, &AviSpec::new(w, h, AviPixels::Y800), &frames).unwrap();
    let fits = dir.join("cap.fits");
    let physical: Vec<Vec<f64>> = frames
        .iter()
        .map(|f| f.iter().map(|&v| v as f64 * 257.0).collect())
        .collect();
    write_fits(&fits, &FitsSpec::u16(w as usize, h as usize), &physical).unwrap();
    let pngs = dir.join("cap_png");
    std::fs::create_dir_all(&pngs).unwrap();
    for (k, f) in frames.iter().enumerate() {
        write_png(&pngs.join(format!("frame_{k}.png")), (w, h, 1), 8, f).unwrap();
    }
    (dir, vec![ser, avi, fits, pngs])
}

/// Runs the pipeline on `input`, and once the reads of frame [`PAUSE_AT`]
/// wait, calls `change`; returns the exit code and stderr.
fn run_changed(input: &Path, out: &Path, change: impl FnOnce()) -> (Option<i32>, String) {
    let mut marker = input.as_os_str().to_os_string();
    marker.push(".paused");
    let marker = PathBuf::from(marker);
    let child = Command::new(host())
        .args(capture_args(build(), input))
        .args(["-o".as_ref(), out.as_os_str()])
        .args(["--select", "50%", "--no-post", "--aligner", "align-phase"])
        .env("JUPITER_TEST_PAUSE_AT_FRAME", PAUSE_AT.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !marker.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the run never paused"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    change();
    std::fs::remove_file(&marker).unwrap();
    let o = child.wait_with_output().unwrap();
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The frame index in "cannot read frame N".
fn frame_named(err: &str) -> usize {
    let at = err.find("cannot read frame ").expect("no frame named") + 18;
    err[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn check_refused(code: Option<i32>, err: &str, named: &str, out: &Path) {
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains(named), "the error names {named}:\n{err}");
    assert!(frame_named(err) < FRAMES, "{err}");
    assert!(!out.exists(), "{} was written", out.display());
    let dir = out.parent().unwrap();
    let temps: Vec<String> = list_dir(dir)
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(temps.is_empty(), "{temps:?}");
}

#[test]
fn a_capture_cut_short_mid_run_is_an_error_naming_the_file_and_frame() {
    let (dir, inputs) = captures("shrinking");
    for input in &inputs[..3] {
        let name = input.file_name().unwrap().to_str().unwrap().to_string();
        let out = dir.join(format!("{name}.tif"));
        let len = std::fs::metadata(input).unwrap().len();
        let (code, err) = run_changed(input, &out, || {
            // A third of the file is left: frame PAUSE_AT and later are gone.
            let f = std::fs::OpenOptions::new().write(true).open(input).unwrap();
            f.set_len(len / 3).unwrap();
        });
        check_refused(code, &err, &format!("{name}: cannot read frame "), &out);
        assert!(err.contains("cut short while being read?"), "{err}");
    }
}

#[test]
fn a_sequence_frame_deleted_mid_run_is_an_error_naming_it() {
    let (dir, inputs) = captures("shrinking-sequence");
    let pngs = &inputs[3];
    let out = dir.join("seq.tif");
    let gone = pngs.join(format!("frame_{}.png", FRAMES - 1));
    let (code, err) = run_changed(pngs, &out, || std::fs::remove_file(&gone).unwrap());
    check_refused(code, &err, "frame_23.png: cannot read frame 23", &out);
}
