//! A test-only hook (no effect unless the variable is set): with
//! `JUPITER_TEST_PAUSE_AT_FRAME=N`, the first read of frame `N` or later
//! creates `<capture>.paused` and every read of such a frame waits until
//! that file is removed (at most a minute). The end-to-end tests use it to
//! cut a capture short, or delete a frame file, at a known point of a run
//! (`tests/tests/shrinking_capture.rs`); nothing else should set it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The frame index to pause at, read once.
fn pause_at() -> Option<usize> {
    static AT: OnceLock<Option<usize>> = OnceLock::new();
    *AT.get_or_init(|| {
        std::env::var("JUPITER_TEST_PAUSE_AT_FRAME")
            .ok()
            .and_then(|v| v.parse().ok())
    })
}

/// The marker file beside `capture` (a directory's marker is its sibling).
fn marker(capture: &Path) -> PathBuf {
    let mut name = capture.as_os_str().to_os_string();
    name.push(".paused");
    PathBuf::from(name)
}

/// Waits while the hook holds reads of frame `index` of `capture`.
pub fn wait_before_reading(capture: &Path, index: usize) {
    static CREATED: AtomicBool = AtomicBool::new(false);
    if pause_at().is_none_or(|at| index < at) {
        return;
    }
    let m = marker(capture);
    if !CREATED.swap(true, Ordering::SeqCst) {
        let _ = std::fs::write(&m, b"");
    }
    let t = Instant::now();
    while m.exists() && t.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(5));
    }
}
