//! GPU building blocks shared by the plugins' GPU paths, over the host's
//! `GpuService` (WGSL from `shaders/`, buffers by id): the shader registry
//! ([`shaders`]), element-wise passes and separable convolution (here),
//! sub-pixel shifts and warp fields (`shift.rs`), the band driver of the
//! per-pixel stackers (`bands.rs`), exact k-th-value selection
//! (`select.rs`) and phase correlation of whole frames against one
//! reference (`phase_corr.rs`, both aligners).

use jupiter_plugin_api::gpu::helpers::{groups, run, Buffers};
use jupiter_plugin_api::{GpuBuffer, GpuServiceBox, StageError};

mod bands;
pub mod phase_corr;
mod select;
pub mod shaders;
mod shift;
pub mod uniforms;

pub use bands::{stack_bands_on_device, BandKernel};
pub use select::{kth_smallest, SelectOf};
pub use shift::*;
pub use uniforms::*;

/// Workgroups for a 1-D pass over `n` items with groups of `size`, split
/// over y when more than 65535 groups are needed (shaders index
/// `gid.x + gid.y * 65535 * size`).
pub fn groups_1d(n: usize, size: usize) -> [u32; 3] {
    let g = n.div_ceil(size).max(1);
    if g <= 65535 {
        [g as u32, 1, 1]
    } else {
        [65535, g.div_ceil(65535) as u32, 1]
    }
}

/// `acc += weight * x` over `n` samples.
pub fn accumulate(
    gpu: &GpuServiceBox,
    x: GpuBuffer,
    acc: GpuBuffer,
    n: usize,
    weight: f32,
) -> Result<(), StageError> {
    dispatch(
        gpu,
        shaders::COMBINE,
        "accumulate",
        &[x, acc],
        &CombineP {
            n: n as u32,
            a: weight,
            ..Default::default()
        },
        groups_1d(n, 256),
    )
}

/// `data *= s` over `n` samples.
pub fn scale(gpu: &GpuServiceBox, data: GpuBuffer, n: usize, s: f32) -> Result<(), StageError> {
    dispatch(
        gpu,
        shaders::PIXEL_OPS,
        "scale",
        &[data],
        &PixelOpsP {
            n: n as u32,
            a: s,
            ..Default::default()
        },
        groups_1d(n, 256),
    )
}

/// Separable convolution of an interleaved `w × h × c` buffer: `src` → `dst`
/// (x pass into `tmp`, then y pass), taps `dilation` apart, edges replicated.
#[allow(clippy::too_many_arguments)]
pub fn conv(
    gpu: &GpuServiceBox,
    src: GpuBuffer,
    tmp: GpuBuffer,
    dst: GpuBuffer,
    (w, h, c): (usize, usize, usize),
    kernel: &[f32],
    dilation: usize,
) -> Result<(), StageError> {
    let mut bufs = Buffers::new(gpu);
    let taps = bufs.upload(kernel)?;
    let u = uniforms(&ConvP {
        width: w as u32,
        height: h as u32,
        channels: c as u32,
        radius: (kernel.len() / 2) as u32,
        dilation: dilation.max(1) as u32,
        ..Default::default()
    });
    let g = [groups(w, 16), groups(h, 16), c as u32];
    run(gpu, shaders::CONV, "conv_x", &[src, tmp, taps], &u, g)?;
    run(gpu, shaders::CONV, "conv_y", &[tmp, dst, taps], &u, g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_d_groups_split_over_y() {
        assert_eq!(groups_1d(1000, 256), [4, 1, 1]);
        let g = groups_1d(65536 * 256, 256);
        assert_eq!(g, [65535, 2, 1]);
    }
}

#[cfg(test)]
mod validation {
    use super::shaders::{ALL, PARTS};

    /// Every WGSL file is a kernel of the registry or a helper part, starts
    /// with the comment naming its bindings and workgroup size, and every
    /// kernel as compiled (helpers prepended) parses and validates with naga
    /// (no GPU needed).
    #[test]
    fn every_shader_parses_and_validates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shaders");
        let on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
        for name in &on_disk {
            assert!(
                ALL.iter().any(|(n, _)| n == name) || PARTS.contains(&name.as_str()),
                "{name} is not in kit::gpu::shaders::ALL or PARTS"
            );
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(text.starts_with("// "), "{name}: must start with a comment");
            let head: String = text
                .lines()
                .take_while(|l| l.starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                head.contains("Bindings") && head.contains("Workgroup"),
                "{name}: header must name its bindings and workgroup size"
            );
        }
        for (name, src) in ALL {
            let module = naga::front::wgsl::parse_str(src)
                .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }
    }
}
