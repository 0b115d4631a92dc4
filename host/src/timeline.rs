//! A run's timeline for `JUPITER_GPU_TRACE` (any value): when set, the host
//! prints `trace +SECONDS what` on stderr at the points where a run's time
//! goes (device start-up, plugin loading, each stage's start and end, the
//! capture's upload), seconds counted from the process start. Unset: nothing
//! is printed and a mark costs one load.

use std::sync::OnceLock;
use std::time::Instant;

fn origin() -> &'static Option<Instant> {
    static ORIGIN: OnceLock<Option<Instant>> = OnceLock::new();
    ORIGIN.get_or_init(|| std::env::var_os("JUPITER_GPU_TRACE").map(|_| Instant::now()))
}

/// Starts the clock (call first thing in `main`).
pub fn start() {
    mark("start");
}

/// Whether `JUPITER_GPU_TRACE` is set (the timeline and the trace lines are
/// printed).
pub fn enabled() -> bool {
    origin().is_some()
}

/// Prints `what` with the time since [`start`].
pub fn mark(what: &str) {
    if let Some(t0) = origin() {
        crate::errln!("trace +{:.4} s {what}", t0.elapsed().as_secs_f64());
    }
}
