//! The compute backend the host hands to every stage.
//!
//! [`cpu::HostBackend`] owns the one rayon pool (plugins reach it through
//! `Backend::parallel_for`), the progress bar of the running stage, the log,
//! and the cancellation flag set by Ctrl-C. The GPU service slot stays empty
//! until the host is built with a GPU backend.

pub mod cpu;

/// Where stages may run, from `--cpu/--gpu` or the pipeline's `backend` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A real GPU when one is found, else the CPU (software adapters do not count).
    Auto,
    /// CPU only.
    Cpu,
    /// Ask for the GPU; warn once and use the CPU when none is usable.
    Gpu,
}

/// Describes the device a run would use, for `plugins`, `info` and reports.
pub fn describe_device(choice: BackendChoice) -> String {
    match choice {
        BackendChoice::Cpu => "CPU (GPU disabled)".into(),
        _ => "CPU (this build has no GPU backend)".into(),
    }
}
