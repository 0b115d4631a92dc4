//! The uniform block of every kernel in the registry, one `#[repr(C)]` Pod
//! struct each, field for field the WGSL struct `P` of its file (a test
//! checks the sizes against the WGSL layout). Stages fill the struct and
//! pass [`uniforms`] of it to `run`.

use bytemuck::{Pod, Zeroable};
use jupiter_plugin_api::gpu::helpers::Uniforms;

/// The bytes of a uniform block, as `run` takes them.
pub fn uniforms<T: Pod>(block: &T) -> Uniforms {
    Uniforms::from_bytes(bytemuck::bytes_of(block))
}

/// Runs `entry` of `wgsl` with `block` as its uniforms.
pub fn dispatch<T: Pod>(
    gpu: &jupiter_plugin_api::GpuServiceBox,
    wgsl: &str,
    entry: &str,
    bindings: &[jupiter_plugin_api::GpuBuffer],
    block: &T,
    groups: [u32; 3],
) -> Result<(), jupiter_plugin_api::StageError> {
    jupiter_plugin_api::gpu::helpers::run(gpu, wgsl, entry, bindings, &uniforms(block), groups)
}

/// `combine.wgsl` and `deconvolve.wgsl` (`a`, `b` mean what each entry
/// point says).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CombineP {
    pub n: u32,
    pub _pad: u32,
    pub a: f32,
    pub b: f32,
}

/// `point_measure.wgsl` (align-multipoint's point measurements): frame
/// geometry, the entry's mode, the transform size `n`, binning, patch side
/// `s`, the items of this dispatch (`base`, `count`), scratch words per
/// workgroup (`slot`, in complex samples) and the word offsets of the
/// tables in the `refs` buffer.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PointMeasureP {
    pub fw: u32,
    pub fh: u32,
    pub fc: u32,
    pub mode: u32,
    pub n: u32,
    pub bin: u32,
    pub s: u32,
    pub count: u32,
    pub base: u32,
    pub slot: u32,
    pub tw: u32,
    pub lp: u32,
    pub win: u32,
    pub taper: u32,
    pub half: u32,
    pub whiten: f32,
}

/// `conv_separable.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConvP {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub radius: u32,
    pub dilation: u32,
    pub _pad: [u32; 3],
}

/// `shift.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ShiftP {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub interp: u32,
    pub y0: u32,
    pub rows: u32,
    pub src_y0: u32,
    pub src_rows: u32,
    pub count: u32,
    pub _pad: [u32; 3],
}

/// `stack_warp.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StackWarpP {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub interp: u32,
    pub count: u32,
    pub _pad: [u32; 3],
}

/// `drizzle.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DrizzleP {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub count: u32,
    pub out_w: u32,
    pub out_h: u32,
    pub _pad: [u32; 2],
    pub sx: f32,
    pub sy: f32,
    pub pixfrac: f32,
    pub _p: f32,
}

/// `select_hist.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SelectP {
    pub count: u32,
    pub stride: u32,
    pub offset: u32,
    pub mode: u32,
    pub shift: u32,
    pub prefix: u32,
    pub mask: u32,
    pub _pad: u32,
}

/// `stack_median.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct StackMedianP {
    pub npix: u32,
    pub n: u32,
    pub out_offset: u32,
    pub _pad: u32,
}

/// `quality.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct QualityP {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub radius: u32,
    pub metric: u32,
    pub tiles_x: u32,
    pub tiles_y: u32,
    pub count: u32,
    pub out_base: u32,
    pub totals: u32,
    pub tile: u32,
    /// 0: every pixel; 1: the mosaic's 2×2 cells (`pattern`); 2: the
    /// luminance's 2×2 cells (`stride`: the frame's width in pixels).
    pub cells: u32,
    pub pattern: u32,
    pub stride: u32,
    pub _a: u32,
    pub _b: u32,
}

/// `pixel_ops.wgsl` (`a`, `b`, `c` mean what each entry point says).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PixelOpsP {
    pub n: u32,
    pub _pad: u32,
    pub a: f32,
    pub b: f32,
    pub c: f32,
    pub _p: [f32; 3],
}

/// `wavelet.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct WaveletP {
    pub n: u32,
    pub channels: u32,
    pub gain: f32,
    pub _a: f32,
    /// Per-channel noise thresholds.
    pub t: [f32; 4],
}

/// `phase_corr.wgsl`: the geometry of the frames and region, the batch, the
/// buffers' offsets, and the FFT pass.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct PhaseCorrP {
    /// fw, fh, fc, bin, rx, ry, rw, rh.
    pub geom: [u32; 8],
    pub n0: u32,
    pub n1: u32,
    pub count: u32,
    pub base: u32,
    pub prev: u32,
    pub out: u32,
    pub means: u32,
    pub use_prev: u32,
    pub prev_scale: f32,
    pub self_peak: f32,
    pub whiten: f32,
    pub mode: u32,
    /// tw0, tw1, wx, wy, gx, gy.
    pub tables: [u32; 6],
    pub inverse: u32,
    pub part: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders;

    /// Size of the WGSL struct `name` of `src`, from naga's layout.
    fn wgsl_size(src: &str, name: &str) -> u32 {
        let module = naga::front::wgsl::parse_str(src).unwrap();
        let size = module
            .types
            .iter()
            .find_map(|(_, t)| match (&t.name, &t.inner) {
                (Some(n), naga::TypeInner::Struct { span, .. }) if n == name => Some(*span),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no struct {name}"));
        size
    }

    #[test]
    fn every_uniform_block_has_the_size_of_its_wgsl_struct() {
        let blocks: &[(&str, &str, usize)] = &[
            ("combine", shaders::COMBINE, size_of::<CombineP>()),
            ("deconvolve", shaders::DECONVOLVE, size_of::<CombineP>()),
            ("drizzle", shaders::DRIZZLE, size_of::<DrizzleP>()),
            ("conv", shaders::CONV, size_of::<ConvP>()),
            ("shift", shaders::SHIFT, size_of::<ShiftP>()),
            ("stack_warp", shaders::STACK_WARP, size_of::<StackWarpP>()),
            ("select_hist", shaders::SELECT_HIST, size_of::<SelectP>()),
            (
                "stack_median",
                shaders::STACK_MEDIAN,
                size_of::<StackMedianP>(),
            ),
            ("quality", shaders::QUALITY, size_of::<QualityP>()),
            ("pixel_ops", shaders::PIXEL_OPS, size_of::<PixelOpsP>()),
            ("wavelet", shaders::WAVELET, size_of::<WaveletP>()),
            ("phase_corr", shaders::PHASE_CORR, size_of::<PhaseCorrP>()),
            (
                "point_measure",
                shaders::POINT_MEASURE,
                size_of::<PointMeasureP>(),
            ),
        ];
        for &(name, src, size) in blocks {
            assert_eq!(
                wgsl_size(src, "P") as usize,
                size,
                "{name}: Rust and WGSL P differ"
            );
        }
    }
}
