//! The upload buffers behind `write_buffer_parallel`: memory the CPU writes
//! and the device copies from.
//!
//! On Vulkan they are the host's own allocations, mapped for their whole
//! life: wgpu zero-fills every `MAP_WRITE` buffer it creates (one thread
//! writing the whole buffer through the mapping). On the GPU machine the
//! three 64 MiB buffers of an upload took 0.06 s to create that way and
//! 0.03 s as the host's own, of a 0.13–0.2 s upload of a 920 MB capture.
//! Elsewhere they are wgpu's mapped buffers.

use wgpu::hal::api::Vulkan;

/// An upload buffer and how the CPU reaches its bytes.
pub(super) struct Upload {
    pub buffer: wgpu::Buffer,
    /// The host's own mapping of the buffer's memory (all of it, for as
    /// long as the buffer lives); `None`: a wgpu `MAP_WRITE` buffer,
    /// written through wgpu's mapping.
    pub mapped: Option<Mapped>,
}

/// A pointer to a mapped allocation of at least the buffer's size.
pub(super) struct Mapped(*mut u8);
// SAFETY: the pointer is only written through while its `Upload` is taken
// out of the ring (one owner at a time), in disjoint pieces.
unsafe impl Send for Mapped {}
unsafe impl Sync for Mapped {}

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
}

/// Copies `data` to `dst` on `threads` threads, in pages-aligned pieces.
///
/// # Safety
/// `dst` is valid for writes of `data.len()` bytes, written by no one else
/// meanwhile.
pub(super) unsafe fn copy_parallel(dst: &Mapped, data: &[u8], threads: usize) {
    let piece = data.len().div_ceil(threads.max(1)).next_multiple_of(4096);
    let base = dst.0 as usize;
    std::thread::scope(|s| {
        for (i, src) in data.chunks(piece).enumerate() {
            s.spawn(move || {
                // SAFETY: disjoint pieces inside `dst` (the caller's promise).
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
