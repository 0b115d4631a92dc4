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
///
/// Conventions: buffers are storage buffers of 4-byte words; a dispatch binds
/// `bindings[i]` at `@group(0) @binding(i)` and, when `uniforms` is not empty,
/// a uniform buffer holding those bytes at `@binding(bindings.len())`. Every
/// declared binding must be used by the entry point (layouts are derived from
/// the shader). Work is queued and submitted at the next read or `synchronize`.
#[sabi_trait]
pub trait GpuService: Clone + Send + Sync {
    /// Adapter name and driver, for logs and reports.
    fn adapter(&self) -> RString;
    /// A zero-filled storage buffer of `size` bytes.
    fn create_buffer(&self, size: u64) -> RResult<GpuBuffer, StageError>;
    /// Frees a buffer; unknown ids are ignored.
    fn destroy_buffer(&self, buffer: GpuBuffer);
    /// Copies host bytes into a buffer at `offset`.
    fn write_buffer(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        data: RSlice<'_, u8>,
    ) -> RResult<(), StageError>;
    /// Copies a buffer's bytes at `offset` into `out` (waits for queued work).
    fn read_buffer(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        out: RSliceMut<'_, u8>,
    ) -> RResult<(), StageError>;
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

    /// Like [`write_buffer`](Self::write_buffer) for large data: the host
    /// copies `data` into a mapped staging buffer with up to `threads`
    /// threads and queues one device copy (the default is `write_buffer`).
    fn write_buffer_parallel(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        data: RSlice<'_, u8>,
        threads: u32,
    ) -> RResult<(), StageError> {
        let _ = threads;
        self.write_buffer(buffer, offset, data)
    }
}

/// How the backend hands out the GPU service.
pub type GpuServiceBox = GpuService_TO<'static, RArc<()>>;

/// Safe helpers over a [`GpuServiceBox`], used by plugins' GPU paths.
pub mod helpers {
    use super::*;
    use crate::frame::Image;
    use abi_stable::std_types::RSlice;

    /// Uploads `data` into a new buffer.
    pub fn upload(gpu: &GpuServiceBox, data: &[f32]) -> Result<GpuBuffer, StageError> {
        let buf = gpu
            .create_buffer((data.len().max(1) * 4) as u64)
            .into_result()?;
        if !data.is_empty() {
            gpu.write_buffer(buf, 0, RSlice::from_slice(as_bytes(data)))
                .into_result()?;
        }
        Ok(buf)
    }

    /// Overwrites the start of `buf` with `data`.
    pub fn write(
        gpu: &GpuServiceBox,
        buf: GpuBuffer,
        offset_words: usize,
        data: &[f32],
    ) -> Result<(), StageError> {
        gpu.write_buffer(
            buf,
            (offset_words * 4) as u64,
            RSlice::from_slice(as_bytes(data)),
        )
        .into_result()
    }

    /// Downloads `len` floats from `buf`.
    pub fn download(
        gpu: &GpuServiceBox,
        buf: GpuBuffer,
        len: usize,
    ) -> Result<Vec<f32>, StageError> {
        download_at(gpu, buf, 0, len)
    }

    /// Downloads `len` floats from word `offset_words` of `buf`.
    pub fn download_at(
        gpu: &GpuServiceBox,
        buf: GpuBuffer,
        offset_words: usize,
        len: usize,
    ) -> Result<Vec<f32>, StageError> {
        let mut out = vec![0.0f32; len];
        // SAFETY: f32 has no invalid bit patterns and u8 has alignment 1.
        let bytes = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr() as *mut u8, len * 4) };
        gpu.read_buffer(buf, (offset_words * 4) as u64, bytes.into())
            .into_result()?;
        Ok(out)
    }

    /// The image with its pixels in host memory: a GPU-resident image is
    /// downloaded and its device buffer freed (the image owned it); a host
    /// image is returned as it is. The one download of a stage's output,
    /// shared by the host and [`StageCtx::to_host`](crate::StageCtx::to_host).
    pub fn download_image(gpu: &GpuServiceBox, image: Image) -> Result<Image, StageError> {
        let Some(buf) = image.device.into_option() else {
            return Ok(image);
        };
        let data = download(gpu, buf, image.len())?;
        gpu.destroy_buffer(buf);
        Ok(Image::from_vec(
            image.width,
            image.height,
            image.channels,
            data,
        ))
    }

    /// Bytes of a float slice.
    pub fn as_bytes(data: &[f32]) -> &[u8] {
        // SAFETY: any f32 is 4 valid bytes.
        unsafe {
            std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data))
        }
    }

    /// A uniform block built word by word (u32 / i32 / f32), padded to 16 bytes.
    #[derive(Default, Clone)]
    pub struct Uniforms(Vec<u8>);

    impl Uniforms {
        pub fn new() -> Uniforms {
            Uniforms(Vec::new())
        }
        /// A uniform block given as its bytes (e.g. a `#[repr(C)]` struct's).
        pub fn from_bytes(bytes: &[u8]) -> Uniforms {
            Uniforms(bytes.to_vec())
        }
        pub fn u32(mut self, v: u32) -> Uniforms {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub fn i32(mut self, v: i32) -> Uniforms {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        pub fn f32(mut self, v: f32) -> Uniforms {
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        /// The bytes, padded to a multiple of 16.
        pub fn bytes(&self) -> Vec<u8> {
            let mut b = self.0.clone();
            while !b.len().is_multiple_of(16) {
                b.push(0);
            }
            b
        }
    }

    /// Workgroups needed to cover `n` items with groups of `size`.
    pub fn groups(n: usize, size: usize) -> u32 {
        n.div_ceil(size).max(1) as u32
    }

    /// Compiles (cached by the host) and dispatches an entry point of a WGSL source.
    pub fn run(
        gpu: &GpuServiceBox,
        wgsl: &str,
        entry: &str,
        bindings: &[GpuBuffer],
        uniforms: &Uniforms,
        groups: [u32; 3],
    ) -> Result<(), StageError> {
        let p = gpu.pipeline(wgsl.into(), entry.into()).into_result()?;
        let u = uniforms.bytes();
        gpu.dispatch(
            p,
            RSlice::from_slice(bindings),
            RSlice::from_slice(&u),
            groups[0],
            groups[1],
            groups[2],
        )
        .into_result()
    }

    /// Frees buffers when dropped (so error paths do not leak device memory).
    pub struct Buffers<'a> {
        gpu: &'a GpuServiceBox,
        list: Vec<GpuBuffer>,
    }

    impl<'a> Buffers<'a> {
        pub fn new(gpu: &'a GpuServiceBox) -> Buffers<'a> {
            Buffers {
                gpu,
                list: Vec::new(),
            }
        }
        /// A zeroed buffer of `words` 4-byte words, freed with this set.
        pub fn zeroed(&mut self, words: usize) -> Result<GpuBuffer, StageError> {
            let b = self
                .gpu
                .create_buffer((words.max(1) * 4) as u64)
                .into_result()?;
            self.list.push(b);
            Ok(b)
        }
        /// A buffer holding `data`, freed with this set.
        pub fn upload(&mut self, data: &[f32]) -> Result<GpuBuffer, StageError> {
            let b = upload(self.gpu, data)?;
            self.list.push(b);
            Ok(b)
        }
        /// Keeps `buf` alive past this set (e.g. a result left on the device).
        pub fn keep(&mut self, buf: GpuBuffer) {
            self.list.retain(|b| *b != buf);
        }
    }

    impl Drop for Buffers<'_> {
        fn drop(&mut self) {
            for b in self.list.drain(..) {
                self.gpu.destroy_buffer(b);
            }
        }
    }
}
