//! [`CaptureFrames`]: the frame source stages read, over a capture's memory
//! map and, on GPU runs, its device-resident copy.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RSliceMut};
use jupiter_plugin_api::{
    DeviceFrames, FrameInfo, FrameSource, FrameSourceRef, FrameSource_TO, StageError,
};

use super::CaptureOnDevice;
use crate::io::capture::{CaptureError, CaptureFile};

/// How many frames ahead of a stage's reads the host asks the kernel to read
/// the same rows (covers the frames the other workers hold).
const READ_AHEAD: usize = 8;

/// Frames of a capture served to stages, through an index map (the
/// selection, best first). Decoding happens on demand (from the memory map
/// for SER, AVI and FITS).
pub struct CaptureFrames {
    pub capture: Arc<CaptureFile>,
    pub indices: Vec<usize>,
    /// The capture on the GPU (GPU runs only).
    pub device: Option<Arc<CaptureOnDevice>>,
}

impl CaptureFrames {
    /// These frames as the trait object stages (and the host's own passes) read.
    pub fn source(&self) -> FrameSourceRef<'_> {
        FrameSource_TO::from_ptr(self, TD_Opaque)
    }
}

impl CaptureFrames {
    /// Runs `decode` on the capture frame behind `index` after asking for
    /// the same rows further on; a panic or error becomes a [`StageError`].
    fn decode(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        decode: impl FnOnce(&CaptureFile, usize) -> Result<(), CaptureError>,
    ) -> RResult<(), StageError> {
        let frame = self.indices[index];
        // Stages walk the frames in order (in parallel, whole or band by
        // band): read the same rows of a frame further on ahead of them.
        if let Some(&next) = self.indices.get(index + READ_AHEAD) {
            self.capture.prefetch_rows(next, y0, rows);
        }
        // Never let a panic cross back into the plugin.
        match catch_unwind(AssertUnwindSafe(|| decode(&self.capture, frame))) {
            Ok(Ok(())) => RResult::ROk(()),
            Ok(Err(e)) => RResult::RErr(StageError::internal(e.to_string())),
            Err(_) => RResult::RErr(StageError::internal("the host's capture decoder panicked")),
        }
    }
}

/// A capture's reader of one sample per pixel: `(frame, y0, rows, out)`.
type PixelRows = fn(&CaptureFile, usize, usize, usize, &mut [f32]) -> Result<(), CaptureError>;

impl CaptureFrames {
    /// Rows of one sample per pixel (luminance, mosaic) read by `read`
    /// after the request's check.
    fn one_per_pixel(
        &self,
        (index, y0, rows): (usize, usize, usize),
        out: &mut [f32],
        read: PixelRows,
    ) -> RResult<(), StageError> {
        if let Err(e) = self.info().check_luminance_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        self.decode(index, y0, rows, |capture, frame| {
            read(capture, frame, y0, rows, out)
        })
    }
}

impl FrameSource for CaptureFrames {
    fn info(&self) -> FrameInfo {
        FrameInfo {
            width: self.capture.width() as u32,
            height: self.capture.height() as u32,
            channels: self.capture.channels() as u32,
            count: self.indices.len() as u32,
        }
    }

    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        if let Err(e) = self.info().check_read(index, y0, rows, out.len()) {
            return RResult::RErr(e);
        }
        self.decode(index, y0, rows, |capture, frame| {
            capture.decode_rows(frame, y0, rows, &mut out)
        })
    }

    fn read_luminance_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        self.one_per_pixel((index, y0, rows), &mut out, CaptureFile::luminance_rows)
    }

    fn mosaic(&self) -> ROption<u32> {
        self.capture.bayer().map(|p| p.code()).into()
    }

    fn read_mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        mut out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        self.one_per_pixel((index, y0, rows), &mut out, CaptureFile::mosaic_rows)
    }

    fn device_frames(&self) -> RResult<ROption<DeviceFrames>, StageError> {
        let Some(store) = &self.device else {
            return RResult::ROk(ROption::RNone);
        };
        match catch_unwind(AssertUnwindSafe(|| {
            store.frames(&self.capture, &self.indices)
        })) {
            Ok(r) => r.map(ROption::from).into(),
            Err(_) => RResult::RErr(StageError::gpu("uploading the capture to the GPU panicked")),
        }
    }
}
