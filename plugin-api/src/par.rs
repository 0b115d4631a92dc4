//! Safe parallel helpers over [`Backend::parallel_for`](crate::Backend): the
//! only way plugins parallelise (they never start their own thread pools).
//!
//! A panic inside a callback is caught on the worker thread, the remaining
//! chunks are skipped, and the panic is resumed in the calling thread once the
//! loop returns, where the plugin's entry point turns it into a `StageError`.

use std::any::Any;
use std::ops::Range;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::Mutex;

use crate::backend::{BackendRef, RawTask};

struct Ctx<F> {
    f: F,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

extern "C" fn trampoline<F: Fn(Range<usize>) + Sync>(ctx: *const (), start: usize, end: usize) {
    // SAFETY: `ctx` was made from `&Ctx<F>` in `for_each_range`, which outlives the call.
    let ctx = unsafe { &*(ctx as *const Ctx<F>) };
    if ctx.panic.lock().map(|p| p.is_some()).unwrap_or(true) {
        return;
    }
    if let Err(p) = catch_unwind(AssertUnwindSafe(|| (ctx.f)(start..end))) {
        if let Ok(mut slot) = ctx.panic.lock() {
            slot.get_or_insert(p);
        }
    }
}

/// Runs `f` on disjoint ranges covering `0..len`, each at most `grain` long,
/// on the host's pool. Returns when all ran (or were skipped on cancellation).
pub fn for_each_range<F: Fn(Range<usize>) + Sync>(
    backend: &BackendRef<'_>,
    len: usize,
    grain: usize,
    f: F,
) {
    if len == 0 {
        return;
    }
    let ctx = Ctx {
        f,
        panic: Mutex::new(None),
    };
    let task = RawTask {
        call: trampoline::<F>,
        ctx: &ctx as *const Ctx<F> as *const (),
    };
    backend.parallel_for(len, grain.max(1), task);
    let panic = ctx.panic.into_inner().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = panic {
        resume_unwind(p);
    }
}

struct SendPtr<T>(*mut T);
impl<T> Clone for SendPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SendPtr<T> {}
impl<T> SendPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}
unsafe impl<T: Send> Send for SendPtr<T> {}
unsafe impl<T: Send> Sync for SendPtr<T> {}

/// Runs `f(chunk_index, chunk)` on the disjoint chunks of `data` of length
/// `chunk` (the last may be shorter), in parallel.
pub fn chunks_mut<T: Send, F: Fn(usize, &mut [T]) + Sync>(
    backend: &BackendRef<'_>,
    data: &mut [T],
    chunk: usize,
    f: F,
) {
    let chunk = chunk.max(1);
    let len = data.len();
    let n = len.div_ceil(chunk);
    let base = SendPtr(data.as_mut_ptr());
    for_each_range(backend, n, 1, move |r| {
        for c in r {
            let start = c * chunk;
            let end = (start + chunk).min(len);
            // SAFETY: chunk ranges are disjoint and within `data`, which is
            // exclusively borrowed for the duration of this call.
            let slice =
                unsafe { std::slice::from_raw_parts_mut(base.get().add(start), end - start) };
            f(c, slice);
        }
    });
}

/// Computes `f(i)` for `i in 0..n` in parallel and collects the results in
/// order; `None` when the run was cancelled and some were skipped.
pub fn map<T: Send, F: Fn(usize) -> T + Sync>(
    backend: &BackendRef<'_>,
    n: usize,
    f: F,
) -> Option<Vec<T>> {
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    chunks_mut(backend, &mut out, 1, |i, slot| slot[0] = Some(f(i)));
    out.into_iter().collect()
}
