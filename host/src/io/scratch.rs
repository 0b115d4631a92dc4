//! Each decoding thread's reused buffers: the bytes of a band read from a
//! file and the raw samples of a mosaic before its demosaic. Every frame
//! read passes through them, and a fresh zeroed buffer per read cost more
//! than the copy out of the page cache.

use std::cell::RefCell;
use std::thread::LocalKey;

thread_local! {
    static BYTES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    static SAMPLES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The largest buffer a thread keeps for its next read (8 MB): a whole
/// large frame is not kept per thread (48 MB for 24 megapixels at 16 bits:
/// on 16 threads that alone was 770 MB held for the run).
const KEEP_BYTES: usize = 8 << 20;

/// `f` of `n` bytes of this thread's byte buffer.
pub fn bytes<R>(n: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    reused(&BYTES, n, KEEP_BYTES, f)
}

/// `f` of `n` samples of this thread's sample buffer.
pub fn samples<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    reused(&SAMPLES, n, KEEP_BYTES / 4, f)
}

/// `f` of the first `n` elements of `cell`'s buffer, their contents left
/// from the last use (callers overwrite all of them). The buffer is taken
/// out of the cell, not borrowed, so a nested call only allocates; it is
/// put back for the next call when it holds at most `keep` elements.
fn reused<T: Copy + Default, R>(
    cell: &'static LocalKey<RefCell<Vec<T>>>,
    n: usize,
    keep: usize,
    f: impl FnOnce(&mut [T]) -> R,
) -> R {
    let mut buf = cell.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.len() < n {
        buf.resize(n, T::default());
    }
    let out = f(&mut buf[..n]);
    if buf.capacity() <= keep {
        cell.with(|b| *b.borrow_mut() = buf);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_reused_up_to_the_limit_and_nested_calls_get_their_own() {
        let first = samples(16, |b| {
            b.fill(1.0);
            b.as_ptr() as usize
        });
        // The same allocation again, its contents as left.
        samples(8, |b| {
            assert_eq!(b.as_ptr() as usize, first);
            assert!(b.iter().all(|&v| v == 1.0));
            samples(4, |inner| assert_ne!(inner.as_ptr() as usize, first));
        });
        // Too large to keep: the next small request allocates afresh.
        samples(KEEP_BYTES, |b| assert_eq!(b.len(), KEEP_BYTES));
        samples(4, |b| assert_eq!(b.len(), 4));
        bytes(3, |b| assert_eq!(b.len(), 3));
    }
}
