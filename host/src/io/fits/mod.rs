//! FITS captures: a cube (`NAXIS3` = frames) or a single 2-D image, read
//! frame by frame from a memory map of the primary HDU.
//!
//! Why our own parser rather than `fitsio` (which the writer uses): the
//! primary HDU of a capture is simple (a header of 80-character cards, then
//! big-endian samples in 2880-byte blocks), and over a memory map each frame
//! is decoded straight from the page cache with no copy of the cube, no
//! cfitsio file handle shared between worker threads, and the very same code
//! path for the property tests (`FitsCube::from_bytes`).
//!
//! Samples: BITPIX 8, 16, 32 (integers) and -32, -64 (floats), physical value
//! = `BZERO + BSCALE × stored`; integers are scaled by their type's range
//! (255, 65535, 2³²−1), floats by `DATAMAX`, else by the smallest of 1, 255,
//! 65535 that holds the first, middle and last frames. `BAYERPAT` marks a
//! raw mosaic (debayered by [`crate::io::capture`]); `DATE-OBS` is the
//! capture's start time.

mod header;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

pub use header::{date_ticks, parse_header, FitsHeader};

use super::capture::{CaptureError, FrameReader, RawLayout};
use super::debayer::BayerPattern;
use super::mapped::Bytes;
use super::ser::ColorId;

/// An open FITS capture.
pub struct FitsCube {
    path: PathBuf,
    header: FitsHeader,
    frames: usize,
    /// Physical value → `[0, 1]`: divide by this.
    scale: f64,
    warnings: Vec<String>,
    data: Bytes,
}

impl FitsCube {
    /// Opens and validates `path` (memory-mapped).
    pub fn open(path: &Path) -> Result<FitsCube, CaptureError> {
        FitsCube::from_storage(path, Bytes::map(path)?)
    }

    /// Parses a FITS file held in memory (`path` names it in messages).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<FitsCube, CaptureError> {
        FitsCube::from_storage(path, Bytes::Mem(bytes))
    }

    fn from_storage(path: &Path, data: Bytes) -> Result<FitsCube, CaptureError> {
        let bad = |r: String| CaptureError::invalid(path, format!("FITS: {r}"));
        let header = parse_header(&data).map_err(bad)?;
        let mut warnings = header.warnings.clone();
        let frames = complete_frames(&header, data.len(), &mut warnings).map_err(bad)?;
        let mut cube = FitsCube {
            path: path.to_path_buf(),
            header,
            frames,
            scale: 1.0,
            warnings,
            data,
        };
        cube.scale = cube.infer_scale();
        Ok(cube)
    }

    /// The header.
    pub fn header(&self) -> &FitsHeader {
        &self.header
    }

    /// The stored bytes of frame `index`.
    fn frame(&self, index: usize) -> &[u8] {
        let fb = self.header.frame_bytes();
        let start = self.header.data_start + index * fb;
        &self.data[start..start + fb]
    }

    /// Physical value of stored sample `i` of `frame`.
    fn physical(&self, frame: &[u8], i: usize) -> f64 {
        let raw = match self.header.bitpix {
            8 => frame[i] as f64,
            16 => i16::from_be_bytes([frame[2 * i], frame[2 * i + 1]]) as f64,
            32 => i32::from_be_bytes(frame[4 * i..4 * i + 4].try_into().unwrap()) as f64,
            -32 => f32::from_be_bytes(frame[4 * i..4 * i + 4].try_into().unwrap()) as f64,
            _ => f64::from_be_bytes(frame[8 * i..8 * i + 8].try_into().unwrap()),
        };
        self.header.bzero + self.header.bscale * raw
    }

    /// The divisor mapping physical values to `[0, 1]` (see the module docs).
    fn infer_scale(&self) -> f64 {
        match self.header.bitpix {
            8 => 255.0,
            16 => 65535.0,
            32 => u32::MAX as f64,
            _ => {
                if let Some(m) = self.header.datamax {
                    return m;
                }
                let mut max = 0.0f64;
                let mut looked = vec![0, self.frames / 2, self.frames - 1];
                looked.dedup();
                for k in looked {
                    let f = self.frame(k);
                    for i in 0..self.header.width * self.header.height {
                        let v = self.physical(f, i);
                        if v.is_finite() {
                            max = max.max(v);
                        }
                    }
                }
                [1.0, 255.0, 65535.0]
                    .into_iter()
                    .find(|&s| max <= s)
                    .unwrap_or(max)
            }
        }
    }

    /// Whether the stored samples are unsigned 16-bit values with the usual
    /// `BZERO = 32768`, which the device kernel reads after a sign flip.
    fn is_u16(&self) -> bool {
        let h = &self.header;
        h.bitpix == 16 && h.bscale == 1.0 && h.bzero == 32768.0
    }

    fn is_u8(&self) -> bool {
        let h = &self.header;
        h.bitpix == 8 && h.bscale == 1.0 && h.bzero == 0.0
    }
}

/// Frames whose bytes the file holds: all of them, or (with a warning)
/// the complete ones of a cut cube; none is an error.
fn complete_frames(
    h: &FitsHeader,
    len: usize,
    warnings: &mut Vec<String>,
) -> Result<usize, String> {
    let fb = h.frame_bytes() as u64;
    let data = (len as u64).saturating_sub(h.data_start as u64);
    let present = (data / fb).min(h.frames);
    if present == 0 {
        return Err(format!(
            "truncated: a {}×{} frame of BITPIX {} needs {fb} bytes, the file holds {data} bytes of data",
            h.width, h.height, h.bitpix
        ));
    }
    if present < h.frames {
        warnings.push(format!(
            "the header claims {} frames but the file holds only {present} complete ones; using those",
            h.frames
        ));
    }
    Ok(present as usize)
}

impl FrameReader for FitsCube {
    fn path(&self) -> &Path {
        &self.path
    }
    fn format(&self) -> &'static str {
        "FITS"
    }
    fn width(&self) -> usize {
        self.header.width
    }
    fn height(&self) -> usize {
        self.header.height
    }
    fn channels(&self) -> usize {
        1
    }
    fn frame_count(&self) -> usize {
        self.frames
    }
    fn bit_depth(&self) -> u32 {
        self.header.bitpix.unsigned_abs()
    }
    fn mosaic(&self) -> Option<BayerPattern> {
        self.header.bayer
    }
    fn start_time(&self) -> Option<i64> {
        self.header.date_obs
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        let h = &self.header;
        let mut out = vec![(
            "samples",
            format!(
                "BITPIX {}, BZERO {}, BSCALE {}, value / {}",
                h.bitpix, h.bzero, h.bscale, self.scale
            ),
        )];
        if let Some(d) = &h.date_text {
            out.push(("DATE-OBS", d.clone()));
        }
        out.extend(h.described.iter().cloned());
        out
    }

    fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        let (w, sb) = (self.header.width, self.header.sample_bytes());
        let start = self.header.data_start + index * self.header.frame_bytes() + y0 * w * sb;
        let inv = 1.0 / self.scale;
        // Read from the file, not through the map: a cube cut short
        // meanwhile is an error naming the frame, not SIGBUS.
        self.data
            .with_span(start, rows * w * sb, |band| {
                for (k, o) in out[..rows * w].iter_mut().enumerate() {
                    let v = self.physical(band, k) * inv;
                    // NaN (blank) samples read as 0.
                    *o = if v.is_nan() {
                        0.0
                    } else {
                        v.clamp(0.0, 1.0) as f32
                    };
                }
            })
            .map_err(|reason| CaptureError::FrameRead {
                path: self.path.clone(),
                index,
                reason,
            })?;
        Ok(())
    }

    fn prefetch_rows(&self, index: usize, y0: usize, rows: usize) {
        let (w, sb) = (self.header.width, self.header.sample_bytes());
        let start = self.header.data_start + index * self.header.frame_bytes() + y0 * w * sb;
        self.data.will_need(start, rows * w * sb);
    }

    fn raw_layout(&self) -> Option<RawLayout> {
        let (bytes, scale) = if self.is_u8() {
            (1, 255.0)
        } else if self.is_u16() {
            (2, 65535.0)
        } else {
            return None;
        };
        Some(RawLayout {
            bytes,
            little_endian: false,
            color: ColorId::Mono,
            scale,
        })
    }

    fn raw_frames(&self, first: usize, count: usize) -> Option<Cow<'_, [u8]>> {
        let fb = self.header.frame_bytes();
        let start = self.header.data_start + first * fb;
        let end = start + count * fb;
        // Checked first: touching the map past a file cut short is SIGBUS.
        if !self.data.holds(end) {
            return None;
        }
        let bytes = &self.data[start..end];
        if self.is_u8() {
            Some(Cow::Borrowed(bytes))
        } else if self.is_u16() {
            // Stored value + 32768 = the big-endian bytes with the sign flipped.
            let mut v = bytes.to_vec();
            v.iter_mut().step_by(2).for_each(|b| *b ^= 0x80);
            Some(Cow::Owned(v))
        } else {
            None
        }
    }

    fn release_frames(&self, first: usize, count: usize) {
        let fb = self.header.frame_bytes();
        self.data
            .release(self.header.data_start + first * fb, count * fb);
    }
}

#[cfg(test)]
mod tests;
