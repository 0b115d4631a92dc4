//! GPU vs CPU benchmarks on the machine it runs on (issue: GPU backend).
//!
//!     cargo run --release -p jupiter-bench --features gpu --bin gpu -- [--frames N] [--size S] [--wavelet-size S]
//!
//! Prints, for each case, the GPU kernel time (dispatches + synchronisation,
//! data already on the device), the GPU end-to-end time (decode, upload,
//! kernels, download) and the CPU path's time on all cores of the machine.

use std::time::Instant;

use jupiter_host::backend::HostBackend;
use jupiter_host::backend::{select_device, BackendChoice};
use jupiter_plugin_api::gpu::helpers::upload;
use jupiter_plugin_api::*;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn secs(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

fn main() {
    let frames = arg("--frames", 1000);
    let size = arg("--size", 1024);
    let wsize = arg("--wavelet-size", 4096);
    let sel = select_device(BackendChoice::Gpu);
    let Some(gpu) = sel.gpu.clone() else {
        eprintln!("no GPU: {}", sel.warning.unwrap_or_default());
        std::process::exit(2);
    };
    let mut gpu_be = HostBackend::new(0, Default::default()).unwrap();
    gpu_be.quiet = true;
    gpu_be.set_gpu(Some(gpu.clone()));
    let mut cpu_be = HostBackend::new(0, Default::default()).unwrap();
    cpu_be.quiet = true;
    let threads = cpu_be.as_ref().threads();
    println!("device: {}; CPU path on {threads} threads", sel.description);
    let gctx = StageCtx {
        backend: gpu_be.as_ref(),
        stage: "bench".into(),
    };
    let cctx = StageCtx {
        backend: cpu_be.as_ref(),
        stage: "bench".into(),
    };
    median_kernel(&gpu, frames, size);
    let src = jupiter_plugin_api::testing::GeneratedFrames {
        info: FrameInfo {
            width: size as u32,
            height: size as u32,
            channels: 1,
            count: frames as u32,
        },
    };
    let source = FrameSource_TO::from_ptr(&src, abi_stable::sabi_trait::TD_Opaque);
    let warps: Vec<FrameWarp> = (0..frames)
        .map(|k| FrameWarp::shift((k % 9) as f32 * 0.37 - 1.5, (k % 7) as f32 * 0.29 - 1.0))
        .collect();
    let req = StackRequest::new(warps.clone());
    let run = Run {
        gpu: &gpu,
        gctx: &gctx,
        cctx: &cctx,
        source: &source,
        req: &req,
        frames,
        size,
    };
    median_stack(&run);
    mean_stack(&run);
    wavelet_bench(&gctx, &gpu, &cctx, wsize);
}

/// What the stacking benchmarks share.
struct Run<'a, 'c, 's> {
    gpu: &'a GpuServiceBox,
    gctx: &'a StageCtx<'c>,
    cctx: &'a StageCtx<'c>,
    source: &'a FrameSourceRef<'s>,
    req: &'a StackRequest,
    frames: usize,
    size: usize,
}

impl Run<'_, '_, '_> {
    /// Runs a GPU stacker (its image downloaded) and a CPU stacker on this
    /// run's frames; returns each image with its time in seconds.
    fn time_both(
        &self,
        gpu_stack: impl Fn(&StageCtx, &GpuServiceBox) -> Result<Image, StageError>,
        cpu_stack: impl Fn(&StageCtx) -> Result<Image, StageError>,
    ) -> ((Image, f64), (Image, f64)) {
        let t = Instant::now();
        let img = gpu_stack(self.gctx, self.gpu).unwrap();
        let on_gpu = (self.gctx.to_host(img).unwrap(), secs(t));
        let t = Instant::now();
        let on_cpu = (cpu_stack(self.cctx).unwrap(), secs(t));
        (on_gpu, on_cpu)
    }
}

/// Median kernel: one band of the frames × size² stack, repeated over all bands.
fn median_kernel(gpu: &GpuServiceBox, frames: usize, size: usize) {
    let row = size;
    let band = (jupiter_plugin_stack_median::gpu::MEDIAN_TILE_BUDGET_WORDS / (frames * row))
        .clamp(1, size);
    let bands = size.div_ceil(band);
    let tile_data: Vec<f32> = (0..frames * band * row)
        .map(|i| ((i as u64 * 2654435761) % 10007) as f32 / 10007.0)
        .collect();
    let tile = upload(gpu, &tile_data).unwrap();
    let out = upload(gpu, &vec![0.0; size * row]).unwrap();
    jupiter_plugin_stack_median::gpu::median_kernel(gpu, tile, out, band * row, frames, 0).unwrap();
    gpu.synchronize().into_result().unwrap();
    let t = Instant::now();
    for b in 0..bands {
        let rows = band.min(size - b * band);
        jupiter_plugin_stack_median::gpu::median_kernel(
            gpu,
            tile,
            out,
            rows * row,
            frames,
            b * band * row,
        )
        .unwrap();
    }
    gpu.synchronize().into_result().unwrap();
    let median_kernel = secs(t);
    gpu.destroy_buffer(tile);
    gpu.destroy_buffer(out);
    println!(
        "median kernel, {frames} frames of {size}×{size}: {:.1} ms ({bands} bands of {band} rows)",
        median_kernel * 1e3
    );
}

/// Median end to end (decode, upload, shift, select, download) vs the CPU fast path.
fn median_stack(r: &Run<'_, '_, '_>) {
    let (frames, size) = (r.frames, r.size);
    let mp = jupiter_plugin_stack_median::params::MedianParams::default();
    let ((gpu_median, median_gpu), (cpu_median, median_cpu)) = r.time_both(
        |ctx, gpu| jupiter_plugin_stack_median::gpu::stack(ctx, gpu, r.source, r.req, &mp),
        |ctx| jupiter_plugin_stack_median::cpu::stack(ctx, r.source, r.req, &mp),
    );
    let diff = jupiter_testkit::reference::max_abs_diff(&cpu_median.data, &gpu_median.data);
    println!(
        "median stack, {frames} frames of {size}×{size} (bicubic shifts): GPU end to end {median_gpu:.2} s, CPU {median_cpu:.2} s ({:.1}×), max |cpu - gpu| {diff:e}",
        median_cpu / median_gpu
    );
}

/// Mean: GPU end to end vs the CPU path, and the kernels alone.
fn mean_stack(r: &Run<'_, '_, '_>) {
    let (gpu, gctx, source, req) = (r.gpu, r.gctx, r.source, r.req);
    let (frames, size) = (r.frames, r.size);
    let warps = &req.alignment.warps;
    let p = jupiter_plugin_stack_mean::params::MeanParams::default();
    let ((_, mean_gpu), (_, mean_cpu)) = r.time_both(
        |ctx, gpu| jupiter_plugin_stack_mean::gpu::stack(ctx, gpu, source, req, &p),
        |ctx| jupiter_plugin_stack_mean::cpu::stack(ctx, source, req, &p),
    );
    // Mean kernels only: batched shift + accumulate over all frames, the
    // batch's frames already on the device.
    let len = size * size;
    let batch = (jupiter_plugin_stack_mean::gpu::BATCH_WORDS / len).clamp(1, frames);
    let mut staged = vec![0.0f32; batch * len];
    jupiter_kit::gpu::read_batch(gctx, source, 0, batch, (0, size), &mut staged).unwrap();
    let fsrc = upload(gpu, &staged).unwrap();
    let acc = upload(gpu, &vec![0.0; len]).unwrap();
    let table = upload(gpu, &vec![0.0; batch * jupiter_kit::gpu::SLOT_WORDS]).unwrap();
    let slots: Vec<jupiter_kit::gpu::FrameSlot> = (0..batch)
        .map(|k| jupiter_kit::gpu::FrameSlot {
            dx: warps[k].dx,
            dy: warps[k].dy,
            weight: 1.0,
            src_offset: k * len,
            dst_offset: 0,
        })
        .collect();
    jupiter_kit::gpu::write_slots(gpu, table, &slots).unwrap();
    let geometry = jupiter_kit::gpu::ShiftGeometry::whole(size, size, 1, 1);
    gpu.synchronize().into_result().unwrap();
    let t = Instant::now();
    for start in (0..frames).step_by(batch) {
        jupiter_kit::gpu::shift_accumulate(
            gpu,
            fsrc,
            acc,
            table,
            &geometry,
            batch.min(frames - start),
        )
        .unwrap();
    }
    gpu.synchronize().into_result().unwrap();
    let mean_kernel = secs(t);
    for b in [fsrc, acc, table] {
        gpu.destroy_buffer(b);
    }
    println!(
        "mean stack, {frames} frames of {size}×{size} (bicubic shifts): GPU kernels {:.1} ms, GPU end to end {mean_gpu:.2} s, CPU {mean_cpu:.2} s ({:.1}×)",
        mean_kernel * 1e3,
        mean_cpu / mean_gpu
    );
}

/// Wavelet, 6 layers, on wsize²: GPU end to end (upload + kernels + download) vs CPU.
fn wavelet_bench(gctx: &StageCtx, gpu: &GpuServiceBox, cctx: &StageCtx, wsize: usize) {
    let img = Image::from_vec(
        wsize as u32,
        wsize as u32,
        1,
        (0..wsize * wsize)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0)
            .collect(),
    );
    let s = jupiter_plugin_sharpen_wavelet_settings();
    let t = Instant::now();
    let out = wavelet_gpu(gctx, gpu, img.clone(), &s);
    let wav_gpu = secs(t);
    let t = Instant::now();
    let _ = wavelet_cpu(cctx, img, &s);
    let wav_cpu = secs(t);
    drop(out);
    println!("wavelet 6 layers on {wsize}×{wsize}: GPU end to end {wav_gpu:.2} s, CPU {wav_cpu:.2} s ({:.1}×)", wav_cpu / wav_gpu);
}

// The wavelet plugin's rlib is linked by name only here (one plugin rlib per
// binary besides stack-mean: their root-module symbols would collide).
use jupiter_plugin_sharpen_wavelet as wavelet;

fn jupiter_plugin_sharpen_wavelet_settings() -> wavelet::params::LayerSettings {
    wavelet::params::LayerSettings {
        gains: vec![3.0, 2.0, 1.0, 1.0, 1.0, 1.0],
        thresholds: vec![0.5, 0.0, 0.0, 0.0, 0.0, 0.0],
    }
}

fn wavelet_gpu(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    img: Image,
    s: &wavelet::params::LayerSettings,
) -> Image {
    let out = wavelet::gpu::sharpen(ctx, gpu, img, s).unwrap();
    ctx.to_host(out).unwrap()
}

fn wavelet_cpu(ctx: &StageCtx, img: Image, s: &wavelet::params::LayerSettings) -> Image {
    wavelet::cpu::sharpen(ctx, img, s).unwrap()
}
