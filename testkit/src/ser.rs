//! SER writer, for the demo's and the tests' synthetic captures. It has
//! its own colour types so that the reader under test (the host's) and the
//! writer share no code.

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Size of the SER header.
pub const HEADER_LEN: usize = 178;

/// The 2×2 colour filter layout, named by its top-left row pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cfa {
    Rggb,
    Grbg,
    Gbrg,
    Bggr,
}

impl Cfa {
    /// Colour (0 = R, 1 = G, 2 = B) of the filter over pixel `(x, y)`.
    pub fn color_at(self, x: usize, y: usize) -> usize {
        let layout: [usize; 4] = match self {
            Cfa::Rggb => [0, 1, 1, 2],
            Cfa::Grbg => [1, 0, 2, 1],
            Cfa::Gbrg => [1, 2, 0, 1],
            Cfa::Bggr => [2, 1, 1, 0],
        };
        layout[(y % 2) * 2 + (x % 2)]
    }
}

/// Colour layout of the stored samples, as the SER colour ID says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerColor {
    Mono,
    Bayer(Cfa),
    Rgb,
    Bgr,
}

impl SerColor {
    /// The SER colour ID code.
    pub fn code(self) -> i32 {
        match self {
            SerColor::Mono => 0,
            SerColor::Bayer(Cfa::Rggb) => 8,
            SerColor::Bayer(Cfa::Grbg) => 9,
            SerColor::Bayer(Cfa::Gbrg) => 10,
            SerColor::Bayer(Cfa::Bggr) => 11,
            SerColor::Rgb => 100,
            SerColor::Bgr => 101,
        }
    }
    /// Samples stored per pixel.
    pub fn planes(self) -> usize {
        match self {
            SerColor::Rgb | SerColor::Bgr => 3,
            _ => 1,
        }
    }
}

/// What to write in the header.
#[derive(Debug, Clone)]
pub struct SerSpec {
    pub width: u32,
    pub height: u32,
    pub color: SerColor,
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
    pub fn new(width: u32, height: u32, color: SerColor, depth: u32) -> SerSpec {
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
    if spec.color == SerColor::Bgr {
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
