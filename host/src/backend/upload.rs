//! The upload buffers behind `write_buffer_parallel`: memory the CPU writes
//! and the device copies from.
//!
//! On Vulkan they are the host's own allocations, mapped for their whole
//! life: wgpu zero-fills every `MAP_WRITE` buffer it creates (one thread
//! writing the whole buffer through the mapping). On the GPU machine the
//! three 64 MiB buffers of an upload took 0.06 s to create that way and
//! 0.03 s as the host's own, of a 0.13–0.2 s upload of a 920 MB capture.
//! Elsewhere they are wgpu's mapped buffers.

use jupiter_plugin_api::StageError;
use wgpu::hal::api::Vulkan;

/// An upload buffer and how the CPU reaches its bytes.
pub(super) struct Upload {
    buffer: wgpu::Buffer,
    /// The host's own mapping of the buffer's memory (all of it, for as
    /// long as the buffer lives); `None`: a wgpu `MAP_WRITE` buffer,
    /// written through wgpu's mapping.
    mapped: Option<Mapped>,
}

/// A pointer to a mapped allocation of at least the buffer's size.
struct Mapped(*mut u8);
// SAFETY: the pointer is written through only by `Upload::write`, which
// holds the `Upload` exclusively.
unsafe impl Send for Mapped {}

impl Upload {
    /// A buffer of `size` bytes the CPU writes and the device copies from.
    pub fn new(device: &wgpu::Device, size: u64) -> Upload {
        // SAFETY: see `host_allocated`.
        if let Some(u) = unsafe { host_allocated(device, size) } {
            return u;
        }
        Upload {
            buffer: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("upload"),
                size,
                usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: true,
            }),
            mapped: None,
        }
    }

    /// The buffer the device copies from.
    pub fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }

    /// Writes `data` (at most the buffer's size) into the start of the
    /// buffer on `threads` threads, one page-aligned piece each; a wgpu
    /// buffer is unmapped after, ready for the device's copy.
    pub fn write(&mut self, data: &[u8], threads: usize) -> Result<(), StageError> {
        assert!(data.len() as u64 <= self.buffer.size());
        let piece = data.len().div_ceil(threads.max(1)).next_multiple_of(4096);
        let Some(m) = &self.mapped else {
            write_mapped(&self.buffer, data, piece)?;
            self.buffer.unmap();
            return Ok(());
        };
        let base = m.0 as usize;
        std::thread::scope(|s| {
            for (i, src) in data.chunks(piece).enumerate() {
                s.spawn(move || {
                    // SAFETY: the mapping covers the buffer (checked above
                    // to hold `data`), no one else writes it while `self`
                    // is borrowed mutably, and the pieces are disjoint.
                    unsafe {
                        std::ptr::copy_nonoverlapping(
                            src.as_ptr(),
                            (base + i * piece) as *mut u8,
                            src.len(),
                        )
                    };
                });
            }
        });
        Ok(())
    }

    /// Sends this buffer to `to` once the device has done the work
    /// submitted so far on `queue` (the copy out of it), a wgpu buffer
    /// mapped again first.
    pub fn recycle(self, queue: &wgpu::Queue, to: std::sync::mpsc::Sender<Upload>) {
        if self.mapped.is_some() {
            queue.on_submitted_work_done(move || {
                let _ = to.send(self);
            });
        } else {
            let b = self.buffer.clone();
            b.map_async(wgpu::MapMode::Write, .., move |r| {
                if r.is_ok() {
                    let _ = to.send(self);
                }
            });
        }
    }
}

/// A disjoint piece of a mapped wgpu buffer, written by one thread.
struct Piece<'a>(wgpu::WriteOnly<'a, [u8]>);
// SAFETY: a `WriteOnly` view is an exclusive handle on its bytes (the pieces
// come from `split_at` and do not overlap); wgpu implements `Send` for it
// only for sized contents, which is why the slice needs this wrapper.
unsafe impl Send for Piece<'_> {}

impl Piece<'_> {
    fn write(mut self, src: &[u8]) {
        self.0.copy_from_slice(src);
    }
}

/// Writes `data` into the start of `buffer`, a wgpu buffer mapped for
/// writing, in pieces of `piece` bytes on a thread each.
fn write_mapped(buffer: &wgpu::Buffer, data: &[u8], piece: usize) -> Result<(), StageError> {
    let mut view = buffer
        .slice(..data.len() as u64)
        .get_mapped_range_mut()
        .map_err(|e| StageError::gpu(format!("mapping an upload buffer failed: {e:?}")))?;
    let mut rest = view.slice(..);
    let mut pieces = Vec::new();
    for src in data.chunks(piece) {
        let (d, r) = rest.split_at(src.len());
        pieces.push((Piece(d), src));
        rest = r;
    }
    std::thread::scope(|s| {
        for (d, src) in pieces {
            s.spawn(move || d.write(src));
        }
    });
    Ok(())
}

/// A Vulkan buffer in memory the host allocates and maps itself (what
/// gpu-allocator picks for wgpu's upload buffers: host-visible, coherent,
/// device-local where the device offers it), handed to wgpu, which frees
/// it with the buffer. `None` off Vulkan or when no memory type serves.
///
/// # Safety
/// Uses `device`'s raw Vulkan handles: the buffer is created, bound and
/// mapped before wgpu sees it, and wgpu owns (and frees) buffer and memory
/// from then on.
unsafe fn host_allocated(device: &wgpu::Device, size: u64) -> Option<Upload> {
    use ash::vk;
    let (hal_buffer, ptr, alloc) = {
        let hal = unsafe { device.as_hal::<Vulkan>() }?;
        let raw = hal.raw_device();
        let inst = hal.shared_instance().raw_instance();
        let props =
            unsafe { inst.get_physical_device_memory_properties(hal.raw_physical_device()) };
        let info = vk::BufferCreateInfo::default()
            .size(size)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        let buffer = unsafe { raw.create_buffer(&info, None) }.ok()?;
        let req = unsafe { raw.get_buffer_memory_requirements(buffer) };
        let visible =
            vk::MemoryPropertyFlags::HOST_VISIBLE | vk::MemoryPropertyFlags::HOST_COHERENT;
        let types = props.memory_types_as_slice();
        let allowed = |i: usize, flags: vk::MemoryPropertyFlags| {
            req.memory_type_bits & (1 << i) != 0 && types[i].property_flags.contains(flags)
        };
        // Device-local first (the device copies out of its own memory), then
        // any host-visible coherent type.
        let order = (0..types.len())
            .filter(|&i| allowed(i, visible | vk::MemoryPropertyFlags::DEVICE_LOCAL))
            .chain((0..types.len()).filter(|&i| allowed(i, visible)));
        let mut found = None;
        for i in order {
            let alloc = vk::MemoryAllocateInfo::default()
                .allocation_size(req.size)
                .memory_type_index(i as u32);
            if let Ok(mem) = unsafe { raw.allocate_memory(&alloc, None) } {
                found = Some(mem);
                break;
            }
        }
        let Some(memory) = found else {
            unsafe { raw.destroy_buffer(buffer, None) };
            return None;
        };
        let mapped = unsafe {
            raw.bind_buffer_memory(buffer, memory, 0).and_then(|_| {
                raw.map_memory(memory, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
            })
        };
        let Ok(ptr) = mapped else {
            unsafe {
                raw.destroy_buffer(buffer, None);
                raw.free_memory(memory, None);
            }
            return None;
        };
        let hal_buffer =
            unsafe { wgpu::hal::vulkan::Buffer::from_raw_managed(buffer, memory, 0, req.size) };
        (hal_buffer, ptr as *mut u8, req.size)
    };
    debug_assert!(alloc >= size);
    let buffer = unsafe {
        device.create_buffer_from_hal::<Vulkan>(
            hal_buffer,
            &wgpu::BufferDescriptor {
                label: Some("upload"),
                size,
                usage: wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            },
        )
    };
    Some(Upload {
        buffer,
        mapped: Some(Mapped(ptr)),
    })
}
