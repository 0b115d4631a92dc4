//! The AVI headers (`LIST hdrl`): the main header (`avih`), the first video
//! stream's header (`strh`), its format (`strf`, a BITMAPINFOHEADER with the
//! palette of 8-bit DIBs) and its OpenDML super index (`indx`), and the
//! pixel layouts jupiter decodes.

use super::riff::{chunks, fourcc_text, i32_at, u16_at, u32_at, Chunk};
use crate::io::fits::date_ticks;

/// Largest accepted width or height (as for SER).
pub const MAX_DIM: usize = 1 << 15;

/// How the samples of a frame are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pixels {
    /// One byte per pixel through a grey palette (identity for `Y800`).
    Mono8,
    /// Little-endian 16-bit grey (`Y16 `).
    Mono16,
    /// Blue, green, red bytes (BI_RGB 24-bit).
    Bgr24,
    /// Blue, green, red, unused bytes (BI_RGB 32-bit).
    Bgra32,
}

impl Pixels {
    /// Bytes per pixel.
    pub fn bytes(self) -> usize {
        match self {
            Pixels::Mono8 => 1,
            Pixels::Mono16 => 2,
            Pixels::Bgr24 => 3,
            Pixels::Bgra32 => 4,
        }
    }
    /// Channels after decoding.
    pub fn channels(self) -> usize {
        match self {
            Pixels::Mono8 | Pixels::Mono16 => 1,
            _ => 3,
        }
    }
    /// Bits per sample.
    pub fn depth(self) -> u32 {
        if self == Pixels::Mono16 {
            16
        } else {
            8
        }
    }
}

/// The video stream as the headers describe it.
#[derive(Debug, Clone)]
pub struct Video {
    pub width: usize,
    pub height: usize,
    pub pixels: Pixels,
    /// The stream's FourCC (or `BI_RGB`), for messages.
    pub codec: String,
    /// Rows stored bottom-up (a DIB with a positive height).
    pub bottom_up: bool,
    /// Bytes from one stored row to the next (DIB rows are padded to 4 bytes).
    pub stride: usize,
    /// 8-bit samples through the palette (grey level per index, 0..=255).
    pub palette: Option<Box<[u8; 256]>>,
    /// The stream's number (chunk IDs `##db` / `##dc`, index `ix##`).
    pub stream: u32,
    /// Frames per second from the headers.
    pub frame_rate: Option<f64>,
    /// The frame count the headers claim (`strh` length or `avih` total).
    pub claimed_frames: u32,
    /// The `indx` chunk (OpenDML super index), when present.
    pub super_index: Option<Chunk>,
    /// When the capture was made: `IDIT` in the headers, else `ICRD` in the
    /// `INFO` list (taken as UTC; AVI records no time zone).
    pub created: Option<i64>,
}

impl Video {
    /// Bytes of one stored frame.
    pub fn frame_bytes(&self) -> usize {
        self.stride * self.height
    }
}

/// Parses `LIST hdrl` (`data[start..end]`) for the first video stream.
pub fn parse_hdrl(data: &[u8], start: usize, end: usize) -> Result<Video, String> {
    let mut micro_sec_per_frame = 0u32;
    let mut total_frames = 0u32;
    let mut stream = 0u32;
    for c in chunks(data, start, end) {
        match &c.id {
            b"avih" => {
                let d = c.data(data);
                micro_sec_per_frame = u32_at(d, 0).unwrap_or(0);
                total_frames = u32_at(d, 16).unwrap_or(0);
            }
            b"LIST" => {
                let Some((kind, s, e)) = c.list_type(data) else {
                    continue;
                };
                if &kind != b"strl" {
                    continue;
                }
                if let Some(mut v) = parse_strl(data, s, e, stream)? {
                    if v.frame_rate.is_none() && micro_sec_per_frame > 0 {
                        v.frame_rate = Some(1e6 / micro_sec_per_frame as f64);
                    }
                    if v.claimed_frames == 0 {
                        v.claimed_frames = total_frames;
                    }
                    return Ok(v);
                }
                stream += 1;
            }
            _ => {}
        }
    }
    Err("no video stream in the headers".into())
}

/// The date of an `IDIT` or `ICRD` chunk: ISO 8601 (`2024-11-25T21:30:24`,
/// a space for the `T`, or a date alone), or C's `ctime` form
/// (`Mon Nov 25 21:30:24 2024`).
pub fn avi_date(raw: &[u8]) -> Option<i64> {
    let text = String::from_utf8_lossy(raw);
    let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    if let Some(t) = date_ticks(&text.replacen(' ', "T", 1)).or_else(|| date_ticks(text)) {
        return Some(t);
    }
    let f: Vec<&str> = text.split_whitespace().collect();
    let [_, mon, day, time, year] = f.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let m = MONTHS.iter().position(|n| mon.eq_ignore_ascii_case(n))? + 1;
    let day: u32 = day.parse().ok()?;
    date_ticks(&format!("{year}-{m:02}-{day:02}T{time}"))
}

/// One stream list: `Some` when it is video (`strh` type `vids`).
fn parse_strl(data: &[u8], start: usize, end: usize, stream: u32) -> Result<Option<Video>, String> {
    let (mut strh, mut strf, mut indx) = (None, None, None);
    for c in chunks(data, start, end) {
        match &c.id {
            b"strh" => strh = Some(c),
            b"strf" => strf = Some(c),
            b"indx" => indx = Some(c),
            _ => {}
        }
    }
    let Some(strh) = strh else {
        return Ok(None);
    };
    let h = strh.data(data);
    if h.get(0..4) != Some(b"vids") {
        return Ok(None);
    }
    let handler = h.get(4..8).map(|b| [b[0], b[1], b[2], b[3]]);
    let (scale, rate) = (u32_at(h, 20).unwrap_or(0), u32_at(h, 24).unwrap_or(0));
    let length = u32_at(h, 32).unwrap_or(0);
    let strf = strf.ok_or("the video stream has no format chunk (strf)")?;
    let mut v = parse_bitmap_info(strf.data(data), handler)?;
    v.stream = stream;
    v.frame_rate = (scale > 0 && rate > 0).then(|| rate as f64 / scale as f64);
    v.claimed_frames = length;
    v.super_index = indx;
    Ok(Some(v))
}

/// The BITMAPINFOHEADER of a video stream: size, pixel layout, palette.
fn parse_bitmap_info(b: &[u8], handler: Option<[u8; 4]>) -> Result<Video, String> {
    if b.len() < 40 {
        return Err(format!(
            "the video format (strf) is {} bytes, a BITMAPINFOHEADER has 40",
            b.len()
        ));
    }
    let (bi_size, w, h) = (
        u32_at(b, 0).unwrap_or(0) as usize,
        i32_at(b, 4).unwrap_or(0),
        i32_at(b, 8).unwrap_or(0),
    );
    let bits = u16_at(b, 14).unwrap_or(0);
    let compression = [b[16], b[17], b[18], b[19]];
    let (width, height) = (w.unsigned_abs() as usize, h.unsigned_abs() as usize);
    if w <= 0 || height == 0 || width > MAX_DIM || height > MAX_DIM {
        return Err(format!("frame size {w}×{h} is outside 1..={MAX_DIM}"));
    }
    let (pixels, codec, dib) = pixel_layout(compression, bits, handler)?;
    let row = width * pixels.bytes();
    let stride = if dib { row.div_ceil(4) * 4 } else { row };
    let palette = if pixels == Pixels::Mono8 && dib {
        Some(grey_palette(b, bi_size.max(40))?)
    } else {
        None
    };
    Ok(Video {
        width,
        height,
        pixels,
        codec,
        bottom_up: dib && h > 0,
        stride,
        palette,
        stream: 0,
        frame_rate: None,
        created: None,
        claimed_frames: 0,
        super_index: None,
    })
}

/// The pixel layout of a compression FourCC and bit count: `(pixels, name,
/// is a DIB)`; DIB rows are padded to 4 bytes and bottom-up when the height
/// is positive. Compressed video is refused, naming the codec.
fn pixel_layout(
    compression: [u8; 4],
    bits: u16,
    handler: Option<[u8; 4]>,
) -> Result<(Pixels, String, bool), String> {
    if compression == [0; 4] {
        return match bits {
            8 => Ok((Pixels::Mono8, "BI_RGB 8-bit".into(), true)),
            24 => Ok((Pixels::Bgr24, "BI_RGB 24-bit".into(), true)),
            32 => Ok((Pixels::Bgra32, "BI_RGB 32-bit".into(), true)),
            other => Err(format!(
                "uncompressed {other}-bit RGB video is not supported (8-bit grey, 24-bit and 32-bit BGR are)"
            )),
        };
    }
    let name = fourcc_text(compression);
    match (&compression, bits) {
        (b"Y800" | b"Y8  " | b"GREY" | b"Y8\0\0", _) => Ok((Pixels::Mono8, name, false)),
        (b"Y16 " | b"Y1\0\x10", _) => Ok((Pixels::Mono16, name, false)),
        _ => Err(compressed_message(&name, handler)),
    }
}

/// The error for a codec jupiter does not decode.
fn compressed_message(name: &str, handler: Option<[u8; 4]>) -> String {
    let known = [
        "MJPG", "H264", "h264", "X264", "XVID", "DIVX", "DX50", "HFYU", "FFV1", "MP4V", "HEVC",
        "H265", "LAGS", "UYVY", "YUY2", "I420", "YV12", "NV12",
    ];
    let via = handler
        .filter(|h| *h != [0; 4] && fourcc_text(*h) != name)
        .map(|h| format!(" (handler {})", fourcc_text(h)))
        .unwrap_or_default();
    if known.contains(&name) {
        format!("the video is compressed with {name}{via}; jupiter reads uncompressed AVI (Y800, GREY, Y16, 8/24/32-bit BI_RGB) natively, compressed video needs a build with the `ffmpeg` feature (`cargo build --release --workspace --features jupiter-host/ffmpeg`, with the system's FFmpeg libraries), or convert the capture to SER")
    } else {
        format!("video codec {name}{via} is not supported; jupiter reads uncompressed AVI (Y800, GREY, Y16, 8/24/32-bit BI_RGB) natively, compressed video needs a build with the `ffmpeg` feature (`cargo build --release --workspace --features jupiter-host/ffmpeg`, with the system's FFmpeg libraries), or convert the capture to SER")
    }
}

/// The grey level of each palette index of an 8-bit DIB; refused when the
/// palette holds colours (a paletted colour video).
fn grey_palette(b: &[u8], header_size: usize) -> Result<Box<[u8; 256]>, String> {
    let used = match u32_at(b, 32).unwrap_or(0) {
        0 => 256,
        n => (n as usize).min(256),
    };
    let mut lut = Box::new([0u8; 256]);
    for (i, v) in lut.iter_mut().enumerate() {
        *v = i as u8;
    }
    let Some(entries) = b.get(header_size..) else {
        return Ok(lut);
    };
    if entries.len() < used * 4 {
        // No (or a partial) palette: 8-bit data read as grey levels.
        return Ok(lut);
    }
    for (i, q) in entries.chunks_exact(4).take(used).enumerate() {
        let (bl, g, r) = (q[0], q[1], q[2]);
        if bl != g || g != r {
            return Err(format!(
                "8-bit video with a colour palette (entry {i} is R {r} G {g} B {bl}) is not supported; only grey palettes are"
            ));
        }
        lut[i] = g;
    }
    Ok(lut)
}
