//! The GPU service: one wgpu device owned by the host, offered to plugins as
//! a `GpuService` trait object. Plugins hand it WGSL source and get pipelines
//! (compiled once, cached by a hash of source and entry point); they create,
//! fill, bind and read buffers by opaque id. No wgpu type crosses the ABI.
//!
//! Dispatches are recorded into one command encoder and submitted at the next
//! read or `synchronize`, so a chain of kernels costs one submission.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use abi_stable::std_types::{RResult, RSlice, RSliceMut, RStr, RString};
use jupiter_plugin_api::{GpuBuffer, GpuService, StageError};
use wgpu::util::DeviceExt;

use super::upload::Upload;

/// Why no GPU service could be made.
#[derive(Debug, Clone)]
pub struct GpuUnavailable(pub String);

struct State {
    buffers: HashMap<u64, wgpu::Buffer>,
    pipelines: HashMap<u64, wgpu::ComputePipeline>,
    /// Entry point of each pipeline, and (with `JUPITER_GPU_TRACE=kernels`)
    /// dispatches and seconds per entry point.
    names: HashMap<u64, String>,
    modules: HashMap<u64, wgpu::ShaderModule>,
    kernel_time: HashMap<String, (u64, f64)>,
    encoder: Option<wgpu::CommandEncoder>,
    next_id: u64,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    state: Mutex<State>,
    /// The driver's compiled pipelines, kept on disk between runs (where
    /// the adapter supports it): compiling the shaders is otherwise a
    /// large share of a short GPU run.
    cache: Option<(wgpu::PipelineCache, PathBuf)>,
    /// Time spent compiling pipelines, in `write_buffer` and waiting in
    /// reads, ns (reported with `JUPITER_GPU_TRACE`).
    compile_ns: AtomicU64,
    write_ns: AtomicU64,
    /// Of `write_ns`: the copies into mapped upload buffers, and the page
    /// faults taken meanwhile.
    copy_ns: AtomicU64,
    stage_ns: AtomicU64,
    create_ns: AtomicU64,
    submit_ns: AtomicU64,
    copy_faults: AtomicU64,
    read_ns: AtomicU64,
    /// Mapped upload buffers for `write_buffer_parallel`, reused.
    ring: Mutex<Ring>,
    ring_tx: std::sync::mpsc::Sender<Upload>,
}

/// Upload buffers: `free` ones are mapped and ready; `out` are being
/// filled or copied; they come back through `returned` once mapped again.
struct Ring {
    free: Vec<Upload>,
    out: usize,
    returned: std::sync::mpsc::Receiver<Upload>,
}

/// Upload buffers in the ring, and their usual size (64 MiB).
const RING: usize = 3;
const RING_BUFFER: u64 = 64 << 20;

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some((cache, path)) = &self.cache {
            if let Some(data) = cache.get_data() {
                // Best effort: a cache that cannot be written is only slower.
                // A private temporary name: runs in parallel each write
                // their own file and the last rename wins.
                let tmp = path.with_extension(format!("tmp{}", std::process::id()));
                if std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))
                    .and_then(|_| std::fs::write(&tmp, &data))
                    .and_then(|_| std::fs::rename(&tmp, path))
                    .is_err()
                {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
        }
        if trace().is_some() {
            let s = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64 * 1e-9;
            crate::errln!(
                "gpu trace: {:.3} s compiling pipelines, {:.3} s in writes, {:.3} s in reads (waiting for the device)",
                s(&self.compile_ns),
                s(&self.write_ns),
                s(&self.read_ns)
            );
            crate::errln!(
                "gpu trace: of the writes, {:.3} s in the copies into upload buffers ({} page faults), {:.3} s getting a buffer ({:.3} s creating them), {:.3} s submitting the copies",
                s(&self.copy_ns),
                self.copy_faults.load(Ordering::Relaxed),
                s(&self.stage_ns),
                s(&self.create_ns),
                s(&self.submit_ns)
            );
            let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let mut k: Vec<_> = st.kernel_time.iter().collect();
            k.sort_by(|a, b| b.1 .1.total_cmp(&a.1 .1));
            for (name, (n, secs)) in k {
                crate::errln!("gpu trace: {name:>18}: {n:5} dispatches, {secs:.4} s");
            }
        }
    }
}

/// Checks that `len` bytes at `offset` lie inside `b` on 4-byte bounds (what
/// a `what` = "write"/"read" of a storage buffer needs).
fn check_range(what: &str, b: GpuBuffer, offset: u64, len: u64) -> Result<(), StageError> {
    if offset + len > b.size || !offset.is_multiple_of(4) || !len.is_multiple_of(4) {
        return Err(StageError::gpu(format!(
            "{what} of {len} bytes at {offset} in a buffer of {} bytes",
            b.size
        )));
    }
    Ok(())
}

/// Minor page faults of this process so far (the trace's count).
fn faults() -> i64 {
    // SAFETY: getrusage only writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_minflt
    }
}

/// Adds the time since `t0` to a trace counter.
fn add_time(counter: &AtomicU64, t0: Instant) {
    counter.fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
}

/// `JUPITER_GPU_TRACE`: unset → `None`; `kernels` → every dispatch is also
/// waited for and timed; any other value → start-up, compile, write and
/// wait times only.
fn trace() -> Option<bool> {
    static TRACE: std::sync::OnceLock<Option<bool>> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| {
        std::env::var("JUPITER_GPU_TRACE")
            .ok()
            .map(|v| v == "kernels")
    })
}

/// Where the pipeline cache of an adapter lives: `$XDG_CACHE_HOME/jupiter`
/// or `~/.cache/jupiter`, named by wgpu's key for the adapter and driver.
fn cache_path(info: &wgpu::AdapterInfo) -> Option<PathBuf> {
    let key = wgpu::util::pipeline_cache_key(info)?;
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("jupiter").join(key))
}

/// The host's GPU service (a cheap handle; clones share the device).
#[derive(Clone)]
pub struct WgpuService(Arc<Inner>);

/// Does the adapter count as a GPU in `auto` mode? Software rasterisers do not.
pub fn is_hardware(info: &wgpu::AdapterInfo) -> bool {
    info.device_type != wgpu::DeviceType::Cpu
}

impl WgpuService {
    /// Opens the best adapter. With `allow_software` false, a software adapter
    /// (lavapipe/llvmpipe) is refused: on a machine without a GPU the rayon CPU
    /// path is many times faster than emulated compute.
    pub fn open(allow_software: bool) -> Result<WgpuService, GpuUnavailable> {
        let t0 = Instant::now();
        // Vulkan / Metal / DX12 unless WGPU_BACKEND says otherwise: starting
        // the GL backend (EGL) as well costs a large share of a short run.
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::PRIMARY;
        let instance = wgpu::Instance::new(desc.with_env());
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            ..Default::default()
        }))
        .map_err(|e| GpuUnavailable(format!("no GPU adapter found ({e})")))?;
        let info = adapter.get_info();
        if !allow_software && !is_hardware(&info) {
            return Err(GpuUnavailable(format!(
                "only a software adapter is available ({}, {:?})",
                info.name, info.backend
            )));
        }
        let limits = adapter.limits();
        let path = cache_path(&info)
            .filter(|_| adapter.features().contains(wgpu::Features::PIPELINE_CACHE));
        let features = if path.is_some() {
            wgpu::Features::PIPELINE_CACHE
        } else {
            wgpu::Features::empty()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("jupiter"),
            required_features: features,
            required_limits: limits,
            ..Default::default()
        }))
        .map_err(|e| GpuUnavailable(format!("{}: cannot open the device ({e})", info.name)))?;
        let cache = path.map(|p| {
            let data = std::fs::read(&p).ok();
            // SAFETY: the data is what `get_data` wrote for this adapter's
            // key (wgpu checks its header and, with `fallback`, starts an
            // empty cache from anything it does not accept).
            let c = unsafe {
                device.create_pipeline_cache(&wgpu::PipelineCacheDescriptor {
                    label: Some("jupiter"),
                    data: data.as_deref(),
                    fallback: true,
                })
            };
            (c, p)
        });
        let (ring_tx, ring_rx) = std::sync::mpsc::channel();
        if trace().is_some() {
            crate::errln!(
                "gpu trace: device opened in {:.3} s (pipeline cache: {})",
                t0.elapsed().as_secs_f64(),
                cache
                    .as_ref()
                    .map_or("none".into(), |c| c.1.display().to_string())
            );
        }
        Ok(WgpuService(Arc::new(Inner {
            device,
            queue,
            info,
            state: Mutex::new(State {
                buffers: HashMap::new(),
                pipelines: HashMap::new(),
                names: HashMap::new(),
                modules: HashMap::new(),
                kernel_time: HashMap::new(),
                encoder: None,
                next_id: 1,
            }),
            cache,
            compile_ns: AtomicU64::new(0),
            write_ns: AtomicU64::new(0),
            copy_ns: AtomicU64::new(0),
            stage_ns: AtomicU64::new(0),
            create_ns: AtomicU64::new(0),
            submit_ns: AtomicU64::new(0),
            copy_faults: AtomicU64::new(0),
            read_ns: AtomicU64::new(0),
            ring: Mutex::new(Ring {
                free: Vec::new(),
                out: 0,
                returned: ring_rx,
            }),
            ring_tx,
        })))
    }

    /// A one-line description for logs, `plugins`, `info` and reports.
    pub fn describe(&self) -> String {
        let i = &self.0.info;
        format!(
            "{} ({:?}, {:?}{})",
            i.name,
            i.backend,
            i.device_type,
            if is_hardware(i) { "" } else { ", software" }
        )
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn buffer(&self, st: &State, b: GpuBuffer) -> Result<wgpu::Buffer, StageError> {
        st.buffers
            .get(&b.id)
            .cloned()
            .ok_or_else(|| StageError::gpu(format!("unknown GPU buffer id {}", b.id)))
    }

    /// Submits recorded work.
    fn flush(&self, st: &mut State) {
        if let Some(enc) = st.encoder.take() {
            self.0.queue.submit(Some(enc.finish()));
        }
    }

    fn wait(&self) -> Result<(), StageError> {
        self.0
            .device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| StageError::gpu(format!("waiting for the GPU failed: {e}")))
    }

    fn create_buffer_impl(&self, size: u64) -> Result<GpuBuffer, StageError> {
        let limits = self.0.device.limits();
        let size = size.max(4).next_multiple_of(4);
        if size > limits.max_buffer_size || size > limits.max_storage_buffer_binding_size {
            return Err(StageError::new(
                jupiter_plugin_api::ErrorKind::OutOfMemory,
                format!(
                    "GPU buffer of {size} bytes exceeds the device limit ({} bytes)",
                    limits.max_storage_buffer_binding_size
                ),
            ));
        }
        let scope = self
            .0
            .device
            .push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let buffer = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(StageError::new(
                jupiter_plugin_api::ErrorKind::OutOfMemory,
                format!("GPU allocation of {size} bytes failed: {e}"),
            ));
        }
        let mut st = self.state();
        let id = st.next_id;
        st.next_id += 1;
        st.buffers.insert(id, buffer);
        Ok(GpuBuffer { id, size })
    }

    fn read_impl(&self, b: GpuBuffer, offset: u64, out: &mut [u8]) -> Result<(), StageError> {
        let t0 = Instant::now();
        let r = self.read_inner(b, offset, out);
        add_time(&self.0.read_ns, t0);
        r
    }

    fn read_inner(&self, b: GpuBuffer, offset: u64, out: &mut [u8]) -> Result<(), StageError> {
        if out.is_empty() {
            return Ok(());
        }
        let len = out.len() as u64;
        check_range("read", b, offset, len)?;
        let staging = self.0.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: len,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        {
            let mut st = self.state();
            let src = self.buffer(&st, b)?;
            let enc = st
                .encoder
                .get_or_insert_with(|| self.0.device.create_command_encoder(&Default::default()));
            enc.copy_buffer_to_buffer(&src, offset, &staging, 0, len);
            self.flush(&mut st);
        }
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|_| StageError::gpu("GPU read-back never completed"))?
            .map_err(|e| StageError::gpu(format!("GPU read-back failed: {e}")))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| StageError::gpu(format!("GPU read-back failed: {e:?}")))?;
        out.copy_from_slice(&view);
        Ok(())
    }

    /// `data` into a staging buffer mapped at creation (filled by `threads`
    /// scoped threads: one memcpy of the data, in parallel), then one
    /// queued buffer-to-buffer copy.
    fn write_parallel_impl(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        data: &[u8],
        threads: usize,
    ) -> Result<(), StageError> {
        let len = data.len() as u64;
        if len == 0 {
            return Ok(());
        }
        check_range("write", buffer, offset, len)?;
        let t0 = Instant::now();
        let mut up = self.staging(len)?;
        let (t1, f0) = (Instant::now(), faults());
        self.0
            .stage_ns
            .fetch_add((t1 - t0).as_nanos() as u64, Ordering::Relaxed);
        up.write(data, threads)?;
        add_time(&self.0.copy_ns, t1);
        self.0
            .copy_faults
            .fetch_add((faults() - f0) as u64, Ordering::Relaxed);
        let t2 = Instant::now();
        let mut st = self.state();
        let dst = self.buffer(&st, buffer)?;
        let enc = st
            .encoder
            .get_or_insert_with(|| self.0.device.create_command_encoder(&Default::default()));
        enc.copy_buffer_to_buffer(up.buffer(), 0, &dst, offset, len);
        // Submitted now; the upload buffer returns to the ring once the
        // device has copied it.
        self.flush(&mut st);
        drop(st);
        up.recycle(&self.0.queue, self.0.ring_tx.clone());
        add_time(&self.0.submit_ns, t2);
        add_time(&self.0.write_ns, t0);
        Ok(())
    }

    /// A mapped upload buffer of at least `len` bytes from the ring: a
    /// returned one when there is one, a new one while fewer than
    /// [`RING`] are in use, else the next to come back (waits for the device).
    fn staging(&self, len: u64) -> Result<Upload, StageError> {
        let mut ring = self.0.ring.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            while let Ok(b) = ring.returned.try_recv() {
                ring.out -= 1;
                ring.free.push(b);
            }
            if let Some(i) = ring.free.iter().position(|b| b.buffer().size() >= len) {
                ring.out += 1;
                return Ok(ring.free.swap_remove(i));
            }
            if ring.out + ring.free.len() < RING {
                ring.out += 1;
                let t0 = Instant::now();
                let b = Upload::new(&self.0.device, len.max(RING_BUFFER));
                add_time(&self.0.create_ns, t0);
                return Ok(b);
            }
            if let Some(small) = ring.free.pop() {
                // Too small for this upload: make room for a larger one.
                drop(small);
                continue;
            }
            self.wait()?;
        }
    }

    fn pipeline_impl(&self, wgsl: &str, entry: &str) -> Result<u64, StageError> {
        let mut h = DefaultHasher::new();
        wgsl.hash(&mut h);
        entry.hash(&mut h);
        let key = h.finish();
        if self.state().pipelines.contains_key(&key) {
            return Ok(key);
        }
        let t0 = Instant::now();
        let scope = self
            .0
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        // One module per WGSL source (parsed and translated once), shared by
        // its entry points.
        let mut sh = DefaultHasher::new();
        wgsl.hash(&mut sh);
        let skey = sh.finish();
        let cached = self.state().modules.get(&skey).cloned();
        let module = match cached {
            Some(m) => m,
            None => {
                let m = self
                    .0
                    .device
                    .create_shader_module(wgpu::ShaderModuleDescriptor {
                        label: Some(entry),
                        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
                    });
                self.state().modules.insert(skey, m.clone());
                m
            }
        };
        let pipeline = self
            .0
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: self.0.cache.as_ref().map(|c| &c.0),
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(StageError::gpu(format!(
                "compiling compute pipeline '{entry}' failed: {e}"
            )));
        }
        add_time(&self.0.compile_ns, t0);
        let mut st = self.state();
        st.pipelines.insert(key, pipeline);
        st.names.insert(key, entry.to_string());
        Ok(key)
    }

    fn dispatch_impl(
        &self,
        pipeline: u64,
        bindings: &[GpuBuffer],
        uniforms: &[u8],
        groups: [u32; 3],
    ) -> Result<(), StageError> {
        let limit = self.0.device.limits().max_compute_workgroups_per_dimension;
        if groups.iter().any(|&g| g > limit) {
            return Err(StageError::gpu(format!(
                "dispatch of {groups:?} workgroups exceeds the device limit {limit}"
            )));
        }
        let mut st = self.state();
        let pipe = st
            .pipelines
            .get(&pipeline)
            .cloned()
            .ok_or_else(|| StageError::gpu(format!("unknown pipeline {pipeline}")))?;
        let bufs: Vec<wgpu::Buffer> = bindings
            .iter()
            .map(|b| self.buffer(&st, *b))
            .collect::<Result<_, _>>()?;
        let ubuf = (!uniforms.is_empty()).then(|| {
            self.0
                .device
                .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                    label: Some("uniforms"),
                    contents: uniforms,
                    usage: wgpu::BufferUsages::UNIFORM,
                })
        });
        let mut entries: Vec<wgpu::BindGroupEntry> = bufs
            .iter()
            .enumerate()
            .map(|(i, b)| wgpu::BindGroupEntry {
                binding: i as u32,
                resource: b.as_entire_binding(),
            })
            .collect();
        if let Some(u) = &ubuf {
            entries.push(wgpu::BindGroupEntry {
                binding: bufs.len() as u32,
                resource: u.as_entire_binding(),
            });
        }
        let scope = self
            .0
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = self.0.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipe.get_bind_group_layout(0),
            entries: &entries,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(StageError::gpu(format!("binding buffers failed: {e}")));
        }
        let enc = st
            .encoder
            .get_or_insert_with(|| self.0.device.create_command_encoder(&Default::default()));
        {
            let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: None,
                timestamp_writes: None,
            });
            pass.set_pipeline(&pipe);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups[0], groups[1], groups[2]);
        }
        if trace() == Some(true) {
            // Profiling only: run this dispatch alone and time it.
            let t0 = Instant::now();
            self.flush(&mut st);
            self.wait()?;
            let name = st.names.get(&pipeline).cloned().unwrap_or_default();
            let e = st.kernel_time.entry(name).or_insert((0, 0.0));
            e.0 += 1;
            e.1 += t0.elapsed().as_secs_f64();
        }
        Ok(())
    }
}

impl GpuService for WgpuService {
    fn adapter(&self) -> RString {
        self.describe().into()
    }

    fn create_buffer(&self, size: u64) -> RResult<GpuBuffer, StageError> {
        self.create_buffer_impl(size).into()
    }

    fn destroy_buffer(&self, buffer: GpuBuffer) {
        // Pending work may still use it: wgpu keeps it alive until then.
        let b = self.state().buffers.remove(&buffer.id);
        // Dropped outside the lock: freeing a large allocation takes a
        // while, and other threads' GPU calls need not wait for it.
        drop(b);
    }

    fn write_buffer(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        data: RSlice<'_, u8>,
    ) -> RResult<(), StageError> {
        let r = (|| {
            check_range("write", buffer, offset, data.len() as u64)?;
            let t0 = Instant::now();
            let mut st = self.state();
            let b = self.buffer(&st, buffer)?;
            // Keep ordering with recorded dispatches: submit them first.
            self.flush(&mut st);
            self.0.queue.write_buffer(&b, offset, &data);
            add_time(&self.0.write_ns, t0);
            Ok(())
        })();
        r.into()
    }

    fn write_buffer_parallel(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        data: RSlice<'_, u8>,
        threads: u32,
    ) -> RResult<(), StageError> {
        self.write_parallel_impl(buffer, offset, &data, threads as usize)
            .into()
    }

    fn read_buffer(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        mut out: RSliceMut<'_, u8>,
    ) -> RResult<(), StageError> {
        self.read_impl(buffer, offset, &mut out).into()
    }

    fn pipeline(&self, wgsl: RStr<'_>, entry_point: RStr<'_>) -> RResult<u64, StageError> {
        self.pipeline_impl(wgsl.as_str(), entry_point.as_str())
            .into()
    }

    fn dispatch(
        &self,
        pipeline: u64,
        bindings: RSlice<'_, GpuBuffer>,
        uniforms: RSlice<'_, u8>,
        groups_x: u32,
        groups_y: u32,
        groups_z: u32,
    ) -> RResult<(), StageError> {
        self.dispatch_impl(
            pipeline,
            &bindings,
            &uniforms,
            [groups_x, groups_y, groups_z],
        )
        .into()
    }

    fn synchronize(&self) -> RResult<(), StageError> {
        let r = {
            let mut st = self.state();
            self.flush(&mut st);
            drop(st);
            self.wait()
        };
        r.into()
    }
}
