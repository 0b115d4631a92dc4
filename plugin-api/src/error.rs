//! [`StageError`]: the error value that crosses the boundary.

use abi_stable::std_types::RString;
use abi_stable::StableAbi;
use std::fmt;

/// What kind of failure a stage reports. The host acts on the kind: a
/// `GpuFailed` stage is re-run on the CPU, `Cancelled` ends the run quietly.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Parameters did not parse or are out of range.
    InvalidParams,
    /// The stage cannot handle this input (e.g. colour layout) or this call.
    Unsupported,
    /// The GPU path failed; the host retries on the CPU.
    GpuFailed,
    /// An allocation would exceed what the stage allows itself.
    OutOfMemory,
    /// The run was cancelled through the backend.
    Cancelled,
    /// The plugin panicked; the panic was caught at the boundary.
    Panicked,
    /// Anything else (I/O from the frame source, broken invariants).
    Internal,
}

impl ErrorKind {
    /// A short lower-case name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidParams => "invalid parameters",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::GpuFailed => "GPU failure",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Panicked => "panicked",
            ErrorKind::Internal => "internal error",
        }
    }
}

/// An error returned by a stage (or by the host's frame source to a stage).
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct StageError {
    pub kind: ErrorKind,
    pub message: RString,
}

impl StageError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StageError {
            kind,
            message: RString::from(message.into()),
        }
    }
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidParams, message)
    }
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
    pub fn cancelled() -> Self {
        Self::new(ErrorKind::Cancelled, "cancelled")
    }
    pub fn gpu(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::GpuFailed, message)
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for StageError {}
