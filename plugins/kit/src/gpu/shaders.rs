//! WGSL sources, embedded at build time from `shaders/`: the registry every
//! GPU path takes its kernels from. WGSL has no includes, so a kernel that
//! uses the shared helpers gets them prepended here: `common.wgsl` (the 2-D
//! dispatch index, order-preserving float keys, Catmull-Rom taps) and, for
//! the resampling kernels, `sample.wgsl`; for those that read warp
//! fields, `warp_grid.wgsl`; for the correlations, `peak.wgsl`.

/// Prepends the shared helper files to a kernel file (both from `shaders/`).
macro_rules! wgsl {
    ($($file:literal),+) => {
        concat!($(include_str!(concat!("../../../../shaders/", $file)), "\n"),+)
    };
}

pub const SHIFT: &str = wgsl!("common.wgsl", "sample.wgsl", "shift.wgsl");
pub const COMBINE: &str = wgsl!("common.wgsl", "combine.wgsl");
pub const STACK_MEDIAN: &str = wgsl!("common.wgsl", "stack_median.wgsl");
pub const CONV: &str = wgsl!("conv_separable.wgsl");
pub const SELECT_HIST: &str = wgsl!("common.wgsl", "select_hist.wgsl");
pub const WAVELET: &str = wgsl!("common.wgsl", "wavelet.wgsl");
pub const PIXEL_OPS: &str = wgsl!("common.wgsl", "pixel_ops.wgsl");
pub const STACK_WARP: &str = wgsl!(
    "common.wgsl",
    "sample.wgsl",
    "warp_grid.wgsl",
    "stack_warp.wgsl"
);
pub const QUALITY: &str = wgsl!("quality.wgsl");
pub const DECODE: &str = wgsl!("decode.wgsl");
pub const PHASE_CORR: &str = wgsl!("common.wgsl", "peak.wgsl", "phase_corr.wgsl");
pub const DECONVOLVE: &str = wgsl!("common.wgsl", "deconvolve.wgsl");
pub const DRIZZLE: &str = wgsl!("warp_grid.wgsl", "drizzle.wgsl");
pub const POINT_MEASURE: &str = wgsl!(
    "common.wgsl",
    "sample.wgsl",
    "warp_grid.wgsl",
    "peak.wgsl",
    "point_measure.wgsl"
);

/// Helper files prepended to kernels, not kernels themselves.
pub const PARTS: &[&str] = &["common.wgsl", "sample.wgsl", "warp_grid.wgsl", "peak.wgsl"];

/// Every kernel with its file name (for validation tests), as compiled.
pub const ALL: &[(&str, &str)] = &[
    ("shift.wgsl", SHIFT),
    ("combine.wgsl", COMBINE),
    ("stack_median.wgsl", STACK_MEDIAN),
    ("conv_separable.wgsl", CONV),
    ("select_hist.wgsl", SELECT_HIST),
    ("wavelet.wgsl", WAVELET),
    ("pixel_ops.wgsl", PIXEL_OPS),
    ("stack_warp.wgsl", STACK_WARP),
    ("quality.wgsl", QUALITY),
    ("decode.wgsl", DECODE),
    ("phase_corr.wgsl", PHASE_CORR),
    ("deconvolve.wgsl", DECONVOLVE),
    ("drizzle.wgsl", DRIZZLE),
    ("point_measure.wgsl", POINT_MEASURE),
];
