//! Per-stage micro-benchmarks (criterion). Run all of them, or a group:
//!
//! ```text
//! cargo bench -p jupiter-microbench
//! cargo bench -p jupiter-microbench -- 'stack_median/'
//! ```
//!
//! Groups: `ser_decode` (8/16-bit, mono/Bayer), `quality`, `fft_plan` (plan
//! cache hit vs planning per frame, the A2 before/after), `phase_correlation`,
//! `shift` (bicubic/bilinear), `stack_mean` / `stack_median` /
//! `stack_sigma_clip` (the stage's banded pixel-major path vs the naive
//! whole-frame reference, the A1 before/after; 100 and 1000 frames),
//! `wavelet`, `filters`. Frame sizes 640×480 and 1024×1024. Every stage runs
//! on a [`ThreadBackend`] with one worker per core, like the host's pool.
//!
//! Stacks of 1000 frames cycle through 100 distinct generated frames (1000
//! distinct 1024² frames would need 4 GB); the naive references, which hold
//! every resampled frame, run on the 100-frame stacks only.

use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Duration;

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{RResult, RSliceMut};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use jupiter_host::io::ser::{OpenOptions, SerFile};
use jupiter_kit::fft::{Fft2d, PhaseCorrelator};
use jupiter_kit::tile::naive_stack;
use jupiter_kit::warp::{shift_plane, Interp};
use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
use jupiter_plugin_api::{
    FrameInfo, FrameSource, FrameSourceRef, FrameSource_TO, Image, StackRequest, StageError,
};
use jupiter_testkit::frames::{capture, CaptureSpec};
use jupiter_testkit::ser::{frame_bytes, header_bytes, Cfa, SerColor, SerSpec};

const SIZES: [(usize, usize); 2] = [(640, 480), (1024, 1024)];

fn backend() -> ThreadBackend {
    ThreadBackend::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn label(w: usize, h: usize) -> String {
    format!("{w}x{h}")
}

/// A smooth, textured test plane (a planet-like disc with bands) plus noise.
fn plane(w: usize, h: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32, (i / w) as f32);
            let (u, v) = (x / w as f32 - 0.5, y / h as f32 - 0.5);
            let disc = if u * u + v * v < 0.12 {
                0.6 + 0.2 * (v * 40.0).sin()
            } else {
                0.05
            };
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            disc + (s % 1000) as f32 * 2e-5
        })
        .collect()
}

fn ser_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("ser_decode");
    for (w, h) in SIZES {
        for (name, color, depth) in [
            ("mono8", SerColor::Mono, 8),
            ("mono16", SerColor::Mono, 12),
            ("bayer8", SerColor::Bayer(Cfa::Rggb), 8),
            ("bayer16", SerColor::Bayer(Cfa::Rggb), 12),
        ] {
            let spec = SerSpec::new(w as u32, h as u32, color, depth);
            let max = if depth > 8 { 4095.0 } else { 255.0 };
            let samples: Vec<u16> = plane(w, h, 1).iter().map(|v| (v * max) as u16).collect();
            let mut bytes = header_bytes(&spec, 1);
            bytes.extend(frame_bytes(&spec, &samples));
            let ser = SerFile::from_bytes("bench.ser".as_ref(), bytes, OpenOptions::default())
                .expect("valid SER");
            g.throughput(Throughput::Bytes(spec_bytes(w, h, depth)));
            g.bench_function(BenchmarkId::new(name, label(w, h)), |b| {
                b.iter(|| black_box(ser.decode_frame(0).unwrap()))
            });
        }
    }
    g.finish();
}

fn spec_bytes(w: usize, h: usize, depth: u32) -> u64 {
    (w * h * if depth > 8 { 2 } else { 1 }) as u64
}

fn quality(c: &mut Criterion) {
    use jupiter_plugin_quality::cpu::score_plane;
    use jupiter_plugin_quality::params::{Metric, QualityParams};
    let mut g = c.benchmark_group("quality");
    for (w, h) in SIZES {
        let p = plane(w, h, 2);
        g.throughput(Throughput::Elements((w * h) as u64));
        for metric in [Metric::Laplacian, Metric::Tenengrad] {
            let params = QualityParams {
                metric,
                ..Default::default()
            };
            g.bench_function(BenchmarkId::new(format!("{metric:?}"), label(w, h)), |b| {
                b.iter(|| black_box(score_plane(&p, w, h, &params)))
            });
        }
    }
    g.finish();
}

fn fft_plan(c: &mut Criterion) {
    let mut g = c.benchmark_group("fft_plan");
    for (w, h) in SIZES {
        let p = plane(w, h, 3);
        g.bench_function(
            BenchmarkId::new("cached_plan_forward_inverse", label(w, h)),
            |b| {
                b.iter(|| {
                    let fft = Fft2d::cached(w, h);
                    black_box(fft.inverse(fft.forward(&p)))
                })
            },
        );
        g.bench_function(
            BenchmarkId::new("new_plan_forward_inverse", label(w, h)),
            |b| {
                b.iter(|| {
                    let fft = Fft2d::planned(w, h);
                    black_box(fft.inverse(fft.forward(&p)))
                })
            },
        );
    }
    g.finish();
}

fn phase_correlation(c: &mut Criterion) {
    let mut g = c.benchmark_group("phase_correlation");
    for (w, h) in SIZES {
        let reference = plane(w, h, 4);
        let moved = shift_plane(&reference, w, h, 1, 3.3, -1.7, Interp::Bicubic);
        let pc = PhaseCorrelator::new(&reference, w, h);
        g.bench_function(BenchmarkId::new("shift_of", label(w, h)), |b| {
            b.iter(|| black_box(pc.shift_of(&moved)))
        });
        g.bench_function(BenchmarkId::new("prepare_reference", label(w, h)), |b| {
            b.iter(|| black_box(PhaseCorrelator::new(&reference, w, h)))
        });
    }
    g.finish();
}

fn shift(c: &mut Criterion) {
    let mut g = c.benchmark_group("shift");
    for (w, h) in SIZES {
        let p = plane(w, h, 5);
        g.throughput(Throughput::Elements((w * h) as u64));
        for interp in [Interp::Bicubic, Interp::Bilinear] {
            g.bench_function(BenchmarkId::new(format!("{interp:?}"), label(w, h)), |b| {
                b.iter(|| black_box(shift_plane(&p, w, h, 1, 2.3, -1.6, interp)))
            });
        }
    }
    g.finish();
}

/// `count` frames cycling through the frames of `inner`.
struct Cycled {
    inner: MemFrames,
    count: u32,
}

impl FrameSource for Cycled {
    fn info(&self) -> FrameInfo {
        FrameInfo {
            count: self.count,
            ..self.inner.info
        }
    }
    fn read_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: RSliceMut<'_, f32>,
    ) -> RResult<(), StageError> {
        self.inner
            .as_ref()
            .read_rows(index % self.inner.frames.len(), y0, rows, out)
    }
}

/// A stacking input: `frames` frames (cycling through 100 generated ones)
/// with their shifts.
struct StackInput {
    source: Cycled,
    req: StackRequest,
}

impl StackInput {
    fn new(w: usize, h: usize, frames: usize) -> StackInput {
        let cap = capture(&CaptureSpec {
            width: w,
            height: h,
            frames: frames.min(100),
            ..Default::default()
        });
        let warps: Vec<_> = (0..frames)
            .map(|i| cap.warps[i % cap.warps.len()].clone())
            .collect();
        StackInput {
            source: Cycled {
                inner: MemFrames::new(w as u32, h as u32, 1, cap.frames),
                count: frames as u32,
            },
            req: StackRequest::new(warps),
        }
    }
    fn frames(&self) -> FrameSourceRef<'_> {
        FrameSource_TO::from_ptr(&self.source, TD_Opaque)
    }
}

type StackFn =
    fn(&jupiter_plugin_api::StageCtx, &FrameSourceRef, &StackRequest) -> Result<Image, StageError>;
type NaiveFn = fn(&FrameSourceRef, &StackRequest) -> Result<Image, StageError>;

fn stack_group(c: &mut Criterion, name: &str, fast: StackFn, naive: NaiveFn) {
    let be = backend();
    let mut g = c.benchmark_group(name);
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (w, h) in SIZES {
        for n in [100usize, 1000] {
            // Generated on first use: filtered-out benchmarks cost nothing.
            let input = OnceLock::new();
            let input = || input.get_or_init(|| StackInput::new(w, h, n));
            g.throughput(Throughput::Elements((w * h * n) as u64));
            let id = format!("{}x{n}", label(w, h));
            g.bench_function(BenchmarkId::new("tiled", &id), |b| {
                let input = input();
                b.iter(|| {
                    be.with_ctx(name, |ctx| fast(ctx, &input.frames(), &input.req))
                        .unwrap()
                })
            });
            if n == 100 {
                g.bench_function(BenchmarkId::new("naive", &id), |b| {
                    let input = input();
                    b.iter(|| naive(&input.frames(), &input.req).unwrap())
                });
            }
        }
    }
    g.finish();
}

fn stacks(c: &mut Criterion) {
    use jupiter_plugin_stack_mean::{cpu as mean, params::MeanParams};
    use jupiter_plugin_stack_median::{cpu as median, params::MedianParams};
    use jupiter_plugin_stack_sigma_clip::{cpu as clip, params::SigmaClipParams};
    stack_group(
        c,
        "stack_mean",
        |ctx, f, r| mean::stack(ctx, f, r, &MeanParams::default()),
        |f, r| {
            naive_stack(f, &r.alignment.warps, Interp::Bicubic, |v| {
                v.iter().sum::<f32>() / v.len().max(1) as f32
            })
        },
    );
    stack_group(
        c,
        "stack_median",
        |ctx, f, r| median::stack(ctx, f, r, &MedianParams::default()),
        |f, r| median::stack_reference(f, r, &MedianParams::default()),
    );
    stack_group(
        c,
        "stack_sigma_clip",
        |ctx, f, r| clip::stack(ctx, f, r, &SigmaClipParams::default()),
        |f, r| clip::stack_reference(f, r, &SigmaClipParams::default()),
    );
}

fn wavelet(c: &mut Criterion) {
    use jupiter_plugin_sharpen_wavelet::cpu::sharpen;
    use jupiter_plugin_sharpen_wavelet::params::WaveletParams;
    let be = backend();
    let (settings, _) = WaveletParams::default().resolve().unwrap();
    let mut g = c.benchmark_group("wavelet");
    g.sample_size(20);
    for (w, h) in SIZES {
        let img = Image::from_vec(w as u32, h as u32, 1, plane(w, h, 6));
        g.throughput(Throughput::Elements((w * h) as u64));
        g.bench_function(BenchmarkId::new("sharpen_6_layers", label(w, h)), |b| {
            b.iter(|| {
                be.with_ctx("wavelet", |ctx| sharpen(ctx, img.clone(), &settings))
                    .unwrap()
            })
        });
    }
    g.finish();
}

fn filters(c: &mut Criterion) {
    use jupiter_plugin_filters::*;
    let be = backend();
    let mut g = c.benchmark_group("filters");
    g.sample_size(20);
    for (w, h) in SIZES {
        let rgb: Vec<f32> = plane(w, h, 7)
            .iter()
            .flat_map(|&v| [v, v * 0.9, v * 0.8])
            .collect();
        let img = Image::from_vec(w as u32, h as u32, 3, rgb);
        g.throughput(Throughput::Elements((w * h * 3) as u64));
        let mut run = |name: &str,
                       f: &dyn Fn(
            &jupiter_plugin_api::StageCtx,
            Image,
        ) -> Result<Image, StageError>| {
            g.bench_function(BenchmarkId::new(name, label(w, h)), |b| {
                b.iter(|| be.with_ctx(name, |ctx| f(ctx, img.clone())).unwrap())
            });
        };
        run("gaussian-blur", &|ctx, i| {
            gaussian_blur::apply(ctx, i, &Default::default())
        });
        run("unsharp-mask", &|ctx, i| {
            unsharp_mask::apply(ctx, i, &Default::default())
        });
        run("gamma", &|ctx, i| gamma::apply(ctx, i, &Default::default()));
        run("brightness-contrast", &|ctx, i| {
            brightness_contrast::apply(ctx, i, &Default::default())
        });
        run("stretch", &|ctx, i| {
            stretch::apply(ctx, i, &Default::default())
        });
        run("rgb-align", &|ctx, i| {
            rgb_align::apply(ctx, i, &Default::default())
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    ser_decode,
    quality,
    fft_plan,
    phase_correlation,
    shift,
    stacks,
    wavelet,
    filters
);
criterion_main!(benches);
