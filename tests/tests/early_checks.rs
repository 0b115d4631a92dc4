//! End-to-end: what can be checked is checked before any work — an output
//! whose format or location is wrong is refused before a frame is scored, a
//! directory of non-images gets one clear error — and output to a reader
//! that went away (`info x.ser | head -1`) ends quietly, a run whose
//! messages nobody reads (`2>&1 | head -1`) still finishes its work.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use jupiter_tests::*;

/// Runs `args` and checks it is refused (exit 1, no panic) before any
/// stage ran: no stage name or timing on stderr, nothing written.
fn refused_before_work(ser: &Path, args: &[&str]) -> String {
    let t = Instant::now();
    let os: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    let err = refused_run(build(), ser, &os);
    let secs = t.elapsed().as_secs_f64();
    for stage in ["quality", "align", "stack", "stacked"] {
        assert!(!err.contains(stage), "{args:?} got to '{stage}':\n{err}");
    }
    assert_eq!(err.lines().count(), 1, "one line:\n{err}");
    // The capture alone takes several seconds to score; the refusal is immediate.
    assert!(secs < 3.0, "{args:?} took {secs:.2} s to be refused");
    err
}

#[test]
fn a_bad_output_is_refused_before_any_frame_is_read() {
    let (dir, ser) = small_capture("early-output", 320, 240, 300);
    let report = dir.join("r.json");
    let report = report.to_str().unwrap();

    let out = dir.join("out.jpg");
    let err = refused_before_work(&ser, &["-o", out.to_str().unwrap(), "--report", report]);
    assert!(
        err.contains("out.jpg: unknown output format '.jpg'"),
        "{err}"
    );
    assert!(!out.exists() && !dir.join("r.json").exists());

    // A parent that is a file, not a directory.
    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    let out = file.join("out.tif");
    let err = refused_before_work(&ser, &["-o", out.to_str().unwrap()]);
    assert!(err.contains("plain is not a directory"), "{err}");

    // A directory nobody may create files in (root included).
    #[cfg(target_os = "linux")]
    {
        let err = refused_before_work(&ser, &["-o", "/proc/out.tif"]);
        assert!(
            err.contains("/proc/out.tif: cannot write in /proc"),
            "{err}"
        );
    }

    // A capture that is not there, before the plugins are loaded.
    let err = refused_before_work(&dir.join("missing.ser"), &["-o", "x.tif"]);
    assert!(err.contains("missing.ser: cannot open"), "{err}");
}

#[test]
fn a_directory_of_non_images_gets_one_clear_error() {
    let dir = scratch("early-not-images");
    let notes = dir.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("readme.txt"), "not a frame").unwrap();
    let out = dir.join("out.tif");
    let err = refused_run(build(), &notes, &["-o".as_ref(), out.as_os_str()]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("notes: the directory holds no FITS, TIFF or PNG images"),
        "{err}"
    );
    assert!(!err.contains("os error 19"), "{err}");
    let info = run_host(["info".as_ref(), notes.as_os_str()]);
    let ierr = String::from_utf8_lossy(&info.stderr);
    assert_eq!(info.status.code(), Some(1));
    assert_eq!(ierr.lines().count(), 1, "{ierr}");
    assert!(ierr.contains("holds no FITS, TIFF or PNG images"), "{ierr}");
}

/// Runs the host with its stdout on a pipe whose reader is already closed
/// (what `| head -1` leaves once `head` has its line); returns the exit
/// code and stderr.
fn with_closed_stdout(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(host())
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let (_, ser) = small_capture("early-pipe", 32, 24, 3);
    let plugins = build().as_os_str();
    let cases: [Vec<&std::ffi::OsStr>; 4] = [
        vec!["info".as_ref(), ser.as_os_str()],
        vec!["--plugins".as_ref(), plugins, "plugins".as_ref()],
        vec!["--help".as_ref()],
        vec!["run".as_ref(), "--help".as_ref()],
    ];
    for args in cases {
        let (code, err) = with_closed_stdout(&args);
        assert!(!err.contains("panicked"), "{args:?}:\n{err}");
        assert!(!err.contains("Broken pipe"), "{args:?}:\n{err}");
        assert_eq!(code, Some(0), "{args:?}:\n{err}");
    }
}

#[test]
fn a_run_whose_messages_nobody_reads_still_writes_its_output() {
    let (dir, ser) = small_capture("early-pipe-run", 48, 32, 6);
    let out = dir.join("out.tif");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(host())
        .args(capture_args(build(), &ser))
        .args(["-o".as_ref(), out.as_os_str()])
        .args(["--no-post", "--aligner", "align-phase"])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    // The summary line and any warnings go to the closed pipe: dropped.
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_tiff(&out).width, 48);
    // An error to a closed stderr still exits 1 (no panic's 101).
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(host())
        .args(["info".as_ref(), dir.join("missing.ser").as_os_str()])
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
}
