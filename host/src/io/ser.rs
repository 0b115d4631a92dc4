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

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::debayer::{debayer_rows, BayerPattern};

/// Size of the SER header.
pub const HEADER_LEN: usize = 178;
/// Largest accepted width or height.
pub const MAX_DIM: u32 = 1 << 15;

/// Errors reading a SER file; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum SerError {
    #[error("{path}: cannot open: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a SER file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: unsupported SER file: {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path}: truncated: {reason}")]
    Truncated { path: PathBuf, reason: String },
    #[error("{path}: frame {index} does not exist (the file has {count} frames)")]
    FrameIndex { path: PathBuf, index: usize, count: usize },
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
            16..=19 => return Err(format!("CMY Bayer pattern (colour ID {code}) is not supported")),
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
        OpenOptions { byte_order: ByteOrder::Auto, allow_truncated: false }
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
    map: Mmap,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).trim_end_matches(['\0', ' ']).to_string()
}

fn i32_at(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn i64_at(b: &[u8], o: usize) -> i64 {
    i64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Chooses the byte order of 16-bit samples and the scale mapping samples to
/// `[0, 1]`, from the first frame's bytes. Returns `(little_endian, scale)`.
fn sample_format(header: &SerHeader, raw: &[u8], order: ByteOrder, warnings: &mut Vec<String>) -> (bool, f32) {
    let depth = header.depth;
    let declared_max = (1u32 << depth) - 1;
    if header.bytes_per_sample() == 1 {
        let max = raw.iter().copied().max().unwrap_or(0) as u32;
        if max > declared_max {
            warnings.push(format!("header says {depth}-bit samples but values reach {max}; reading them as 8-bit"));
            return (true, 255.0);
        }
        return (true, declared_max as f32);
    }
    let value = |i: usize, le: bool| {
        let b = [raw[2 * i], raw[2 * i + 1]];
        if le { u16::from_le_bytes(b) } else { u16::from_be_bytes(b) }
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
    let max = (0..n).map(|i| value(i, little_endian)).max().unwrap_or(0) as u32;
    if max > declared_max {
        warnings.push(format!("header says {depth}-bit samples but values reach {max}; reading them as 16-bit"));
        return (little_endian, 65535.0);
    }
    (little_endian, declared_max as f32)
}

/// Parses and validates a header (without looking at the frames).
pub fn parse_header(b: &[u8]) -> Result<SerHeader, String> {
    if b.len() < HEADER_LEN {
        return Err(format!("header is {} bytes, a SER header has {HEADER_LEN}", b.len()));
    }
    let file_id = text(&b[0..14]);
    if !b[0..14].starts_with(b"LUCAM-RECORDER") {
        return Err(format!("wrong magic {:?} (expected \"LUCAM-RECORDER\")", file_id));
    }
    let color_code = i32_at(b, 18);
    let (w, h, depth, count) = (i32_at(b, 26), i32_at(b, 30), i32_at(b, 34), i32_at(b, 38));
    if w <= 0 || h <= 0 || w as u32 > MAX_DIM || h as u32 > MAX_DIM {
        return Err(format!("frame size {w}×{h} is outside 1..={MAX_DIM}"));
    }
    if !(1..=16).contains(&depth) {
        return Err(format!("pixel depth {depth} bits is not supported (1 to 16)"));
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
    /// Opens and validates `path`.
    pub fn open(path: &Path, opts: OpenOptions) -> Result<SerFile, SerError> {
        let pb = path.to_path_buf();
        let file = File::open(path).map_err(|e| SerError::Io { path: pb.clone(), source: e })?;
        let len = file.metadata().map_err(|e| SerError::Io { path: pb.clone(), source: e })?.len();
        if len < HEADER_LEN as u64 {
            return Err(SerError::Truncated {
                path: pb,
                reason: format!("{len} bytes, shorter than the {HEADER_LEN}-byte header"),
            });
        }
        // SAFETY: the map is read-only; a capture being rewritten underneath us
        // is outside what any reader can defend against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| SerError::Io { path: pb.clone(), source: e })?;
        let header = parse_header(&map[..HEADER_LEN]).map_err(|reason| {
            if reason.contains("not supported") || reason.contains("unknown colour") {
                SerError::Unsupported { path: pb.clone(), reason }
            } else {
                SerError::Invalid { path: pb.clone(), reason }
            }
        })?;
        let frame_bytes = header.frame_bytes() as u64;
        let data_len = len - HEADER_LEN as u64;
        let present = (data_len / frame_bytes) as usize;
        let mut warnings = Vec::new();
        let claimed = header.frame_count_header as usize;
        let frame_count = if claimed == 0 {
            if present == 0 {
                return Err(SerError::Truncated { path: pb, reason: "the header claims 0 frames and the file holds none".into() });
            }
            warnings.push(format!(
                "header frame count is 0 (a capture that did not finish?); using the {present} complete frames in the file"
            ));
            present
        } else if (claimed as u64).checked_mul(frame_bytes).is_none_or(|need| need > data_len) {
            if opts.allow_truncated && present > 0 {
                warnings.push(format!("header claims {claimed} frames but only {present} are complete; using those"));
                present
            } else {
                return Err(SerError::Truncated {
                    path: pb,
                    reason: format!(
                        "header claims {claimed} frames of {}×{} ({} bytes each) but the file holds only {present} complete frames ({} bytes of data); pass --allow-truncated to use them",
                        header.width, header.height, frame_bytes, data_len
                    ),
                });
            }
        } else {
            claimed
        };
        let data_end = HEADER_LEN as u64 + frame_count as u64 * frame_bytes;
        let trailer_len = len - data_end;
        let timestamps = if claimed != 0 && frame_count == claimed && trailer_len == 8 * frame_count as u64 {
            Some((0..frame_count).map(|i| i64_at(&map, data_end as usize + 8 * i)).collect::<Vec<_>>())
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
            if ts.windows(2).any(|w| w[1] < w[0]) {
                warnings.push("timestamps in the trailer are not in increasing order".into());
            }
        }
        let first = &map[HEADER_LEN..HEADER_LEN + frame_bytes as usize];
        let (little_endian, scale) = sample_format(&header, first, opts.byte_order, &mut warnings);
        Ok(SerFile { path: pb, header, frame_count, little_endian, scale, timestamps, warnings, map })
    }

    fn frame_bytes_of(&self, index: usize) -> &[u8] {
        let fb = self.header.frame_bytes();
        &self.map[HEADER_LEN + index * fb..HEADER_LEN + (index + 1) * fb]
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
                *o = *b as f32 * inv;
            }
        } else {
            let bytes = &frame[2 * y * n..2 * (y + 1) * n];
            for (o, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                let v = if self.little_endian { u16::from_le_bytes([b[0], b[1]]) } else { u16::from_be_bytes([b[0], b[1]]) };
                *o = v as f32 * inv;
            }
        }
    }

    /// Decodes rows `y0 .. y0 + rows` of frame `index` into `out`
    /// (`rows × width × channels` floats in `[0, 1]`, RGB order, interleaved).
    pub fn decode_rows(&self, index: usize, y0: usize, rows: usize, out: &mut [f32]) -> Result<(), SerError> {
        if index >= self.frame_count {
            return Err(SerError::FrameIndex { path: self.path.clone(), index, count: self.frame_count });
        }
        let (w, h, c) = (self.width(), self.height(), self.channels());
        assert!(y0 + rows <= h && out.len() == rows * w * c, "decode_rows: bad row range");
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
                let lo = y0.saturating_sub(1);
                let hi = (y0 + rows + 1).min(h);
                let mut raw = vec![0.0f32; (hi - lo) * w];
                for (k, y) in (lo..hi).enumerate() {
                    self.raw_row(frame, y, &mut raw[k * w..(k + 1) * w]);
                }
                debayer_rows(&raw, w, h, lo, pattern, y0, rows, out);
            }
        }
        Ok(())
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
            }
        }
    }

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
        h.extend_from_slice(&638_000_000_000_000_000i64.to_le_bytes());
        h.extend_from_slice(&638_000_000_000_000_000i64.to_le_bytes());
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
    pub fn write_ser(path: &Path, spec: &SerSpec, frames: &[Vec<u16>], timestamps: Option<&[i64]>) -> std::io::Result<()> {
        let mut f = std::io::BufWriter::new(File::create(path)?);
        f.write_all(&header_bytes(spec, frames.len() as u32))?;
        for fr in frames {
            f.write_all(&frame_bytes(spec, fr))?;
        }
        if let Some(ts) = timestamps {
            for t in ts {
                f.write_all(&t.to_le_bytes())?;
            }
        }
        f.flush()
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
        (0..(w * h) as usize * planes).map(|i| ((i * 37) % (max as usize + 1)) as u16).collect()
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
            write_ser(&p, &spec, &frames, Some(&[10, 20])).unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            assert_eq!((s.width(), s.height(), s.channels(), s.frame_count), (7, 5, 1, 2));
            assert_eq!(s.timestamps.as_deref(), Some(&[10i64, 20][..]));
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
            let forced = SerFile::open(&p, OpenOptions { byte_order: ByteOrder::Little, ..Default::default() }).unwrap();
            assert!(forced.little_endian);
        }
    }

    #[test]
    fn rgb_bgr_and_bayer_decode_to_rgb() {
        let rgb = smooth(6, 4, 3, 255);
        for color in [ColorId::Rgb, ColorId::Bgr] {
            let p = tmp(&format!("{}.ser", color.name()));
            write_ser(&p, &SerSpec::new(6, 4, color, 8), std::slice::from_ref(&rgb), None).unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            let f = s.decode_frame(0).unwrap();
            for (a, b) in f.iter().zip(&rgb) {
                assert!((a - *b as f32 / 255.0).abs() < 1e-6, "{color:?}");
            }
        }
        for pattern in [BayerPattern::Rggb, BayerPattern::Grbg, BayerPattern::Gbrg, BayerPattern::Bggr] {
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
            write_ser(&p, &SerSpec::new(8, 6, ColorId::Bayer(pattern), 8), &[mosaic], None).unwrap();
            let s = SerFile::open(&p, OpenOptions::default()).unwrap();
            assert_eq!(s.channels(), 3);
            let f = s.decode_frame(0).unwrap();
            for px in f.chunks_exact(3) {
                assert!((px[0] - 200.0 / 255.0).abs() < 1e-5 && (px[1] - 120.0 / 255.0).abs() < 1e-5 && (px[2] - 40.0 / 255.0).abs() < 1e-5);
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
        let e = SerFile::open(&p, OpenOptions::default()).err().unwrap().to_string();
        assert!(e.contains("absurd.ser") && e.contains("truncated"), "{e}");
        // Half a frame missing: error, or the complete frames with --allow-truncated.
        let spec = SerSpec::new(8, 8, ColorId::Mono, 8);
        let frames = vec![ramp(8, 8, 1, 255); 3];
        let p = tmp("cut.ser");
        write_ser(&p, &spec, &frames, None).unwrap();
        let len = std::fs::metadata(&p).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.set_len(len - 20).unwrap();
        let e = SerFile::open(&p, OpenOptions::default()).err().unwrap().to_string();
        assert!(e.contains("claims 3 frames") && e.contains("2 complete"), "{e}");
        let s = SerFile::open(&p, OpenOptions { allow_truncated: true, ..Default::default() }).unwrap();
        assert_eq!(s.frame_count, 2);
        // Shorter than a header.
        std::fs::write(&p, b"LUCAM").unwrap();
        assert!(SerFile::open(&p, OpenOptions::default()).err().unwrap().to_string().contains("header"));
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
