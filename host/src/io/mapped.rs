//! The bytes of a capture file: memory-mapped (never read whole, so captures
//! of tens of GB open instantly), or already in memory for the property
//! tests. Shared by the AVI and FITS readers (SER keeps its own, with the
//! same page advice).

use std::ops::Deref;
use std::path::Path;

use memmap2::Mmap;

use super::capture::CaptureError;

/// Where a capture's bytes live.
pub enum Bytes {
    /// The file, memory-mapped.
    Map(Mmap),
    /// Bytes in memory (`from_bytes` of the readers, for tests).
    Mem(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Map(m) => m,
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
        Ok(Bytes::Map(map))
    }

    /// Asks the kernel to read `start .. start + len` now (advisory).
    pub fn will_need(&self, start: usize, len: usize) {
        if let Bytes::Map(m) = self {
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
        if let Bytes::Map(m) = self {
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
