//! Reference results the stackers' tests measure against: the plain mean
//! of the aligned frames, and the memory-bound check of the tile-based
//! stackers.

use jupiter_kit::tile::band_rows;
use jupiter_kit::warp::{warped_rows, Interp};
use jupiter_plugin_api::{FrameSourceRef, FrameWarp, Image, StageCtx, StageError};

/// The plain (unweighted) mean of the bicubic-aligned frames of a mono
/// source, computed directly: the baseline the rejecting stackers' tests
/// measure their gain against.
pub fn plain_mean(frames: &FrameSourceRef, warps: &[FrameWarp]) -> Vec<f32> {
    let info = frames.info();
    let (w, h) = (info.width as usize, info.height as usize);
    let mut sum = vec![0.0f64; w * h];
    let (mut buf, mut scratch) = (vec![0.0f32; w * h], Vec::new());
    for (i, warp) in warps.iter().enumerate() {
        warped_rows(
            frames,
            i,
            warp,
            Interp::Bicubic,
            0,
            h,
            &mut buf,
            None,
            &mut scratch,
        )
        .expect("readable frames");
        sum.iter_mut().zip(&buf).for_each(|(s, v)| *s += *v as f64);
    }
    sum.iter()
        .map(|s| (s / warps.len() as f64) as f32)
        .collect()
}

/// The memory-bound check shared by the tile-based stackers' tests: stacks
/// generated 256×256 frames (stored nowhere) on one thread at 32 and 64
/// frames, and asserts that the peak heap use is the output plus about one
/// band per frame — never the frame set. `alloc` must be the test binary's
/// global allocator.
pub fn check_memory_bound(
    alloc: &jupiter_plugin_api::testing::CountingAlloc,
    stage: &str,
    stack: impl Fn(
        &StageCtx,
        &FrameSourceRef,
        &jupiter_plugin_api::StackRequest,
    ) -> Result<Image, StageError>,
) {
    use jupiter_plugin_api::abi_stable::sabi_trait::TD_Opaque;
    use jupiter_plugin_api::testing::{GeneratedFrames, ThreadBackend};
    use jupiter_plugin_api::{FrameInfo, FrameSource_TO, StackRequest};
    let (w, h) = (256u32, 256u32);
    let peak = |n: usize| -> usize {
        let src = GeneratedFrames {
            info: FrameInfo {
                width: w,
                height: h,
                channels: 1,
                count: n as u32,
            },
        };
        let frames = FrameSource_TO::from_ptr(&src, TD_Opaque);
        let warps = (0..n)
            .map(|i| FrameWarp::shift(0.3 * (i % 5) as f32 - 0.6, 0.25 * (i % 3) as f32))
            .collect::<Vec<_>>();
        let req = StackRequest::new(warps);
        let backend = ThreadBackend::new(1);
        let base = alloc.start();
        let img = backend
            .with_ctx(stage, |ctx| stack(ctx, &frames, &req))
            .unwrap();
        let peak = alloc.peak_since(base);
        assert_eq!(img.data.len(), (w * h) as usize);
        peak
    };
    let frame = (w * h) as usize * 4;
    let (p32, p64) = (peak(32), peak(64));
    // Bytes of one frame's band, at the band height used for 64 frames (and 32).
    assert_eq!(band_rows(64, w as usize), band_rows(32, w as usize));
    let band = band_rows(64, w as usize) * w as usize * 4;
    eprintln!("{stage} peak: {p32} B at 32 frames, {p64} B at 64 frames; one frame {frame} B, one frame band {band} B");
    // The output is always there.
    assert!(
        p32 >= frame,
        "peak {p32} below the output size: is the allocator counting?"
    );
    // Far below the 64 frames (16 MiB) a copy of the frame set would take.
    assert!(p64 < 64 * frame / 8, "peak {p64} B at 64 frames");
    // Grows like frames × band: 32 more frames cost about 32 more bands.
    let growth = p64.saturating_sub(p32);
    assert!(
        growth <= 32 * band * 3 / 2,
        "peak grew by {growth} B from 32 to 64 frames (32 bands = {} B)",
        32 * band
    );
    assert!(
        growth >= 32 * band / 2,
        "peak grew by only {growth} B: is the band pixel-major over all frames?"
    );
}

/// The rejecting stackers' shared test: on 96×96 captures with bright
/// artifacts in a tenth of the frames (seeds 1 to 3), every image `stack`
/// returns (with a label) must beat the plain mean by at least 2 dB
/// (interior PSNR against the truth).
pub fn beats_the_mean_on_artifacts(
    stack: impl Fn(
        &jupiter_plugin_api::testing::MemFrames,
        &jupiter_plugin_api::StackRequest,
    ) -> Vec<(String, Image)>,
) {
    use crate::frames::{capture, CaptureSpec};
    use jupiter_kit::stats::psnr_interior;
    for seed in [1, 2, 3] {
        let cap = capture(&CaptureSpec {
            width: 96,
            height: 96,
            frames: 40,
            noise: 0.01,
            artifact_fraction: 0.1,
            seed,
            ..Default::default()
        });
        let mem = jupiter_plugin_api::testing::MemFrames::new(96, 96, 1, cap.frames.clone());
        let req = jupiter_plugin_api::StackRequest::new(cap.warps.clone());
        let mean = psnr_interior(
            &plain_mean(&mem.as_ref(), &cap.warps),
            &cap.truth,
            96,
            96,
            1,
            4,
        );
        for (label, img) in stack(&mem, &req) {
            let got = psnr_interior(&img.data, &cap.truth, 96, 96, 1, 4);
            eprintln!("seed {seed}: PSNR {label} {got:.2} dB, mean {mean:.2} dB");
            assert!(
                got >= mean + 2.0,
                "seed {seed}, {label}: {got:.2} dB vs mean {mean:.2} dB"
            );
        }
    }
}

/// The stackers' shared contract test, through the stage as the host calls
/// it: a warp count that does not match the frames is `Internal` (the host
/// broke the contract), no frames and unknown parameters are
/// `InvalidParams`; never a panic.
pub fn stack_contract_errors(stage: &dyn jupiter_plugin_api::Stage, name: &str) {
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
    use jupiter_plugin_api::{ErrorKind, StackRequest};
    let be = ThreadBackend::new(1);
    let call = |frames: &MemFrames, warps: usize, params: &str| {
        let req = StackRequest::new(vec![FrameWarp::shift(0.0, 0.0); warps]);
        be.with_ctx(name, |ctx| stage.stack(ctx, &frames.as_ref(), &req, params))
            .unwrap_err()
            .kind
    };
    let mem = MemFrames::new(4, 4, 1, vec![vec![0.0; 16]; 2]);
    assert_eq!(call(&mem, 1, "{}"), ErrorKind::Internal);
    let empty = MemFrames::new(4, 4, 1, vec![]);
    assert_eq!(call(&empty, 0, "{}"), ErrorKind::InvalidParams);
    assert_eq!(call(&mem, 2, r#"{"kappa": 3}"#), ErrorKind::InvalidParams);
}

/// Largest absolute difference.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
