//! PNG and TIFF frames of a sequence: the header of each file (read up
//! front, to refuse a mismatched file before any long work) and the whole
//! image decoded on demand.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::files::ImageKind;

/// What a file's header says about its frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub width: usize,
    pub height: usize,
    pub channels: usize,
    /// Bits per sample (8, 16, or 32 for float TIFF).
    pub depth: u32,
}

impl Shape {
    /// `640×480 grey 16-bit`, for messages.
    pub fn describe(&self) -> String {
        format!(
            "{}×{} {} {}-bit",
            self.width,
            self.height,
            if self.channels == 1 { "grey" } else { "RGB" },
            self.depth
        )
    }
}

fn png_reader(path: &Path) -> Result<png::Reader<BufReader<File>>, String> {
    let f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut d = png::Decoder::new(BufReader::new(f));
    // Palettes and low bit depths to 8 bits; 16-bit stays 16-bit.
    d.set_transformations(png::Transformations::EXPAND);
    d.read_info()
        .map_err(|e| format!("not a readable PNG: {e}"))
}

fn tiff_decoder(path: &Path) -> Result<tiff::decoder::Decoder<BufReader<File>>, String> {
    let f = File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    tiff::decoder::Decoder::new(BufReader::new(f)).map_err(|e| format!("not a readable TIFF: {e}"))
}

/// Runs a third-party decoder, turning a panic on a hostile file into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err("the image decoder failed on this file (panicked)".into()))
}

/// The frame shape in the header of a PNG or TIFF file.
pub fn shape(kind: ImageKind, path: &Path) -> Result<Shape, String> {
    let shape = guarded(|| shape_unguarded(kind, path))?;
    let len = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    check_expansion(shape, len)?;
    Ok(shape)
}

/// The most bytes of samples one byte of a PNG or TIFF file can decode to:
/// deflate cannot exceed 1032:1 and LZW's 12-bit codes about 2730:1, so a
/// header whose size needs more is broken (or hostile), and is refused
/// before its frame is allocated.
const MAX_EXPANSION: u64 = 4096;

/// Refuses a shape whose decoded samples the file's size cannot hold.
fn check_expansion(shape: Shape, file_len: u64) -> Result<(), String> {
    let bytes = (shape.width as u64)
        .saturating_mul(shape.height as u64)
        .saturating_mul(shape.channels as u64)
        .saturating_mul(shape.depth.div_ceil(8) as u64);
    if bytes > file_len.saturating_mul(MAX_EXPANSION) {
        return Err(format!(
            "the header says {} ({bytes} bytes of samples), more than a file of {file_len} bytes can hold",
            shape.describe()
        ));
    }
    Ok(())
}

fn shape_unguarded(kind: ImageKind, path: &Path) -> Result<Shape, String> {
    match kind {
        ImageKind::Png => {
            let r = png_reader(path)?;
            let (ct, bd) = r.output_color_type();
            let channels = match ct {
                png::ColorType::Grayscale => 1,
                png::ColorType::Rgb => 3,
                other => {
                    return Err(format!(
                        "PNG colour type {other:?} is not supported (grey or RGB, without alpha)"
                    ))
                }
            };
            let i = r.info();
            Ok(Shape {
                width: i.width as usize,
                height: i.height as usize,
                channels,
                depth: if bd == png::BitDepth::Sixteen { 16 } else { 8 },
            })
        }
        ImageKind::Tiff => {
            let mut d = tiff_decoder(path)?;
            let (w, h) = d.dimensions().map_err(|e| format!("TIFF: {e}"))?;
            let (channels, depth) = match d.colortype().map_err(|e| format!("TIFF: {e}"))? {
                tiff::ColorType::Gray(b) => (1, b),
                tiff::ColorType::RGB(b) => (3, b),
                other => {
                    return Err(format!(
                        "TIFF colour type {other:?} is not supported (grey or RGB)"
                    ))
                }
            };
            if ![8, 16, 32].contains(&depth) {
                return Err(format!(
                    "{depth}-bit TIFF samples are not supported (8, 16, 32-bit float)"
                ));
            }
            Ok(Shape {
                width: w as usize,
                height: h as usize,
                channels,
                depth: depth as u32,
            })
        }
        ImageKind::Fits => Err("FITS files are read by the FITS reader".into()),
    }
}

/// The whole frame of a PNG or TIFF file as `f32` (integers scaled by
/// their range; floats as stored), checked against `expect`.
pub fn decode(kind: ImageKind, path: &Path, expect: Shape) -> Result<Vec<f32>, String> {
    guarded(|| decode_unguarded(kind, path, expect))
}

fn decode_unguarded(kind: ImageKind, path: &Path, expect: Shape) -> Result<Vec<f32>, String> {
    let (data, shape) = match kind {
        ImageKind::Png => {
            let mut r = png_reader(path)?;
            let mut buf = vec![0u8; r.output_buffer_size().ok_or("PNG: image too large")?];
            let info = r.next_frame(&mut buf).map_err(|e| format!("PNG: {e}"))?;
            buf.truncate(info.buffer_size());
            let data: Vec<f32> = if info.bit_depth == png::BitDepth::Sixteen {
                buf.chunks_exact(2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as f32 / 65535.0)
                    .collect()
            } else {
                buf.iter().map(|&b| b as f32 / 255.0).collect()
            };
            (data, shape(kind, path)?)
        }
        _ => {
            let mut d = tiff_decoder(path)?;
            use tiff::decoder::DecodingResult as R;
            let data = match d.read_image().map_err(|e| format!("TIFF: {e}"))? {
                R::U8(v) => v.iter().map(|&b| b as f32 / 255.0).collect(),
                R::U16(v) => v.iter().map(|&b| b as f32 / 65535.0).collect(),
                R::F32(v) => v,
                _ => {
                    return Err(
                        "TIFF sample type not supported (8, 16-bit integers, 32-bit float)".into(),
                    )
                }
            };
            (data, shape(kind, path)?)
        }
    };
    if shape != expect || data.len() != expect.width * expect.height * expect.channels {
        return Err(format!(
            "the frame is {}, the sequence's frames are {}",
            shape.describe(),
            expect.describe()
        ));
    }
    Ok(data)
}

#[cfg(test)]
mod expansion_tests {
    use super::*;

    #[test]
    fn headers_larger_than_the_file_can_hold_are_refused() {
        let s = |w, h| Shape {
            width: w,
            height: h,
            channels: 1,
            depth: 8,
        };
        assert!(check_expansion(s(640, 480), 4000).is_ok());
        let e = check_expansion(s(80_000, 80_000), 120).unwrap_err();
        assert!(e.contains("more than a file of 120 bytes"), "{e}");
    }
}
