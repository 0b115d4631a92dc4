//! When an image or a stack was taken: its metadata (FITS `DATE-OBS`, TIFF
//! `DateTime`, PNG `Creation Time`, as `run` writes them) or a capture
//! program's file name (`2024-11-25-2130_4-…`, the form WinJUPOS reads).

use std::path::Path;

use crate::io::capture::CaptureFile;
use crate::io::fits::date_ticks;

/// When an image was taken, and where that was read from.
pub fn image_time(path: &Path, file: &CaptureFile) -> Option<(i64, &'static str)> {
    if let Some(t) = file.reader().start_time() {
        return Some((t, "DATE-OBS"));
    }
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    let embedded = match ext.as_deref() {
        Some("tif" | "tiff") => tiff_time(path).map(|t| (t, "TIFF DateTime")),
        Some("png") => png_time(path).map(|t| (t, "PNG Creation Time")),
        _ => None,
    };
    embedded.or_else(|| {
        let name = path.file_name()?.to_string_lossy().into_owned();
        name_time(&name).map(|t| (t, "the file name"))
    })
}

pub fn tiff_time(path: &Path) -> Option<i64> {
    let f = std::fs::File::open(path).ok()?;
    let mut d = tiff::decoder::Decoder::new(std::io::BufReader::new(f)).ok()?;
    let s = d.get_tag_ascii_string(tiff::tags::Tag::DateTime).ok()?;
    // `YYYY:MM:DD HH:MM:SS`
    let (date, time) = s.trim().split_once(' ')?;
    date_ticks(&format!("{}T{time}", date.replace(':', "-")))
}

fn png_time(path: &Path) -> Option<i64> {
    let f = std::fs::File::open(path).ok()?;
    let r = png::Decoder::new(std::io::BufReader::new(f))
        .read_info()
        .ok()?;
    let info = r.info();
    let text = info
        .uncompressed_latin1_text
        .iter()
        .find(|c| c.keyword == "Creation Time")?;
    date_ticks(&text.text)
}

/// The time in a WinJUPOS-style name: `YYYY-MM-DD-HHMM[_T]` (T: tenths of a minute).
pub fn name_time(name: &str) -> Option<i64> {
    let b = name.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    (0..b.len().saturating_sub(14)).find_map(|i| {
        let ok = digits(i..i + 4)
            && b[i + 4] == b'-'
            && digits(i + 5..i + 7)
            && b[i + 7] == b'-'
            && digits(i + 8..i + 10)
            && b[i + 10] == b'-'
            && digits(i + 11..i + 15);
        if !ok {
            return None;
        }
        // Starts with an ASCII digit, so on a character boundary.
        let s = &name[i..];
        let tenths = match (b.get(i + 15), b.get(i + 16)) {
            (Some(b'_'), Some(d)) if d.is_ascii_digit() => (d - b'0') as i64,
            _ => 0,
        };
        let t = date_ticks(&format!("{}T{}:{}:00", &s[..10], &s[11..13], &s[13..15]))?;
        Some(t + tenths * 6 * 10_000_000)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_program_names_carry_the_time() {
        let t = name_time("2024-11-25-2130_4-U-L-Jup.ser").unwrap();
        let base = date_ticks("2024-11-25T21:30:24").unwrap();
        assert_eq!(t, base);
        assert_eq!(
            name_time("x_2024-11-25-2130.tif"),
            date_ticks("2024-11-25T21:30:00")
        );
        assert_eq!(name_time("jupiter.tif"), None);
        assert_eq!(name_time("2024-13-25-2130.tif"), None);
    }
}
