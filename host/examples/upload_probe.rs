//! Where a GPU upload's time goes, on the machine it runs on: the CPU's
//! copies into each host-visible Vulkan memory type (first touch and again,
//! with the page faults they take), against plain memory, and the device's
//! copy out of each into device-local memory.
//!
//! `cargo run --release -p jupiter-host --features gpu --example upload_probe [MiB]`
//!
//! wgpu's own upload buffers (`MAP_WRITE | COPY_SRC`) are measured too:
//! their memory type is what gpu-allocator picks for "CPU to GPU".

use std::time::Instant;

use ash::vk;

/// Minor page faults of this process so far.
fn faults() -> i64 {
    // SAFETY: getrusage writes the struct it is given.
    unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut u);
        u.ru_minflt
    }
}

/// Copies `src` to `dst` (`src.len()` bytes) on `threads` threads: seconds
/// and page faults taken.
fn copy(dst: *mut u8, src: &[u8], threads: usize) -> (f64, i64) {
    let f0 = faults();
    let t0 = Instant::now();
    let piece = src.len().div_ceil(threads).next_multiple_of(4096);
    let base = dst as usize;
    std::thread::scope(|s| {
        for (i, part) in src.chunks(piece).enumerate() {
            s.spawn(move || {
                // SAFETY: the pieces are disjoint parts of a mapping of at
                // least `src.len()` bytes.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        part.as_ptr(),
                        (base + i * piece) as *mut u8,
                        part.len(),
                    )
                };
            });
        }
    });
    (t0.elapsed().as_secs_f64(), faults() - f0)
}

fn rate(bytes: usize, secs: f64) -> String {
    format!("{:6.1} GB/s", bytes as f64 / secs / 1e9)
}

/// One line per thread count: first touch, then twice again.
fn copies(what: &str, dst: *mut u8, src: &[u8], counts: &[usize]) {
    let (s, f) = copy(dst, src, *counts.last().unwrap());
    println!("{what}: first touch {} ({f} faults)", rate(src.len(), s));
    for &t in counts {
        let (a, fa) = copy(dst, src, t);
        let (b, fb) = copy(dst, src, t);
        println!(
            "{what}: {t:2} threads {} / {} ({} faults)",
            rate(src.len(), a),
            rate(src.len(), b),
            fa + fb
        );
    }
}

/// The device's copy of `len` bytes from `from` into a device-local buffer,
/// `reps` times in one submission: GB/s.
fn device_copy(dev: &wgpu::Device, q: &wgpu::Queue, from: &wgpu::Buffer, len: u64) -> String {
    let to = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: len,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let reps = 8;
    let mut best = f64::MAX;
    for _ in 0..3 {
        let mut enc = dev.create_command_encoder(&Default::default());
        for _ in 0..reps {
            enc.copy_buffer_to_buffer(from, 0, &to, 0, len);
        }
        let t0 = Instant::now();
        q.submit([enc.finish()]);
        dev.poll(wgpu::PollType::wait_indefinitely()).unwrap();
        best = best.min(t0.elapsed().as_secs_f64());
    }
    rate(len as usize * reps, best)
}

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(64);
    let len = mib << 20;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut counts = vec![1, 4];
    if cores > 4 {
        counts.push(cores);
    }
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = wgpu::Backends::VULKAN;
    let instance = wgpu::Instance::new(desc);
    let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
        power_preference: wgpu::PowerPreference::HighPerformance,
        ..Default::default()
    }))
    .expect("a Vulkan adapter");
    println!(
        "{:?}; {cores} cores; {mib} MiB per copy",
        adapter.get_info().name
    );
    let (dev, q) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        required_limits: adapter.limits(),
        ..Default::default()
    }))
    .expect("a device");

    let src: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
    let mut plain = vec![1u8; len];
    copies("plain memory", plain.as_mut_ptr(), &src, &counts);

    // wgpu's upload buffer, as the host's ring makes it.
    let up = dev.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: len as u64,
        usage: wgpu::BufferUsages::MAP_WRITE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: true,
    });
    {
        let mut view = up.slice(..).get_mapped_range_mut().unwrap();
        let ptr = view.slice(..).as_raw_element_ptr().as_ptr();
        copies("wgpu MAP_WRITE", ptr, &src, &counts);
    }
    up.unmap();
    println!(
        "wgpu MAP_WRITE: device copy {}",
        device_copy(&dev, &q, &up, len as u64)
    );

    // SAFETY: the raw handles are used on this device only, every object is
    // created and bound before use, and the buffers handed to wgpu own
    // their memory from then on.
    unsafe { raw_types(&dev, &q, &src, &counts) };
}

/// Every host-visible memory type the buffer may use: copies and the
/// device's copy out of it.
unsafe fn raw_types(dev: &wgpu::Device, q: &wgpu::Queue, src: &[u8], counts: &[usize]) {
    let len = src.len() as u64;
    let (raw, props, exts) = {
        let hal = dev.as_hal::<wgpu::hal::api::Vulkan>().unwrap();
        let inst = hal.shared_instance().raw_instance();
        let pd = hal.raw_physical_device();
        let exts: Vec<String> = inst
            .enumerate_device_extension_properties(pd)
            .unwrap()
            .iter()
            .filter_map(|e| e.extension_name_as_c_str().ok())
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| n.contains("external_memory") || n.contains("host"))
            .collect();
        (
            hal.raw_device().clone(),
            inst.get_physical_device_memory_properties(pd),
            exts,
        )
    };
    println!("extensions: {exts:?}");
    for (i, h) in props.memory_heaps_as_slice().iter().enumerate() {
        println!("heap {i}: {} MiB {:?}", h.size >> 20, h.flags);
    }
    for (i, t) in props.memory_types_as_slice().iter().enumerate() {
        println!("type {i}: heap {} {:?}", t.heap_index, t.property_flags);
    }
    for (i, t) in props.memory_types_as_slice().iter().enumerate() {
        if !t
            .property_flags
            .contains(vk::MemoryPropertyFlags::HOST_VISIBLE)
        {
            continue;
        }
        let info = vk::BufferCreateInfo::default()
            .size(len)
            .usage(vk::BufferUsageFlags::TRANSFER_SRC | vk::BufferUsageFlags::TRANSFER_DST)
            .sharing_mode(vk::SharingMode::EXCLUSIVE);
        let buf = raw.create_buffer(&info, None).unwrap();
        let req = raw.get_buffer_memory_requirements(buf);
        if req.memory_type_bits & (1 << i) == 0 {
            raw.destroy_buffer(buf, None);
            continue;
        }
        let alloc = vk::MemoryAllocateInfo::default()
            .allocation_size(req.size)
            .memory_type_index(i as u32);
        let Ok(mem) = raw.allocate_memory(&alloc, None) else {
            println!("type {i}: allocation refused");
            raw.destroy_buffer(buf, None);
            continue;
        };
        raw.bind_buffer_memory(buf, mem, 0).unwrap();
        let ptr = raw
            .map_memory(mem, 0, vk::WHOLE_SIZE, vk::MemoryMapFlags::empty())
            .unwrap() as *mut u8;
        copies(
            &format!("type {i} {:?}", t.property_flags),
            ptr,
            src,
            counts,
        );
        let hb = wgpu::hal::vulkan::Buffer::from_raw_managed(buf, mem, 0, req.size);
        let wb = dev.create_buffer_from_hal::<wgpu::hal::api::Vulkan>(
            hb,
            &wgpu::BufferDescriptor {
                label: None,
                size: len,
                usage: wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            },
        );
        println!("type {i}: device copy {}", device_copy(dev, q, &wb, len));
    }
}
