//! A small FITS writer for tests: a primary HDU holding a 2-D image or a
//! cube of frames (`NAXIS3`), any BITPIX, with `BZERO`/`BSCALE` and extra
//! cards (`BAYERPAT`, `DATE-OBS`, …).

use std::path::Path;

/// What to write.
#[derive(Debug, Clone)]
pub struct FitsSpec {
    pub width: usize,
    pub height: usize,
    /// 8, 16, 32, -32 or -64.
    pub bitpix: i32,
    pub bzero: f64,
    pub bscale: f64,
    /// Write `NAXIS = 3` even for one frame (else a single frame is 2-D).
    pub cube: bool,
    /// Extra cards: keyword and value exactly as written (`'RGGB'`, `T`, `1.5`).
    pub cards: Vec<(String, String)>,
}

impl FitsSpec {
    /// Unsigned 16-bit samples the usual way (`BITPIX 16`, `BZERO 32768`).
    pub fn u16(width: usize, height: usize) -> FitsSpec {
        FitsSpec {
            width,
            height,
            bitpix: 16,
            bzero: 32768.0,
            bscale: 1.0,
            cube: true,
            cards: Vec::new(),
        }
    }
}

/// One 80-character card.
fn card(key: &str, value: &str) -> String {
    format!("{key:<8}= {value:>20}")
        .chars()
        .chain(std::iter::repeat(' '))
        .take(80)
        .collect()
}

/// The header blocks.
pub fn header_bytes(spec: &FitsSpec, frames: usize) -> Vec<u8> {
    let naxis = if spec.cube || frames != 1 { 3 } else { 2 };
    let mut cards = vec![
        card("SIMPLE", "T"),
        card("BITPIX", &spec.bitpix.to_string()),
        card("NAXIS", &naxis.to_string()),
        card("NAXIS1", &spec.width.to_string()),
        card("NAXIS2", &spec.height.to_string()),
    ];
    if naxis == 3 {
        cards.push(card("NAXIS3", &frames.to_string()));
    }
    cards.push(card("BZERO", &format!("{:.1}", spec.bzero)));
    cards.push(card("BSCALE", &format!("{:.1}", spec.bscale)));
    for (k, v) in &spec.cards {
        cards.push(card(k, v));
    }
    cards.push(format!("{:<80}", "END"));
    let mut b: Vec<u8> = cards.concat().into_bytes();
    b.resize(b.len().div_ceil(2880) * 2880, b' ');
    b
}

/// A frame's stored bytes from its physical values (big-endian, padded to
/// the block only by [`fits_bytes`]).
pub fn frame_bytes(spec: &FitsSpec, physical: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    for &p in physical {
        let s = (p - spec.bzero) / spec.bscale;
        match spec.bitpix {
            8 => out.push(s.round().clamp(0.0, 255.0) as u8),
            16 => out.extend_from_slice(&(s.round().clamp(-32768.0, 32767.0) as i16).to_be_bytes()),
            32 => out.extend_from_slice(&(s.round() as i32).to_be_bytes()),
            -32 => out.extend_from_slice(&(s as f32).to_be_bytes()),
            _ => out.extend_from_slice(&s.to_be_bytes()),
        }
    }
    out
}

/// The whole file: header, frames, padding to a block.
pub fn fits_bytes(spec: &FitsSpec, frames: &[Vec<f64>]) -> Vec<u8> {
    let mut b = header_bytes(spec, frames.len());
    for f in frames {
        b.extend_from_slice(&frame_bytes(spec, f));
    }
    b.resize(b.len().div_ceil(2880) * 2880, 0);
    b
}

/// Writes [`fits_bytes`] to `path`.
pub fn write_fits(path: &Path, spec: &FitsSpec, frames: &[Vec<f64>]) -> std::io::Result<()> {
    std::fs::write(path, fits_bytes(spec, frames))
}
