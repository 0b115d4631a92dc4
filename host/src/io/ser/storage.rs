//! Where a SER file's bytes live (a memory map and the file, or memory for
//! the property tests), the positional reads that frames are decoded from,
//! and the page advice: rows are read ahead explicitly (into the page
//! cache), frames uploaded to the device released from the map.

use std::ops::Deref;

use memmap2::Mmap;

use super::header::{ColorId, HEADER_LEN};
use super::SerFile;

/// Where the bytes of a SER file live.
pub(super) enum Storage {
    /// The file, memory-mapped (the normal case: never read whole), and
    /// the file itself: frame data is read from it with positional reads
    /// (see [`crate::io::mapped::read_span`]: a file cut short while being
    /// read gives an error, not SIGBUS).
    Map(Mmap, std::fs::File),
    /// Bytes already in memory ([`SerFile::from_bytes`]).
    Mem(Vec<u8>),
}

impl Deref for Storage {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Storage::Map(m, _) => m,
            Storage::Mem(v) => v,
        }
    }
}

/// The page-aligned span covering bytes `start .. start + len`, clipped to a
/// mapping of `total` bytes (madvise works on whole pages).
pub(super) fn page_span(start: usize, len: usize, total: usize) -> (usize, usize) {
    const PAGE: usize = 4096;
    let a = start / PAGE * PAGE;
    let b = (start + len).div_ceil(PAGE) * PAGE;
    (a, b.min(total).saturating_sub(a))
}

impl Storage {
    /// Whether the file still holds bytes up to `end` (see
    /// [`crate::io::mapped::still_holds`]).
    pub(super) fn holds(&self, end: usize) -> bool {
        match self {
            Storage::Map(m, file) => crate::io::mapped::still_holds(file, m.len(), end),
            Storage::Mem(v) => end <= v.len(),
        }
    }

    /// Calls `f` with bytes `start .. start + len` of the file, read (not
    /// touched through the map); `Err` is why they cannot be read.
    pub(super) fn with_span<R>(
        &self,
        start: usize,
        len: usize,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<R, String> {
        match self {
            Storage::Map(_, file) => crate::io::mapped::read_span(Some(file), &[], start, len, f),
            Storage::Mem(v) => crate::io::mapped::read_span(None, v, start, len, f),
        }
    }
}

impl SerFile {
    /// Maps frames `first .. first + count` into this process in one call
    /// (`MADV_POPULATE_READ`, Linux 5.14+), so that copying them does not
    /// take one page fault per page; a no-op where unsupported.
    pub fn populate_frames(&self, first: usize, count: usize) {
        if let Storage::Map(m, _) = &self.data {
            let fb = self.header.frame_bytes();
            let (start, len) = page_span(HEADER_LEN + first * fb, count * fb, m.len());
            #[cfg(target_os = "linux")]
            let _ = m.advise_range(memmap2::Advice::PopulateRead, start, len);
            #[cfg(not(target_os = "linux"))]
            let _ = (start, len);
        }
    }

    /// Gives up this process's mapping of frames `first .. first + count`
    /// (after [`stored_frames`](Self::stored_frames) was uploaded).
    pub fn release_frames(&self, first: usize, count: usize) {
        let fb = self.header.frame_bytes();
        self.release(HEADER_LEN + first * fb, count * fb);
    }

    /// The stored rows that decoding rows `y0 .. y0 + rows` reads:
    /// `(first, end)`. For a Bayer mosaic, with the demosaic's margin
    /// ([`Demosaic::margin`](crate::io::debayer::Demosaic::margin) rows)
    /// above and below where the frame has them; else just those.
    pub(super) fn padded_rows(&self, y0: usize, rows: usize) -> (usize, usize) {
        let pad = match self.header.color {
            ColorId::Bayer(_) => self.demosaic.margin(),
            _ => 0,
        };
        let end = y0
            .saturating_add(rows)
            .saturating_add(pad)
            .min(self.height());
        (y0.saturating_sub(pad).min(end), end)
    }

    /// Byte offset and length in the file of [`padded_rows`](Self::padded_rows)
    /// of frame `index`.
    pub(super) fn padded_span(&self, index: usize, y0: usize, rows: usize) -> (usize, usize) {
        let row_bytes = self.width() * self.header.color.planes() * self.header.bytes_per_sample();
        let (lo, hi) = self.padded_rows(y0, rows);
        let frame = HEADER_LEN + index * self.header.frame_bytes();
        (frame + lo * row_bytes, (hi - lo) * row_bytes)
    }

    /// Asks the kernel to start reading rows `y0 .. y0 + rows` of frame
    /// `index` (and the demosaic's margin rows) from
    /// the disk now (`MADV_WILLNEED`), so that reading overlaps the work on
    /// earlier frames. Does nothing for an index past the end or for
    /// in-memory data.
    pub fn prefetch_rows(&self, index: usize, y0: usize, rows: usize) {
        if index >= self.frame_count || y0 >= self.height() {
            return;
        }
        if let Storage::Map(m, _) = &self.data {
            let (start, len) = self.padded_span(index, y0, rows);
            let (start, len) = page_span(start, len, m.len());
            #[cfg(not(unix))]
            let _ = (start, len);
            // Advisory: failure only loses the read-ahead (no-op off unix).
            #[cfg(unix)]
            let _ = m.advise_range(memmap2::Advice::WillNeed, start, len);
        }
    }

    /// Unmaps the pages of `start .. start + len` from this process
    /// (`MADV_DONTNEED`); the next access maps them again from the page cache.
    pub(super) fn release(&self, start: usize, len: usize) {
        // A fault also maps the cached pages around it (the kernel's
        // fault-around, 64 KiB by default): release those too, or they stay
        // mapped and the resident set grows with every frame.
        const AROUND: usize = 64 << 10;
        if let Storage::Map(m, _) = &self.data {
            let lo = start.saturating_sub(AROUND);
            let (start, len) = page_span(lo, len + (start - lo) + AROUND, m.len());
            // SAFETY: the mapping is a read-only shared mapping of a file, so
            // dropping pages loses nothing: a later read (from any thread)
            // faults the same file contents back in.
            #[cfg(unix)]
            let _ =
                unsafe { m.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, len) };
            #[cfg(not(unix))]
            let _ = (m, start, len);
        }
    }
}
