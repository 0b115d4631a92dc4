//! Every capture format behind one type: [`CaptureFile`] is what the
//! pipeline reads (frames decoded on demand to `f32` in `[0, 1]`, the stored
//! samples for the device upload where the layout allows), whatever the file
//! is: a SER video, an uncompressed AVI, a FITS cube, or a directory of
//! FITS / TIFF / PNG images.
//!
//! Each format implements [`FrameReader`] in its own folder (`io/ser/`,
//! `io/avi/`, `io/fits/`, `io/sequence/`); [`CaptureFile::open`] picks the
//! reader from the content (magic bytes) and, failing that, the extension.
//! The Bayer pattern of a raw mosaic comes from the file (SER colour ID, FITS
//! `BAYERPAT`) or from `--bayer`; demosaicing a reader's mono rows happens
//! here, once for every format (the SER reader debayers itself, as before).

mod detect;
mod pause;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::calibrate::Applied;
use super::debayer::{demosaic_rows, mhc_luminance_rows, BayerPattern, Demosaic};
use super::ser::{self, ColorId, SerError, SerFile};

pub use detect::{detect, Format};

/// Decoded samples per read in [`CaptureFile::decode_rows`]'s plain path
/// (1 Mi samples: 4 MB of output, at most 2 MB of stored 16-bit samples).
const READ_CHUNK_SAMPLES: usize = 1 << 20;
/// Errors reading a capture; each names the file (or the directory).
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Ser(#[from] SerError),
    #[error("{path}: cannot open: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: unsupported: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: frame {index} does not exist (the capture has {count} frames)")]
    FrameIndex {
        path: PathBuf,
        index: usize,
        count: usize,
    },
    #[error("{path}: bad read request: {reason}")]
    BadRequest { path: PathBuf, reason: String },
    /// A frame's bytes could not be read (above all: the file was cut short
    /// after it was opened).
    #[error("{path}: cannot read frame {index}: {reason}")]
    FrameRead {
        path: PathBuf,
        index: usize,
        reason: String,
    },
}

impl CaptureError {
    /// A file that is broken or not what its extension says.
    pub fn invalid(path: &Path, reason: impl Into<String>) -> CaptureError {
        CaptureError::Invalid {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
    /// A valid file using a feature jupiter does not read.
    pub fn unsupported(path: &Path, reason: impl Into<String>) -> CaptureError {
        CaptureError::Unsupported {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }
    /// The file could not be opened or read.
    pub fn io(path: &Path, source: std::io::Error) -> CaptureError {
        CaptureError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The FFmpeg reader for a compressed video; without the `ffmpeg` feature,
/// or when FFmpeg cannot read it either, `without` (the native reader's
/// error, which names the codec and how to enable the feature).
#[cfg(feature = "ffmpeg")]
fn compressed_video(
    path: &Path,
    without: CaptureError,
) -> Result<Box<dyn FrameReader>, CaptureError> {
    match super::video::VideoFile::open(path) {
        Ok(v) => Ok(Box::new(v)),
        Err(e) if matches!(without, CaptureError::Unsupported { .. }) => Err(e),
        Err(_) => Err(without),
    }
}

#[cfg(not(feature = "ffmpeg"))]
fn compressed_video(
    _path: &Path,
    without: CaptureError,
) -> Result<Box<dyn FrameReader>, CaptureError> {
    Err(without)
}

/// How to open a capture: the SER options, a Bayer pattern for raw
/// mosaics whose file does not say (`--bayer`, the pipeline's `bayer` key)
/// and how mosaics are demosaiced (`--demosaic`, the `demosaic` key).
#[derive(Debug, Clone, Copy, Default)]
pub struct OpenOptions {
    pub ser: ser::OpenOptions,
    pub bayer: Option<BayerPattern>,
    pub demosaic: Demosaic,
}

/// The stored samples of a reader, as the device's decode kernel reads them
/// (`shaders/decode.wgsl`): `bytes` per sample (1 or 2, in `little_endian`
/// order when 2), `color` the layout of the samples, value = sample / `scale`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawLayout {
    pub bytes: usize,
    pub little_endian: bool,
    pub color: ColorId,
    pub scale: f32,
}

/// What a capture format provides; implemented once per format.
///
/// The frame geometry and samples only: the Bayer override and the checks
/// of read requests live in [`CaptureFile`], so a reader may assume that
/// `index < frame_count()` and that `y0 + rows <= height()` with `out`
/// holding `rows × width × channels` samples.
pub trait FrameReader: Send + Sync {
    /// The file (or directory) read, for messages.
    fn path(&self) -> &Path;
    /// The format's name, for `info` ("SER", "AVI", …).
    fn format(&self) -> &'static str;
    fn width(&self) -> usize;
    fn height(&self) -> usize;
    /// Channels of the rows [`decode_rows`](Self::decode_rows) writes (1 or 3).
    fn channels(&self) -> usize;
    fn frame_count(&self) -> usize;
    /// Bits per stored sample, as the file declares them.
    fn bit_depth(&self) -> u32;
    /// The Bayer pattern of a mono mosaic that this reader does *not*
    /// demosaic itself (FITS `BAYERPAT`); `None` otherwise.
    fn mosaic(&self) -> Option<BayerPattern> {
        None
    }
    /// Per-frame times (100-ns ticks since 0001-01-01 UTC, as SER stores them).
    fn timestamps(&self) -> Option<&[i64]> {
        None
    }
    /// Start of the capture (same ticks), when the file records it.
    fn start_time(&self) -> Option<i64> {
        None
    }
    /// Frames per second, when the file records it.
    fn frame_rate(&self) -> Option<f64> {
        None
    }
    /// Problems worked around while opening (shown, and kept in reports).
    fn warnings(&self) -> &[String];
    /// Format-specific lines for `info` (name, value).
    fn details(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
    /// Decodes rows `y0 .. y0 + rows` of frame `index` into `out`
    /// (interleaved, RGB order, values in `[0, 1]`).
    fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError>;
    /// Like [`decode_rows`](Self::decode_rows), before any demosaic the
    /// reader does itself (a SER Bayer file's mosaic, one sample per pixel):
    /// the samples calibration works on. Readers that never demosaic keep
    /// the default.
    fn decode_mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        self.decode_rows(index, y0, rows, out)
    }
    /// Asks for rows of a frame that will be decoded soon (advisory).
    fn prefetch_rows(&self, _index: usize, _y0: usize, _rows: usize) {}
    /// The layout of [`raw_frames`](Self::raw_frames); `None` when the
    /// samples cannot be decoded by the device kernel (the device store then
    /// uploads decoded frames).
    fn raw_layout(&self) -> Option<RawLayout> {
        None
    }
    /// The stored samples of frames `first .. first + count`, consecutive,
    /// in [`raw_layout`](Self::raw_layout); borrowed where the file holds
    /// them so, else copied. `None` past the end or without a layout.
    fn raw_frames(&self, _first: usize, _count: usize) -> Option<Cow<'_, [u8]>> {
        None
    }
    /// Maps the stored bytes of frames in ahead of a copy (advisory).
    fn populate_frames(&self, _first: usize, _count: usize) {}
    /// Drops this process's mapping of frames already uploaded (advisory).
    fn release_frames(&self, _first: usize, _count: usize) {}
    /// The SER file behind this reader, for the SER-only lines of `info`.
    fn as_ser(&self) -> Option<&SerFile> {
        None
    }
}

/// An open capture of any format: what the pipeline, the device upload,
/// `info` and `demo` read.
pub struct CaptureFile {
    reader: Box<dyn FrameReader>,
    /// The pattern demosaiced here (mono readers only).
    debayer: Option<BayerPattern>,
    /// How mosaics are demosaiced, here, by the SER reader and on the device.
    demosaic: Demosaic,
    warnings: Vec<String>,
    /// Darks, flats and hot pixels applied to the raw samples of every
    /// frame before the demosaic (see [`crate::io::calibrate`]).
    calibration: Option<Arc<Applied>>,
}

impl From<SerFile> for CaptureFile {
    fn from(ser: SerFile) -> CaptureFile {
        let method = ser.demosaic;
        CaptureFile::from_reader(Box::new(ser), None)
            .expect("a SER file without a Bayer override always opens")
            .with_demosaic(method)
    }
}

impl CaptureFile {
    /// Opens `path` with the reader its content (or extension) calls for.
    pub fn open(path: &Path, opts: OpenOptions) -> Result<CaptureFile, CaptureError> {
        let reader: Box<dyn FrameReader> = match detect(path)? {
            Format::Ser => {
                let mut ser = SerFile::open(path, opts.ser)?;
                if let Some(p) = opts.bayer {
                    ser_bayer(&mut ser, p)?;
                }
                ser.demosaic = opts.demosaic;
                let c = CaptureFile::from_reader(Box::new(ser), None)?;
                return Ok(c.with_demosaic(opts.demosaic));
            }
            Format::Avi => match super::avi::AviFile::open(path) {
                Ok(avi) => Box::new(avi),
                // Compressed (or a layout the native reader lacks): FFmpeg's,
                // where the build has it.
                Err(e) => compressed_video(path, e)?,
            },
            Format::Video => compressed_video(
                path,
                CaptureError::unsupported(
                    path,
                    "compressed video (MP4, MOV, MKV, …) needs a build with the `ffmpeg` feature (`cargo build --release --workspace --features jupiter-host/ffmpeg`, with the system's FFmpeg libraries), or convert the capture to SER or uncompressed AVI",
                ),
            )?,
            Format::Fits => Box::new(super::fits::FitsCube::open(path)?),
            Format::Sequence => Box::new(super::sequence::ImageSequence::open(path)?),
        };
        Ok(CaptureFile::from_reader(reader, opts.bayer)?.with_demosaic(opts.demosaic))
    }

    /// This capture demosaicing with `method` (rows decoded here and on the
    /// device; a SER reader is given the same method when it is opened).
    fn with_demosaic(mut self, method: Demosaic) -> CaptureFile {
        self.demosaic = method;
        self
    }

    /// How mosaics are demosaiced (the device decode reads it too).
    pub fn demosaic(&self) -> Demosaic {
        self.demosaic
    }

    /// A capture over `reader`, demosaicing its mono rows with `bayer` (the
    /// user's pattern) or the pattern the file declares.
    /// `path` as a capture, where a single TIFF or PNG image is a capture
    /// of one frame (a master, a finished stack).
    pub fn open_image(path: &Path, opts: OpenOptions) -> Result<CaptureFile, CaptureError> {
        use super::sequence::{ImageKind, ImageSequence};
        if path.is_file() && matches!(ImageKind::of(path), Some(ImageKind::Tiff | ImageKind::Png)) {
            let seq = ImageSequence::single(path)?;
            return CaptureFile::from_reader(Box::new(seq), opts.bayer);
        }
        CaptureFile::open(path, opts)
    }

    pub fn from_reader(
        reader: Box<dyn FrameReader>,
        bayer: Option<BayerPattern>,
    ) -> Result<CaptureFile, CaptureError> {
        let mut warnings = reader.warnings().to_vec();
        let declared = reader.mosaic();
        if let Some(p) = bayer {
            if reader.channels() != 1 {
                return Err(CaptureError::invalid(
                    reader.path(),
                    format!("--bayer {}: the frames are already colour ({} channels); a Bayer pattern applies to raw mosaics only", p.short_name(), reader.channels()),
                ));
            }
            if let Some(d) = declared.filter(|&d| d != p) {
                warnings.push(format!(
                    "the file says Bayer pattern {}; using {} as asked",
                    d.short_name(),
                    p.short_name()
                ));
            }
        }
        let debayer = bayer.or(declared).filter(|_| reader.channels() == 1);
        Ok(CaptureFile {
            reader,
            debayer,
            demosaic: Demosaic::default(),
            warnings,
            calibration: None,
        })
    }

    /// The format reader (for the lines of `info` only it knows).
    pub fn reader(&self) -> &dyn FrameReader {
        self.reader.as_ref()
    }
    /// The capture's path.
    pub fn path(&self) -> &Path {
        self.reader.path()
    }
    /// Frame width.
    pub fn width(&self) -> usize {
        self.reader.width()
    }
    /// Frame height.
    pub fn height(&self) -> usize {
        self.reader.height()
    }
    /// Channels after decoding (1 or 3).
    pub fn channels(&self) -> usize {
        if self.debayer.is_some() {
            3
        } else {
            self.reader.channels()
        }
    }
    /// Frames in the capture.
    pub fn frame_count(&self) -> usize {
        self.reader.frame_count()
    }
    /// Bits per stored sample.
    pub fn bit_depth(&self) -> u32 {
        self.reader.bit_depth()
    }
    /// The sample value that decodes to 1.0 (the divisor of the stored
    /// samples): the reader's, else the largest value of the bit depth (1
    /// for float samples).
    pub fn sample_scale(&self) -> f64 {
        match self.reader.raw_layout() {
            Some(l) => l.scale as f64,
            None if self.bit_depth() <= 16 => ((1u64 << self.bit_depth()) - 1) as f64,
            None => 1.0,
        }
    }
    /// The Bayer pattern the frames are demosaiced with, if any.
    pub fn bayer(&self) -> Option<BayerPattern> {
        match self.reader.as_ser().map(|s| s.header.color) {
            Some(ColorId::Bayer(p)) => Some(p),
            Some(_) => None,
            None => self.debayer,
        }
    }
    /// Per-frame times (100-ns ticks since 0001-01-01 UTC).
    pub fn timestamps(&self) -> Option<&[i64]> {
        self.reader.timestamps()
    }
    /// Problems worked around while opening.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Samples per pixel before the demosaic: 1 for a raw mosaic, else
    /// [`channels`](Self::channels).
    pub fn raw_channels(&self) -> usize {
        if self.bayer().is_some() {
            1
        } else {
            self.channels()
        }
    }

    /// Decodes rows `y0 .. y0 + rows` of frame `index` before the demosaic
    /// and before calibration (`rows × width × raw_channels` floats in
    /// `[0, 1]`): what masters are built from and calibration corrects.
    pub fn decode_raw_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        self.check_request(
            "raw rows",
            self.raw_channels(),
            (index, y0, rows),
            out.len(),
        )?;
        self.reader.decode_mosaic_rows(index, y0, rows, out)
    }

    /// This capture with `calibration` applied to every frame decoded
    /// (on the device by the decode kernel, from the same masters).
    pub fn with_calibration(mut self, calibration: Arc<Applied>) -> CaptureFile {
        self.calibration = Some(calibration);
        self
    }

    /// The calibration applied to the frames, if any.
    pub fn calibration(&self) -> Option<&Arc<Applied>> {
        self.calibration.as_ref()
    }

    /// Decodes rows `y0 .. y0 + rows` of frame `index` into `out`
    /// (`rows × width × channels` floats in `[0, 1]`, RGB, interleaved),
    /// calibrated when a calibration is attached.
    pub fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        self.check_read(index, y0, rows, out.len())?;
        pause::wait_before_reading(self.path(), index);
        if let Some(cal) = &self.calibration {
            return self.decode_calibrated(cal, index, y0, rows, out);
        }
        let Some(pattern) = self.debayer else {
            return self.decode_rows_in_chunks(index, y0, rows, out);
        };
        // The demosaic reads its margin of raw rows above and below.
        let (w, h, m) = (self.width(), self.height(), self.demosaic.margin());
        let lo = y0.saturating_sub(m);
        let hi = (y0 + rows + m).min(h);
        let mut raw = vec![0.0f32; (hi - lo) * w];
        self.reader.decode_rows(index, lo, hi - lo, &mut raw)?;
        demosaic_rows(self.demosaic, &raw, w, h, lo, pattern, y0, rows, out);
        Ok(())
    }

    /// The reader's rows, [`READ_CHUNK_SAMPLES`] decoded samples or fewer
    /// at a time: a reader holds a request's stored bytes beside its
    /// output, which for a whole 24-megapixel 16-bit frame is 48 MB per
    /// thread; in chunks it is a few MB (the same samples either way).
    fn decode_rows_in_chunks(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        let row = out.len() / rows.max(1);
        let per = (READ_CHUNK_SAMPLES / row.max(1)).max(1);
        for (k, part) in out.chunks_mut(per * row.max(1)).enumerate() {
            let n = part.len() / row.max(1);
            self.reader.decode_rows(index, y0 + k * per, n, part)?;
        }
        Ok(())
    }

    /// The calibrated path of [`decode_rows`](Self::decode_rows): raw rows
    /// with the margin the hot-pixel repair and the debayer read, calibrated,
    /// then demosaiced (or copied).
    fn decode_calibrated(
        &self,
        cal: &Applied,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        let (w, h, c) = (self.width(), self.height(), self.raw_channels());
        self.with_mosaic(Some(cal), index, y0, rows, |lo, raw| match self.bayer() {
            Some(pattern) => demosaic_rows(self.demosaic, raw, w, h, lo, pattern, y0, rows, out),
            None => out.copy_from_slice(&raw[(y0 - lo) * w * c..(y0 - lo + rows) * w * c]),
        })
    }

    /// `f(lo, raw)` with raw rows `y0 .. y0 + rows` (before any demosaic)
    /// and the margin the demosaic and `cal`'s hot-pixel repair read,
    /// calibrated by `cal`: `lo` is the first row's index. The rows lie in
    /// this thread's reused buffer ([`super::scratch::samples`]).
    fn with_mosaic<R>(
        &self,
        cal: Option<&Applied>,
        index: usize,
        y0: usize,
        rows: usize,
        f: impl FnOnce(usize, &[f32]) -> R,
    ) -> Result<R, CaptureError> {
        let (w, h, c) = (self.width(), self.height(), self.raw_channels());
        let margin =
            cal.map_or(0, |c| c.repair_rows()) + self.bayer().map_or(0, |_| self.demosaic.margin());
        let lo = y0.saturating_sub(margin);
        let hi = (y0 + rows + margin).min(h);
        super::scratch::samples((hi - lo) * w * c, |raw| {
            self.decode_raw_rows(index, lo, hi - lo, raw)?;
            if let Some(cal) = cal {
                cal.apply(raw, lo, hi - lo);
            }
            Ok(f(lo, raw))
        })
    }

    /// Rows `y0 .. y0 + rows` of frame `index` as luminance (`rows × width`
    /// samples): the mean of the decoded channels, bit for bit
    /// [`decode_rows`](Self::decode_rows) then `channel_mean`. A mosaic
    /// under the MHC demosaic goes straight to luminance
    /// ([`mhc_luminance_rows`]): scoring and alignment read every frame
    /// this way, and the interleaved RGB rows cost a third of a Bayer run.
    pub fn luminance_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        let (w, h, c) = (self.width(), self.height(), self.channels());
        self.check_request("luminance rows", 1, (index, y0, rows), out.len())?;
        if c == 1 {
            return self.decode_rows(index, y0, rows, out);
        }
        match self.bayer() {
            Some(pattern) if self.demosaic == Demosaic::Mhc => {
                pause::wait_before_reading(self.path(), index);
                self.with_mosaic(self.calibration.as_deref(), index, y0, rows, |lo, raw| {
                    mhc_luminance_rows(raw, w, h, lo, pattern, y0, rows, out)
                })?;
            }
            _ => {
                let mut all = vec![0.0f32; rows * w * c];
                self.decode_rows(index, y0, rows, &mut all)?;
                jupiter_plugin_api::channel_mean_into(&all, c, out);
            }
        }
        Ok(())
    }

    /// Rows `y0 .. y0 + rows` of frame `index`'s mosaic (`rows × width`
    /// samples): calibrated, clamped to `[0, 1]` as the demosaic clamps,
    /// not demosaiced, so each sample is the one the demosaiced pixel keeps
    /// in its own colour. An error for a capture without a Bayer pattern.
    pub fn mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        if self.bayer().is_none() {
            return Err(CaptureError::BadRequest {
                path: self.path().to_path_buf(),
                reason: "mosaic rows of a capture that is not a raw Bayer mosaic".into(),
            });
        }
        self.check_request("mosaic rows", 1, (index, y0, rows), out.len())?;
        pause::wait_before_reading(self.path(), index);
        let w = self.width();
        self.with_mosaic(self.calibration.as_deref(), index, y0, rows, |lo, raw| {
            let own = &raw[(y0 - lo) * w..(y0 - lo + rows) * w];
            for (o, &v) in out.iter_mut().zip(own) {
                *o = v.clamp(0.0, 1.0);
            }
        })
    }

    /// Decodes one whole frame.
    pub fn decode_frame(&self, index: usize) -> Result<Vec<f32>, CaptureError> {
        let mut v = vec![0.0; self.width() * self.height() * self.channels()];
        self.decode_rows(index, 0, self.height(), &mut v)?;
        Ok(v)
    }

    /// Asks the reader for rows of a frame that will be decoded soon.
    pub fn prefetch_rows(&self, index: usize, y0: usize, rows: usize) {
        if index < self.frame_count() {
            self.reader.prefetch_rows(index, y0, rows);
        }
    }

    /// The stored samples' layout for the device decode (the demosaic
    /// asked for here included; a calibration is applied by the kernel
    /// too, from [`Applied::device_tables`]); `None`: upload decoded frames.
    pub fn raw_layout(&self) -> Option<RawLayout> {
        let mut l = self.reader.raw_layout()?;
        if let Some(p) = self.debayer {
            l.color = ColorId::Bayer(p);
        }
        Some(l)
    }
    /// Bytes of one frame in [`raw_layout`](Self::raw_layout).
    pub fn raw_frame_bytes(&self) -> Option<usize> {
        let l = self.raw_layout()?;
        Some(self.width() * self.height() * l.color.planes() * l.bytes)
    }
    /// The stored samples of frames `first .. first + count`.
    pub fn raw_frames(&self, first: usize, count: usize) -> Option<Cow<'_, [u8]>> {
        let end = first.checked_add(count)?;
        if end > self.frame_count() {
            return None;
        }
        self.reader.raw_frames(first, count)
    }
    /// See [`FrameReader::populate_frames`].
    pub fn populate_frames(&self, first: usize, count: usize) {
        self.reader.populate_frames(first, count)
    }
    /// See [`FrameReader::release_frames`].
    pub fn release_frames(&self, first: usize, count: usize) {
        self.reader.release_frames(first, count)
    }

    fn check_read(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        len: usize,
    ) -> Result<(), CaptureError> {
        self.check_request("rows", self.channels(), (index, y0, rows), len)
    }

    /// Refuses a frame past the end, rows past the bottom, or a buffer that
    /// does not hold `rows × width × c` samples (`what` names the rows).
    fn check_request(
        &self,
        what: &str,
        c: usize,
        (index, y0, rows): (usize, usize, usize),
        len: usize,
    ) -> Result<(), CaptureError> {
        let (w, h, n) = (self.width(), self.height(), self.frame_count());
        if index >= n {
            return Err(CaptureError::FrameIndex {
                path: self.path().to_path_buf(),
                index,
                count: n,
            });
        }
        if y0.checked_add(rows).is_none_or(|end| end > h) || rows.checked_mul(w * c) != Some(len) {
            return Err(CaptureError::BadRequest {
                path: self.path().to_path_buf(),
                reason: format!(
                    "{what} {y0}..{y0}+{rows} of a {w}×{h}×{c} frame into a buffer of {len} samples"
                ),
            });
        }
        Ok(())
    }
}

/// Applies `--bayer` to a SER file: a mono file becomes the mosaic it is,
/// a Bayer file another pattern (with a warning); colour files refuse it.
fn ser_bayer(ser: &mut SerFile, p: BayerPattern) -> Result<(), CaptureError> {
    match ser.header.color {
        ColorId::Mono => {}
        ColorId::Bayer(q) if q == p => {}
        ColorId::Bayer(q) => ser.warnings.push(format!(
            "the header says Bayer pattern {}; using {} as asked",
            q.short_name(),
            p.short_name()
        )),
        c => {
            return Err(CaptureError::invalid(
                &ser.path,
                format!(
                    "--bayer {}: the frames are already colour ({}); a Bayer pattern applies to raw mosaics only",
                    p.short_name(),
                    c.name()
                ),
            ))
        }
    }
    ser.header.color = ColorId::Bayer(p);
    Ok(())
}

impl FrameReader for SerFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn format(&self) -> &'static str {
        "SER"
    }
    fn width(&self) -> usize {
        SerFile::width(self)
    }
    fn height(&self) -> usize {
        SerFile::height(self)
    }
    fn channels(&self) -> usize {
        SerFile::channels(self)
    }
    fn frame_count(&self) -> usize {
        self.frame_count
    }
    fn bit_depth(&self) -> u32 {
        self.header.depth
    }
    fn timestamps(&self) -> Option<&[i64]> {
        self.timestamps.as_deref()
    }
    fn start_time(&self) -> Option<i64> {
        (self.header.date_time_utc > 0).then_some(self.header.date_time_utc)
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        Ok(SerFile::decode_rows(self, index, y0, rows, out)?)
    }
    fn decode_mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        Ok(SerFile::decode_mosaic_rows(self, index, y0, rows, out)?)
    }
    fn prefetch_rows(&self, index: usize, y0: usize, rows: usize) {
        SerFile::prefetch_rows(self, index, y0, rows)
    }
    fn raw_layout(&self) -> Option<RawLayout> {
        Some(RawLayout {
            bytes: self.header.bytes_per_sample(),
            little_endian: self.little_endian,
            color: self.header.color,
            scale: self.scale,
        })
    }
    fn raw_frames(&self, first: usize, count: usize) -> Option<Cow<'_, [u8]>> {
        self.stored_frames(first, count).map(Cow::Borrowed)
    }
    fn populate_frames(&self, first: usize, count: usize) {
        SerFile::populate_frames(self, first, count)
    }
    fn release_frames(&self, first: usize, count: usize) {
        SerFile::release_frames(self, first, count)
    }
    fn as_ser(&self) -> Option<&SerFile> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_testkit::ser::{write_ser, SerColor, SerSpec};

    /// A request larger than [`READ_CHUNK_SAMPLES`] read in chunks gives the
    /// reader's samples for the whole request, bit for bit, from any row.
    #[test]
    fn large_reads_in_chunks_equal_one_read() {
        let dir = std::env::temp_dir().join(format!("jupiter-chunks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (w, h) = (1100usize, 1000usize);
        let frame: Vec<u16> = (0..w * h).map(|i| ((i * 7919) % 65536) as u16).collect();
        let path = dir.join("big.ser");
        let spec = SerSpec::new(w as u32, h as u32, SerColor::Mono, 16);
        write_ser(&path, &spec, &[frame], None).unwrap();
        let file = CaptureFile::open(&path, OpenOptions::default()).unwrap();
        for (y0, rows) in [(0, h), (3, h - 5), (997, 3)] {
            let mut chunked = vec![f32::NAN; rows * w];
            file.decode_rows(0, y0, rows, &mut chunked).unwrap();
            let mut once = vec![f32::NAN; rows * w];
            file.reader.decode_rows(0, y0, rows, &mut once).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&chunked), bits(&once), "rows {y0}+{rows}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
