//! # jupiter-kit
//!
//! An ordinary rlib linked into each plugin that needs it (it never crosses the
//! ABI): the kernels several stages share, each with a simple reference path
//! and tests.
//!
//! - [`align`]: global alignment pieces shared by the aligners (frame
//!   luminance, parallel shift measurement, the mean-of-best reference).
//! - [`fft`]: 2-D real FFT with a plan cache and phase correlation with
//!   sub-pixel peak fitting.
//! - [`conv`]: separable convolution (gaussian), parallel over rows.
//! - [`warp`]: sub-pixel resampling (bilinear, bicubic) of frame rows under a
//!   [`FrameWarp`](jupiter_plugin_api::FrameWarp), streamed from a frame source.
//! - [`stats`]: luminance, percentiles, PSNR.
//! - [`simd`]: hot loops compiled for AVX2 where the CPU has it.
//! - [`mem`]: handing the allocator's free memory back after a stage's
//!   large transient working set.
//! - [`tile`]: pixel-major gathering of resampled bands across frames (all
//!   samples of a pixel contiguous) and per-pixel median selection, for the
//!   median and sigma-clip stackers.

pub mod align;
pub mod conv;
pub mod fft;
pub mod gpu;
pub mod mem;
pub mod simd;
pub mod stats;
pub mod tile;
pub mod warp;
