//! The [`Backend`] handle the host gives every stage: its thread pool, progress,
//! logging, cancellation and (when present) its GPU service.

use abi_stable::sabi_trait;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RArc, ROption, RStr};
use abi_stable::StableAbi;

use crate::gpu::GpuServiceBox;

/// Severity of a message a stage sends to the host's log.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

/// A C callback processing the index range `start..end`: `call(ctx, start, end)`.
///
/// Built by the safe helpers in [`crate::par`]; `ctx` points at a closure that
/// lives on the caller's stack for the duration of the `parallel_for` call.
#[repr(C)]
#[derive(StableAbi, Clone, Copy)]
pub struct RawTask {
    pub call: extern "C" fn(ctx: *const (), start: usize, end: usize),
    pub ctx: *const (),
}

// SAFETY: `ctx` points at a `Sync` closure (enforced by `par::for_each_range`),
// which is only shared, never moved, while `parallel_for` runs.
unsafe impl Send for RawTask {}
unsafe impl Sync for RawTask {}

impl RawTask {
    /// Runs the callback on `start..end`.
    pub fn run(&self, start: usize, end: usize) {
        (self.call)(self.ctx, start, end)
    }
}

/// The compute backend, owned by the host and shared by every stage.
///
/// Methods after `gpu` may be appended in later versions (with default bodies),
/// so plugins built against this version keep loading.
#[sabi_trait]
pub trait Backend: Send + Sync {
    /// Runs `task` over `0..len`, split into chunks of at most `grain`
    /// indices, on the host's one thread pool. Returns when every chunk ran.
    /// Chunks are skipped once the run is cancelled.
    fn parallel_for(&self, len: usize, grain: usize, task: RawTask);

    /// Number of worker threads in the host pool.
    fn threads(&self) -> usize;

    /// Reports progress of the current stage (`done` out of `total` units).
    fn progress(&self, done: u64, total: u64);

    /// Sends a message to the host's log.
    fn log(&self, level: LogLevel, message: RStr<'_>);

    /// True once the user asked to stop (Ctrl-C); stages should return
    /// `StageError::cancelled()` promptly.
    fn cancelled(&self) -> bool;

    /// The GPU service, when the host has a usable device and GPU use is allowed.
    #[sabi(last_prefix_field)]
    fn gpu(&self) -> ROption<GpuServiceBox> {
        ROption::RNone
    }
}

/// How stages receive the backend: a borrowed trait object.
pub type BackendRef<'a> = Backend_TO<'a, RRef<'a, ()>>;

/// An owned, shareable backend (used by hosts and tests).
pub type BackendArc = Backend_TO<'static, RArc<()>>;
