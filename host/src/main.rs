//! `jupiter-host`: parse the arguments, run, print the error chain.

use std::process::ExitCode;

/// Keeps freed memory in the process instead of handing it back to the
/// kernel: stages allocate and free frame-sized buffers (1–30 MB) for every
/// frame, and with glibc's defaults each of those comes back as fresh,
/// page-faulted, zeroed memory (a third of a run's time in the profile).
/// Buffers over 32 MB (planes of frames over 8 megapixels) are still
/// mapped and unmapped each time: kept, the planes of a 24-megapixel
/// capture stayed resident as free memory beside the live ones (757 against
/// 621 MiB peak on 30 × 6000×4000, for 8 % more time).
/// The plugins share this allocator (they use the system allocator).
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

fn main() -> ExitCode {
    jupiter_host::timeline::start();
    tune_allocator();
    match jupiter_host::commands::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if jupiter_host::commands::is_cancelled(&e) => {
            jupiter_host::errln!("cancelled; no output written");
            ExitCode::from(130)
        }
        Err(e) => {
            jupiter_host::errln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
