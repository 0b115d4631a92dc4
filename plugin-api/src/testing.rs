//! In-process stand-ins for the host, for plugin unit tests and benchmarks:
//! a [`ThreadBackend`] (scoped std threads, no rayon) and [`MemFrames`], an
//! in-memory frame source. They implement the same traits the host does.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSliceMut, RStr};

use crate::backend::{Backend, BackendRef, Backend_TO, LogLevel, RawTask};
use crate::error::StageError;
use crate::frame::{DeviceFrames, FrameInfo, FrameSource, FrameSourceRef, FrameSource_TO, Image};
use crate::gpu::GpuServiceBox;
use crate::stage::StageCtx;

/// A backend running `parallel_for` on scoped threads.
pub struct ThreadBackend {
    pub threads: usize,
    pub cancel: AtomicBool,
}

impl ThreadBackend {
    pub fn new(threads: usize) -> ThreadBackend {
        ThreadBackend {
            threads: threads.max(1),
            cancel: AtomicBool::new(false),
        }
    }
    /// Runs `f` with a [`StageCtx`] over this backend.
    pub fn with_ctx<R>(&self, stage: &str, f: impl FnOnce(&StageCtx) -> R) -> R {
        let ctx = StageCtx {
            backend: Backend_TO::from_ptr(self, TD_Opaque),
            stage: stage.to_string(),
        };
        f(&ctx)
    }
    /// The backend as the trait object stages receive.
    pub fn as_ref(&self) -> BackendRef<'_> {
        Backend_TO::from_ptr(self, TD_Opaque)
    }
}

impl Default for ThreadBackend {
    fn default() -> Self {
        ThreadBackend::new(
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
        )
    }
}

impl Backend for ThreadBackend {
    fn parallel_for(&self, len: usize, grain: usize, task: RawTask) {
        let grain = grain.max(1);
        let chunks = len.div_ceil(grain);
        let next = AtomicUsize::new(0);
        let work = || loop {
            let c = next.fetch_add(1, Ordering::Relaxed);
            if c >= chunks || self.cancel.load(Ordering::Relaxed) {
                break;
            }
            task.run(c * grain, ((c + 1) * grain).min(len));
        };
        let n = self.threads.min(chunks);
        if n <= 1 {
            work();
            return;
        }
        std::thread::scope(|s| {
            for _ in 1..n {
                s.spawn(work);
            }
            work();
        });
    }
    fn threads(&self) -> usize {
        self.threads
    }
    fn progress(&self, _done: u64, _total: u64) {}
    fn log(&self, level: LogLevel, message: RStr<'_>) {
        if level <= LogLevel::Warn {
            eprintln!("[{level:?}] {message}");
        }
    }
    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// Frames held in memory (one `Vec<f32>` per frame, interleaved channels).
pub struct MemFrames {
    pub info: FrameInfo,
    pub frames: Vec<Vec<f32>>,
    /// The frames on a GPU, once [`MemFrames::upload`] put them there.
    pub device: Option<DeviceFrames>,
    /// The colour mosaic the RGB frames stand for ([`MemFrames::with_mosaic`]).
    pub mosaic: Option<u32>,
}

impl MemFrames {
    /// Wraps frames of `width × height × channels`.
    pub fn new(width: u32, height: u32, channels: u32, frames: Vec<Vec<f32>>) -> MemFrames {
        let info = FrameInfo {
            width,
            height,
            channels,
            count: frames.len() as u32,
        };
        for f in &frames {
            assert_eq!(f.len(), info.frame_len());
        }
        MemFrames {
            info,
            frames,
            device: None,
            mosaic: None,
        }
    }
    /// These RGB frames as demosaiced from a mosaic of `code`
    /// ([`FrameSource::mosaic`]): the mosaic's samples are each pixel's
    /// own colour.
    pub fn with_mosaic(mut self, code: u32) -> MemFrames {
        assert_eq!(self.info.channels, 3, "a mosaic stands for RGB frames");
        self.mosaic = Some(code);
        self
    }
    /// Puts the frames on `gpu`, `per_buffer` to a buffer (as the host's
    /// capture store does), so stages see them through
    /// [`FrameSource::device_frames`]. The buffers stay until the process ends.
    pub fn upload(&mut self, gpu: &GpuServiceBox, per_buffer: usize) -> Result<(), StageError> {
        let per = per_buffer.max(1);
        let len = self.info.frame_len();
        let mut buffers = Vec::new();
        for chunk in self.frames.chunks(per) {
            let flat: Vec<f32> = chunk.concat();
            let b = gpu
                .create_buffer((per * len).max(1) as u64 * 4)
                .into_result()?;
            crate::gpu::helpers::write(gpu, b, 0, &flat)?;
            buffers.push(b);
        }
        self.device = Some(DeviceFrames {
            buffers: buffers.into(),
            per_buffer: per as u32,
            slots: (0..self.frames.len() as u32).collect(),
        });
        Ok(())
    }
    /// From images of equal size.
    pub fn from_images(images: &[Image]) -> MemFrames {
        let i = &images[0];
        MemFrames::new(
            i.width,
            i.height,
            i.channels,
            images.iter().map(|im| im.data.to_vec()).collect(),
        )
    }
    /// The frame source trait object stages receive.
    pub fn as_ref(&self) -> FrameSourceRef<'_> {
        FrameSource_TO::from_ptr(self, TD_Opaque)
    }
}

impl FrameSource for MemFrames {
    fn info(&self) -> FrameInfo {
        self.info
    }
    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        if let Err(e) = self.info.check_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        let rl = self.info.row_len();
        let frame = &self.frames[index];
        out.copy_from_slice(&frame[y0 * rl..(y0 + rows) * rl]);
        RResult::ROk(())
    }
    fn device_frames(&self) -> RResult<ROption<DeviceFrames>, StageError> {
        RResult::ROk(self.device.clone().into())
    }
    fn mosaic(&self) -> ROption<u32> {
        self.mosaic.into()
    }
    fn read_mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        let Some(code) = self.mosaic else {
            return RResult::RErr(StageError::internal("no mosaic"));
        };
        if let Err(e) = self.info.check_luminance_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        let w = self.info.width as usize;
        let frame = &self.frames[index];
        for (k, o) in out.iter_mut().enumerate() {
            let (x, y) = (k % w, y0 + k / w);
            *o = frame[(y * w + x) * 3 + crate::frame::mosaic_color(code, x, y)];
        }
        RResult::ROk(())
    }
}

/// A counting global allocator for memory-bound tests: declare
/// `#[global_allocator] static ALLOC: CountingAlloc = CountingAlloc::new();`
/// in the test binary, then read [`CountingAlloc::peak_since`].
pub struct CountingAlloc {
    in_use: AtomicUsize,
    peak: AtomicUsize,
}

impl CountingAlloc {
    pub const fn new() -> CountingAlloc {
        CountingAlloc {
            in_use: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        }
    }
    fn grew(&self, bytes: usize) {
        let now = self.in_use.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.peak.fetch_max(now, Ordering::SeqCst);
    }
    /// Starts a measurement: returns the bytes in use now.
    pub fn start(&self) -> usize {
        let base = self.in_use.load(Ordering::SeqCst);
        self.peak.store(base, Ordering::SeqCst);
        base
    }
    /// Peak bytes in use above `base` since [`start`](Self::start) returned it.
    pub fn peak_since(&self, base: usize) -> usize {
        self.peak.load(Ordering::SeqCst).saturating_sub(base)
    }
}

impl Default for CountingAlloc {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters only observe sizes.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            self.grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        self.in_use.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            self.in_use.fetch_sub(layout.size(), Ordering::SeqCst);
            self.grew(new_size);
        }
        p
    }
}

/// Mono frames computed from their index on demand (nothing is stored), for
/// memory-bound tests and benchmarks.
pub struct GeneratedFrames {
    pub info: FrameInfo,
}

impl FrameSource for GeneratedFrames {
    fn info(&self) -> FrameInfo {
        self.info
    }
    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        let w = self.info.width as usize;
        if self.info.channels != 1 {
            return RResult::RErr(StageError::internal("generated frames are mono"));
        }
        if let Err(e) = self.info.check_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        for r in 0..rows {
            let y = y0 + r;
            for x in 0..w {
                let hash = (index * 7919 + y * 104_729 + x * 1_299_709) % 1009;
                out[r * w + x] = 0.5
                    + 0.2 * ((x as f32) * 0.05).sin() * ((y as f32) * 0.03).cos()
                    + 0.1 * hash as f32 / 1009.0;
            }
        }
        RResult::ROk(())
    }
}

/// Checks a stage's manifest: its name, kind, whether it declares a GPU
/// path, and its parameter names in order.
pub fn check_manifest(
    stage: &dyn crate::Stage,
    name: &str,
    kind: crate::StageKind,
    gpu: bool,
    params: &[&str],
) {
    let m = stage.manifest();
    assert_eq!(m.name.as_str(), name);
    assert_eq!(m.kind, kind);
    assert_eq!(m.gpu, gpu, "{name}: GPU path declared");
    let names: Vec<&str> = m.params.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, params, "{name}: parameters");
}
