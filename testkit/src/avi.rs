//! A tiny AVI writer for tests: uncompressed video (8-bit `Y800`, 8-bit
//! BI_RGB with a grey palette, 24-bit BI_RGB top-down or bottom-up, 16-bit
//! `Y16 `), indexed by a legacy `idx1`, by OpenDML (`indx` super index,
//! `ix00` standard indexes, `RIFF AVIX` extensions), or not at all.

use std::path::Path;

/// How the samples are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AviPixels {
    /// `Y800`: one byte per pixel, top-down, rows not padded.
    Y800,
    /// BI_RGB 8-bit with a 256-entry grey palette: bottom-up, rows padded to 4.
    Grey8Dib,
    /// BI_RGB 24-bit BGR, rows padded to 4; bottom-up (positive height) or
    /// top-down (negative height).
    Bgr24 { bottom_up: bool },
    /// `Y16 `: little-endian 16-bit, top-down.
    Y16,
}

/// How the frames are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AviIndex {
    /// The legacy `idx1` after the `movi` list.
    Idx1,
    /// OpenDML: frames split into RIFFs of at most `per_riff` frames (the
    /// first `AVI `, then `AVIX`), each `movi` ending with an `ix00`.
    OpenDml { per_riff: usize },
    /// No index at all (readers must walk `movi`).
    None,
}

/// What to write.
#[derive(Debug, Clone)]
pub struct AviSpec {
    pub width: u32,
    pub height: u32,
    pub pixels: AviPixels,
    pub index: AviIndex,
    /// Frames per second as `rate / scale` (the `strh` fields).
    pub rate: u32,
    pub scale: u32,
    /// A compression FourCC written instead of the pixels' own (for
    /// testing that compressed video is refused).
    pub fourcc: Option<[u8; 4]>,
}

impl AviSpec {
    /// 30 frames/s, indexed by `idx1`.
    pub fn new(width: u32, height: u32, pixels: AviPixels) -> AviSpec {
        AviSpec {
            width,
            height,
            pixels,
            index: AviIndex::Idx1,
            rate: 30,
            scale: 1,
            fourcc: None,
        }
    }
}

/// Writes an AVI of `frames` (samples `width × height × planes`, RGB order
/// for BGR24, values in the pixels' range) to `path`.
pub fn write_avi(path: &Path, spec: &AviSpec, frames: &[Vec<u16>]) -> std::io::Result<()> {
    std::fs::write(path, avi_bytes(spec, frames))
}

/// The bytes of the AVI [`write_avi`] writes.
pub fn avi_bytes(spec: &AviSpec, frames: &[Vec<u16>]) -> Vec<u8> {
    let mut w = Writer::default();
    let per_riff = match spec.index {
        AviIndex::OpenDml { per_riff } => per_riff.max(1),
        _ => frames.len().max(1),
    };
    let groups: Vec<&[Vec<u16>]> = frames.chunks(per_riff).collect();
    let odml = matches!(spec.index, AviIndex::OpenDml { .. });
    let riff = w.begin(b"RIFF", Some(b"AVI "));
    let indx_at = headers(
        &mut w,
        spec,
        frames.len(),
        groups.first().map_or(0, |g| g.len()),
        if odml { groups.len() } else { 0 },
    );
    let mut ix_chunks = Vec::new();
    let mut idx1 = Vec::new();
    for (g, group) in groups.iter().enumerate() {
        let outer = if g == 0 {
            None
        } else {
            Some(w.begin(b"RIFF", Some(b"AVIX")))
        };
        let movi = w.begin(b"LIST", Some(b"movi"));
        let movi_fourcc = movi + 8;
        let mut entries = Vec::new();
        for f in group.iter() {
            let data = frame_bytes(spec, f);
            let header = w.buf.len();
            w.chunk(b"00db", &data);
            entries.push((header + 8, data.len() as u32));
            idx1.push(((header - movi_fourcc) as u32, data.len() as u32));
        }
        if odml {
            let at = w.buf.len();
            w.chunk(b"ix00", &std_index(&entries));
            ix_chunks.push((at as u64, (w.buf.len() - at) as u32, group.len() as u32));
        }
        w.end(movi);
        if g == 0 && spec.index == AviIndex::Idx1 {
            let mut d = Vec::new();
            for (off, size) in &idx1 {
                d.extend_from_slice(b"00db");
                d.extend_from_slice(&0x10u32.to_le_bytes());
                d.extend_from_slice(&off.to_le_bytes());
                d.extend_from_slice(&size.to_le_bytes());
            }
            w.chunk(b"idx1", &d);
        }
        match outer {
            Some(o) => w.end(o),
            None => w.end(riff),
        }
    }
    if groups.is_empty() {
        w.end(riff);
    }
    if let Some(at) = indx_at {
        let d = super_index(&ix_chunks);
        w.buf[at..at + d.len()].copy_from_slice(&d);
    }
    w.buf
}

/// `LIST hdrl` (and `LIST odml` for OpenDML); returns where the super
/// index's data goes (patched once the `ix00` chunks are placed).
fn headers(
    w: &mut Writer,
    spec: &AviSpec,
    total: usize,
    first: usize,
    riffs: usize,
) -> Option<usize> {
    let hdrl = w.begin(b"LIST", Some(b"hdrl"));
    let mut avih = Vec::new();
    let us = (1e6 * spec.scale as f64 / spec.rate.max(1) as f64) as u32;
    for v in [
        us,
        0,
        0,
        0x10,
        first as u32,
        0,
        1,
        0,
        spec.width,
        spec.height,
        0,
        0,
        0,
        0,
    ] {
        avih.extend_from_slice(&v.to_le_bytes());
    }
    w.chunk(b"avih", &avih);
    let strl = w.begin(b"LIST", Some(b"strl"));
    let (fourcc, bits, dib) = format_of(spec);
    let mut strh = Vec::new();
    strh.extend_from_slice(b"vids");
    strh.extend_from_slice(&if dib { [0; 4] } else { fourcc });
    for v in [
        0u32,
        0,
        0,
        spec.scale,
        spec.rate,
        0,
        total as u32,
        0,
        u32::MAX,
        0,
    ] {
        strh.extend_from_slice(&v.to_le_bytes());
    }
    for v in [0u16, 0, spec.width as u16, spec.height as u16] {
        strh.extend_from_slice(&v.to_le_bytes());
    }
    w.chunk(b"strh", &strh);
    w.chunk(b"strf", &bitmap_info(spec, fourcc, bits, dib));
    let indx = (riffs > 0).then(|| {
        let at = w.buf.len() + 8;
        w.chunk(b"indx", &vec![0u8; 24 + 16 * riffs]);
        at
    });
    w.end(strl);
    if riffs > 0 {
        let odml = w.begin(b"LIST", Some(b"odml"));
        let mut dmlh = (total as u32).to_le_bytes().to_vec();
        dmlh.resize(248, 0);
        w.chunk(b"dmlh", &dmlh);
        w.end(odml);
    }
    w.end(hdrl);
    indx
}

/// `(compression FourCC, bits per pixel, is a DIB)`.
fn format_of(spec: &AviSpec) -> ([u8; 4], u16, bool) {
    let (fourcc, bits, dib) = match spec.pixels {
        AviPixels::Y800 => (*b"Y800", 8, false),
        AviPixels::Grey8Dib => ([0; 4], 8, true),
        AviPixels::Bgr24 { .. } => ([0; 4], 24, true),
        AviPixels::Y16 => (*b"Y16 ", 16, false),
    };
    (
        spec.fourcc.unwrap_or(fourcc),
        bits,
        dib && spec.fourcc.is_none(),
    )
}

/// The BITMAPINFOHEADER (with a grey palette for 8-bit DIBs).
fn bitmap_info(spec: &AviSpec, fourcc: [u8; 4], bits: u16, dib: bool) -> Vec<u8> {
    let top_down = matches!(spec.pixels, AviPixels::Bgr24 { bottom_up: false });
    let height = if top_down {
        -(spec.height as i32)
    } else {
        spec.height as i32
    };
    let mut b = Vec::new();
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&(spec.width as i32).to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&bits.to_le_bytes());
    b.extend_from_slice(&if dib { [0; 4] } else { fourcc });
    let palette = spec.pixels == AviPixels::Grey8Dib;
    for v in [0u32, 0, 0, if palette { 256 } else { 0 }, 0] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    if palette {
        for i in 0..=255u8 {
            b.extend_from_slice(&[i, i, i, 0]);
        }
    }
    b
}

/// One frame's stored bytes (rows ordered and padded as the format says).
pub fn frame_bytes(spec: &AviSpec, samples: &[u16]) -> Vec<u8> {
    let (w, h) = (spec.width as usize, spec.height as usize);
    let (bpp, dib, bottom_up) = match spec.pixels {
        AviPixels::Y800 => (1, false, false),
        AviPixels::Grey8Dib => (1, true, true),
        AviPixels::Bgr24 { bottom_up } => (3, true, bottom_up),
        AviPixels::Y16 => (2, false, false),
    };
    let stride = if dib {
        (w * bpp).div_ceil(4) * 4
    } else {
        w * bpp
    };
    let mut out = vec![0u8; stride * h];
    for y in 0..h {
        let sy = if bottom_up { h - 1 - y } else { y };
        let row = &mut out[sy * stride..sy * stride + w * bpp];
        for x in 0..w {
            match spec.pixels {
                AviPixels::Y800 | AviPixels::Grey8Dib => row[x] = samples[y * w + x].min(255) as u8,
                AviPixels::Y16 => {
                    row[2 * x..2 * x + 2].copy_from_slice(&samples[y * w + x].to_le_bytes())
                }
                AviPixels::Bgr24 { .. } => {
                    for c in 0..3 {
                        row[3 * x + 2 - c] = samples[(y * w + x) * 3 + c].min(255) as u8;
                    }
                }
            }
        }
    }
    out
}

/// An `ix00` standard index of `(data offset, size)` entries.
fn std_index(entries: &[(usize, u32)]) -> Vec<u8> {
    let base = entries.first().map_or(0, |e| e.0 as u64 - 8);
    let mut d = Vec::new();
    d.extend_from_slice(&2u16.to_le_bytes());
    d.push(0);
    d.push(1);
    d.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    d.extend_from_slice(b"00db");
    d.extend_from_slice(&base.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes());
    for &(off, size) in entries {
        d.extend_from_slice(&((off as u64 - base) as u32).to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
    }
    d
}

/// The `indx` super index over `(offset, size, frames)` of each `ix00`.
fn super_index(ix: &[(u64, u32, u32)]) -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&4u16.to_le_bytes());
    d.push(0);
    d.push(0);
    d.extend_from_slice(&(ix.len() as u32).to_le_bytes());
    d.extend_from_slice(b"00db");
    d.extend_from_slice(&[0u8; 12]);
    for &(off, size, frames) in ix {
        d.extend_from_slice(&off.to_le_bytes());
        d.extend_from_slice(&size.to_le_bytes());
        d.extend_from_slice(&frames.to_le_bytes());
    }
    d
}

/// Chunks appended to a buffer, sizes patched when a list ends.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// Starts a chunk (with a list type for RIFF/LIST); returns its offset.
    fn begin(&mut self, id: &[u8; 4], kind: Option<&[u8; 4]>) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(id);
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        if let Some(k) = kind {
            self.buf.extend_from_slice(k);
        }
        at
    }
    /// Ends the chunk begun at `at`: writes its size.
    fn end(&mut self, at: usize) {
        let size = (self.buf.len() - at - 8) as u32;
        self.buf[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
    }
    /// A whole chunk, padded to an even length.
    fn chunk(&mut self, id: &[u8; 4], data: &[u8]) {
        self.buf.extend_from_slice(id);
        self.buf
            .extend_from_slice(&(data.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(data);
        if data.len() % 2 == 1 {
            self.buf.push(0);
        }
    }
}
