//! SER video reader over a memory map.
//!
//! Layout: a 178-byte header, `frame_count` frames of `width × height ×
//! planes` samples (1 byte for depth ≤ 8, else 2 bytes), then an optional
//! trailer of one 64-bit timestamp per frame (100 ns ticks since year 1).
//!
//! **Byte order of 16-bit samples.** The spec says `LittleEndian = 1` means
//! little-endian data, but most capture programs write 0 for little-endian
//! data, and established readers follow the programs, not the spec. We do not
//! trust the flag: with [`ByteOrder::Auto`] (the default) the order is decided
//! from the samples of the first frame (the right order gives a far smoother
//! image; a tie means little-endian, the common case), and `--byte-order`
//! overrides it.
//!
//! Everything is validated before anything is allocated: dimensions, depth,
//! colour ID, and that the file really holds the frames the header claims.
//! No allocation is ever sized by a header field alone: a header claiming
//! 100000×100000×10⁹ frames in a 1 KB file is refused before any allocation.
//!
//! **Storage.** The file is memory-mapped ([`SerFile::open`]); the same parser
//! also runs over bytes already in memory ([`SerFile::from_bytes`]), which is
//! what the property tests (`host/tests/fuzz_ser.rs`) use. Offsets are `u64`
//! while validating and `usize` (checked to fit) when indexing, so captures
//! over 4 GiB work on 64-bit hosts.
//!
//! **Timestamps.** A trailer whose timestamps go backwards, lie outside any
//! plausible date, or look like local time instead of UTC is reported as a
//! warning (shown, and written to the run's report), never an error: the
//! timestamps are informational, the frames are still good.

use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::debayer::{debayer_rows, BayerPattern};

/// Size of the SER header.
pub const HEADER_LEN: usize = 178;
/// Largest accepted width or height.
pub const MAX_DIM: u32 = 1 << 15;
/// Most frames used from one file (frame counts cross the plugin ABI as `u32`;
/// a header's count is an `i32`, so only a recomputed count can exceed this).
pub const MAX_FRAMES: u64 = i32::MAX as u64;

/// 100-ns ticks per second, the unit of SER timestamps.
const TICKS_PER_SECOND: i64 = 10_000_000;
/// Ticks from 0001-01-01 to 1970-01-01 (the SER epoch is year 1).
const TICKS_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// Errors reading a SER file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SerError {
    #[error("{path}: cannot open: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a SER file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: unsupported SER file: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: truncated: {reason}")]
    Truncated { path: PathBuf, reason: String },
    #[error("{path}: frame {index} does not exist (the file has {count} frames)")]
    FrameIndex {
        path: PathBuf,
        index: usize,
        count: usize,
    },
    #[error("{path}: bad read request: {reason}")]
    BadRequest { path: PathBuf, reason: String },
}

/// Colour layout of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ColorId {
    Mono,
    Bayer(BayerPattern),
    Rgb,
    Bgr,
}

impl ColorId {
    fn from_code(code: i32) -> Result<ColorId, String> {
        Ok(match code {
            0 => ColorId::Mono,
            8 => ColorId::Bayer(BayerPattern::Rggb),
            9 => ColorId::Bayer(BayerPattern::Grbg),
            10 => ColorId::Bayer(BayerPattern::Gbrg),
            11 => ColorId::Bayer(BayerPattern::Bggr),
            16..=19 => {
                return Err(format!(
                    "CMY Bayer pattern (colour ID {code}) is not supported"
                ))
            }
            100 => ColorId::Rgb,
            101 => ColorId::Bgr,
            other => return Err(format!("unknown colour ID {other}")),
        })
    }
    /// The SER colour ID code.
    pub fn code(self) -> i32 {
        match self {
            ColorId::Mono => 0,
            ColorId::Bayer(BayerPattern::Rggb) => 8,
            ColorId::Bayer(BayerPattern::Grbg) => 9,
            ColorId::Bayer(BayerPattern::Gbrg) => 10,
            ColorId::Bayer(BayerPattern::Bggr) => 11,
            ColorId::Rgb => 100,
            ColorId::Bgr => 101,
        }
    }
    /// Samples stored per pixel.
    pub fn planes(self) -> usize {
        match self {
            ColorId::Rgb | ColorId::Bgr => 3,
            _ => 1,
        }
    }
    /// Channels after decoding (Bayer is debayered to RGB).
    pub fn channels(self) -> usize {
        match self {
            ColorId::Mono => 1,
            _ => 3,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ColorId::Mono => "MONO",
            ColorId::Bayer(p) => p.name(),
            ColorId::Rgb => "RGB",
            ColorId::Bgr => "BGR",
        }
    }
}

/// How to read 16-bit samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum ByteOrder {
    /// Decide from the data (see the module docs).
    Auto,
    Little,
    Big,
}

/// Options for opening a SER file.
#[derive(Debug, Clone, Copy)]
pub struct OpenOptions {
    pub byte_order: ByteOrder,
    /// Use the complete frames present when the header claims more.
    pub allow_truncated: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            byte_order: ByteOrder::Auto,
            allow_truncated: false,
        }
    }
}

/// The parsed header fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SerHeader {
    pub file_id: String,
    pub lu_id: i32,
    pub color: ColorId,
    pub little_endian_flag: i32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
    pub frame_count_header: u32,
    pub observer: String,
    pub instrument: String,
    pub telescope: String,
    pub date_time: i64,
    pub date_time_utc: i64,
}

/// An open SER file.
pub struct SerFile {
    pub path: PathBuf,
    pub header: SerHeader,
    /// Frames actually used (may differ from the header, see `warnings`).
    pub frame_count: usize,
    /// Byte order used for 16-bit samples.
    pub little_endian: bool,
    /// Divisor mapping samples to `[0, 1]`.
    pub scale: f32,
    /// Per-frame timestamps when the trailer is present.
    pub timestamps: Option<Vec<i64>>,
    /// Problems worked around while opening (shown to the user, put in reports).
    pub warnings: Vec<String>,
    data: Storage,
}

/// Where the bytes of a SER file live.
enum Storage {
    /// The file, memory-mapped (the normal case: never read whole).
    Map(Mmap),
    /// Bytes already in memory ([`SerFile::from_bytes`]).
    Mem(Vec<u8>),
}

impl Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Map(m) => m,
            Storage::Mem(v) => v,
        }
    }
}

/// The page-aligned span covering bytes `start .. start + len`, clipped to a
/// mapping of `total` bytes (madvise works on whole pages).
fn page_span(start: usize, len: usize, total: usize) -> (usize, usize) {
    const PAGE: usize = 4096;
    let a = start / PAGE * PAGE;
    let b = (start + len).div_ceil(PAGE) * PAGE;
    (a, b.min(total).saturating_sub(a))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

fn i32_at(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn i64_at(b: &[u8], o: usize) -> i64 {
    i64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Chooses the byte order of 16-bit samples (from the first frame) and the
/// scale mapping samples to `[0, 1]` (from the largest value in `frames`: the
/// first, middle and last frame, since a capture may start dark). Returns
/// `(little_endian, scale)`. Frames not looked at may still hold larger
/// values: the decoder clamps those to 1.
fn sample_format(
    header: &SerHeader,
    frames: &[&[u8]],
    order: ByteOrder,
    warnings: &mut Vec<String>,
) -> (bool, f32) {
    let depth = header.depth;
    let declared_max = (1u32 << depth) - 1;
    let raw = frames[0];
    if header.bytes_per_sample() == 1 {
        let max = frames
            .iter()
            .flat_map(|f| f.iter().copied())
            .max()
            .unwrap_or(0) as u32;
        if max > declared_max {
            warnings.push(format!(
                "header says {depth}-bit samples but values reach {max}; reading them as 8-bit"
            ));
            return (true, 255.0);
        }
        return (true, declared_max as f32);
    }
    let value = |i: usize, le: bool| {
        let b = [raw[2 * i], raw[2 * i + 1]];
        if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let n = raw.len() / 2;
    let little_endian = match order {
        ByteOrder::Little => true,
        ByteOrder::Big => false,
        ByteOrder::Auto => {
            // Sum of horizontal neighbour differences: the right order gives a smooth image.
            let row = header.width as usize * header.color.planes();
            let step = (n / 200_000).max(1);
            let roughness = |le: bool| -> f64 {
                (0..n.saturating_sub(1))
                    .step_by(step)
                    .filter(|i| (i + 1) % row != 0)
                    .map(|i| (value(i + 1, le) as f64 - value(i, le) as f64).abs())
                    .sum()
            };
            let (le, be) = (roughness(true), roughness(false));
            let little = le <= be * 1.05;
            if !little {
                warnings.push(format!(
                    "16-bit samples are big-endian (decided from the data; header LittleEndian flag = {}); use --byte-order to override",
                    header.little_endian_flag
                ));
            }
            little
        }
    };
    let max = frames
        .iter()
        .flat_map(|f| {
            f.chunks_exact(2).map(|b| {
                if little_endian {
                    u16::from_le_bytes([b[0], b[1]])
                } else {
                    u16::from_be_bytes([b[0], b[1]])
                }
            })
        })
        .max()
        .unwrap_or(0) as u32;
    if max > declared_max {
        warnings.push(format!(
            "header says {depth}-bit samples but values reach {max}; reading them as 16-bit"
        ));
        return (little_endian, 65535.0);
    }
    (little_endian, declared_max as f32)
}

/// Problems with a timestamp trailer, as warnings (never errors).
///
/// - steps that go backwards (out of order);
/// - values outside 1970..2200 (a trailer of garbage or of another unit);
/// - local time instead of UTC: the spec says trailer timestamps are UTC, but
///   some programs write local time. When the header's local start time and
///   UTC start time differ by a time-zone offset, and the first timestamp is
///   close to the local one rather than the UTC one, the trailer is local.
pub fn timestamp_warnings(header: &SerHeader, ts: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    if ts.is_empty() || ts.iter().all(|&t| t == 0) {
        return out;
    }
    let back: Vec<usize> = ts
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1] < w[0])
        .map(|(i, _)| i + 1)
        .collect();
    if let Some(first) = back.first() {
        out.push(format!(
            "timestamps in the trailer are not in increasing order ({} of {} steps go backwards, the first at frame {first}); they are reported as they are and not used for ordering",
            back.len(),
            ts.len() - 1
        ));
    }
    let year_1970 = TICKS_UNIX_EPOCH;
    let year_2200 = TICKS_UNIX_EPOCH + 230 * 365 * 86_400 * TICKS_PER_SECOND;
    let implausible = ts
        .iter()
        .filter(|&&t| !(year_1970..year_2200).contains(&t))
        .count();
    if implausible > 0 {
        out.push(format!(
            "{implausible} of {} trailer timestamps lie outside the years 1970 to 2200 (not 100-ns ticks since year 1?)",
            ts.len()
        ));
    }
    let (local, utc) = (header.date_time, header.date_time_utc);
    let offset = local.wrapping_sub(utc);
    let quarter_hour = 900 * TICKS_PER_SECOND;
    let plausible_zone = offset.unsigned_abs() >= quarter_hour as u64
        && offset.unsigned_abs() <= 14 * 3600 * TICKS_PER_SECOND as u64;
    if utc > 0 && local > 0 && plausible_zone {
        let t0 = ts[0];
        if t0.abs_diff(local) < t0.abs_diff(utc) {
            out.push(format!(
                "trailer timestamps look like local time, not UTC as the SER spec says (they match the header's local start time, which is {:+.2} h from UTC)",
                offset as f64 / (3600 * TICKS_PER_SECOND) as f64
            ));
        }
    }
    out
}

/// Parses and validates a header (without looking at the frames).
pub fn parse_header(b: &[u8]) -> Result<SerHeader, String> {
    if b.len() < HEADER_LEN {
        return Err(format!(
            "header is {} bytes, a SER header has {HEADER_LEN}",
            b.len()
        ));
    }
    let file_id = text(&b[0..14]);
    if !b[0..14].starts_with(b"LUCAM-RECORDER") {
        return Err(format!(
            "wrong magic {:?} (expected \"LUCAM-RECORDER\")",
            file_id
        ));
    }
    let color_code = i32_at(b, 18);
    let (w, h, depth, count) = (i32_at(b, 26), i32_at(b, 30), i32_at(b, 34), i32_at(b, 38));
    if w <= 0 || h <= 0 || w as u32 > MAX_DIM || h as u32 > MAX_DIM {
        return Err(format!("frame size {w}×{h} is outside 1..={MAX_DIM}"));
    }
    if !(1..=16).contains(&depth) {
        return Err(format!(
            "pixel depth {depth} bits is not supported (1 to 16)"
        ));
    }
    if count < 0 {
        return Err(format!("negative frame count {count}"));
    }
    Ok(SerHeader {
        file_id,
        lu_id: i32_at(b, 14),
        color: ColorId::from_code(color_code)?,
        little_endian_flag: i32_at(b, 22),
        width: w as u32,
        height: h as u32,
        depth: depth as u32,
        frame_count_header: count as u32,
        observer: text(&b[42..82]),
        instrument: text(&b[82..122]),
        telescope: text(&b[122..162]),
        date_time: i64_at(b, 162),
        date_time_utc: i64_at(b, 170),
    })
}

impl SerHeader {
    /// Bytes per stored sample.
    pub fn bytes_per_sample(&self) -> usize {
        if self.depth <= 8 {
            1
        } else {
            2
        }
    }
    /// Bytes per frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.color.planes() * self.bytes_per_sample()
    }
}

impl SerFile {
    /// Opens and validates `path` (memory-mapped).
    pub fn open(path: &Path, opts: OpenOptions) -> Result<SerFile, SerError> {
        let pb = path.to_path_buf();
        let file = File::open(path).map_err(|e| SerError::Io {
            path: pb.clone(),
            source: e,
        })?;
        let len = file
            .metadata()
            .map_err(|e| SerError::Io {
                path: pb.clone(),
                source: e,
            })?
            .len();
        if len < HEADER_LEN as u64 {
            return Err(SerError::Truncated {
                path: pb,
                reason: format!("{len} bytes, shorter than the {HEADER_LEN}-byte header"),
            });
        }
        if usize::try_from(len).is_err() {
            return Err(SerError::Unsupported {
                path: pb,
                reason: format!("{len} bytes do not fit this machine's address space"),
            });
        }
        // SAFETY: the map is read-only; a capture being rewritten underneath us
        // is outside what any reader can defend against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| SerError::Io {
            path: pb.clone(),
            source: e,
        })?;
        // No read-around on page faults: with the device's read-ahead (often
        // megabytes) every fault of a band-wise reader would pull in far more
        // than it uses, over and over once memory is short. Reading ahead is
        // asked for explicitly, for exactly the rows that will be decoded
        // ([`SerFile::prefetch_rows`]).
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        SerFile::from_storage(pb, Storage::Map(map), opts)
    }

    /// Parses and validates a SER file held in memory. `path` only names the
    /// data in messages (errors and warnings read as they would for a file).
    pub fn from_bytes(path: &Path, bytes: Vec<u8>, opts: OpenOptions) -> Result<SerFile, SerError> {
        SerFile::from_storage(path.to_path_buf(), Storage::Mem(bytes), opts)
    }

    fn from_storage(pb: PathBuf, data: Storage, opts: OpenOptions) -> Result<SerFile, SerError> {
        let len = data.len() as u64;
        if len < HEADER_LEN as u64 {
            return Err(SerError::Truncated {
                path: pb,
                reason: format!("{len} bytes, shorter than the {HEADER_LEN}-byte header"),
            });
        }
        let header = parse_header(&data[..HEADER_LEN]).map_err(|reason| {
            if reason.contains("not supported") || reason.contains("unknown colour") {
                SerError::Unsupported {
                    path: pb.clone(),
                    reason,
                }
            } else {
                SerError::Invalid {
                    path: pb.clone(),
                    reason,
                }
            }
        })?;
        // Bounded by MAX_DIM: at most 2^15 · 2^15 · 3 · 2 bytes, no overflow in u64.
        let frame_bytes = header.frame_bytes() as u64;
        let data_len = len - HEADER_LEN as u64;
        let present = data_len / frame_bytes;
        let mut warnings = Vec::new();
        let claimed = header.frame_count_header as u64;
        let frame_count: u64 = if claimed == 0 {
            if present == 0 {
                return Err(SerError::Truncated {
                    path: pb,
                    reason: format!(
                        "the header claims 0 frames and the file holds none ({data_len} bytes of data, a {}×{} frame needs {frame_bytes})",
                        header.width, header.height
                    ),
                });
            }
            // Frame indices cross the plugin boundary as u32: never more than that.
            let usable = present.min(MAX_FRAMES);
            warnings.push(format!(
                "header frame count is 0 (a capture that did not finish?); using the {usable} complete frames in the file"
            ));
            usable
        } else if claimed
            .checked_mul(frame_bytes)
            .is_none_or(|need| need > data_len)
        {
            if opts.allow_truncated && present > 0 {
                warnings.push(format!(
                    "header claims {claimed} frames but only {present} are complete; using those"
                ));
                present
            } else {
                return Err(SerError::Truncated {
                    path: pb,
                    reason: format!(
                        "header claims {claimed} frames of {}×{} ({} bytes each) but the file holds only {present} complete frames ({} bytes of data){}",
                        header.width,
                        header.height,
                        frame_bytes,
                        data_len,
                        if present > 0 { "; pass --allow-truncated to use them" } else { "" }
                    ),
                });
            }
        } else {
            claimed
        };
        let data_end = HEADER_LEN as u64 + frame_count * frame_bytes;
        let trailer_len = len - data_end;
        let timestamps = if claimed != 0 && frame_count == claimed && trailer_len == 8 * frame_count
        {
            let start = data_end as usize;
            Some(
                (0..frame_count as usize)
                    .map(|i| i64_at(&data, start + 8 * i))
                    .collect::<Vec<_>>(),
            )
        } else {
            if trailer_len != 0 && frame_count == claimed {
                warnings.push(format!(
                    "trailer of {trailer_len} bytes does not hold one 8-byte timestamp per frame ({} bytes expected); timestamps ignored",
                    8 * frame_count
                ));
            }
            None
        };
        if let Some(ts) = &timestamps {
            warnings.extend(timestamp_warnings(&header, ts));
        }
        let frame = |i: u64| {
            &data[(HEADER_LEN as u64 + i * frame_bytes) as usize
                ..(HEADER_LEN as u64 + (i + 1) * frame_bytes) as usize]
        };
        let mut looked_at = vec![0, frame_count / 2, frame_count - 1];
        looked_at.dedup();
        let frames: Vec<&[u8]> = looked_at.into_iter().map(frame).collect();
        let (little_endian, scale) =
            sample_format(&header, &frames, opts.byte_order, &mut warnings);
        Ok(SerFile {
            path: pb,
            header,
            frame_count: frame_count as usize,
            little_endian,
            scale,
            timestamps,
            warnings,
            data,
        })
    }

    /// The stored bytes of frame `index` (`index < frame_count`, so the
    /// range was checked to lie within the data when the file was opened).
    fn frame_bytes_of(&self, index: usize) -> &[u8] {
        let fb = self.header.frame_bytes();
        let start = HEADER_LEN + index * fb;
        &self.data[start..start + fb]
    }

    /// The stored bytes of frames `first .. first + count` (consecutive in
    /// the file), for uploading them undecoded; `None` past the end.
    pub fn stored_frames(&self, first: usize, count: usize) -> Option<&[u8]> {
        let end = first.checked_add(count)?;
        if end > self.frame_count {
            return None;
        }
        let fb = self.header.frame_bytes();
        Some(&self.data[HEADER_LEN + first * fb..HEADER_LEN + end * fb])
    }

    /// Maps frames `first .. first + count` into this process in one call
    /// (`MADV_POPULATE_READ`, Linux 5.14+), so that copying them does not
    /// take one page fault per page; a no-op where unsupported.
    pub fn populate_frames(&self, first: usize, count: usize) {
        if let Storage::Map(m) = &self.data {
            let fb = self.header.frame_bytes();
            let (start, len) = page_span(HEADER_LEN + first * fb, count * fb, m.len());
            #[cfg(target_os = "linux")]
            let _ = m.advise_range(memmap2::Advice::PopulateRead, start, len);
            #[cfg(not(target_os = "linux"))]
            let _ = (start, len);
        }
    }

    /// Gives up this process's mapping of frames `first .. first + count`
    /// (after [`stored_frames`](Self::stored_frames) was uploaded).
    pub fn release_frames(&self, first: usize, count: usize) {
        let fb = self.header.frame_bytes();
        self.release(HEADER_LEN + first * fb, count * fb);
    }

    /// Frame width.
    pub fn width(&self) -> usize {
        self.header.width as usize
    }
    /// Frame height.
    pub fn height(&self) -> usize {
        self.header.height as usize
    }
    /// Channels after decoding (1 or 3).
    pub fn channels(&self) -> usize {
        self.header.color.channels()
    }

    /// Stored samples of row `y` (all planes), as `f32` in `[0, 1]`.
    fn raw_row(&self, frame: &[u8], y: usize, out: &mut [f32]) {
        let n = self.width() * self.header.color.planes();
        let inv = 1.0 / self.scale;
        if self.header.bytes_per_sample() == 1 {
            for (o, b) in out.iter_mut().zip(&frame[y * n..(y + 1) * n]) {
                *o = (*b as f32 * inv).min(1.0);
            }
        } else {
            let bytes = &frame[2 * y * n..2 * (y + 1) * n];
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                let v = if self.little_endian {
                    u16::from_le_bytes([b[0], b[1]])
                } else {
                    u16::from_be_bytes([b[0], b[1]])
                };
                *o = (v as f32 * inv).min(1.0);
            }
        }
    }

    /// Decodes rows `y0 .. y0 + rows` of frame `index` into `out`
    /// (`rows × width × channels` floats in `[0, 1]`, RGB order, interleaved).
    pub fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), SerError> {
        if index >= self.frame_count {
            return Err(SerError::FrameIndex {
                path: self.path.clone(),
                index,
                count: self.frame_count,
            });
        }
        let (w, h, c) = (self.width(), self.height(), self.channels());
        if y0.checked_add(rows).is_none_or(|end| end > h)
            || rows.checked_mul(w * c) != Some(out.len())
        {
            return Err(SerError::BadRequest {
                path: self.path.clone(),
                reason: format!(
                    "rows {y0}..{y0}+{rows} of a {w}×{h}×{c} frame into a buffer of {} samples",
                    out.len()
                ),
            });
        }
        let frame = self.frame_bytes_of(index);
        match self.header.color {
            ColorId::Mono | ColorId::Rgb => {
                for r in 0..rows {
                    self.raw_row(frame, y0 + r, &mut out[r * w * c..(r + 1) * w * c]);
                }
            }
            ColorId::Bgr => {
                for r in 0..rows {
                    let row = &mut out[r * w * 3..(r + 1) * w * 3];
                    self.raw_row(frame, y0 + r, row);
                    row.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
                }
            }
            ColorId::Bayer(pattern) => {
                // The bilinear debayer needs one raw row above and below.
                let (lo, hi) = self.padded_rows(y0, rows);
                let mut raw = vec![0.0f32; (hi - lo) * w];
                for (k, y) in (lo..hi).enumerate() {
                    self.raw_row(frame, y, &mut raw[k * w..(k + 1) * w]);
                }
                debayer_rows(&raw, w, h, lo, pattern, y0, rows, out);
            }
        }
        // The decoded bytes (with the debayer's extra rows) leave this
        // process's mapping: they stay in the page cache, but the resident
        // set no longer grows with the capture.
        let (start, len) = self.padded_span(index, y0, rows);
        self.release(start, len);
        Ok(())
    }

    /// Rows `y0 .. y0 + rows` with the row above and below where the frame
    /// has them (what the debayer reads): `(first, end)`.
    fn padded_rows(&self, y0: usize, rows: usize) -> (usize, usize) {
        let end = y0.saturating_add(rows).saturating_add(1).min(self.height());
        (y0.saturating_sub(1).min(end), end)
    }

    /// Byte offset and length in the file of [`padded_rows`](Self::padded_rows)
    /// of frame `index`.
    fn padded_span(&self, index: usize, y0: usize, rows: usize) -> (usize, usize) {
        let row_bytes = self.width() * self.header.color.planes() * self.header.bytes_per_sample();
        let (lo, hi) = self.padded_rows(y0, rows);
        let frame = HEADER_LEN + index * self.header.frame_bytes();
        (frame + lo * row_bytes, (hi - lo) * row_bytes)
    }

    /// Asks the kernel to start reading rows `y0 .. y0 + rows` of frame
    /// `index` (and the row above and below, which the debayer reads) from
    /// the disk now (`MADV_WILLNEED`), so that reading overlaps the work on
    /// earlier frames. Does nothing for an index past the end or for
    /// in-memory data.
    pub fn prefetch_rows(&self, index: usize, y0: usize, rows: usize) {
        if index >= self.frame_count || y0 >= self.height() {
            return;
        }
        if let Storage::Map(m) = &self.data {
            let (start, len) = self.padded_span(index, y0, rows);
            let (start, len) = page_span(start, len, m.len());
            #[cfg(not(unix))]
            let _ = (start, len);
            // Advisory: failure only loses the read-ahead (no-op off unix).
            #[cfg(unix)]
            let _ = m.advise_range(memmap2::Advice::WillNeed, start, len);
        }
    }

    /// Unmaps the pages of `start .. start + len` from this process
    /// (`MADV_DONTNEED`); the next access maps them again from the page cache.
    fn release(&self, start: usize, len: usize) {
        // A fault also maps the cached pages around it (the kernel's
        // fault-around, 64 KiB by default): release those too, or they stay
        // mapped and the resident set grows with every frame.
        const AROUND: usize = 64 << 10;
        if let Storage::Map(m) = &self.data {
            let lo = start.saturating_sub(AROUND);
            let (start, len) = page_span(lo, len + (start - lo) + AROUND, m.len());
            // SAFETY: the mapping is a read-only shared mapping of a file, so
            // dropping pages loses nothing: a later read (from any thread)
            // faults the same file contents back in.
            #[cfg(unix)]
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len) };
            #[cfg(not(unix))]
            let _ = (m, start, len);
        }
    }

    /// Decodes one whole frame.
    pub fn decode_frame(&self, index: usize) -> Result<Vec<f32>, SerError> {
        let mut v = vec![0.0; self.width() * self.height() * self.channels()];
        self.decode_rows(index, 0, self.height(), &mut v)?;
        Ok(v)
    }
}

/// Writes SER files (used by the demo and the tests' synthetic captures).
pub mod writer {
    use super::*;
    use std::io::Write;

    /// What to write in the header.
    #[derive(Debug, Clone)]
    pub struct SerSpec {
        pub width: u32,
        pub height: u32,
        pub color: ColorId,
        pub depth: u32,
        /// Value of the LittleEndian field (data are written little-endian unless `big_endian`).
        pub little_endian_flag: i32,
        pub big_endian: bool,
        /// Frame count written in the header (None = the real count).
        pub header_frame_count: Option<u32>,
        pub observer: String,
        pub instrument: String,
        pub telescope: String,
        /// Start of the capture, local time (100-ns ticks since year 1).
        pub date_time: i64,
        /// Start of the capture, UTC.
        pub date_time_utc: i64,
    }

    impl SerSpec {
        pub fn new(width: u32, height: u32, color: ColorId, depth: u32) -> SerSpec {
            SerSpec {
                width,
                height,
                color,
                depth,
                little_endian_flag: 0,
                big_endian: false,
                header_frame_count: None,
                observer: "jupiter".into(),
                instrument: "synthetic".into(),
                telescope: "synthetic".into(),
                date_time: DEFAULT_DATE,
                date_time_utc: DEFAULT_DATE,
            }
        }
    }

    /// The start time written by default (a date in 2022, UTC = local).
    pub const DEFAULT_DATE: i64 = 638_000_000_000_000_000;

    fn field(s: &str) -> [u8; 40] {
        let mut b = [0u8; 40];
        let n = s.len().min(40);
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        b
    }

    /// The 178-byte header.
    pub fn header_bytes(spec: &SerSpec, frames: u32) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_LEN);
        h.extend_from_slice(b"LUCAM-RECORDER");
        h.extend_from_slice(&0i32.to_le_bytes());
        h.extend_from_slice(&spec.color.code().to_le_bytes());
        h.extend_from_slice(&spec.little_endian_flag.to_le_bytes());
        h.extend_from_slice(&(spec.width as i32).to_le_bytes());
        h.extend_from_slice(&(spec.height as i32).to_le_bytes());
        h.extend_from_slice(&(spec.depth as i32).to_le_bytes());
        h.extend_from_slice(&(spec.header_frame_count.unwrap_or(frames) as i32).to_le_bytes());
        h.extend_from_slice(&field(&spec.observer));
        h.extend_from_slice(&field(&spec.instrument));
        h.extend_from_slice(&field(&spec.telescope));
        h.extend_from_slice(&spec.date_time.to_le_bytes());
        h.extend_from_slice(&spec.date_time_utc.to_le_bytes());
        debug_assert_eq!(h.len(), HEADER_LEN);
        h
    }

    /// Encodes one frame of stored samples (values already in sample units,
    /// `width × height × planes`, RGB order for colour; BGR files are swapped here).
    pub fn frame_bytes(spec: &SerSpec, samples: &[u16]) -> Vec<u8> {
        let planes = spec.color.planes();
        assert_eq!(samples.len(), (spec.width * spec.height) as usize * planes);
        let mut s = samples.to_vec();
        if spec.color == ColorId::Bgr {
            s.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
        }
        if spec.depth <= 8 {
            s.iter().map(|&v| v.min(255) as u8).collect()
        } else if spec.big_endian {
            s.iter().flat_map(|v| v.to_be_bytes()).collect()
        } else {
            s.iter().flat_map(|v| v.to_le_bytes()).collect()
        }
    }

    /// Writes a whole SER file: header, frames, optional timestamp trailer.
    pub fn write_ser(
        path: &Path,
        spec: &SerSpec,
        frames: &[Vec<u16>],
        timestamps: Option<&[i64]>,
    ) -> std::io::Result<()> {
        let mut w = SerWriter::create(path, spec, frames.len() as u32)?;
        for fr in frames {
            w.push(fr)?;
        }
        w.finish(timestamps)
    }

    /// Writes a SER file frame by frame, so a capture of any length is
    /// produced without holding its frames in memory.
    pub struct SerWriter {
        out: std::io::BufWriter<File>,
        spec: SerSpec,
    }

    impl SerWriter {
        /// Creates `path` and writes the header for `frames` frames.
        pub fn create(path: &Path, spec: &SerSpec, frames: u32) -> std::io::Result<SerWriter> {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(path)?);
            out.write_all(&header_bytes(spec, frames))?;
            Ok(SerWriter {
                out,
                spec: spec.clone(),
            })
        }

        /// Appends one frame (see [`frame_bytes`]).
        pub fn push(&mut self, samples: &[u16]) -> std::io::Result<()> {
            self.out.write_all(&frame_bytes(&self.spec, samples))
        }

        /// Writes the optional timestamp trailer and flushes.
        pub fn finish(mut self, timestamps: Option<&[i64]>) -> std::io::Result<()> {
            if let Some(ts) = timestamps {
                for t in ts {
                    self.out.write_all(&t.to_le_bytes())?;
                }
            }
            self.out.flush()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::writer::*;
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jupiter-ser-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join(name)
    }

    fn ramp(w: u32, h: u32, planes: usize, max: u16) -> Vec<u16> {
        (0..(w * h) as usize * planes)
            .map(|i| ((i * 37) % (max as usize + 1)) as u16)
            .collect()
    }

    fn smooth(w: u32, h: u32, planes: usize, max: u16) -> Vec<u16> {
        (0..(w * h) as usize * planes)
            .map(|i| {
                let p = i / planes;
                let (x, y) = ((p as u32 % w) as f32, (p as u32 / w) as f32);
                (((x * 0.1).sin() * (y * 0.13).cos() * 0.4 + 0.5) * max as f32) as u16
            })
            .collect()
    }

    #[test]
    fn reads_mono_8_and_16_bit_with_timestamps() {
        for depth in [8, 12, 16] {
            let max = ((1u32 << depth) - 1) as u16;
            let spec = SerSpec::new(7, 5, ColorId::Mono, depth);
            let frames = vec![ramp(7, 5, 1, max), smooth(7, 5, 1, max)];
            let p = tmp(&format!("mono{depth}.ser"));
            let ts = [DEFAULT_DATE + 10, DEFAULT_DATE + 20];
            write_ser(&p, &spec, &frames, Some(&ts)).unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            assert_eq!(
                (s.width(), s.height(), s.channels(), s.frame_count),
                (7, 5, 1, 2)
            );
            assert_eq!(s.timestamps.as_deref(), Some(&ts[..]));
            let f = s.decode_frame(1).unwrap();
            for (a, b) in f.iter().zip(&frames[1]) {
                assert!((a - *b as f32 / max as f32).abs() < 1e-6);
            }
            assert!(s.warnings.is_empty(), "{:?}", s.warnings);
        }
    }

    #[test]
    fn both_byte_orders_and_the_flag_quirk() {
        let frame = smooth(64, 32, 1, 4095);
        for (flag, big) in [(0, false), (1, false), (0, true), (1, true)] {
            let mut spec = SerSpec::new(64, 32, ColorId::Mono, 12);
            spec.little_endian_flag = flag;
            spec.big_endian = big;
            let p = tmp(&format!("order{flag}{big}.ser"));
            write_ser(&p, &spec, std::slice::from_ref(&frame), None).unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            assert_eq!(s.little_endian, !big, "flag {flag} big {big}");
            let f = s.decode_frame(0).unwrap();
            assert!((f[100] - frame[100] as f32 / 4095.0).abs() < 1e-6);
            // An explicit override wins.
            let forced = SerFile::open(
                &p,
                OpenOptions {
                    byte_order: ByteOrder::Little,
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(forced.little_endian);
        }
    }

    #[test]
    fn rgb_bgr_and_bayer_decode_to_rgb() {
        let rgb = smooth(6, 4, 3, 255);
        for color in [ColorId::Rgb, ColorId::Bgr] {
            let p = tmp(&format!("{}.ser", color.name()));
            write_ser(
                &p,
                &SerSpec::new(6, 4, color, 8),
                std::slice::from_ref(&rgb),
                None,
            )
            .unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            let f = s.decode_frame(0).unwrap();
            for (a, b) in f.iter().zip(&rgb) {
                assert!((a - *b as f32 / 255.0).abs() < 1e-6, "{color:?}");
            }
        }
        for pattern in [
            BayerPattern::Rggb,
            BayerPattern::Grbg,
            BayerPattern::Gbrg,
            BayerPattern::Bggr,
        ] {
            // A flat colour mosaiced and debayered comes back as that colour.
            let (r, g, b) = (200u16, 120u16, 40u16);
            let mosaic: Vec<u16> = (0..8 * 6)
                .map(|i| match pattern.color_at(i % 8, i / 8) {
                    0 => r,
                    1 => g,
                    _ => b,
                })
                .collect();
            let p = tmp(&format!("{}.ser", pattern.name()));
            write_ser(
                &p,
                &SerSpec::new(8, 6, ColorId::Bayer(pattern), 8),
                &[mosaic],
                None,
            )
            .unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            assert_eq!(s.channels(), 3);
            let f = s.decode_frame(0).unwrap();
            for px in f.chunks_exact(3) {
                assert!(
                    (px[0] - 200.0 / 255.0).abs() < 1e-5
                        && (px[1] - 120.0 / 255.0).abs() < 1e-5
                        && (px[2] - 40.0 / 255.0).abs() < 1e-5
                );
            }
        }
    }

    #[test]
    fn rejects_malformed_headers() {
        let good = header_bytes(&SerSpec::new(4, 4, ColorId::Mono, 8), 1);
        assert!(parse_header(&good).is_ok());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(parse_header(&bad).unwrap_err().contains("magic"));
        let mut bad = good.clone();
        bad[26..30].copy_from_slice(&0i32.to_le_bytes());
        assert!(parse_header(&bad).unwrap_err().contains("frame size"));
        let mut bad = good.clone();
        bad[34..38].copy_from_slice(&17i32.to_le_bytes());
        assert!(parse_header(&bad).unwrap_err().contains("depth"));
        let mut bad = good.clone();
        bad[18..22].copy_from_slice(&16i32.to_le_bytes());
        assert!(parse_header(&bad).unwrap_err().contains("CMY"));
        assert!(parse_header(&good[..100]).unwrap_err().contains("178"));
    }

    #[test]
    fn truncated_and_absurd_files_fail_cleanly() {
        // A header claiming 30000×30000×10⁹ frames over a tiny file.
        let mut spec = SerSpec::new(30000, 30000, ColorId::Mono, 16);
        spec.header_frame_count = Some(1_000_000_000);
        let p = tmp("absurd.ser");
        std::fs::write(&p, header_bytes(&spec, 0)).unwrap();
        let e = SerFile::open(&p, OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("absurd.ser") && e.contains("truncated"), "{e}");
        // Half a frame missing: error, or the complete frames with --allow-truncated.
        let spec = SerSpec::new(8, 8, ColorId::Mono, 8);
        let frames = vec![ramp(8, 8, 1, 255); 3];
        let p = tmp("cut.ser");
        write_ser(&p, &spec, &frames, None).unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 20).unwrap();
        let e = SerFile::open(&p, OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("claims 3 frames") && e.contains("2 complete"),
            "{e}"
        );
        let s = SerFile::open(
            &p,
            OpenOptions {
                allow_truncated: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.frame_count, 2);
        // Shorter than a header.
        std::fs::write(&p, b"LUCAM").unwrap();
        assert!(SerFile::open(&p, OpenOptions::default())
            .err()
            .unwrap()
            .to_string()
            .contains("header"));
    }

    #[test]
    fn zero_frame_count_is_recomputed() {
        let mut spec = SerSpec::new(8, 8, ColorId::Mono, 8);
        spec.header_frame_count = Some(0);
        let p = tmp("zero.ser");
        write_ser(&p, &spec, &vec![ramp(8, 8, 1, 255); 4], None).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert_eq!(s.frame_count, 4);
        assert!(s.warnings[0].contains("frame count is 0"));
    }

    #[test]
    fn memory_and_mapped_files_parse_the_same() {
        let spec = SerSpec::new(9, 7, ColorId::Bayer(BayerPattern::Grbg), 12);
        let frames = vec![smooth(9, 7, 1, 4095), ramp(9, 7, 1, 4095)];
        let p = tmp("mem.ser");
        write_ser(&p, &spec, &frames, Some(&[1, 2])).unwrap();
        let a = SerFile::open(&p, OpenOptions::default()).unwrap();
        let b =
            SerFile::from_bytes(&p, std::fs::read(&p).unwrap(), OpenOptions::default()).unwrap();
        assert_eq!(
            (a.frame_count, a.little_endian, a.scale, &a.timestamps),
            (b.frame_count, b.little_endian, b.scale, &b.timestamps)
        );
        for i in 0..2 {
            assert_eq!(a.decode_frame(i).unwrap(), b.decode_frame(i).unwrap());
        }
        let e = SerFile::from_bytes(
            Path::new("in-memory.ser"),
            vec![0; 10],
            OpenOptions::default(),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(e.contains("in-memory.ser") && e.contains("178"), "{e}");
    }

    #[test]
    fn released_and_prefetched_pages_read_back_the_same() {
        // Frames of several pages each, read in overlapping bands (each read
        // drops its pages from the mapping), then again whole, in parallel.
        let (w, h) = (700u32, 40u32);
        let spec = SerSpec::new(w, h, ColorId::Bayer(BayerPattern::Rggb), 12);
        let frames: Vec<Vec<u16>> = (0..4)
            .map(|k| {
                (0..w * h)
                    .map(|i| ((i * 7 + k * 131) % 4096) as u16)
                    .collect()
            })
            .collect();
        let p = tmp("release.ser");
        write_ser(&p, &spec, &frames, None).unwrap();
        let a = SerFile::open(&p, OpenOptions::default()).unwrap();
        let b =
            SerFile::from_bytes(&p, std::fs::read(&p).unwrap(), OpenOptions::default()).unwrap();
        let row = w as usize * 3;
        for i in 0..4 {
            a.prefetch_rows(i + 1, 0, h as usize);
            let whole = b.decode_frame(i).unwrap();
            for (y0, rows) in [(0, 9), (7, 13), (20, 20), (39, 1)] {
                let mut out = vec![0.0; rows * row];
                a.decode_rows(i, y0, rows, &mut out).unwrap();
                assert_eq!(
                    out,
                    whole[y0 * row..(y0 + rows) * row],
                    "frame {i} rows {y0}+{rows}"
                );
            }
        }
        a.prefetch_rows(usize::MAX, 0, 1);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for i in 0..4 {
                        assert_eq!(a.decode_frame(i).unwrap(), b.decode_frame(i).unwrap());
                    }
                });
            }
        });
    }

    #[test]
    fn bad_read_requests_are_errors_not_panics() {
        let p = tmp("req.ser");
        write_ser(
            &p,
            &SerSpec::new(4, 4, ColorId::Mono, 8),
            &[ramp(4, 4, 1, 255)],
            None,
        )
        .unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        let mut out = vec![0.0; 8];
        assert!(s
            .decode_rows(0, 3, 2, &mut out)
            .err()
            .unwrap()
            .to_string()
            .contains("req.ser"));
        assert!(s.decode_rows(0, usize::MAX, 2, &mut out).is_err());
        assert!(s.decode_rows(0, 0, 1, &mut out).is_err()); // buffer of 2 rows for 1
        assert!(matches!(
            s.decode_rows(1, 0, 2, &mut out),
            Err(SerError::FrameIndex { .. })
        ));
        s.decode_rows(0, 2, 2, &mut out).unwrap();
    }

    #[test]
    fn timestamps_out_of_order_warn_and_still_open() {
        let spec = SerSpec::new(4, 4, ColorId::Mono, 8);
        let p = tmp("ts-order.ser");
        let t = DEFAULT_DATE;
        write_ser(
            &p,
            &spec,
            &vec![ramp(4, 4, 1, 255); 4],
            Some(&[t, t + 10, t + 5, t + 20]),
        )
        .unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert_eq!(s.frame_count, 4);
        assert_eq!(s.timestamps.as_ref().unwrap()[2], t + 5);
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("not in increasing order")
                    && w.contains("1 of 3")
                    && w.contains("frame 2")),
            "{:?}",
            s.warnings
        );
        // Garbage timestamps: a warning, not an error.
        write_ser(&p, &spec, &vec![ramp(4, 4, 1, 255); 2], Some(&[-5, 7])).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert!(
            s.warnings.iter().any(|w| w.contains("outside the years")),
            "{:?}",
            s.warnings
        );
        // All-zero timestamps (programs that do not record them): silent.
        write_ser(&p, &spec, &vec![ramp(4, 4, 1, 255); 2], Some(&[0, 0])).unwrap();
        assert!(SerFile::open(&p, OpenOptions::default())
            .unwrap()
            .warnings
            .is_empty());
    }

    #[test]
    fn timestamps_in_local_time_are_reported() {
        let hour = 3600 * TICKS_PER_SECOND;
        let mut spec = SerSpec::new(4, 4, ColorId::Mono, 8);
        // Captured at UTC+2: local start = UTC start + 2 h.
        spec.date_time_utc = DEFAULT_DATE;
        spec.date_time = DEFAULT_DATE + 2 * hour;
        let p = tmp("ts-local.ser");
        let local: Vec<i64> = (0..3).map(|i| spec.date_time + i * 100_000).collect();
        write_ser(&p, &spec, &vec![ramp(4, 4, 1, 255); 3], Some(&local)).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("local time") && w.contains("+2.00 h")),
            "{:?}",
            s.warnings
        );
        // The same capture with UTC timestamps: no warning.
        let utc: Vec<i64> = (0..3).map(|i| spec.date_time_utc + i * 100_000).collect();
        write_ser(&p, &spec, &vec![ramp(4, 4, 1, 255); 3], Some(&utc)).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    /// A capture of more than 4 GiB (a sparse file: cheap on disk): every
    /// offset past 2^32 must be computed in 64 bits.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn files_over_4_gib() {
        let (w, h) = (2048u32, 1024u32);
        let spec = SerSpec::new(w, h, ColorId::Mono, 16);
        let fb = (w * h * 2) as u64;
        let frames = 1025u64; // the last frame starts past 4 GiB
        let data_end = HEADER_LEN as u64 + frames * fb;
        assert!(data_end - fb > 1 << 32);
        let p = tmp("huge.ser");
        let write = || -> std::io::Result<()> {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::File::create(&p)?;
            f.set_len(data_end + 8 * frames)?;
            f.write_all(&header_bytes(&spec, frames as u32))?;
            // The last frame: a recognisable ramp; the others stay zero (holes).
            let last: Vec<u16> = (0..w * h).map(|i| (i % 65521) as u16).collect();
            f.seek(SeekFrom::Start(data_end - fb))?;
            f.write_all(&frame_bytes(&spec, &last))?;
            let ts: Vec<u8> = (0..frames as i64)
                .flat_map(|i| (DEFAULT_DATE + i).to_le_bytes())
                .collect();
            f.write_all(&ts)
        };
        if let Err(e) = write() {
            eprintln!("skipping: cannot make a sparse 4 GiB file here: {e}");
            let _ = std::fs::remove_file(&p);
            return;
        }
        // Removes the 4 GiB file even when an assertion fails.
        struct Remove<'a>(&'a Path);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(self.0);
            }
        }
        let _remove = Remove(&p);
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert_eq!(s.frame_count, frames as usize);
        let ts = s.timestamps.as_ref().unwrap();
        assert_eq!(ts[frames as usize - 1], DEFAULT_DATE + frames as i64 - 1);
        let mut row = vec![0.0f32; w as usize];
        s.decode_rows(frames as usize - 1, h as usize - 1, 1, &mut row)
            .unwrap();
        let i0 = (w * (h - 1)) as usize;
        for (k, v) in row.iter().enumerate() {
            assert!((v - ((i0 + k) % 65521) as f32 / 65535.0).abs() < 1e-6);
        }
    }

    /// Regression (found by `tests/fuzz_ser.rs`): the depth was inferred from
    /// the first frame only, so a later frame with larger values decoded to
    /// samples above 1. The last and middle frames are now looked at too, and
    /// the decoder clamps what no frame it looked at announced.
    #[test]
    fn a_dark_first_frame_does_not_fix_the_scale() {
        let spec = SerSpec::new(8, 8, ColorId::Mono, 1);
        let p = tmp("dark-first.ser");
        let (dark, bright) = (vec![1u16; 64], vec![200u16; 64]);
        write_ser(
            &p,
            &spec,
            &[dark.clone(), dark.clone(), dark.clone(), bright.clone()],
            None,
        )
        .unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert_eq!(s.scale, 255.0);
        assert!(
            s.warnings
                .iter()
                .any(|w| w.contains("1-bit") && w.contains("200")),
            "{:?}",
            s.warnings
        );
        // Bright frame 1 of 4 is not looked at: clamped, never above 1.
        write_ser(
            &p,
            &spec,
            &[dark.clone(), bright, dark.clone(), dark.clone(), dark],
            None,
        )
        .unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert!(s.decode_frame(1).unwrap().iter().all(|&v| v == 1.0));
        // 16-bit samples in a 12-bit file whose first frame is dark.
        let spec = SerSpec::new(16, 16, ColorId::Mono, 12);
        write_ser(&p, &spec, &[vec![10; 256], smooth(16, 16, 1, 65535)], None).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert_eq!(s.scale, 65535.0);
    }

    #[test]
    fn depth_that_disagrees_with_the_data() {
        // 16-bit samples declared as 12 bit.
        let spec = SerSpec::new(16, 16, ColorId::Mono, 12);
        let p = tmp("depth.ser");
        write_ser(&p, &spec, &[smooth(16, 16, 1, 65535)], None).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        assert_eq!(s.scale, 65535.0);
        assert!(s.warnings.iter().any(|w| w.contains("12-bit")));
    }
}
