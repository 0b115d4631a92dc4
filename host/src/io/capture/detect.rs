//! Which reader a path calls for: a directory is an image sequence; a file
//! is recognised by its first bytes (SER, AVI and FITS all start with a
//! magic), and by its extension only when the content says nothing (so a
//! SER file named `.avi` still opens, and a broken `.ser` gets the SER
//! reader's precise error).

use std::io::Read;
use std::path::Path;

use super::CaptureError;

/// The capture formats jupiter reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Ser,
    Avi,
    Fits,
    Sequence,
    /// A container only FFmpeg reads (MP4, MOV, MKV, WebM, MPEG): the
    /// `ffmpeg` feature's reader, or a clear error without it.
    Video,
}

/// The format of `path`, from its content, else its extension.
pub fn detect(path: &Path) -> Result<Format, CaptureError> {
    let meta = std::fs::metadata(path).map_err(|e| CaptureError::io(path, e))?;
    if meta.is_dir() {
        return Ok(Format::Sequence);
    }
    let mut head = [0u8; 16];
    let mut f = std::fs::File::open(path).map_err(|e| CaptureError::io(path, e))?;
    let n = read_up_to(&mut f, &mut head).map_err(|e| CaptureError::io(path, e))?;
    if let Some(f) = from_magic(&head[..n]) {
        return Ok(f);
    }
    from_extension(path).ok_or_else(|| {
        CaptureError::unsupported(
            path,
            "not a capture jupiter reads (SER, AVI, FITS, or a directory of FITS/TIFF/PNG images; MP4/MOV/MKV with the `ffmpeg` feature)",
        )
    })
}

/// The format the first bytes of a file announce.
pub fn from_magic(head: &[u8]) -> Option<Format> {
    if head.starts_with(b"LUCAM-RECORDER") {
        Some(Format::Ser)
    } else if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"AVI " {
        Some(Format::Avi)
    } else if head.starts_with(b"SIMPLE  =") {
        Some(Format::Fits)
    } else if head.len() >= 8
        && matches!(&head[4..8], b"ftyp" | b"moov" | b"mdat" | b"wide" | b"free")
        || head.starts_with(&[0x1a, 0x45, 0xdf, 0xa3])
        || head.starts_with(&[0, 0, 1, 0xba])
    {
        Some(Format::Video)
    } else {
        None
    }
}

/// The format a file's extension names.
fn from_extension(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "ser" => Some(Format::Ser),
        "avi" => Some(Format::Avi),
        "fit" | "fits" | "fts" => Some(Format::Fits),
        "mp4" | "m4v" | "mov" | "mkv" | "webm" | "mpg" | "mpeg" | "wmv" => Some(Format::Video),
        _ => None,
    }
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
