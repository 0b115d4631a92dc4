//! The process allocator's free memory, handed back to the kernel.
//!
//! The host keeps freed buffers for reuse (`jupiter-host`'s `main.rs`:
//! glibc with a high mmap threshold), and the plugins share that
//! allocator. After a step that made and freed a large working set across
//! many threads (each thread's arena keeps its share), that free memory
//! would stay resident through the next step; on a 24-megapixel capture
//! on 16 threads it was a few hundred MB.

pub use jupiter_plugin_api::mem::zeroed;

/// Makes `buf` `n` samples long for a caller that overwrites what it reads
/// of it: kept as it is (stale contents) when it already is, so that a
/// plane reused from frame to frame costs nothing; else a new [`zeroed`] one.
pub fn fit(buf: &mut Vec<f32>, n: usize) {
    if buf.len() != n {
        *buf = zeroed(n);
    }
}

/// Returns the allocator's free pages to the kernel (glibc's
/// `malloc_trim`; nothing elsewhere). Costs a walk over the heap: call it
/// after large steps, not per frame.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Values (frame planes) lent to parallel tasks and handed back when each
/// task ends, for the next: a task working on a large frame reuses a plane
/// another has finished with instead of a fresh one, whose pages the
/// kernel would zero first (96 MB per 24-megapixel plane, most of the
/// kernel's share of such a run). At most as many as tasks ran at once;
/// all freed with the lender.
pub struct Lender<T> {
    free: std::sync::Mutex<Vec<T>>,
}

impl<T: Default> Default for Lender<T> {
    fn default() -> Self {
        Lender {
            free: std::sync::Mutex::new(Vec::new()),
        }
    }
}

impl<T: Default> Lender<T> {
    /// `f` of a value handed back by an earlier task (or a new default one),
    /// which is handed back after.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let lock = || self.free.lock().unwrap_or_else(|p| p.into_inner());
        let mut v = lock().pop().unwrap_or_default();
        let r = f(&mut v);
        lock().push(v);
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lender_hands_back_what_a_finished_task_returned() {
        let l: Lender<Vec<f32>> = Lender::default();
        l.with(|v| v.resize(10, 1.0));
        l.with(|v| assert_eq!(v.len(), 10));
        // Two at once: the second gets a new one.
        l.with(|a| l.with(|b| assert_ne!(a.len(), b.len())));
    }
}
