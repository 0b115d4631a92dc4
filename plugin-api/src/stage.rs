//! Stage kinds, manifests, requests, and the [`Stage`] trait plugins implement.

use abi_stable::std_types::{RStr, RVec};
use abi_stable::StableAbi;

use crate::backend::{BackendRef, LogLevel};
use crate::error::StageError;
use crate::frame::{Alignment, FrameInfo, FrameSourceRef, FrameWarp, Image};
use crate::gpu::GpuServiceBox;
pub use crate::manifest::Manifest;

/// Where a stage sits in the pipeline, which fixes its call signature.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageKind {
    /// frames → one sharpness score per frame (higher is sharper).
    Quality,
    /// selected frames (best first) → one warp per frame.
    Align,
    /// selected frames + alignment → one image.
    Stack,
    /// image → image (wavelets, deconvolution).
    Sharpen,
    /// image → image (blur, gamma, stretch, RGB alignment, …).
    Filter,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Quality => "quality",
            StageKind::Align => "align",
            StageKind::Stack => "stack",
            StageKind::Sharpen => "sharpen",
            StageKind::Filter => "filter",
        }
    }
}

/// Input of an aligner besides the frames.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct AlignRequest {
    /// Quality score of each frame of the source (the source is ordered best first).
    pub scores: RVec<f32>,
}

/// Input of a stacker besides the frames.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct StackRequest {
    pub alignment: Alignment,
    /// Quality score of each frame (for quality-weighted stacking).
    pub scores: RVec<f32>,
}

impl StackRequest {
    /// A request for these warps, in frame order, with frame 0 as the
    /// reference and no scores (frames weigh equally).
    pub fn new(warps: impl Into<RVec<FrameWarp>>) -> StackRequest {
        StackRequest {
            alignment: Alignment {
                warps: warps.into(),
                reference: 0,
            },
            scores: RVec::new(),
        }
    }
    /// The same request with one quality score per frame.
    pub fn with_scores(self, scores: impl Into<RVec<f32>>) -> StackRequest {
        StackRequest {
            scores: scores.into(),
            ..self
        }
    }

    /// The stacker's input contract, checked in one place by every stacker
    /// (CPU and GPU paths alike): at least one frame (`InvalidParams`, as a
    /// selection that keeps nothing is a settings problem) and exactly one
    /// warp per frame (`Internal`: the host broke the align → stack
    /// contract). Scores may be missing; stackers then weigh frames equally.
    pub fn check(&self, info: &FrameInfo) -> Result<(), StageError> {
        check_warps(info, self.alignment.warps.len())
    }
}

/// [`StackRequest::check`] for code that holds the warps alone (the shared
/// band stackers): `warps` is the number of warps handed over.
pub fn check_warps(info: &FrameInfo, warps: usize) -> Result<(), StageError> {
    let n = info.count as usize;
    if n == 0 {
        return Err(StageError::invalid_params("no frames to stack"));
    }
    if warps != n {
        return Err(StageError::internal(format!(
            "{warps} warps for {n} frames"
        )));
    }
    Ok(())
}

/// What a stage sees of the host while it runs: the backend plus its own name.
pub struct StageCtx<'a> {
    pub backend: BackendRef<'a>,
    pub stage: String,
}

impl<'a> StageCtx<'a> {
    pub fn log(&self, level: LogLevel, msg: &str) {
        self.backend.log(
            level,
            RStr::from(format!("{}: {}", self.stage, msg).as_str()),
        );
    }
    pub fn info(&self, msg: &str) {
        self.log(LogLevel::Info, msg)
    }
    pub fn warn(&self, msg: &str) {
        self.log(LogLevel::Warn, msg)
    }
    pub fn progress(&self, done: u64, total: u64) {
        self.backend.progress(done, total)
    }
    /// `Err(Cancelled)` once the user asked to stop.
    pub fn check_cancelled(&self) -> Result<(), StageError> {
        if self.backend.cancelled() {
            Err(StageError::cancelled())
        } else {
            Ok(())
        }
    }
    pub fn threads(&self) -> usize {
        self.backend.threads()
    }
    /// The GPU service, if the host offers one for this run.
    pub fn gpu(&self) -> Option<GpuServiceBox> {
        self.backend.gpu().into_option()
    }
    /// The image with its pixels in host memory (downloads a GPU-resident
    /// image once; host images are returned as they are).
    pub fn to_host(&self, image: Image) -> Result<Image, StageError> {
        if image.device.is_none() {
            return Ok(image);
        }
        let gpu = self.gpu().ok_or_else(|| {
            StageError::gpu("a GPU-resident image reached a stage without GPU access")
        })?;
        crate::gpu::helpers::download_image(&gpu, image)
    }

    /// Parallel loop over `0..len` in chunks of `grain` (see [`crate::par::for_each_range`]).
    pub fn par_for<F: Fn(std::ops::Range<usize>) + Sync>(
        &self,
        len: usize,
        grain: usize,
        f: F,
    ) -> Result<(), StageError> {
        crate::par::for_each_range(&self.backend, len, grain, f);
        self.check_cancelled()
    }
    /// Parallel loop over disjoint mutable chunks (see [`crate::par::chunks_mut`]).
    pub fn par_chunks_mut<T: Send, F: Fn(usize, &mut [T]) + Sync>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: F,
    ) -> Result<(), StageError> {
        crate::par::chunks_mut(&self.backend, data, chunk, f);
        self.check_cancelled()
    }
    /// [`par_chunks_mut`](Self::par_chunks_mut) with a fallible body: the
    /// first error a chunk returns is the result, and chunks not started
    /// by then are skipped.
    pub fn par_try_chunks_mut<T, F>(
        &self,
        data: &mut [T],
        chunk: usize,
        f: F,
    ) -> Result<(), StageError>
    where
        T: Send,
        F: Fn(usize, &mut [T]) -> Result<(), StageError> + Sync,
    {
        let first = std::sync::Mutex::new(None);
        let lock = || first.lock().unwrap_or_else(|p| p.into_inner());
        self.par_chunks_mut(data, chunk, |i, c| {
            if lock().is_some() {
                return;
            }
            if let Err(e) = f(i, c) {
                lock().get_or_insert(e);
            }
        })?;
        match first.into_inner().unwrap_or_else(|p| p.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
    /// A fallible parallel map over `0..n`: stops with the first error or
    /// on cancellation, and reports progress as items finish (every `every`
    /// items and at the last one; `every = 0`: no progress).
    pub fn par_try_map<T: Send, F: Fn(usize) -> Result<T, StageError> + Sync>(
        &self,
        n: usize,
        every: u64,
        f: F,
    ) -> Result<Vec<T>, StageError> {
        let done = std::sync::atomic::AtomicU64::new(0);
        let results = self.par_map(n, |i| {
            self.check_cancelled()?;
            let r = f(i)?;
            let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            if every > 0 && (d.is_multiple_of(every) || d == n as u64) {
                self.progress(d, n as u64);
            }
            Ok(r)
        })?;
        results.into_iter().collect()
    }
    /// Parallel map over `0..n` (see [`crate::par::map`]).
    pub fn par_map<T: Send, F: Fn(usize) -> T + Sync>(
        &self,
        n: usize,
        f: F,
    ) -> Result<Vec<T>, StageError> {
        crate::par::map(&self.backend, n, f).ok_or_else(StageError::cancelled)
    }
}

/// A pipeline stage, implemented by plugins. Implement `manifest` and the one
/// method matching the manifest's kind; the others report `Unsupported`.
pub trait Stage: Sync {
    fn manifest(&self) -> Manifest;

    /// `Quality` stages: one score per frame, higher = sharper.
    fn quality(
        &self,
        _ctx: &StageCtx,
        _frames: &FrameSourceRef,
        _params: &str,
    ) -> Result<Vec<f32>, StageError> {
        Err(StageError::unsupported("this stage does not score frames"))
    }
    /// `Align` stages: one warp per frame of the source.
    fn align(
        &self,
        _ctx: &StageCtx,
        _frames: &FrameSourceRef,
        _req: &AlignRequest,
        _params: &str,
    ) -> Result<Alignment, StageError> {
        Err(StageError::unsupported("this stage does not align frames"))
    }
    /// `Stack` stages: the stacked image.
    fn stack(
        &self,
        _ctx: &StageCtx,
        _frames: &FrameSourceRef,
        _req: &StackRequest,
        _params: &str,
    ) -> Result<Image, StageError> {
        Err(StageError::unsupported("this stage does not stack frames"))
    }
    /// `Sharpen` and `Filter` stages: image in, image out.
    fn process(&self, _ctx: &StageCtx, _image: Image, _params: &str) -> Result<Image, StageError> {
        Err(StageError::unsupported(
            "this stage does not process images",
        ))
    }
}
