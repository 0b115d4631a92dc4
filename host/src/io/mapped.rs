//! The bytes of a capture file: memory-mapped (never read whole, so captures
//! of tens of GB open instantly), or already in memory for the property
//! tests. Shared by the AVI and FITS readers (SER keeps its own, with the
//! same page advice).
//!
//! The map serves the headers and indexes parsed at open time. Frame data
//! is read with positional reads ([`read_span`]) instead: a file cut short
//! by another process while mapped would kill the process with SIGBUS at
//! the first touch of a page past the new end; a read just comes back short,
//! and the frame's error names the file and the frame.

use std::fs::File;
use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use super::capture::CaptureError;

/// Where a capture's bytes live.
pub enum Bytes {
    /// The file, memory-mapped, and the file itself (for frame reads).
    Map(Mmap, File),
    /// Bytes in memory (`from_bytes` of the readers, for tests).
    Mem(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m, _) => m,
            Bytes::Mem(v) => v,
        }
    }
}

impl Bytes {
    /// Maps `path` read-only, with page faults that read only what they
    /// touch (the readers ask for read-ahead explicitly, see [`Bytes::will_need`]).
    pub fn map(path: &Path) -> Result<Bytes, CaptureError> {
        let file = std::fs::File::open(path).map_err(|e| CaptureError::io(path, e))?;
        let len = file
            .metadata()
            .map_err(|e| CaptureError::io(path, e))?
            .len();
        if usize::try_from(len).is_err() {
            return Err(CaptureError::unsupported(
                path,
                format!("{len} bytes do not fit this machine's address space"),
            ));
        }
        if len == 0 {
            return Ok(Bytes::Mem(Vec::new()));
        }
        // SAFETY: the map is read-only; a capture being rewritten underneath
        // us is outside what any reader can defend against.
        let map = unsafe { Mmap::map(&file) }.map_err(|e| CaptureError::io(path, e))?;
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Random);
        Ok(Bytes::Map(map, file))
    }

    /// Calls `f` with bytes `start .. start + len` of the file (see
    /// [`read_span`]); `Err` is the reason they cannot be read.
    pub fn with_span<R>(
        &self,
        start: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, String> {
        match self {
            Bytes::Map(_, file) => read_span(Some(file), &[], start, len, f),
            Bytes::Mem(v) => read_span(None, v, start, len, f),
        }
    }

    /// Whether the file still holds bytes up to `end` (it may have been cut
    /// short since it was mapped): checked before the map itself is read
    /// (the device upload), where touching a page past the end is SIGBUS.
    pub fn holds(&self, end: usize) -> bool {
        match self {
            Bytes::Map(m, file) => still_holds(file, m.len(), end),
            Bytes::Mem(v) => end <= v.len(),
        }
    }

    /// Asks the kernel to read `start .. start + len` now (advisory).
    pub fn will_need(&self, start: usize, len: usize) {
        if let Bytes::Map(m, _) = self {
            let (a, n) = page_span(start, len, m.len());
            #[cfg(unix)]
            let _ = m.advise_range(memmap2::Advice::WillNeed, a, n);
            #[cfg(not(unix))]
            let _ = (a, n);
        }
    }

    /// Drops this process's mapping of `start .. start + len` once decoded
    /// (the pages stay in the page cache; the resident set stays small).
    pub fn release(&self, start: usize, len: usize) {
        if let Bytes::Map(m, _) = self {
            let (a, n) = page_span(start, len, m.len());
            // SAFETY: a read-only shared file mapping: a later read faults
            // the same contents back in.
            #[cfg(unix)]
            let _ = unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, a, n) };
            #[cfg(not(unix))]
            let _ = (a, n);
        }
    }
}

/// The page-aligned span covering `start .. start + len`, clipped to `total`.
fn page_span(start: usize, len: usize, total: usize) -> (usize, usize) {
    const PAGE: usize = 4096;
    let a = (start / PAGE * PAGE).min(total);
    let b = start
        .saturating_add(len)
        .div_ceil(PAGE)
        .saturating_mul(PAGE);
    (a, b.min(total).saturating_sub(a))
}

/// Whether `file` (mapped with `mapped` bytes) still holds bytes up to `end`.
pub fn still_holds(file: &File, mapped: usize, end: usize) -> bool {
    end <= mapped && file.metadata().is_ok_and(|m| m.len() >= end as u64)
}

/// Calls `f` with bytes `start .. start + len` of a capture: read from
/// `file` with a positional read into this thread's buffer, or sliced from
/// `mem` (in-memory captures, `file` = `None`); the read lands in this
/// thread's reused buffer ([`super::scratch::bytes`]). `Err` says why they cannot
/// be read — above all a file now shorter than when it was opened.
pub fn read_span<R>(
    file: Option<&File>,
    mem: &[u8],
    start: usize,
    len: usize,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<R, String> {
    let end = start.checked_add(len).ok_or("byte range overflows")?;
    let Some(file) = file else {
        return mem.get(start..end).map(f).ok_or_else(|| {
            format!(
                "bytes {start}..{end} lie past the end ({} bytes)",
                mem.len()
            )
        });
    };
    super::scratch::bytes(len, |buf| match read_exact_at(file, buf, start as u64) {
        Ok(()) => Ok(f(buf)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            let now = file.metadata().map(|m| m.len()).unwrap_or(0);
            Err(format!(
                "the file ends at byte {now}, before the frame's bytes {start}..{end} (cut short while being read?)"
            ))
        }
        Err(e) => Err(e.to_string()),
    })
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        match file.seek_read(buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_from_the_file_and_a_short_file_is_an_error_not_a_crash() {
        let path = std::env::temp_dir().join(format!("jupiter-span-{}", std::process::id()));
        std::fs::write(&path, (0..=255u8).collect::<Vec<u8>>()).unwrap();
        let bytes = Bytes::map(&path).unwrap();
        assert_eq!(
            bytes.with_span(10, 4, |b| b.to_vec()).unwrap(),
            [10, 11, 12, 13]
        );
        // Cut short while mapped: the read fails with the reason.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        let e = bytes.with_span(96, 8, |b| b.len()).unwrap_err();
        assert_eq!(
            e,
            "the file ends at byte 100, before the frame's bytes 96..104 (cut short while being read?)"
        );
        assert_eq!(bytes.with_span(90, 10, |b| b[9]).unwrap(), 99);
        assert!(bytes.holds(100) && !bytes.holds(101));
        let mem = Bytes::Mem(vec![1, 2, 3]);
        assert_eq!(mem.with_span(1, 2, |b| b.to_vec()).unwrap(), [2, 3]);
        assert!(mem
            .with_span(2, 2, |b| b.len())
            .unwrap_err()
            .contains("past the end"));
        std::fs::remove_file(&path).unwrap();
    }
}
