//! # jupiter-kit
//!
//! An ordinary rlib linked into each plugin that needs it (it never crosses the
//! ABI): the kernels several stages share, each with a simple reference path
//! and tests.
//!
//! - [`fft`]: 2-D real FFT with a plan cache and phase correlation with
//!   sub-pixel peak fitting.
//! - [`conv`]: separable convolution (gaussian), parallel over rows.
//! - [`warp`]: sub-pixel resampling (bilinear, bicubic) of frame rows under a
//!   [`FrameWarp`](jupiter_plugin_api::FrameWarp), streamed from a frame source.
//! - [`stats`]: luminance, percentiles, PSNR.

pub mod conv;
pub mod fft;
pub mod gpu;
pub mod stats;
pub mod warp;
