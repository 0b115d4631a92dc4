//! Memory bound of `stack-sigma-clip`: the peak heap use while stacking is the
//! output plus one band of all frames (threads = 1), never the frame set.
//!
//! A counting global allocator records the peak bytes in use; the frames come
//! from a source that computes them on the fly (it stores nothing), so every
//! byte counted is the stacker's own. One test per binary: the allocator's
//! counters are process-wide.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use jupiter_kit::tile::band_rows;
use jupiter_plugin_api::abi_stable::sabi_trait::TD_Opaque;
use jupiter_plugin_api::abi_stable::std_types::{RResult, RSliceMut, RVec};
use jupiter_plugin_api::testing::ThreadBackend;
use jupiter_plugin_api::{Alignment, FrameInfo, FrameSource, FrameSource_TO, FrameWarp, StackRequest, StageError};
use jupiter_plugin_stack_sigma_clip::cpu::stack;
use jupiter_plugin_stack_sigma_clip::params::SigmaClipParams;

struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(bytes: usize) {
    let now = IN_USE.fetch_add(bytes, Ordering::SeqCst) + bytes;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            IN_USE.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Frames computed from their index on demand: nothing is stored.
struct OnTheFly {
    info: FrameInfo,
}

impl FrameSource for OnTheFly {
    fn info(&self) -> FrameInfo {
        self.info
    }
    fn read_rows(&self, index: usize, y0: usize, rows: usize, mut out: RSliceMut<'_, f32>) -> RResult<(), StageError> {
        let w = self.info.width as usize;
        if y0 + rows > self.info.height as usize || out.len() != rows * w {
            return RResult::RErr(StageError::internal("bad read"));
        }
        for r in 0..rows {
            for x in 0..w {
                let y = y0 + r;
                let hash = (index * 7919 + y * 104_729 + x * 1_299_709) % 1009;
                out[r * w + x] = 0.5 + 0.2 * ((x as f32) * 0.05).sin() * ((y as f32) * 0.03).cos() + 0.1 * hash as f32 / 1009.0;
            }
        }
        RResult::ROk(())
    }
}

/// Peak heap bytes (above what was in use before) while stacking `n` frames.
fn peak_bytes(w: u32, h: u32, n: usize) -> usize {
    let src = OnTheFly { info: FrameInfo { width: w, height: h, channels: 1, count: n as u32 } };
    let frames = FrameSource_TO::from_ptr(&src, TD_Opaque);
    let warps: RVec<FrameWarp> = (0..n).map(|i| FrameWarp::shift(0.3 * (i % 5) as f32 - 0.6, 0.25 * (i % 3) as f32)).collect();
    let req = StackRequest { alignment: Alignment { warps, reference: 0 }, scores: RVec::new() };
    let params = SigmaClipParams::default();
    let backend = ThreadBackend::new(1);
    let base = IN_USE.load(Ordering::SeqCst);
    PEAK.store(base, Ordering::SeqCst);
    let img = backend.with_ctx("stack-sigma-clip", |ctx| stack(ctx, &frames, &req, &params)).unwrap();
    let peak = PEAK.load(Ordering::SeqCst) - base;
    assert_eq!(img.data.len(), (w * h) as usize);
    peak
}

#[test]
fn peak_memory_is_output_plus_one_band_of_all_frames() {
    let (w, h) = (256u32, 256u32);
    let frame = (w * h) as usize * 4;
    let p32 = peak_bytes(w, h, 32);
    let p64 = peak_bytes(w, h, 64);
    // Bytes of one frame's band, at the band height used for 64 frames (and 32).
    assert_eq!(band_rows(64, w as usize), band_rows(32, w as usize));
    let band = band_rows(64, w as usize) * w as usize * 4;
    eprintln!("peak: {p32} B at 32 frames, {p64} B at 64 frames; one frame {frame} B, one frame band {band} B");
    // The output is always there.
    assert!(p32 >= frame, "peak {p32} below the output size: is the allocator counting?");
    // Far below the 64 frames (16 MiB) a copy of the frame set would take.
    assert!(p64 < 64 * frame / 8, "peak {p64} B at 64 frames");
    // Grows like frames × band: 32 more frames cost about 32 more bands.
    let growth = p64.saturating_sub(p32);
    assert!(growth <= 32 * band * 3 / 2, "peak grew by {growth} B from 32 to 64 frames (32 bands = {} B)", 32 * band);
    assert!(growth >= 32 * band / 2, "peak grew by only {growth} B: is the band pixel-major over all frames?");
}
