//! The compute backend the host hands to every stage.
//!
//! [`HostBackend`] (in `host.rs`) owns the one rayon pool (plugins reach it through
//! `Backend::parallel_for`), the progress bar of the running stage, the log,
//! and the cancellation flag set by Ctrl-C, and the GPU service slot, which
//! stays empty unless the host is built with the `gpu` feature (`gpu.rs`)
//! and a usable adapter is found.

mod host;
pub use host::HostBackend;
#[cfg(feature = "gpu")]
pub mod gpu;
#[cfg(feature = "gpu")]
mod upload;

use jupiter_plugin_api::GpuServiceBox;

/// Where stages may run, from `--cpu/--gpu` or the pipeline's `backend` key.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// A real GPU when one is found, else the CPU (software adapters do not count).
    Auto,
    /// CPU only.
    Cpu,
    /// Ask for the GPU; warn once and use the CPU when none is usable.
    Gpu,
}

/// The outcome of device selection.
pub struct DeviceSelection {
    pub gpu: Option<GpuServiceBox>,
    /// What runs the stages, in words.
    pub description: String,
    /// The one warning to print when the GPU was asked for and is not usable.
    pub warning: Option<String>,
}

/// Picks the device: `Cpu` never opens one; `Auto` uses a hardware GPU when
/// there is one (a software adapter such as lavapipe counts as none); `Gpu`
/// takes any adapter, software included, and warns once when there is none.
pub fn select_device(choice: BackendChoice) -> DeviceSelection {
    let cpu = |why: &str| format!("CPU ({why})");
    if choice == BackendChoice::Cpu {
        return DeviceSelection {
            gpu: None,
            description: cpu("GPU disabled"),
            warning: None,
        };
    }
    #[cfg(feature = "gpu")]
    {
        use abi_stable::sabi_trait::TD_Opaque;
        use abi_stable::std_types::RArc;
        match gpu::WgpuService::open(choice == BackendChoice::Gpu) {
            Ok(svc) => {
                let description = format!("GPU: {}", svc.describe());
                let boxed = jupiter_plugin_api::GpuService_TO::from_ptr(RArc::new(svc), TD_Opaque);
                DeviceSelection {
                    gpu: Some(boxed),
                    description,
                    warning: None,
                }
            }
            Err(gpu::GpuUnavailable(why)) => DeviceSelection {
                gpu: None,
                description: cpu(&why),
                warning: (choice == BackendChoice::Gpu)
                    .then(|| format!("GPU requested but not usable: {why}; running on the CPU")),
            },
        }
    }
    #[cfg(not(feature = "gpu"))]
    {
        let why = "this build has no GPU backend; rebuild with --features gpu";
        DeviceSelection {
            gpu: None,
            description: cpu(why),
            warning: (choice == BackendChoice::Gpu)
                .then(|| format!("GPU requested but {why}; running on the CPU")),
        }
    }
}

/// Describes the device a run would use, for `plugins` and `info`.
pub fn describe_device(choice: BackendChoice) -> String {
    select_device(choice).description
}
