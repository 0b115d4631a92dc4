//! [`HostBackend`]: what the `Backend` trait object handed to stages holds —
//! the rayon pool, the progress bar, the log, the cancellation flag and the
//! GPU slot (a wgpu service when the host was built and run with one).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RStr};
use indicatif::{ProgressBar, ProgressStyle};
use jupiter_plugin_api::{Backend, BackendRef, Backend_TO, GpuServiceBox, LogLevel, RawTask};
use rayon::prelude::*;

/// The host's backend: one pool shared by every stage of every plugin.
pub struct HostBackend {
    pool: rayon::ThreadPool,
    cancel: Arc<AtomicBool>,
    bar: RwLock<Option<ProgressBar>>,
    gpu: Option<GpuServiceBox>,
    /// Cleared while a stage is re-run on the CPU after a GPU failure.
    gpu_enabled: AtomicBool,
    /// Hide `Info` messages from stages (warnings and errors still show).
    pub quiet: bool,
    /// Show `Debug` messages from stages.
    pub verbose: bool,
    /// Every info, warning and error message of the stages since the last
    /// [`HostBackend::take_messages`] (shown or not): the run report's
    /// record of what each stage chose and measured.
    messages: std::sync::Mutex<Vec<String>>,
}

impl HostBackend {
    /// A backend with `threads` workers (0 = one per core).
    pub fn new(threads: usize, cancel: Arc<AtomicBool>) -> anyhow::Result<HostBackend> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("jupiter-{i}"))
            .build()?;
        Ok(HostBackend {
            pool,
            cancel,
            bar: RwLock::new(None),
            gpu: None,
            gpu_enabled: AtomicBool::new(false),
            quiet: false,
            verbose: false,
            messages: Default::default(),
        })
    }

    /// The stages' messages since the last call (see `messages`).
    pub fn take_messages(&self) -> Vec<String> {
        std::mem::take(&mut *self.messages.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Offers `gpu` to the stages from now on.
    pub fn set_gpu(&mut self, gpu: Option<GpuServiceBox>) {
        self.gpu_enabled.store(gpu.is_some(), Ordering::SeqCst);
        self.gpu = gpu;
    }

    /// The GPU service, if any (regardless of the per-stage switch).
    pub fn gpu_service(&self) -> Option<&GpuServiceBox> {
        self.gpu.as_ref()
    }

    /// Hides (false) or offers again (true) the GPU to stages; used to re-run a
    /// stage on the CPU after it reported a GPU failure.
    pub fn enable_gpu(&self, on: bool) {
        self.gpu_enabled
            .store(on && self.gpu.is_some(), Ordering::SeqCst);
    }

    /// The trait object handed to stages.
    pub fn as_ref(&self) -> BackendRef<'_> {
        Backend_TO::from_ptr(self, TD_Opaque)
    }

    /// Worker threads of the pool.
    pub fn pool_threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `f` in the host's pool (the host's own parallel work).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// The cancellation flag (set by Ctrl-C).
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        self.cancel.clone()
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Starts a progress bar for a stage (hidden when stderr is not a terminal).
    pub fn begin_stage(&self, label: &str) {
        crate::timeline::mark(&format!("stage {label} begins"));
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{prefix:>14} [{bar:30}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(label.to_string());
        *self.bar.write().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    /// Ends the current progress bar.
    pub fn end_stage(&self) {
        crate::timeline::mark("stage ends");
        release_free_memory();
        crate::timeline::mark("free memory returned");
        if let Some(bar) = self.bar.write().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }

    /// Prints a message without tearing the progress bar.
    pub fn message(&self, text: &str) {
        let bar = self.bar.read().unwrap_or_else(|e| e.into_inner()).clone();
        match bar {
            Some(b) => b.suspend(|| crate::errln!("{text}")),
            None => crate::errln!("{text}"),
        }
    }
}

impl Backend for HostBackend {
    fn parallel_for(&self, len: usize, grain: usize, task: RawTask) {
        let grain = grain.max(1);
        let chunks = len.div_ceil(grain);
        self.pool.install(|| {
            (0..chunks).into_par_iter().for_each(|c| {
                if !self.is_cancelled() {
                    task.run(c * grain, ((c + 1) * grain).min(len));
                }
            })
        });
    }

    fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn progress(&self, done: u64, total: u64) {
        if let Some(b) = self.bar.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            b.set_length(total);
            b.set_position(done);
        }
    }

    fn log(&self, level: LogLevel, message: RStr<'_>) {
        let show = match level {
            LogLevel::Error | LogLevel::Warn => true,
            LogLevel::Info => !self.quiet,
            LogLevel::Debug => self.verbose,
        };
        let tag = match level {
            LogLevel::Error => "error",
            LogLevel::Warn => "warning",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
        };
        let line = format!("{tag}: {message}");
        if level != LogLevel::Debug {
            self.messages
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(line.clone());
        }
        if show {
            self.message(&line);
        }
    }

    fn cancelled(&self) -> bool {
        self.is_cancelled()
    }

    fn gpu(&self) -> ROption<GpuServiceBox> {
        match &self.gpu {
            Some(g) if self.gpu_enabled.load(Ordering::SeqCst) => ROption::RSome(g.clone()),
            _ => ROption::RNone,
        }
    }
}

/// Hands the allocator's free pages back to the kernel between stages: the
/// host keeps freed memory for reuse within a stage (`main.rs`), and what
/// one stage freed on large frames (hundreds of MB over many threads'
/// arenas) would otherwise stay resident through the next.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}
