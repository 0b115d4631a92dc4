//! AVI reader for uncompressed video, natively (no codec library), over a
//! memory map: frames are decoded on demand, like SER.
//!
//! What it reads: 8-bit grey (`Y800`, `Y8  `, `GREY`, or an 8-bit BI_RGB DIB
//! with a grey palette), 16-bit grey (`Y16 `, little-endian), 24- and 32-bit
//! BGR (BI_RGB DIBs: rows padded to 4 bytes, bottom-up when the height is
//! positive). Compressed video (MJPG, H264, …) is refused with an error that
//! names the codec.
//!
//! Where the frames are: OpenDML indexes (AVI 2.0: `indx` super index, `ix##`
//! standard indexes, `RIFF AVIX` extensions, for captures of tens of GB),
//! else the legacy `idx1`, else a walk of the `movi` lists ([`index`]). The
//! index is a `Vec` of (offset, size) built only from entries present in the
//! file, each checked to lie inside it before the file is accepted.
//!
//! Files: [`riff`] (bounded chunk walking), [`header`] (`avih`, `strh`,
//! `strf`, the pixel layouts), [`index`]. The test writer is
//! `jupiter_testkit::avi`.

mod header;
pub use header::avi_date;
mod index;
mod riff;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use header::{parse_hdrl, Pixels, Video};
use index::{frame_index, Entry, MoviLists};
use riff::{chunks, Chunk};

use super::capture::{CaptureError, FrameReader, RawLayout};
use super::mapped::Bytes;
use super::ser::ColorId;

/// Most frames used from one file (frame indices cross the plugin ABI as u32).
const MAX_FRAMES: usize = i32::MAX as usize;

/// An open AVI file.
pub struct AviFile {
    path: PathBuf,
    video: Video,
    /// Offset of each frame's data (each checked to hold a whole frame).
    frames: Vec<u64>,
    /// Sample value → `[0, 1]` for 8-bit samples (through the palette).
    lut8: Box<[f32; 256]>,
    index_source: &'static str,
    warnings: Vec<String>,
    data: Bytes,
}

impl AviFile {
    /// Opens and validates `path` (memory-mapped).
    pub fn open(path: &Path) -> Result<AviFile, CaptureError> {
        AviFile::from_storage(path, Bytes::map(path)?)
    }

    /// Parses an AVI file held in memory (`path` names it in messages).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>) -> Result<AviFile, CaptureError> {
        AviFile::from_storage(path, Bytes::Mem(bytes))
    }

    fn from_storage(path: &Path, data: Bytes) -> Result<AviFile, CaptureError> {
        let bad = |r: String| CaptureError::invalid(path, format!("AVI: {r}"));
        let (video, idx1, movi) = parse_file(&data).map_err(bad)?;
        let index = frame_index(&data, &video, idx1, &movi).map_err(bad)?;
        let mut warnings = Vec::new();
        let frames =
            usable_frames(&video, &index.entries, data.len(), &mut warnings).map_err(bad)?;
        let mut lut8 = Box::new([0.0f32; 256]);
        for (i, v) in lut8.iter_mut().enumerate() {
            let level = video.palette.as_ref().map_or(i as u8, |p| p[i]);
            *v = level as f32 / 255.0;
        }
        Ok(AviFile {
            path: path.to_path_buf(),
            video,
            frames,
            lut8,
            index_source: index.source,
            warnings,
            data,
        })
    }

    /// The file offset of row `y` (top-down numbering) of frame `index`.
    fn row_start(&self, index: usize, y: usize) -> usize {
        let v = &self.video;
        let sy = if v.bottom_up { v.height - 1 - y } else { y };
        self.frames[index] as usize + sy * v.stride
    }

    /// Byte span in the file of rows `y0 .. y0 + rows` of frame `index`.
    fn span(&self, index: usize, y0: usize, rows: usize) -> (usize, usize) {
        let v = &self.video;
        let first = if v.bottom_up {
            v.height.saturating_sub(y0 + rows)
        } else {
            y0
        };
        (
            self.frames[index] as usize + first * v.stride,
            rows * v.stride,
        )
    }
}

/// The video headers, the legacy index and the `movi` lists of every RIFF
/// (the first `AVI ` and its `AVIX` extensions).
fn parse_file(data: &[u8]) -> Result<(Video, Option<Chunk>, MoviLists), String> {
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"AVI " {
        return Err("not an AVI file (no RIFF 'AVI ' header)".into());
    }
    let (mut video, mut idx1, mut movi) = (None, None, Vec::new());
    let mut created = None;
    for riff in chunks(data, 0, data.len()) {
        let Some((kind, s, e)) = riff.list_type(data).filter(|_| &riff.id == b"RIFF") else {
            continue;
        };
        let first = &kind == b"AVI ";
        for c in chunks(data, s, e) {
            match (&c.id, c.list_type(data)) {
                (b"LIST", Some((k, s2, e2))) if &k == b"hdrl" && first && video.is_none() => {
                    video = Some(parse_hdrl(data, s2, e2)?);
                    created = created.or(dated(data, s2, e2, b"IDIT"));
                }
                (b"LIST", Some((k, s2, e2))) if &k == b"INFO" && first => {
                    created = created.or(dated(data, s2, e2, b"ICRD"));
                }
                (b"LIST", Some((k, _, _))) if &k == b"movi" => {
                    movi.push((c.start, c.start + c.len))
                }
                (b"idx1", _) if first => idx1 = Some(c),
                _ => {}
            }
        }
    }
    let mut video: Video = video.ok_or("no header list (hdrl); the file is not a complete AVI")?;
    video.created = created;
    Ok((video, idx1, movi))
}

/// The date in the first chunk `id` of a list, when it reads as one.
fn dated(data: &[u8], start: usize, end: usize, id: &[u8; 4]) -> Option<i64> {
    chunks(data, start, end)
        .find(|c| &c.id == id)
        .and_then(|c| header::avi_date(c.data(data)))
}

/// The frames to use: every indexed frame holding a whole frame's bytes
/// inside the file. Empty chunks (frames the capture program dropped) are
/// skipped with a warning; a short chunk is an error; a file cut short
/// keeps its complete frames, with a warning.
fn usable_frames(
    video: &Video,
    entries: &[Entry],
    len: usize,
    warnings: &mut Vec<String>,
) -> Result<Vec<u64>, String> {
    let need = video.frame_bytes() as u64;
    let (mut frames, mut dropped) = (Vec::new(), 0usize);
    for (k, &(offset, size)) in entries.iter().enumerate() {
        if size == 0 {
            dropped += 1;
            continue;
        }
        if (size as u64) < need {
            return Err(format!(
                "frame {k} holds {size} bytes; a {}×{} {} frame needs {need}",
                video.width, video.height, video.codec
            ));
        }
        if offset.checked_add(need).is_none_or(|end| end > len as u64) {
            if frames.is_empty() {
                return Err(format!(
                    "truncated: frame {k} lies past the end of the file ({len} bytes)"
                ));
            }
            warnings.push(format!(
                "the file is cut short: using the {} complete frames of the {} indexed",
                frames.len(),
                entries.len()
            ));
            break;
        }
        if frames.len() == MAX_FRAMES {
            break;
        }
        frames.push(offset);
    }
    if dropped > 0 {
        warnings.push(format!(
            "{dropped} empty frame chunks (frames dropped by the capture program) skipped"
        ));
    }
    if frames.is_empty() {
        return Err("the file holds no video frames".into());
    }
    let claimed = video.claimed_frames as usize;
    if frames.len() + dropped < claimed && !warnings.iter().any(|w| w.contains("cut short")) {
        warnings.push(format!(
            "the headers claim {claimed} frames but the index lists {}; using those",
            frames.len() + dropped
        ));
    }
    Ok(frames)
}

impl FrameReader for AviFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn format(&self) -> &'static str {
        "AVI"
    }
    fn width(&self) -> usize {
        self.video.width
    }
    fn height(&self) -> usize {
        self.video.height
    }
    fn channels(&self) -> usize {
        self.video.pixels.channels()
    }
    fn frame_count(&self) -> usize {
        self.frames.len()
    }
    fn bit_depth(&self) -> u32 {
        self.video.pixels.depth()
    }
    fn frame_rate(&self) -> Option<f64> {
        self.video.frame_rate
    }
    fn start_time(&self) -> Option<i64> {
        self.video.created
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        let v = &self.video;
        vec![
            ("codec", v.codec.clone()),
            (
                "rows",
                format!(
                    "{}, {} bytes apart",
                    if v.bottom_up { "bottom-up" } else { "top-down" },
                    v.stride
                ),
            ),
            ("index", self.index_source.to_string()),
        ]
    }

    fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        let w = self.video.width;
        let c = self.channels();
        let row_bytes = w * self.video.pixels.bytes();
        // The rows are read from the file (not touched through the map: a
        // file cut short meanwhile is an error naming the frame, not SIGBUS).
        let (start, len) = self.span(index, y0, rows);
        self.data
            .with_span(start, len, |band| {
                for r in 0..rows {
                    let at = self.row_start(index, y0 + r) - start;
                    let dst = &mut out[r * w * c..(r + 1) * w * c];
                    decode_row(
                        self.video.pixels,
                        &self.lut8,
                        &band[at..at + row_bytes],
                        dst,
                    );
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
        if index < self.frames.len() && y0 < self.video.height {
            let (start, len) = self.span(index, y0, rows.min(self.video.height - y0));
            self.data.will_need(start, len);
        }
    }

    fn raw_layout(&self) -> Option<RawLayout> {
        let identity = self
            .lut8
            .iter()
            .enumerate()
            .all(|(i, &v)| v == i as f32 / 255.0);
        let (bytes, color, scale) = match self.video.pixels {
            Pixels::Mono8 if identity => (1, ColorId::Mono, 255.0),
            Pixels::Mono16 => (2, ColorId::Mono, 65535.0),
            Pixels::Bgr24 => (1, ColorId::Bgr, 255.0),
            _ => return None,
        };
        Some(RawLayout {
            bytes,
            little_endian: true,
            color,
            scale,
        })
    }

    fn raw_frames(&self, first: usize, count: usize) -> Option<Cow<'_, [u8]>> {
        self.raw_layout()?;
        let end = first
            .checked_add(count)
            .filter(|&e| e <= self.frames.len())?;
        let (row, h) = (
            self.video.width * self.video.pixels.bytes(),
            self.video.height,
        );
        let mut out = Vec::with_capacity(count * row * h);
        // Read, not copied from the map: a file cut short is `None`, not SIGBUS.
        for index in first..end {
            let (start, len) = self.span(index, 0, h);
            self.data
                .with_span(start, len, |band| {
                    for y in 0..h {
                        let at = self.row_start(index, y) - start;
                        out.extend_from_slice(&band[at..at + row]);
                    }
                })
                .ok()?;
        }
        Some(Cow::Owned(out))
    }

    fn release_frames(&self, first: usize, count: usize) {
        for index in first..first.saturating_add(count).min(self.frames.len()) {
            let (start, len) = self.span(index, 0, self.video.height);
            self.data.release(start, len);
        }
    }
}

/// One stored row to `f32` in `[0, 1]`, RGB order.
fn decode_row(pixels: Pixels, lut8: &[f32; 256], src: &[u8], dst: &mut [f32]) {
    match pixels {
        Pixels::Mono8 => {
            for (o, &b) in dst.iter_mut().zip(src) {
                *o = lut8[b as usize];
            }
        }
        Pixels::Mono16 => {
            for (o, b) in dst.iter_mut().zip(src.chunks_exact(2)) {
                *o = u16::from_le_bytes([b[0], b[1]]) as f32 / 65535.0;
            }
        }
        Pixels::Bgr24 | Pixels::Bgra32 => {
            let step = pixels.bytes();
            for (o, p) in dst.chunks_exact_mut(3).zip(src.chunks_exact(step)) {
                o[0] = lut8[p[2] as usize];
                o[1] = lut8[p[1] as usize];
                o[2] = lut8[p[0] as usize];
            }
        }
    }
}

#[cfg(test)]
mod tests;
