//! Frames of the capture being run, in one place: the frame source stages
//! read ([`CaptureFrames`], decoding on demand from the memory map), the
//! capture opened for a run ([`Capture`]), and its device-resident copy on
//! GPU runs ([`CaptureOnDevice`], one store per batch so that device buffers
//! are reused, with the next capture uploaded ahead).

mod device;
mod source;

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

pub use device::{budget_bytes, CaptureOnDevice};
pub use source::CaptureFrames;

use crate::io::calibrate::Calibration;
use crate::io::capture::{CaptureFile, OpenOptions};

/// The capture of one run: its file (any format) and, on a GPU run, the
/// batch's store that holds it on the device.
pub struct Capture {
    pub file: Arc<CaptureFile>,
    pub device: Option<Arc<CaptureOnDevice>>,
}

impl Capture {
    /// Opens `path` (or adopts it when the store uploaded it ahead) and
    /// makes it the store's current capture; with `calibration`, its masters
    /// are checked against the capture here, before any frame is scored.
    pub fn open(
        path: &Path,
        open: OpenOptions,
        store: Option<&Arc<CaptureOnDevice>>,
        calibration: Option<&Arc<Calibration>>,
    ) -> Result<Capture> {
        let file = match store.and_then(|d| d.prefetched(path)) {
            Some(s) => s,
            None => Arc::new(open_file(path, open, calibration)?),
        };
        if let Some(d) = store {
            d.start(&file);
        }
        Ok(Capture {
            file,
            device: store.cloned(),
        })
    }

    /// Frame count.
    pub fn len(&self) -> usize {
        self.file.frame_count()
    }

    /// Whether the capture has no frames (never true of an opened capture).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(width, height, channels)` of the decoded frames.
    pub fn dims(&self) -> (u32, u32, u32) {
        (
            self.file.width() as u32,
            self.file.height() as u32,
            self.file.channels() as u32,
        )
    }

    /// The frames `indices` (in that order) as a frame source.
    pub fn frames(&self, indices: Vec<usize>) -> CaptureFrames {
        CaptureFrames {
            capture: self.file.clone(),
            indices,
            device: self.device.clone(),
        }
    }

    /// On a GPU run, starts uploading the next capture of a batch while this
    /// one is aligned and stacked (a file that does not open is reported by
    /// its own run).
    pub fn upload_ahead(
        &self,
        next: Option<&Path>,
        open: OpenOptions,
        calibration: Option<&Arc<Calibration>>,
    ) {
        if let (Some(d), Some(next)) = (&self.device, next) {
            if let Ok(s) = open_file(next, open, calibration) {
                d.prefetch(Arc::new(s));
            }
        }
    }

    /// Gives up the device copy once stacked (its buffers stay for the next
    /// capture of the batch).
    pub fn finish_on_device(&self) {
        if let Some(d) = &self.device {
            d.finish();
        }
    }
}

/// Opens a capture file, with `calibration` attached when given (its
/// frames then decode calibrated, on the CPU or in the device's decode
/// kernel).
fn open_file(
    path: &Path,
    open: OpenOptions,
    calibration: Option<&Arc<Calibration>>,
) -> Result<CaptureFile> {
    let file = CaptureFile::open(path, open)?;
    Ok(match calibration {
        Some(c) => {
            let applied = c.attach(&file)?;
            file.with_calibration(Arc::new(applied))
        }
        None => file,
    })
}
