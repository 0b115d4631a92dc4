//! CPU vs GPU parity of the stages that work on the capture kept on the
//! device: SER decoding (`shaders/decode.wgsl` against the host's decoder),
//! frame scoring (`shaders/quality.wgsl`) and phase correlation
//! (`shaders/phase_corr.wgsl`). Mono and RGB, odd sizes, several device
//! buffers. Runs with `--features gpu`; in CI on Mesa's lavapipe, where a
//! missing adapter fails the test. Each test states its tolerance.
#![cfg_attr(not(feature = "gpu"), allow(dead_code, unused_imports))]

use std::sync::Arc;

use jupiter_host::backend::HostBackend;
use jupiter_host::frames::CaptureFrames;
use jupiter_host::frames::CaptureOnDevice;
use jupiter_host::io::calibrate::{Calibration, CalibrationSpec};
use jupiter_host::io::capture::CaptureFile;
use jupiter_host::io::debayer::Demosaic;
use jupiter_host::io::ser::{ByteOrder, OpenOptions, SerFile};
use jupiter_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use jupiter_plugin_api::frame::FrameSourceExt;
use jupiter_plugin_api::gpu::helpers::download;
use jupiter_plugin_api::*;
use jupiter_testkit::flaws::{generate_flawed, write_darks, write_flat_darks, write_flats, Flaws};
use jupiter_testkit::ser::{write_ser, SerSpec};
use jupiter_testkit::ser::{Cfa, SerColor};
use jupiter_tests::synth::{SynthColor, SynthOptions};
use jupiter_tests::*;

/// A deterministic pseudo-random sample stream.
fn samples(n: usize, max: u16, seed: u64) -> Vec<u16> {
    let mut rng = jupiter_testkit::Rng::new(seed);
    (0..n).map(|_| rng.below_or_eq(max as u64) as u16).collect()
}

fn decode_on_the_device_matches_the_host_decoder() {
    let be = gpu_only();
    let gpu = be.gpu_service().unwrap().clone();
    let dir = scratch("gpu-decode");
    let cases = [
        ("mono8", SerColor::Mono, 8, 37, 23, ByteOrder::Auto),
        ("mono12", SerColor::Mono, 12, 33, 21, ByteOrder::Little),
        ("mono16-be", SerColor::Mono, 16, 31, 19, ByteOrder::Big),
        ("rgb8", SerColor::Rgb, 8, 29, 17, ByteOrder::Auto),
        ("bgr16", SerColor::Bgr, 16, 27, 15, ByteOrder::Little),
        (
            "bayer8",
            SerColor::Bayer(Cfa::Rggb),
            8,
            35,
            25,
            ByteOrder::Auto,
        ),
        (
            "bayer16-gbrg",
            SerColor::Bayer(Cfa::Gbrg),
            16,
            26,
            14,
            ByteOrder::Little,
        ),
    ];
    for (name, color, depth, w, h, order) in cases {
        let spec = SerSpec::new(w, h, color, depth);
        let planes = if matches!(color, SerColor::Rgb | SerColor::Bgr) {
            3
        } else {
            1
        };
        let max = ((1u32 << depth) - 1) as u16;
        let frames: Vec<Vec<u16>> = (0..9)
            .map(|k| samples((w * h) as usize * planes, max, k as u64 + 7))
            .collect();
        let path = dir.join(format!("{name}.ser"));
        write_ser(&path, &spec, &frames, None).unwrap();
        let ser = Arc::new(CaptureFile::from(
            SerFile::open(
                &path,
                OpenOptions {
                    byte_order: order,
                    allow_truncated: false,
                },
            )
            .unwrap(),
        ));
        // Decoded buffers of 8 frames, uploads of 4 (the smallest chunk):
        // two chunks into the first buffer (both raw buffers in turn), one
        // into the second.
        let decoded = (ser.width() * ser.height() * ser.channels() * 4) as u64;
        let store = Arc::new(
            CaptureOnDevice::new(gpu.clone(), be.cancel_flag(), 2).with_sizes(8 * decoded, 1),
        );
        // A reversed selection: slots out of order.
        let src = CaptureFrames {
            capture: ser.clone(),
            indices: (0..9).rev().collect(),
            device: Some(store.clone()),
        };
        let fs = FrameSource_TO::from_ptr(&src, TD_Opaque);
        let dev = fs
            .on_device()
            .unwrap()
            .expect("a 9-frame capture fits the device");
        let len = fs.info().frame_len();
        let mut worst = 0.0f32;
        for i in 0..9 {
            let (buf, off) = dev.locate(i, len);
            let all = download(&gpu, buf, off + len).unwrap();
            let mut cpu = vec![0.0; len];
            fs.read_frame(i, &mut cpu).unwrap();
            worst = worst.max(max_abs_diff(&cpu, &all[off..off + len]));
        }
        // Same formulas in f32; the only difference allowed is rounding.
        assert!(worst <= 1e-6, "{name}: max |cpu - gpu| = {worst:e}");
        eprintln!("{name}: decode max |cpu - gpu| = {worst:e}");
    }
}

/// The decode kernel's two demosaics against the host's (`debayer.rs`):
/// random mosaics (the harshest case for the 5×5 MHC kernels), odd sizes
/// and frames under 5 samples a side (MHC's mirrored edges everywhere).
fn demosaic_methods_on_the_device_match_the_host() {
    let be = gpu_only();
    let gpu = be.gpu_service().unwrap().clone();
    let dir = scratch("gpu-demosaic");
    let cases = [
        (Cfa::Rggb, 8, 35, 25),
        (Cfa::Grbg, 16, 26, 14),
        (Cfa::Bggr, 12, 4, 3),
        (Cfa::Gbrg, 8, 19, 2),
    ];
    for (cfa, depth, w, h) in cases {
        let spec = SerSpec::new(w, h, SerColor::Bayer(cfa), depth);
        let max = ((1u32 << depth) - 1) as u16;
        let frames: Vec<Vec<u16>> = (0..5)
            .map(|k| samples((w * h) as usize, max, k as u64 + 11))
            .collect();
        let path = dir.join(format!("{cfa:?}-{depth}-{w}x{h}.ser"));
        write_ser(&path, &spec, &frames, None).unwrap();
        for method in [Demosaic::Bilinear, Demosaic::Mhc] {
            let mut ser = SerFile::open(&path, OpenOptions::default()).unwrap();
            ser.demosaic = method;
            let capture = Arc::new(CaptureFile::from(ser));
            assert_eq!(capture.demosaic(), method);
            let worst = device_vs_host(&be, &gpu, capture, 5);
            // Same formulas and summing order in f32: rounding only (MHC's
            // weights reach 2.5× the sample, so allow a few ulps of 1).
            assert!(
                worst <= 2e-6,
                "{cfa:?} {w}×{h} {method:?}: max |cpu - gpu| = {worst:e}"
            );
            eprintln!("{cfa:?} {w}×{h} {method:?}: decode max |cpu - gpu| = {worst:e}");
        }
    }
}

/// The decode kernel's calibration (offset, flat gain, hot and dead pixel
/// repair, then the demosaic) against `CaptureFile::decode_rows` with the
/// same masters: a flawed sensor (vignetting, glow, hot pixels), Bayer with
/// each demosaic and mono, masters from darks, flats and flat-darks.
fn calibrated_decode_on_the_device_matches_the_host() {
    let be = gpu_only();
    let gpu = be.gpu_service().unwrap().clone();
    let dir = scratch("gpu-calibrated-decode");
    let cases = [
        ("bayer", SynthColor::Bayer(Cfa::Grbg), 8),
        ("bayer16", SynthColor::Bayer(Cfa::Rggb), 16),
        ("mono", SynthColor::Mono, 8),
    ];
    for (name, color, depth) in cases {
        let o = SynthOptions {
            width: 61,
            height: 37,
            frames: 4,
            color,
            depth,
            seed: 9,
            ..Default::default()
        };
        let flaws = Flaws::synthetic(&o, 12);
        let path = dir.join(format!("{name}.ser"));
        let spec = CalibrationSpec {
            dark: Some(dir.join(format!("{name}-darks.ser"))),
            flat: Some(dir.join(format!("{name}-flats.ser"))),
            flat_dark: Some(dir.join(format!("{name}-flat-darks.ser"))),
            ..Default::default()
        };
        generate_flawed(&path, &o, &flaws).unwrap();
        write_darks(spec.dark.as_ref().unwrap(), &o, &flaws, 8, 1).unwrap();
        write_flats(spec.flat.as_ref().unwrap(), &o, &flaws, 8, 2).unwrap();
        write_flat_darks(spec.flat_dark.as_ref().unwrap(), &o, &flaws, 8, 3).unwrap();
        for method in [Demosaic::Bilinear, Demosaic::Mhc] {
            let opts = jupiter_host::io::capture::OpenOptions {
                demosaic: method,
                ..Default::default()
            };
            let cal = Calibration::prepare(&spec, opts, None).unwrap().unwrap();
            let file = CaptureFile::open(&path, opts).unwrap();
            let applied = cal.attach(&file).unwrap();
            assert!(
                applied.summary().hot_pixels > 0,
                "{name}: no hot pixel to repair"
            );
            let file = file.with_calibration(Arc::new(applied));
            assert!(file.raw_layout().is_some(), "{name}: not uploaded raw");
            let worst = device_vs_host(&be, &gpu, Arc::new(file), 4);
            // Same operations in the same order (the median by sorting):
            // rounding only; the flat gain reaches ~2, so a few ulps of 1.
            assert!(
                worst <= 4e-6,
                "{name} {method:?}: max |cpu - gpu| = {worst:e}"
            );
            eprintln!("{name} {method:?}: calibrated decode max |cpu - gpu| = {worst:e}");
        }
    }
}

/// Largest difference between the device's decoded frames of `capture`
/// (all `n` uploaded raw and decoded by the kernel) and the host's.
fn device_vs_host(
    be: &HostBackend,
    gpu: &GpuServiceBox,
    capture: Arc<CaptureFile>,
    n: usize,
) -> f32 {
    let store = Arc::new(CaptureOnDevice::new(gpu.clone(), be.cancel_flag(), 2));
    let src = CaptureFrames {
        capture,
        indices: (0..n).collect(),
        device: Some(store),
    };
    let fs = FrameSource_TO::from_ptr(&src, TD_Opaque);
    let dev = fs
        .on_device()
        .unwrap()
        .expect("a small capture fits the device");
    let len = fs.info().frame_len();
    let mut worst = 0.0f32;
    for i in 0..n {
        let (buf, off) = dev.locate(i, len);
        let all = download(gpu, buf, off + len).unwrap();
        let mut cpu = vec![0.0; len];
        fs.read_frame(i, &mut cpu).unwrap();
        worst = worst.max(max_abs_diff(&cpu, &all[off..off + len]));
    }
    worst
}

fn planet(w: usize, h: usize, c: usize, sx: f32, sy: f32, seed: u32) -> Vec<f32> {
    let mut out = Vec::with_capacity(w * h * c);
    for y in 0..h {
        for x in 0..w {
            let (dx, dy) = (
                x as f32 - w as f32 / 2.0 - sx,
                y as f32 - h as f32 / 2.0 - sy,
            );
            let r = (dx * dx + dy * dy).sqrt();
            let rad = 0.3 * w.min(h) as f32;
            let body = 1.0 / (1.0 + ((r - rad) / 1.2).exp());
            let bands = 0.6
                + 0.25 * (dy * 0.21 + 0.002 * dy * dy).sin()
                + 0.1 * (dx * 0.13 - 0.003 * dx * dy).cos();
            for k in 0..c {
                // Independent per frame (a fixed pattern would pull shifts to 0).
                let mut hsh = (x as u32).wrapping_mul(0x9E37_79B9)
                    ^ (y as u32).wrapping_mul(0x85EB_CA6B)
                    ^ (k as u32).wrapping_mul(0xC2B2_AE35)
                    ^ seed.wrapping_mul(0x27D4_EB2F);
                hsh ^= hsh >> 15;
                hsh = hsh.wrapping_mul(0x2C1B_3C6D);
                hsh ^= hsh >> 12;
                let noise = (hsh % 1000) as f32 / 1000.0 - 0.5;
                out.push(body * bands * (1.0 - 0.1 * k as f32) + 0.01 * noise);
            }
        }
    }
    out
}

fn frame_scores_on_the_device_match_the_cpu() {
    let be = gpu_only();
    let cpu_be = cpu_backend();
    use jupiter_plugin_quality::params::{Metric, QualityParams};
    // The last two: RGB frames of a Bayer mosaic (RGGB, GRBG; an odd
    // width), scored on the mosaic's 2×2 cells on both paths.
    for (w, h, c, mosaic) in [
        (37usize, 23usize, 1usize, None),
        (40, 17, 3, None),
        (130, 97, 1, None),
        (40, 18, 3, Some(148u32)),
        (43, 21, 3, Some(97)),
    ] {
        let frames: Vec<Vec<f32>> = (0..7)
            .map(|k| planet(w, h, c, k as f32 * 0.7, -(k as f32) * 0.4, k))
            .collect();
        let g = stage_ctx(&be);
        let gpu = g.gpu().unwrap();
        // Three frames per device buffer: the batch spans buffers.
        let mut mem = resident_frames(&g, (w, h, c), frames, 3);
        mem.mosaic = mosaic;
        let dev = mem.device.clone().unwrap();
        for p in [
            QualityParams::default(),
            QualityParams {
                metric: Metric::Tenengrad,
                prefilter_sigma: 0.0,
                normalize: false,
                ..Default::default()
            },
            QualityParams {
                metric: Metric::Laplacian,
                prefilter_sigma: 5.0,
                normalize: true,
                // Every pixel (the others score 2×2 cells).
                cells: false,
            },
            // Radius 7: the largest apron of the 32×32-tile kernel.
            QualityParams {
                metric: Metric::Tenengrad,
                prefilter_sigma: 2.3,
                normalize: true,
                ..Default::default()
            },
        ] {
            let cpu =
                jupiter_plugin_quality::cpu::score_all(&stage_ctx(&cpu_be), &mem.as_ref(), &p)
                    .unwrap();
            let on_gpu =
                jupiter_plugin_quality::gpu::score_all(&g, &gpu, &mem.as_ref(), &dev, &p).unwrap();
            for (a, b) in cpu.iter().zip(&on_gpu) {
                // Relative: sums of f32 in a different order.
                let rel = (a - b).abs() / a.abs().max(1e-12);
                assert!(
                    rel <= 1e-4,
                    "{w}×{h}×{c} {p:?}: cpu {a} gpu {b} (relative {rel:e})"
                );
            }
        }
    }
}

fn phase_correlation_on_the_device_matches_the_cpu() {
    let be = gpu_only();
    let cpu_be = cpu_backend();
    use jupiter_plugin_align_phase::params::AlignParams;
    // 96×80: one full-resolution pass and the refinement; 160×144: the
    // 2×2-binned first estimate; 120×90 RGB: radices 3 and 5.
    for (w, h, c) in [(96usize, 80usize, 1usize), (160, 144, 1), (120, 90, 3)] {
        let truth: Vec<(f32, f32)> = (0..9)
            .map(|k| ((k as f32 * 0.77).sin() * 3.1, (k as f32 * 1.3).cos() * 2.4))
            .collect();
        let frames: Vec<Vec<f32>> = truth
            .iter()
            .enumerate()
            .map(|(k, &(x, y))| planet(w, h, c, x, y, k as u32))
            .collect();
        let g = stage_ctx(&be);
        let gpu = g.gpu().unwrap();
        let mem = resident_frames(&g, (w, h, c), frames, 4);
        let dev = mem.device.clone().unwrap();
        let p = AlignParams {
            reference_frames: 3,
            region: "full".into(),
            ..Default::default()
        };
        let cpu =
            jupiter_plugin_align_phase::cpu::align(&stage_ctx(&cpu_be), &mem.as_ref(), &p).unwrap();
        let on_gpu = jupiter_plugin_align_phase::gpu::align(&g, &gpu, &mem.as_ref(), &dev, &p)
            .unwrap()
            .expect("supported size");
        let mut worst = 0.0f32;
        for (k, (a, b)) in cpu.warps.iter().zip(on_gpu.warps.iter()).enumerate() {
            let d = (a.dx - b.dx).abs().max((a.dy - b.dy).abs());
            worst = worst.max(d);
            // Same arithmetic in f32 (FFT round-off differs): well under the
            // 0.05 px that would show in a stack.
            assert!(
                d <= 2e-3,
                "{w}×{h}×{c} frame {k}: cpu ({}, {}) gpu ({}, {})",
                a.dx,
                a.dy,
                b.dx,
                b.dy
            );
            // And the measurement is near the truth (relative to frame 0; on
            // this small synthetic disc the CPU path itself reads shifts of
            // 3–4 px about 3 % short, so this is a sanity bound).
            let (tx, ty) = (truth[k].0 - truth[0].0, truth[k].1 - truth[0].1);
            assert!(
                (b.dx - tx).abs() < 0.15 && (b.dy - ty).abs() < 0.15,
                "{w}×{h}×{c} frame {k}: gpu ({}, {}) truth ({tx}, {ty})",
                b.dx,
                b.dy
            );
        }
        eprintln!("{w}×{h}×{c}: max |cpu - gpu| shift {worst:e} px");
    }
}

fn mean_stack_over_device_frames_matches_the_cpu() {
    let be = gpu_only();
    let cpu_be = cpu_backend();
    use jupiter_plugin_stack_mean::params::MeanParams;
    for (w, h, c) in [(33usize, 21usize, 1usize), (40, 17, 3)] {
        let g = stage_ctx(&be);
        let (gpu, mem) = (g.gpu().unwrap(), resident_texture_frames(&g, (w, h, c), 0));
        let req = scored_request(linear_shifts(7, (-2.0, 0.63), (1.7, -0.41)));
        let p = MeanParams {
            quality_weighting: true,
            ..Default::default()
        };
        let cpu =
            jupiter_plugin_stack_mean::cpu::stack(&stage_ctx(&cpu_be), &mem.as_ref(), &req, &p)
                .unwrap();
        let out = jupiter_plugin_stack_mean::gpu::stack(&g, &gpu, &mem.as_ref(), &req, &p).unwrap();
        let d = max_abs_diff(&cpu.data, &host_data(&g, out));
        // Tolerance 1e-4 of full scale (as the uploaded-batch path).
        assert!(d <= 1e-4, "{w}×{h}×{c}: max |cpu - gpu| = {d:e}");
    }
}

/// `stack-median` over frames kept on the device (several device buffers,
/// bands of rows smaller than the frame) equals its CPU path.
fn median_stack_over_device_frames_matches_the_cpu() {
    let be = gpu_only();
    let cpu_be = cpu_backend();
    for (w, h, c) in [(33usize, 21usize, 1usize), (40, 17, 3)] {
        let g = stage_ctx(&be);
        let (gpu, mem) = (g.gpu().unwrap(), resident_texture_frames(&g, (w, h, c), 20));
        let warps = linear_shifts(7, (-1.9, 0.57), (1.3, -0.37));
        let req = scored_request(warps.clone());
        let p = jupiter_plugin_stack_median::params::MedianParams::default();
        let cpu =
            jupiter_plugin_stack_median::cpu::stack(&stage_ctx(&cpu_be), &mem.as_ref(), &req, &p)
                .unwrap();
        // A band budget of 5 rows of all frames: several bands.
        let out = jupiter_plugin_stack_median::gpu::median_stack(
            &g,
            &gpu,
            &mem.as_ref(),
            &warps,
            p.interpolation.shader_code(),
            7 * 5 * w * c,
        )
        .unwrap();
        let d = max_abs_diff(
            &cpu.data,
            &host_data(
                &g,
                jupiter_plugin_api::Image::on_device(w as u32, h as u32, c as u32, out),
            ),
        );
        // Tolerance 1e-4 of full scale (as the uploaded-band path).
        assert!(d <= 1e-4, "{w}×{h}×{c}: max |cpu - gpu| = {d:e}");
    }
}

jupiter_tests::gpu_main!(gpu: [decode_on_the_device_matches_the_host_decoder, demosaic_methods_on_the_device_match_the_host, calibrated_decode_on_the_device_matches_the_host, frame_scores_on_the_device_match_the_cpu, phase_correlation_on_the_device_matches_the_cpu, mean_stack_over_device_frames_matches_the_cpu, median_stack_over_device_frames_matches_the_cpu]);
