//! Ctrl-C during a run: the built host gets SIGINT while its stages work on
//! a capture that takes several seconds; cancellation must reach the stages
//! through the backend, the run must end within about a second, exit with
//! code 130, and leave neither the output nor a temporary file.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jupiter_tests::synth::{generate, SynthOptions};
use jupiter_tests::*;

/// Sends SIGINT to `pid` (as Ctrl-C in a terminal would, to that process).
fn interrupt(pid: u32) {
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("cannot run kill");
    assert!(status.success(), "kill -INT {pid} failed");
}

/// `--plugins <build> --threads 2 run <ser>`: the runs here use two threads,
/// so that their timing does not depend on the machine's core count.
fn two_thread_run(ser: &Path) -> [&std::ffi::OsStr; 6] {
    let (plugins, ser) = (build().as_os_str(), ser.as_os_str());
    [
        "--plugins".as_ref(),
        plugins,
        "--threads".as_ref(),
        "2".as_ref(),
        "run".as_ref(),
        ser,
    ]
}

/// Starts a run on `ser` writing `out`, interrupts it after `delay`, and
/// returns (exit code, seconds from the signal to the exit, stderr).
fn run_and_interrupt(ser: &Path, out: &Path, delay: Duration) -> (Option<i32>, f64, String) {
    let mut child = Command::new(host())
        .args(two_thread_run(ser))
        .args([
            "-o".as_ref(),
            out.as_os_str(),
            "--select".as_ref(),
            "50%".as_ref(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start jupiter-host");
    std::thread::sleep(delay);
    assert!(
        child.try_wait().unwrap().is_none(),
        "the run ended before the signal: make the capture bigger"
    );
    let sent = Instant::now();
    interrupt(child.id());
    let deadline = sent + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("jupiter-host did not stop within 20 s of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = sent.elapsed().as_secs_f64();
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.code(), took, err)
}

/// A capture that takes several seconds through the default pipeline in the
/// debug build on 2 cores: 24 synthetic frames repeated to 4000 (generating
/// them all would take longer than the run).
fn big_capture(dir: &Path) -> std::path::PathBuf {
    use jupiter_host::io::ser::HEADER_LEN;
    use std::io::Write;
    let small = dir.join("small.ser");
    let o = SynthOptions {
        width: 320,
        height: 256,
        frames: 24,
        depth: 8,
        seed: 3,
        ..Default::default()
    };
    generate(&small, &o).unwrap();
    let bytes = std::fs::read(&small).unwrap();
    std::fs::remove_file(&small).unwrap();
    let frame = (o.width * o.height) as usize;
    let frames = 4000usize;
    let mut header = bytes[..HEADER_LEN].to_vec();
    header[38..42].copy_from_slice(&(frames as i32).to_le_bytes());
    let ser = dir.join("big.ser");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&ser).unwrap());
    f.write_all(&header).unwrap();
    for i in 0..frames {
        let k = i % o.frames;
        f.write_all(&bytes[HEADER_LEN + k * frame..HEADER_LEN + (k + 1) * frame])
            .unwrap();
    }
    f.flush().unwrap();
    ser
}

#[test]
#[cfg(unix)]
fn ctrl_c_stops_the_run_quickly_with_exit_code_130_and_no_output() {
    let dir = scratch("interrupt");
    let ser = big_capture(&dir);
    if std::env::var_os("JUPITER_CALIBRATE").is_some() {
        let t = Instant::now();
        let report = dir.join("r.json");
        run_ok(two_thread_run(&ser).into_iter().chain([
            "-o".as_ref(),
            dir.join("full.tif").as_os_str(),
            "--select".as_ref(),
            "50%".as_ref(),
            "--report".as_ref(),
            report.as_os_str(),
        ]));
        eprintln!(
            "full run {:.2} s: {}",
            t.elapsed().as_secs_f64(),
            read_report(&report)["timings"]
        );
        return;
    }
    // The whole run takes about 4.3 s here (quality ~1.2 s, then align ~2.2 s):
    // the signals land in the quality and in the align stage.
    for delay in [700, 2000] {
        let out = dir.join("out.tif");
        let (code, took, err) = run_and_interrupt(&ser, &out, Duration::from_millis(delay));
        eprintln!("SIGINT after {delay} ms: stopped {took:.3} s later; stderr:\n{err}");
        assert_eq!(code, Some(130), "exit code; stderr:\n{err}");
        assert!(took < 1.5, "took {took:.2} s to stop after SIGINT");
        assert!(err.contains("cancelled"), "{err}");
        assert!(!out.exists(), "{} was written", out.display());
        let left: Vec<String> = list_dir(&dir)
            .into_iter()
            .filter(|f| f != "big.ser")
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
    std::fs::remove_file(&ser).unwrap();
}
