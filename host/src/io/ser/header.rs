//! The SER header: layout, colour IDs, and validation with typed errors.

use super::super::debayer::BayerPattern;

/// Size of the SER header.
pub const HEADER_LEN: usize = 178;
/// Largest accepted width or height.
pub const MAX_DIM: u32 = 1 << 15;
/// Most frames used from one file (frame counts cross the plugin ABI as `u32`;
/// a header's count is an `i32`, so only a recomputed count can exceed this).
pub const MAX_FRAMES: u64 = i32::MAX as u64;

/// Colour layout of the samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ColorId {
    Mono,
    Bayer(BayerPattern),
    Rgb,
    Bgr,
}

impl ColorId {
    fn from_code(code: i32) -> Result<ColorId, HeaderError> {
        Ok(match code {
            0 => ColorId::Mono,
            8 => ColorId::Bayer(BayerPattern::Rggb),
            9 => ColorId::Bayer(BayerPattern::Grbg),
            10 => ColorId::Bayer(BayerPattern::Gbrg),
            11 => ColorId::Bayer(BayerPattern::Bggr),
            16..=19 => return Err(HeaderError::CmyBayer(code)),
            100 => ColorId::Rgb,
            101 => ColorId::Bgr,
            other => return Err(HeaderError::UnknownColor(other)),
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

/// Why a header was refused; [`HeaderError::is_unsupported`] tells a valid
/// SER feature this reader lacks from a file that is not SER at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("header is {0} bytes, a SER header has {HEADER_LEN}")]
    Short(usize),
    #[error("wrong magic {0:?} (expected \"LUCAM-RECORDER\")")]
    Magic(String),
    #[error("frame size {0}×{1} is outside 1..={MAX_DIM}")]
    Size(i32, i32),
    #[error("pixel depth {0} bits is not supported (1 to 16)")]
    Depth(i32),
    #[error("negative frame count {0}")]
    NegativeCount(i32),
    #[error("CMY Bayer pattern (colour ID {0}) is not supported")]
    CmyBayer(i32),
    #[error("unknown colour ID {0}")]
    UnknownColor(i32),
}

impl HeaderError {
    /// A real SER feature this reader does not handle (vs. a broken file).
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self,
            HeaderError::Depth(_) | HeaderError::CmyBayer(_) | HeaderError::UnknownColor(_)
        )
    }
}

pub(super) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches(['\0', ' '])
        .to_string()
}

pub(super) fn i32_at(b: &[u8], o: usize) -> i32 {
    i32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

pub(super) fn i64_at(b: &[u8], o: usize) -> i64 {
    i64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Parses and validates a header (without looking at the frames).
pub fn parse_header(b: &[u8]) -> Result<SerHeader, HeaderError> {
    if b.len() < HEADER_LEN {
        return Err(HeaderError::Short(b.len()));
    }
    let file_id = text(&b[0..14]);
    if !b[0..14].starts_with(b"LUCAM-RECORDER") {
        return Err(HeaderError::Magic(file_id));
    }
    let color_code = i32_at(b, 18);
    let (w, h, depth, count) = (i32_at(b, 26), i32_at(b, 30), i32_at(b, 34), i32_at(b, 38));
    if w <= 0 || h <= 0 || w as u32 > MAX_DIM || h as u32 > MAX_DIM {
        return Err(HeaderError::Size(w, h));
    }
    if !(1..=16).contains(&depth) {
        return Err(HeaderError::Depth(depth));
    }
    if count < 0 {
        return Err(HeaderError::NegativeCount(count));
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
