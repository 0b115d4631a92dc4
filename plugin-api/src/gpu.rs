//! The GPU service handle types. No wgpu type crosses the boundary: plugins
//! refer to buffers and pipelines by opaque ids and the host owns every wgpu
//! object (device, queue, buffers, pipelines, cached by WGSL source hash).

use abi_stable::sabi_trait;
use abi_stable::std_types::{RArc, RResult, RSlice, RSliceMut, RStr, RString};
use abi_stable::StableAbi;

use crate::error::StageError;

/// An opaque device buffer owned by the host.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GpuBuffer {
    pub id: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Compute service over the host's single GPU device.
#[sabi_trait]
pub trait GpuService: Send + Sync {
    /// Adapter name and driver, for logs and reports.
    fn adapter(&self) -> RString;
    /// A zero-filled storage buffer of `size` bytes.
    fn create_buffer(&self, size: u64) -> RResult<GpuBuffer, StageError>;
    /// Frees a buffer; unknown ids are ignored.
    fn destroy_buffer(&self, buffer: GpuBuffer);
    /// Copies host bytes into a buffer at `offset`.
    fn write_buffer(&self, buffer: GpuBuffer, offset: u64, data: RSlice<'_, u8>) -> RResult<(), StageError>;
    /// Copies a buffer's bytes at `offset` into `out` (waits for queued work).
    fn read_buffer(&self, buffer: GpuBuffer, offset: u64, out: RSliceMut<'_, u8>) -> RResult<(), StageError>;
    /// Compiles (or fetches from the cache) a compute pipeline; returns its id.
    fn pipeline(&self, wgsl: RStr<'_>, entry_point: RStr<'_>) -> RResult<u64, StageError>;
    /// Dispatches `pipeline` with `bindings` as storage buffers 0..n of group 0
    /// and `uniforms` (≤ 256 bytes) as the uniform buffer at binding n.
    fn dispatch(
        &self,
        pipeline: u64,
        bindings: RSlice<'_, GpuBuffer>,
        uniforms: RSlice<'_, u8>,
        groups_x: u32,
        groups_y: u32,
        groups_z: u32,
    ) -> RResult<(), StageError>;
    /// Waits until every submitted dispatch finished.
    #[sabi(last_prefix_field)]
    fn synchronize(&self) -> RResult<(), StageError>;
}

/// How the backend hands out the GPU service.
pub type GpuServiceBox = GpuService_TO<'static, RArc<()>>;
