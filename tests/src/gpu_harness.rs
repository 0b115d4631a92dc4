//! The harness of the GPU test targets (`harness = false`, libtest-mimic):
//! a GPU test that cannot run shows as *ignored* with the reason, never as
//! passed. It cannot run when the host was built without the `gpu` feature
//! or no adapter exists; in CI (`CI` or `JUPITER_REQUIRE_GPU` set) a missing
//! adapter is not a reason to skip: the trials run and fail.

use libtest_mimic::{Arguments, Failed, Trial};

/// A test function and its name.
pub type GpuTest = (&'static str, fn());

/// Why the GPU tests cannot run here, or `None` when they can (or must).
pub fn gpu_unavailable() -> Option<String> {
    if !cfg!(feature = "gpu") {
        return Some("the host is built without the `gpu` feature".into());
    }
    let required =
        std::env::var_os("CI").is_some() || std::env::var_os("JUPITER_REQUIRE_GPU").is_some();
    let sel = jupiter_host::backend::select_device(jupiter_host::backend::BackendChoice::Gpu);
    match (sel.gpu, required) {
        (Some(_), _) | (None, true) => None,
        (None, false) => Some(sel.warning.unwrap_or_else(|| "no GPU adapter".into())),
    }
}

/// Runs `gpu` (ignored when [`gpu_unavailable`]) and `always` (tests that
/// hold with or without a GPU) as one test binary, and exits with its status.
pub fn run(gpu: &[GpuTest], always: &[GpuTest]) -> ! {
    let args = Arguments::from_args();
    let skip = gpu_unavailable();
    if let Some(why) = &skip {
        eprintln!("GPU tests ignored: {why}");
    }
    let trial = |&(name, f): &GpuTest| {
        Trial::test(name, move || {
            std::panic::catch_unwind(f).map_err(|e| Failed::from(panic_text(&e)))
        })
    };
    let trials = gpu
        .iter()
        .map(|t| trial(t).with_ignored_flag(skip.is_some()))
        .chain(always.iter().map(trial))
        .collect();
    libtest_mimic::run(&args, trials).exit()
}

fn panic_text(e: &Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panicked".into())
}

/// `fn main` of a GPU test target: `gpu_main!(gpu: [a, b], always: [c])`
/// (both lists optional). With the `gpu` feature off, the GPU tests are
/// listed as ignored without being compiled.
#[macro_export]
macro_rules! gpu_main {
    (gpu: [$($g:ident),* $(,)?] $(, always: [$($a:ident),* $(,)?])? $(,)?) => {
        fn main() {
            #[cfg(feature = "gpu")]
            let gpu: &[$crate::gpu_harness::GpuTest] = &[$((stringify!($g), $g)),*];
            #[cfg(not(feature = "gpu"))]
            let gpu: &[$crate::gpu_harness::GpuTest] = &[$((stringify!($g), || {})),*];
            let always: &[$crate::gpu_harness::GpuTest] = &[$($((stringify!($a), $a)),*)?];
            $crate::gpu_harness::run(gpu, always)
        }
    };
}
