//! The image files of a directory, in natural order (`frame_2` before
//! `frame_10`), and the one image format they must share.

use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use crate::io::capture::CaptureError;

/// The image formats a sequence may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    Fits,
    Tiff,
    Png,
}

impl ImageKind {
    /// The kind a file name's extension says; `None` for other files
    /// (notes, thumbnails of another type, hidden files are skipped).
    pub fn of(path: &Path) -> Option<ImageKind> {
        let name = path.file_name()?.to_str()?;
        if name.starts_with('.') {
            return None;
        }
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "fit" | "fits" | "fts" => Some(ImageKind::Fits),
            "tif" | "tiff" => Some(ImageKind::Tiff),
            "png" => Some(ImageKind::Png),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ImageKind::Fits => "FITS",
            ImageKind::Tiff => "TIFF",
            ImageKind::Png => "PNG",
        }
    }
}

/// The image files of `dir` in natural order, all of one kind.
pub fn list(dir: &Path) -> Result<(ImageKind, Vec<PathBuf>), CaptureError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CaptureError::io(dir, e))?;
    let mut files = Vec::new();
    for e in entries {
        let p = e.map_err(|e| CaptureError::io(dir, e))?.path();
        if let Some(kind) = ImageKind::of(&p).filter(|_| p.is_file()) {
            files.push((kind, p));
        }
    }
    files.sort_by(|a, b| natural(&file_name(&a.1), &file_name(&b.1)));
    let Some(&(kind, _)) = files.first() else {
        return Err(CaptureError::invalid(
            dir,
            "the directory holds no FITS, TIFF or PNG images (a directory is read as an image sequence)",
        ));
    };
    if let Some((other, p)) = files.iter().find(|(k, _)| *k != kind) {
        return Err(CaptureError::invalid(
            p,
            format!(
                "a {} file in a sequence of {} images ({}): one capture is one format",
                other.name(),
                kind.name(),
                file_name(&files[0].1)
            ),
        ));
    }
    Ok((kind, files.into_iter().map(|(_, p)| p).collect()))
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned())
}

/// Natural order: runs of digits compare as numbers, the rest as text.
pub fn natural(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    loop {
        match (x.first(), y.first()) {
            (None, None) => return a.cmp(b),
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let (n, rx) = digits(x);
                let (m, ry) = digits(y);
                let (n, m) = (trim_zeros(n), trim_zeros(m));
                let o = n.len().cmp(&m.len()).then(n.cmp(m));
                if o != Ordering::Equal {
                    return o;
                }
                (x, y) = (rx, ry);
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(d);
                }
                (x, y) = (&x[1..], &y[1..]);
            }
        }
    }
}

fn digits(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
    s.split_at(n)
}

fn trim_zeros(s: &[u8]) -> &[u8] {
    let z = s.iter().take_while(|&&c| c == b'0').count();
    &s[z..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order() {
        let mut v = vec![
            "frame_10.png",
            "frame_2.png",
            "frame_1.png",
            "frame_002b.png",
            "a.png",
            "frame_99999999999999999999999.png",
        ];
        v.sort_by(|a, b| natural(a, b));
        assert_eq!(
            v,
            [
                "a.png",
                "frame_1.png",
                "frame_2.png",
                "frame_002b.png",
                "frame_10.png",
                "frame_99999999999999999999999.png"
            ]
        );
    }
}
