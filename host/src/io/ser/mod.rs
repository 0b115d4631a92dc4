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
//! **Storage.** The file is memory-mapped ([`SerFile::open`]) for the header,
//! the checks at open and the device upload; frames are decoded from
//! positional reads of their rows, so a file cut short by another program
//! mid-run is an error naming the frame, not SIGBUS. The same parser
//! also runs over bytes already in memory ([`SerFile::from_bytes`]), which is
//! what the property tests (`host/tests/fuzz_ser.rs`) use. Offsets are `u64`
//! while validating and `usize` (checked to fit) when indexing, so captures
//! over 4 GiB work on 64-bit hosts.
//!
//! **Timestamps.** A trailer whose timestamps go backwards, lie outside any
//! plausible date, or look like local time instead of UTC is reported as a
//! warning (shown, and written to the run's report), never an error: the
//! timestamps are informational, the frames are still good.
//!
//! Files: [`header`] (layout, validation), [`samples`] (byte order and depth
//! from the data), [`timestamps`] (the trailer), [`storage`] (the map and its
//! page advice). The SER writer the tests use is `jupiter_testkit::ser`.

mod header;
mod samples;
mod storage;
mod timestamps;

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::debayer::{demosaic_rows, Demosaic};
use header::i64_at;
pub use header::{parse_header, ColorId, HeaderError, SerHeader, HEADER_LEN, MAX_DIM, MAX_FRAMES};
use samples::{sample16, sample_format};
use storage::Storage;
pub use timestamps::{iso8601, timestamp_warnings};

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
    #[error("{path}: cannot read frame {index}: {reason}")]
    FrameRead {
        path: PathBuf,
        index: usize,
        reason: String,
    },
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
    /// How a Bayer file's mosaic is demosaiced (`--demosaic`); also the
    /// rows read beyond a request ([`Demosaic::margin`]).
    pub demosaic: Demosaic,
    data: Storage,
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
        SerFile::from_storage(pb, Storage::Map(map, file), opts)
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
        let header = parse_header(&data[..HEADER_LEN]).map_err(|e| SerError::header(&pb, e))?;
        let mut warnings = Vec::new();
        let frame_count = usable_frames(&pb, &header, len, opts, &mut warnings)?;
        let timestamps = read_trailer(&header, &data, frame_count, &mut warnings);
        let (little_endian, scale) = sample_format(
            &header,
            &sampled_frames(&data, &header, frame_count),
            opts.byte_order,
            &mut warnings,
        );
        let file = SerFile {
            path: pb,
            header,
            frame_count: frame_count as usize,
            little_endian,
            scale,
            timestamps,
            warnings,
            demosaic: Demosaic::default(),
            data,
        };
        // The sampled frames were read through the map: unmap them, or
        // they stay resident for the whole run (three 48 MB frames of a
        // 24-megapixel 16-bit capture).
        for i in sampled_indices(frame_count) {
            file.release_frames(i as usize, 1);
        }
        Ok(file)
    }

    /// The stored bytes of frames `first .. first + count` (consecutive in
    /// the file), for uploading them undecoded; `None` past the end, or
    /// when the file no longer holds them (cut short since it was opened:
    /// checked first, as touching the map past the file's end is SIGBUS).
    pub fn stored_frames(&self, first: usize, count: usize) -> Option<&[u8]> {
        let end = first.checked_add(count)?;
        if end > self.frame_count {
            return None;
        }
        let fb = self.header.frame_bytes();
        let (a, b) = (HEADER_LEN + first * fb, HEADER_LEN + end * fb);
        self.data.holds(b).then(|| &self.data[a..b])
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

    /// Stored samples of row `y` of `rows` (stored rows from the first one
    /// read, all planes), as `f32` in `[0, 1]`.
    fn raw_row(&self, frame: &[u8], y: usize, out: &mut [f32]) {
        let n = self.width() * self.header.color.planes();
        let inv = 1.0 / self.scale;
        // `min(1.0)` as a select (the same value: no sample is NaN), which
        // vectorises.
        let clip = |v: f32| if v < 1.0 { v } else { 1.0 };
        if self.header.bytes_per_sample() == 1 {
            for (o, b) in out.iter_mut().zip(&frame[y * n..(y + 1) * n]) {
                *o = clip(*b as f32 * inv);
            }
        } else {
            let bytes = &frame[2 * y * n..2 * (y + 1) * n];
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                let v = sample16([b[0], b[1]], self.little_endian);
                *o = clip(v as f32 * inv);
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
        // The rows asked for, with the demosaic's margin above and below,
        // read from the file: `band` starts at row `lo`.
        let (lo, hi) = self.padded_rows(y0, rows);
        let (start, len) = self.padded_span(index, y0, rows);
        self.data
            .with_span(start, len, |band| {
                self.decode_band(band, lo, hi, (y0, rows), out)
            })
            .map_err(|reason| SerError::FrameRead {
                path: self.path.clone(),
                index,
                reason,
            })?;
        Ok(())
    }

    /// Decodes rows `y0 .. y0 + rows` from `band`, the stored rows `lo .. hi`.
    fn decode_band(
        &self,
        band: &[u8],
        lo: usize,
        hi: usize,
        (y0, rows): (usize, usize),
        out: &mut [f32],
    ) {
        let (w, h, c) = (self.width(), self.height(), self.channels());
        match self.header.color {
            ColorId::Mono | ColorId::Rgb => {
                for r in 0..rows {
                    self.raw_row(band, y0 + r - lo, &mut out[r * w * c..(r + 1) * w * c]);
                }
            }
            ColorId::Bgr => {
                for r in 0..rows {
                    let row = &mut out[r * w * 3..(r + 1) * w * 3];
                    self.raw_row(band, y0 + r - lo, row);
                    row.chunks_exact_mut(3).for_each(|p| p.swap(0, 2));
                }
            }
            ColorId::Bayer(pattern) => {
                // With the demosaic's margin (see padded_rows).
                crate::io::scratch::samples((hi - lo) * w, |raw| {
                    for k in 0..hi - lo {
                        self.raw_row(band, k, &mut raw[k * w..(k + 1) * w]);
                    }
                    demosaic_rows(self.demosaic, raw, w, h, lo, pattern, y0, rows, out);
                });
            }
        }
    }

    /// Decodes rows `y0 .. y0 + rows` of frame `index` as stored, before
    /// any debayering: a Bayer file's mosaic (one sample per pixel), what
    /// calibration works on; other layouts as [`decode_rows`](Self::decode_rows).
    pub fn decode_mosaic_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), SerError> {
        if !matches!(self.header.color, ColorId::Bayer(_)) {
            return self.decode_rows(index, y0, rows, out);
        }
        let (w, h) = (self.width(), self.height());
        if index >= self.frame_count
            || y0.checked_add(rows).is_none_or(|end| end > h)
            || rows.checked_mul(w) != Some(out.len())
        {
            return Err(SerError::BadRequest {
                path: self.path.clone(),
                reason: format!(
                    "mosaic rows {y0}..{y0}+{rows} of frame {index} ({w}×{h}, {} frames) into a buffer of {} samples",
                    self.frame_count,
                    out.len()
                ),
            });
        }
        // The padded band (the demosaic's margin) read like decode_rows's,
        // only the rows asked for decoded from it.
        let (lo, _) = self.padded_rows(y0, rows);
        let (start, len) = self.padded_span(index, y0, rows);
        self.data
            .with_span(start, len, |band| {
                for r in 0..rows {
                    self.raw_row(band, y0 + r - lo, &mut out[r * w..(r + 1) * w]);
                }
            })
            .map_err(|reason| SerError::FrameRead {
                path: self.path.clone(),
                index,
                reason,
            })?;
        Ok(())
    }

    /// Decodes one whole frame.
    pub fn decode_frame(&self, index: usize) -> Result<Vec<f32>, SerError> {
        let mut v = vec![0.0; self.width() * self.height() * self.channels()];
        self.decode_rows(index, 0, self.height(), &mut v)?;
        Ok(v)
    }
}

impl SerError {
    /// The error for a refused header: unsupported features and broken
    /// files are told apart by the header error's type.
    fn header(path: &Path, e: HeaderError) -> SerError {
        let path = path.to_path_buf();
        let reason = e.to_string();
        if e.is_unsupported() {
            SerError::Unsupported { path, reason }
        } else {
            SerError::Invalid { path, reason }
        }
    }
}

/// The frames to use: the header's count when the file holds them, the
/// complete frames present when the count is 0 (an unfinished capture) or,
/// with `allow_truncated`, when the file is short; else a `Truncated` error.
fn usable_frames(
    path: &Path,
    header: &SerHeader,
    len: u64,
    opts: OpenOptions,
    warnings: &mut Vec<String>,
) -> Result<u64, SerError> {
    // Bounded by MAX_DIM: at most 2^15 · 2^15 · 3 · 2 bytes, no overflow in u64.
    let frame_bytes = header.frame_bytes() as u64;
    let data_len = len - HEADER_LEN as u64;
    let present = data_len / frame_bytes;
    let claimed = header.frame_count_header as u64;
    let truncated = |reason: String| SerError::Truncated {
        path: path.to_path_buf(),
        reason,
    };
    if claimed == 0 {
        if present == 0 {
            return Err(truncated(format!(
                "the header claims 0 frames and the file holds none ({data_len} bytes of data, a {}×{} frame needs {frame_bytes})",
                header.width, header.height
            )));
        }
        // Frame indices cross the plugin boundary as u32: never more than that.
        let usable = present.min(MAX_FRAMES);
        warnings.push(format!(
            "header frame count is 0 (a capture that did not finish?); using the {usable} complete frames in the file"
        ));
        return Ok(usable);
    }
    if claimed
        .checked_mul(frame_bytes)
        .is_some_and(|need| need <= data_len)
    {
        return Ok(claimed);
    }
    if opts.allow_truncated && present > 0 {
        warnings.push(format!(
            "header claims {claimed} frames but only {present} are complete; using those"
        ));
        return Ok(present);
    }
    Err(truncated(format!(
        "header claims {claimed} frames of {}×{} ({} bytes each) but the file holds only {present} complete frames ({} bytes of data){}",
        header.width,
        header.height,
        frame_bytes,
        data_len,
        if present > 0 { "; pass --allow-truncated to use them" } else { "" }
    )))
}

/// The timestamp trailer when it holds exactly one time per frame of a
/// complete capture (with its warnings); a trailer of another length is
/// ignored with a warning.
fn read_trailer(
    header: &SerHeader,
    data: &[u8],
    frame_count: u64,
    warnings: &mut Vec<String>,
) -> Option<Vec<i64>> {
    let claimed = header.frame_count_header as u64;
    let data_end = HEADER_LEN as u64 + frame_count * header.frame_bytes() as u64;
    let trailer_len = data.len() as u64 - data_end;
    if claimed == 0 || frame_count != claimed || trailer_len != 8 * frame_count {
        if trailer_len != 0 && frame_count == claimed {
            warnings.push(format!(
                "trailer of {trailer_len} bytes does not hold one 8-byte timestamp per frame ({} bytes expected); timestamps ignored",
                8 * frame_count
            ));
        }
        return None;
    }
    let start = data_end as usize;
    let ts: Vec<i64> = (0..frame_count as usize)
        .map(|i| i64_at(data, start + 8 * i))
        .collect();
    warnings.extend(timestamp_warnings(header, &ts));
    Some(ts)
}

/// The first, middle and last frames (a capture may start dark), from which
/// the byte order and the sample scale are inferred.
fn sampled_frames<'a>(data: &'a [u8], header: &SerHeader, frame_count: u64) -> Vec<&'a [u8]> {
    let frame_bytes = header.frame_bytes() as u64;
    let frame = |i: u64| {
        &data[(HEADER_LEN as u64 + i * frame_bytes) as usize
            ..(HEADER_LEN as u64 + (i + 1) * frame_bytes) as usize]
    };
    sampled_indices(frame_count)
        .into_iter()
        .map(frame)
        .collect()
}

/// The indices [`sampled_frames`] looks at.
fn sampled_indices(frame_count: u64) -> Vec<u64> {
    let mut looked_at = vec![0, frame_count / 2, frame_count.saturating_sub(1)];
    looked_at.dedup();
    looked_at
}

#[cfg(test)]
mod tests {
    use super::timestamps::TICKS_PER_SECOND;
    use super::*;
    use jupiter_testkit::ser::{
        frame_bytes, header_bytes, write_ser, Cfa as BayerPattern, SerColor as ColorId, SerSpec,
        DEFAULT_DATE,
    };

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
            let p = tmp(&format!("{color:?}.ser"));
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
            let p = tmp(&format!("{pattern:?}.ser"));
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
        assert!(parse_header(&bad)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut bad = good.clone();
        bad[26..30].copy_from_slice(&0i32.to_le_bytes());
        assert!(parse_header(&bad)
            .unwrap_err()
            .to_string()
            .contains("frame size"));
        let mut bad = good.clone();
        bad[34..38].copy_from_slice(&17i32.to_le_bytes());
        assert!(parse_header(&bad)
            .unwrap_err()
            .to_string()
            .contains("depth"));
        let mut bad = good.clone();
        bad[18..22].copy_from_slice(&16i32.to_le_bytes());
        assert!(parse_header(&bad).unwrap_err().to_string().contains("CMY"));
        assert!(parse_header(&good[..100])
            .unwrap_err()
            .to_string()
            .contains("178"));
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
            crate::errln!("skipping: cannot make a sparse 4 GiB file here: {e}");
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

    #[test]
    fn a_file_cut_short_after_opening_is_an_error_naming_the_frame() {
        let spec = SerSpec::new(16, 8, ColorId::Bayer(BayerPattern::Rggb), 8);
        let frames: Vec<Vec<u16>> = (0..4).map(|_| ramp(16, 8, 1, 255)).collect();
        let p = tmp("cut-after-open.ser");
        write_ser(&p, &spec, &frames, None).unwrap();
        let s = SerFile::open(&p, OpenOptions::default()).unwrap();
        let whole = s.decode_frame(3).unwrap();
        assert!(s.stored_frames(0, 4).is_some());
        // Two frames and a half are left: frame 2 is short, frame 3 gone.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len((HEADER_LEN + 2 * 128 + 64) as u64).unwrap();
        let e = s.decode_frame(3).unwrap_err().to_string();
        assert!(
            e.contains("cut-after-open.ser: cannot read frame 3: the file ends at byte 498"),
            "{e}"
        );
        assert!(s.decode_frame(2).is_err());
        // Rows 0..2 of frame 2 (with the demosaic's two rows below) are
        // still there.
        let mut rows = vec![0.0; 2 * 16 * 3];
        s.decode_rows(2, 0, 2, &mut rows).unwrap();
        assert_eq!(rows[..], whole[..2 * 16 * 3]);
        assert!(s.stored_frames(0, 2).is_some());
        assert!(s.stored_frames(0, 3).is_none());
    }
}
