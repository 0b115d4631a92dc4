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
use std::sync::{Arc, Mutex};

use abi_stable::std_types::{RResult, RSlice, RSliceMut, RStr, RString};
use jupiter_plugin_api::{GpuBuffer, GpuService, StageError};
use wgpu::util::DeviceExt;

/// Why no GPU service could be made.
#[derive(Debug, Clone)]
pub struct GpuUnavailable(pub String);

struct State {
    buffers: HashMap<u64, wgpu::Buffer>,
    pipelines: HashMap<u64, wgpu::ComputePipeline>,
    encoder: Option<wgpu::CommandEncoder>,
    next_id: u64,
}

struct Inner {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    state: Mutex<State>,
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
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
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
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("jupiter"),
            required_features: wgpu::Features::empty(),
            required_limits: limits,
            ..Default::default()
        }))
        .map_err(|e| GpuUnavailable(format!("{}: cannot open the device ({e})", info.name)))?;
        Ok(WgpuService(Arc::new(Inner {
            device,
            queue,
            info,
            state: Mutex::new(State {
                buffers: HashMap::new(),
                pipelines: HashMap::new(),
                encoder: None,
                next_id: 1,
            }),
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
        if out.is_empty() {
            return Ok(());
        }
        let len = out.len() as u64;
        if offset + len > b.size || !offset.is_multiple_of(4) || !len.is_multiple_of(4) {
            return Err(StageError::gpu(format!(
                "read of {len} bytes at {offset} from a buffer of {} bytes",
                b.size
            )));
        }
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

    fn pipeline_impl(&self, wgsl: &str, entry: &str) -> Result<u64, StageError> {
        let mut h = DefaultHasher::new();
        wgsl.hash(&mut h);
        entry.hash(&mut h);
        let key = h.finish();
        if self.state().pipelines.contains_key(&key) {
            return Ok(key);
        }
        let scope = self
            .0
            .device
            .push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .0
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(wgsl.into()),
            });
        let pipeline = self
            .0
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(StageError::gpu(format!(
                "compiling compute pipeline '{entry}' failed: {e}"
            )));
        }
        self.state().pipelines.insert(key, pipeline);
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
        let mut st = self.state();
        // Pending work may still use it: wgpu keeps it alive until then.
        st.buffers.remove(&buffer.id);
    }

    fn write_buffer(
        &self,
        buffer: GpuBuffer,
        offset: u64,
        data: RSlice<'_, u8>,
    ) -> RResult<(), StageError> {
        let r = (|| {
            if offset + data.len() as u64 > buffer.size
                || !offset.is_multiple_of(4)
                || !data.len().is_multiple_of(4)
            {
                return Err(StageError::gpu(format!(
                    "write of {} bytes at {offset} into a buffer of {} bytes",
                    data.len(),
                    buffer.size
                )));
            }
            let mut st = self.state();
            let b = self.buffer(&st, buffer)?;
            // Keep ordering with recorded dispatches: submit them first.
            self.flush(&mut st);
            self.0.queue.write_buffer(&b, offset, &data);
            Ok(())
        })();
        r.into()
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
