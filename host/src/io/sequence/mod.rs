//! An image sequence: a directory of FITS, TIFF (8/16-bit, 32-bit float) or
//! PNG (8/16-bit) files, one frame each, read as one capture in natural
//! file-name order (`frame_2` before `frame_10`).
//!
//! Every file's header is read when the sequence opens, so a file of
//! another size, colour or depth (or another format) is refused up front,
//! with the file named, before any long work. Frames are decoded on demand;
//! PNG and TIFF files compress and decode only whole, so the last few
//! decoded frames are kept (stages read a frame band by band).

mod files;
mod image;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use files::{natural, ImageKind};
use image::Shape;

use super::capture::{CaptureError, FrameReader};
use super::debayer::BayerPattern;
use super::fits::FitsCube;

/// Decoded frames kept (beyond what the worker threads hold).
const CACHE_BYTES: usize = 256 << 20;

/// An open image sequence.
pub struct ImageSequence {
    dir: PathBuf,
    kind: ImageKind,
    files: Vec<PathBuf>,
    shape: Shape,
    /// FITS frames, memory-mapped (empty for PNG and TIFF).
    fits: Vec<FitsCube>,
    /// Float TIFF samples are divided by this (1, 255 or 65535, from the first frame).
    float_scale: f32,
    cache: Mutex<VecDeque<(usize, Arc<Vec<f32>>)>>,
    /// Each frame's time (FITS `DATE-OBS`), when every file has one: the
    /// output's mid-capture date comes from the frames stacked.
    times: Option<Vec<i64>>,
    warnings: Vec<String>,
}

impl ImageSequence {
    /// Lists `dir` and checks every file's header against the first.
    pub fn open(dir: &Path) -> Result<ImageSequence, CaptureError> {
        let (kind, files) = files::list(dir)?;
        ImageSequence::of_files(dir, kind, files)
    }

    /// One FITS, TIFF or PNG image read as a capture of one frame (a
    /// calibration master made elsewhere).
    pub fn single(file: &Path) -> Result<ImageSequence, CaptureError> {
        let kind = ImageKind::of(file)
            .ok_or_else(|| CaptureError::unsupported(file, "not a FITS, TIFF or PNG image"))?;
        ImageSequence::of_files(file, kind, vec![file.to_path_buf()])
    }

    fn of_files(
        dir: &Path,
        kind: ImageKind,
        files: Vec<PathBuf>,
    ) -> Result<ImageSequence, CaptureError> {
        let mut seq = ImageSequence {
            dir: dir.to_path_buf(),
            kind,
            shape: Shape {
                width: 0,
                height: 0,
                channels: 0,
                depth: 0,
            },
            files,
            fits: Vec::new(),
            float_scale: 1.0,
            cache: Mutex::new(VecDeque::new()),
            times: None,
            warnings: Vec::new(),
        };
        if kind == ImageKind::Fits {
            seq.open_fits()?;
        } else {
            seq.check_images()?;
        }
        Ok(seq)
    }

    /// Opens every FITS file (one 2-D frame each, all alike).
    fn open_fits(&mut self) -> Result<(), CaptureError> {
        for p in &self.files {
            let f = FitsCube::open(p)?;
            let h = f.header();
            let shape = Shape {
                width: h.width,
                height: h.height,
                channels: 1,
                depth: h.bitpix.unsigned_abs(),
            };
            if f.frame_count() != 1 {
                return Err(CaptureError::invalid(
                    p,
                    format!(
                        "a FITS cube of {} frames in an image sequence (one frame per file)",
                        f.frame_count()
                    ),
                ));
            }
            if let Some(first) = self.fits.first() {
                let fh = first.header();
                if shape != self.shape
                    || h.bayer != fh.bayer
                    || h.bzero != fh.bzero
                    || h.bscale != fh.bscale
                {
                    return Err(self.mismatch(p, &shape.describe()));
                }
            } else {
                self.shape = shape;
            }
            self.fits.push(f);
        }
        self.times = self.fits.iter().map(|f| f.start_time()).collect();
        Ok(())
    }

    /// Reads every PNG/TIFF header; infers the scale of float samples.
    fn check_images(&mut self) -> Result<(), CaptureError> {
        for (k, p) in self.files.iter().enumerate() {
            let shape = image::shape(self.kind, p).map_err(|r| CaptureError::invalid(p, r))?;
            if k == 0 {
                self.shape = shape;
            } else if shape != self.shape {
                return Err(self.mismatch(p, &shape.describe()));
            }
        }
        if self.shape.depth == 32 {
            let first = image::decode(self.kind, &self.files[0], self.shape)
                .map_err(|r| CaptureError::invalid(&self.files[0], r))?;
            let max = first
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(0.0f32, f32::max);
            self.float_scale = [1.0, 255.0, 65535.0]
                .into_iter()
                .find(|&s| max <= s)
                .unwrap_or(max);
        }
        Ok(())
    }

    fn mismatch(&self, file: &Path, what: &str) -> CaptureError {
        CaptureError::invalid(
            file,
            format!(
                "the frame is {what}, unlike the sequence's first frame {} ({}); every frame of a sequence must have the same size, colour and depth",
                self.files[0].file_name().unwrap_or_default().to_string_lossy(),
                self.shape.describe()
            ),
        )
    }

    /// The files, in frame order.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// Frame `index` of a PNG/TIFF sequence, decoded (or from the cache).
    fn frame(&self, index: usize) -> Result<Arc<Vec<f32>>, CaptureError> {
        let lock = || self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, f)) = lock().iter().find(|(i, _)| *i == index) {
            return Ok(f.clone());
        }
        let path = &self.files[index];
        // A file that went away or changed since the sequence was opened
        // is named with its frame.
        let mut data = image::decode(self.kind, path, self.shape).map_err(|reason| {
            CaptureError::FrameRead {
                path: path.clone(),
                index,
                reason,
            }
        })?;
        if self.shape.depth == 32 {
            let inv = 1.0 / self.float_scale;
            data.iter_mut().for_each(|v| {
                *v = if v.is_nan() {
                    0.0
                } else {
                    (*v * inv).clamp(0.0, 1.0)
                }
            });
        }
        let frame = Arc::new(data);
        let keep =
            (CACHE_BYTES / (frame.len() * 4).max(1)).clamp(2, 64) + rayon::current_num_threads();
        let mut cache = lock();
        cache.push_back((index, frame.clone()));
        while cache.len() > keep {
            cache.pop_front();
        }
        Ok(frame)
    }
}

impl FrameReader for ImageSequence {
    fn path(&self) -> &Path {
        &self.dir
    }
    fn format(&self) -> &'static str {
        match self.kind {
            ImageKind::Fits => "FITS image sequence",
            ImageKind::Tiff => "TIFF image sequence",
            ImageKind::Png => "PNG image sequence",
        }
    }
    fn width(&self) -> usize {
        self.shape.width
    }
    fn height(&self) -> usize {
        self.shape.height
    }
    fn channels(&self) -> usize {
        self.shape.channels
    }
    fn frame_count(&self) -> usize {
        self.files.len()
    }
    fn bit_depth(&self) -> u32 {
        self.shape.depth
    }
    fn mosaic(&self) -> Option<BayerPattern> {
        self.fits.first().and_then(|f| f.mosaic())
    }
    fn start_time(&self) -> Option<i64> {
        self.fits.first().and_then(|f| f.start_time())
    }
    fn timestamps(&self) -> Option<&[i64]> {
        self.times.as_deref()
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        let name = |p: &PathBuf| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        };
        vec![
            ("first file", name(&self.files[0])),
            ("last file", name(&self.files[self.files.len() - 1])),
        ]
    }
    fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        if let Some(f) = self.fits.get(index) {
            // The file's own frame 0 is the sequence's frame `index`.
            return f.decode_rows(0, y0, rows, out).map_err(|e| match e {
                CaptureError::FrameRead { path, reason, .. } => CaptureError::FrameRead {
                    path,
                    index,
                    reason,
                },
                e => e,
            });
        }
        let row = self.shape.width * self.shape.channels;
        let frame = self.frame(index)?;
        out.copy_from_slice(&frame[y0 * row..(y0 + rows) * row]);
        Ok(())
    }
    fn prefetch_rows(&self, index: usize, y0: usize, rows: usize) {
        if let Some(f) = self.fits.get(index) {
            f.prefetch_rows(0, y0, rows);
        }
    }
}

#[cfg(test)]
mod tests;
