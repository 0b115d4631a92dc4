//! Bad and quirky SER files through the built host: every broken file is
//! refused with exit code 1 and a message naming the file and what is wrong
//! (never a panic, never an output); every real-world quirk that can be worked
//! around is, with a warning that also lands in the report's `warnings`.

use std::path::{Path, PathBuf};
use std::process::Output;

use jupiter_host::io::ser::HEADER_LEN;
use jupiter_tests::synth::{generate, SynthOptions};
use jupiter_tests::*;

const W: usize = 64;
const H: usize = 48;
const FRAMES: usize = 6;
const FRAME_BYTES: usize = W * H * 2;

/// A good 16-bit capture (12-bit values, as the synthetic camera writes) with a timestamp trailer.
fn good_capture(dir: &Path) -> Vec<u8> {
    let p = dir.join("good.ser");
    generate(
        &p,
        &SynthOptions {
            width: W as u32,
            height: H as u32,
            frames: FRAMES,
            depth: 16,
            ..Default::default()
        },
    )
    .unwrap();
    let b = std::fs::read(&p).unwrap();
    assert_eq!(b.len(), HEADER_LEN + FRAMES * FRAME_BYTES + 8 * FRAMES);
    b
}

fn set_i32(b: &mut [u8], at: usize, v: i32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn set_i64(b: &mut [u8], at: usize, v: i64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Where the timestamp trailer starts.
const TRAILER: usize = HEADER_LEN + FRAMES * FRAME_BYTES;

fn run(dir: &Path, name: &str, bytes: &[u8], more: &[&str]) -> (Output, PathBuf, PathBuf) {
    let ser = dir.join(format!("{name}.ser"));
    std::fs::write(&ser, bytes).unwrap();
    let (out, report) = (
        dir.join(format!("{name}.tif")),
        dir.join(format!("{name}.json")),
    );
    let mut args = capture_args(build(), &ser);
    args.append(&mut vec![
        "-o".into(),
        out.clone().into(),
        "--no-post".into(),
        "--report".into(),
        report.clone().into(),
    ]);
    args.extend(more.iter().map(|s| s.into()));
    (run_host(args), out, report)
}

#[test]
fn broken_files_are_refused_with_the_file_name_and_the_reason() {
    let dir = scratch("bad-input-broken");
    let good = good_capture(&dir);
    let mut cases: Vec<(&str, Vec<u8>, Vec<&str>)> = Vec::new();
    cases.push(("empty", Vec::new(), vec!["truncated", "0 bytes"]));
    cases.push((
        "mid-header",
        good[..100].to_vec(),
        vec!["truncated", "100 bytes", "178-byte header"],
    ));
    let mut b = good.clone();
    b[..6].copy_from_slice(b"NOTSER");
    cases.push(("magic", b, vec!["not a SER file", "wrong magic"]));
    let mut b = good.clone();
    b.truncate(HEADER_LEN + 3 * FRAME_BYTES + 100);
    cases.push((
        "mid-frame",
        b,
        vec![
            "truncated",
            "claims 6 frames",
            "only 3 complete frames",
            "--allow-truncated",
        ],
    ));
    // Header fields set to bad values: the case, how many bytes of the good
    // file it keeps, the (offset, value) edits, and what the error says.
    type Edit<'a> = (&'a str, usize, &'a [(usize, i32)], Vec<&'a str>);
    let all = good.len();
    let edits: [Edit; 8] = [
        (
            "absurd-size",
            1024,
            &[(26, 100_000), (30, 100_000), (38, 1_000_000_000)],
            vec!["frame size 100000×100000", "1..=32768"],
        ),
        (
            "absurd-count",
            1024,
            &[(26, 30_000), (30, 30_000), (38, 1_000_000_000)],
            vec!["truncated", "claims 1000000000 frames of 30000×30000"],
        ),
        ("zero-width", all, &[(26, 0)], vec!["frame size 0×48"]),
        (
            "negative-count",
            all,
            &[(38, -5)],
            vec!["negative frame count -5"],
        ),
        (
            "depth-17",
            all,
            &[(34, 17)],
            vec!["unsupported", "pixel depth 17"],
        ),
        (
            "depth-0",
            all,
            &[(34, 0)],
            vec!["unsupported", "pixel depth 0"],
        ),
        ("cmy", all, &[(18, 16)], vec!["unsupported", "CMY"]),
        (
            "colour-5",
            all,
            &[(18, 5)],
            vec!["unsupported", "unknown colour ID 5"],
        ),
    ];
    for (name, len, fields, want) in edits {
        let mut b = good[..len].to_vec();
        for &(offset, value) in fields {
            set_i32(&mut b, offset, value);
        }
        cases.push((name, b, want));
    }

    for (name, bytes, want) in &cases {
        for allow in [false, true] {
            let more: &[&str] = if allow { &["--allow-truncated"] } else { &[] };
            let (o, out, _) = run(&dir, name, bytes, more);
            let err = String::from_utf8_lossy(&o.stderr);
            if allow && *name == "mid-frame" {
                // The complete frames are used on request, with a warning.
                assert!(o.status.success(), "{name} --allow-truncated:\n{err}");
                assert!(err.contains("only 3 are complete; using those"), "{err}");
                assert!(out.exists());
                continue;
            }
            assert_eq!(
                o.status.code(),
                Some(1),
                "{name} (allow_truncated {allow}):\n{err}"
            );
            assert!(
                err.contains(&format!("{name}.ser")),
                "{name}: the error does not name the file:\n{err}"
            );
            for w in want {
                assert!(err.contains(w), "{name}: the error lacks {w:?}:\n{err}");
            }
            assert!(!err.contains("panicked"), "{err}");
            assert!(!out.exists());
        }
    }
    // `info` says the same as `run`.
    let o = run_host(["info".as_ref(), dir.join("cmy.ser").as_os_str()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("CMY"));
}

/// Runs a quirky file: it must succeed; returns stderr and the report's warnings.
fn quirk(dir: &Path, name: &str, bytes: &[u8], more: &[&str]) -> (String, Vec<String>) {
    let (o, out, report) = run(dir, name, bytes, more);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{name}:\n{err}");
    assert!(out.exists());
    let warnings = read_report(&report)["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    (err, warnings)
}

fn has(warnings: &[String], text: &str) -> bool {
    warnings.iter().any(|w| w.contains(text))
}

#[test]
fn real_world_quirks_are_worked_around_with_warnings_in_the_report() {
    let dir = scratch("bad-input-quirks");
    let good = good_capture(&dir);
    let t = TRAILER;

    // A clean file has no warnings.
    let (_, w) = quirk(&dir, "clean", &good, &[]);
    assert!(w.is_empty(), "{w:?}");

    // Frame count 0 (a capture that did not finish): recomputed from the size.
    let mut b = good[..t].to_vec();
    set_i32(&mut b, 38, 0);
    let (err, w) = quirk(&dir, "zero-count", &b, &[]);
    assert!(
        has(&w, "frame count is 0") && has(&w, "using the 6 complete frames"),
        "{w:?}"
    );
    assert!(
        err.contains("warning:") && err.contains("zero-count.ser"),
        "{err}"
    );

    // Depth 10 declared, 12-bit values stored: read as 16-bit, with a warning.
    let mut b = good.clone();
    set_i32(&mut b, 34, 10);
    let (_, w) = quirk(&dir, "depth", &b, &[]);
    assert!(
        has(&w, "header says 10-bit samples but values reach"),
        "{w:?}"
    );

    // Big-endian samples with the flag saying little (or not): detected from the data.
    for flag in [0, 1] {
        let mut b = good.clone();
        set_i32(&mut b, 22, flag);
        b[HEADER_LEN..t]
            .chunks_exact_mut(2)
            .for_each(|s| s.swap(0, 1));
        let (_, w) = quirk(&dir, &format!("big-endian-{flag}"), &b, &[]);
        assert!(has(&w, "big-endian (decided from the data"), "{w:?}");
        // --byte-order overrides the detection.
        let (_, w) = quirk(
            &dir,
            &format!("forced-{flag}"),
            &b,
            &["--byte-order", "big"],
        );
        assert!(!has(&w, "big-endian"), "{w:?}");
    }

    // A trailer of the wrong length: timestamps ignored, frames used.
    let mut b = good[..t].to_vec();
    b.extend_from_slice(&[1, 2, 3, 4, 5]);
    let (_, w) = quirk(&dir, "trailer", &b, &[]);
    assert!(has(&w, "trailer of 5 bytes"), "{w:?}");

    // Timestamps out of order.
    let mut b = good.clone();
    let (a, c) = (
        i64::from_le_bytes(b[t + 8..t + 16].try_into().unwrap()),
        i64::from_le_bytes(b[t + 16..t + 24].try_into().unwrap()),
    );
    set_i64(&mut b, t + 8, c);
    set_i64(&mut b, t + 16, a);
    let (err, w) = quirk(&dir, "ts-order", &b, &[]);
    assert!(has(&w, "not in increasing order"), "{w:?}");
    assert!(err.contains("not in increasing order"), "{err}");

    // Timestamps in local time (UTC+2) instead of UTC.
    let mut b = good.clone();
    let utc = i64::from_le_bytes(b[170..178].try_into().unwrap());
    let local = utc + 2 * 3600 * 10_000_000;
    set_i64(&mut b, 162, local);
    for i in 0..FRAMES {
        set_i64(&mut b, t + 8 * i, local + i as i64 * 100_000);
    }
    let (_, w) = quirk(&dir, "ts-local", &b, &[]);
    assert!(
        has(&w, "look like local time") && has(&w, "+2.00 h"),
        "{w:?}"
    );
}
