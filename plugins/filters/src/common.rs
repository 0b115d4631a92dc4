//! Helpers shared by the filter stages: input checks and the parallel
//! per-sample / per-channel loops (parameter ranges are declared with
//! `jupiter_plugin_api::params!`).

use jupiter_kit::conv;
use jupiter_plugin_api::prelude::*;

/// Samples per parallel task of the per-sample passes.
pub const CHUNK: usize = 16 * 1024;

/// Rows per parallel task of the row-wise passes.
pub const BAND_ROWS: usize = 16;

/// Fails unless the image's pixels are in host memory with the right length.
pub fn host_pixels(image: &Image) -> Result<(), StageError> {
    if image.data.len() != image.len() {
        return Err(StageError::unsupported(format!(
            "image pixels are not in host memory ({} samples for {}×{}×{}): the CPU path reads host memory, so the host must download the image first",
            image.data.len(),
            image.width,
            image.height,
            image.channels
        )));
    }
    Ok(())
}

/// Runs a stage's GPU path when the host offers a GPU, else its CPU path on
/// the image's host pixels (downloading a GPU-resident image first).
pub fn gpu_or_cpu(
    ctx: &StageCtx,
    image: Image,
    gpu: impl FnOnce(&jupiter_plugin_api::GpuServiceBox, Image) -> Result<Image, StageError>,
    cpu: impl FnOnce(&StageCtx, Image) -> Result<Image, StageError>,
) -> Result<Image, StageError> {
    match ctx.gpu() {
        Some(g) => gpu(&g, image),
        None => cpu(ctx, ctx.to_host(image)?),
    }
}

/// Replaces every sample `v` by `f(v)`, in parallel.
pub fn map_samples(
    ctx: &StageCtx,
    data: &mut [f32],
    f: impl Fn(f32) -> f32 + Sync,
) -> Result<(), StageError> {
    ctx.par_chunks_mut(data, CHUNK, |_, chunk| {
        chunk.iter_mut().for_each(|v| *v = f(*v))
    })
}

/// Gaussian blur of every channel of an interleaved image (borders replicate
/// the edge pixel); the result is interleaved like the input.
pub fn blur_channels(
    ctx: &StageCtx,
    data: &[f32],
    width: usize,
    height: usize,
    channels: usize,
    sigma: f32,
) -> Result<Vec<f32>, StageError> {
    conv::per_channel(data, channels, |plane| {
        conv::gaussian_blur(ctx, plane, width, height, sigma)
    })
}

/// Test helpers: obviously-right references.
/// Declares a filter stage with a GPU path: the stage runs `$gpu` when the
/// backend offers a device, else the calling module's CPU `apply`.
#[macro_export]
macro_rules! filter_stage {
    ($(#[$m:meta])* $name:ident: $params:ty = ($stage:literal, $summary:literal, $gpu:path)) => {
        $(#[$m])*
        #[allow(non_upper_case_globals)]
        pub const $name: ProcessFn<$params> = ProcessFn {
            info: StageInfo::new($stage, env!("CARGO_PKG_VERSION"), $summary).with_gpu(),
            kind: StageKind::Filter,
            run: |ctx, image, p| {
                $crate::common::gpu_or_cpu(ctx, image, |g, image| $gpu(g, image, p), |ctx, image| {
                    apply(ctx, image, p)
                })
            },
        };
    };
}

#[cfg(test)]
pub mod reference {
    use jupiter_kit::conv::gaussian_kernel;

    /// Direct 2-D gaussian convolution of an interleaved image, borders clamped.
    pub fn blur(data: &[f32], w: usize, h: usize, ch: usize, sigma: f32) -> Vec<f32> {
        let k = gaussian_kernel(sigma);
        let r = (k.len() / 2) as isize;
        let mut out = vec![0.0; data.len()];
        for y in 0..h as isize {
            for x in 0..w as isize {
                for c in 0..ch {
                    let mut acc = 0.0;
                    for (j, kj) in k.iter().enumerate() {
                        for (i, ki) in k.iter().enumerate() {
                            let sx = (x + i as isize - r).clamp(0, w as isize - 1) as usize;
                            let sy = (y + j as isize - r).clamp(0, h as isize - 1) as usize;
                            acc += kj * ki * data[(sy * w + sx) * ch + c];
                        }
                    }
                    out[(y as usize * w + x as usize) * ch + c] = acc;
                }
            }
        }
        out
    }

    /// A deterministic pseudo-random image in [0, 1).
    pub fn noise_image(len: usize, seed: u64) -> Vec<f32> {
        jupiter_testkit::rng::noise(seed, len)
    }

    pub use jupiter_testkit::reference::max_abs_diff as max_err;
}
