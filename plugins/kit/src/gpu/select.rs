//! Exact k-th value selection on the device by a radix histogram
//! (`select_hist.wgsl`): the host reads back only 256 counts per pass.

use jupiter_plugin_api::gpu::helpers::Buffers;
use jupiter_plugin_api::{GpuBuffer, GpuServiceBox, StageError};

use super::uniforms::{dispatch, SelectP};
use super::{groups_1d, shaders};

/// Order-preserving key of an `f32` (as in `select_hist.wgsl`).
#[cfg(test)]
fn key(x: f32) -> u32 {
    let u = x.to_bits();
    if u & 0x8000_0000 != 0 {
        !u
    } else {
        u | 0x8000_0000
    }
}

fn unkey(k: u32) -> f32 {
    if k & 0x8000_0000 != 0 {
        f32::from_bits(k & 0x7fff_ffff)
    } else {
        f32::from_bits(!k)
    }
}

/// What to select from.
#[derive(Debug, Clone, Copy)]
pub enum SelectOf {
    /// The values `a[i * stride + offset]`.
    Values(GpuBuffer),
    /// `|a[j] - b[j]|` at `j = i * stride + offset`.
    AbsDiff(GpuBuffer, GpuBuffer),
}

/// The exact `k`-th smallest (0-based) of `count` strided values (NaNs skipped),
/// by four 8-bit radix passes; `None` when fewer than `k + 1` values exist.
pub fn kth_smallest(
    gpu: &GpuServiceBox,
    of: SelectOf,
    count: usize,
    stride: usize,
    offset: usize,
    k: usize,
) -> Result<Option<f32>, StageError> {
    let (a, b, mode) = match of {
        SelectOf::Values(a) => (a, a, 0u32),
        SelectOf::AbsDiff(a, b) => (a, b, 1u32),
    };
    let mut bufs = Buffers::new(gpu);
    let hist = bufs.zeroed(256)?;
    let zeros = [0.0f32; 256];
    let (mut prefix, mut mask, mut k) = (0u32, 0u32, k as u64);
    for pass in 0..4 {
        let shift = 24 - 8 * pass;
        jupiter_plugin_api::gpu::helpers::write(gpu, hist, 0, &zeros)?;
        dispatch(
            gpu,
            shaders::SELECT_HIST,
            "histogram",
            &[a, b, hist],
            &SelectP {
                count: count as u32,
                stride: stride as u32,
                offset: offset as u32,
                mode,
                shift,
                prefix,
                mask,
                _pad: 0,
            },
            groups_1d(count, 256),
        )?;
        let counts = jupiter_plugin_api::gpu::helpers::download(gpu, hist, 256)?;
        let counts: Vec<u64> = counts.iter().map(|c| c.to_bits() as u64).collect();
        let mut bin = None;
        for (i, c) in counts.iter().enumerate() {
            if k < *c {
                bin = Some(i as u32);
                break;
            }
            k -= c;
        }
        let Some(bin) = bin else { return Ok(None) };
        prefix |= bin << shift;
        mask |= 0xff << shift;
    }
    Ok(Some(unkey(prefix)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_preserve_order() {
        let v = [-3.5f32, -1.0, -0.0, 0.0, 1e-30, 0.5, 2.0, 1e30];
        for w in v.windows(2) {
            assert!(key(w[0]) <= key(w[1]), "{} {}", w[0], w[1]);
        }
        for x in v {
            assert_eq!(unkey(key(x)).to_bits(), x.to_bits());
        }
    }
}
