//! The process allocator's free memory, handed back to the kernel.
//!
//! The host keeps freed buffers for reuse (`jupiter-host`'s `main.rs`:
//! glibc with a high mmap threshold), and the plugins share that
//! allocator. After a step that made and freed a large working set across
//! many threads (each thread's arena keeps its share), that free memory
//! would stay resident through the next step; on a 24-megapixel capture
//! on 16 threads it was a few hundred MB.

pub use jupiter_plugin_api::mem::zeroed;

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
