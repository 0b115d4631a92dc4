//! Image files for sequence captures in tests: PNG (8/16-bit) and TIFF
//! (8/16-bit integers, 32-bit float), grey or RGB, one frame per file.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

/// A PNG of `samples` (`width × height × channels`, 8- or 16-bit values).
pub fn write_png(
    path: &Path,
    (w, h, c): (u32, u32, usize),
    depth: u32,
    samples: &[u16],
) -> std::io::Result<()> {
    let mut enc = png::Encoder::new(BufWriter::new(File::create(path)?), w, h);
    enc.set_color(if c == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    let bytes: Vec<u8> = if depth == 16 {
        enc.set_depth(png::BitDepth::Sixteen);
        samples.iter().flat_map(|v| v.to_be_bytes()).collect()
    } else {
        enc.set_depth(png::BitDepth::Eight);
        samples.iter().map(|&v| v.min(255) as u8).collect()
    };
    let mut wr = enc.write_header().map_err(std::io::Error::other)?;
    wr.write_image_data(&bytes).map_err(std::io::Error::other)?;
    wr.finish().map_err(std::io::Error::other)
}

/// A TIFF of 8- or 16-bit `samples`.
pub fn write_tiff(
    path: &Path,
    (w, h, c): (u32, u32, usize),
    depth: u32,
    samples: &[u16],
) -> std::io::Result<()> {
    use tiff::encoder::{colortype, TiffEncoder};
    let mut enc =
        TiffEncoder::new(BufWriter::new(File::create(path)?)).map_err(std::io::Error::other)?;
    let r = match (c, depth) {
        (1, 16) => enc.write_image::<colortype::Gray16>(w, h, samples),
        (_, 16) => enc.write_image::<colortype::RGB16>(w, h, samples),
        (1, _) => enc.write_image::<colortype::Gray8>(
            w,
            h,
            &samples.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        ),
        _ => enc.write_image::<colortype::RGB8>(
            w,
            h,
            &samples.iter().map(|&v| v as u8).collect::<Vec<_>>(),
        ),
    };
    r.map_err(std::io::Error::other)
}

/// A 32-bit float TIFF.
pub fn write_tiff_f32(
    path: &Path,
    (w, h, c): (u32, u32, usize),
    samples: &[f32],
) -> std::io::Result<()> {
    use tiff::encoder::{colortype, TiffEncoder};
    let mut enc =
        TiffEncoder::new(BufWriter::new(File::create(path)?)).map_err(std::io::Error::other)?;
    let r = if c == 1 {
        enc.write_image::<colortype::Gray32Float>(w, h, samples)
    } else {
        enc.write_image::<colortype::RGB32Float>(w, h, samples)
    };
    r.map_err(std::io::Error::other)
}
