//! GPU paths of the filter stages (all but `rgb-align`, which measures shifts
//! with an FFT on the CPU). Each takes a host or device image and returns a
//! device image; the input's device buffer belongs to the host and is only
//! read. Kernels: `shaders/conv_separable.wgsl`, `combine.wgsl` (unsharp),
//! `pixel_ops.wgsl`, and `select_hist.wgsl` for the stretch percentiles
//! (exact ranks, as the CPU path's `round((n − 1) q)`).

use jupiter_kit::conv::gaussian_kernel;
use jupiter_kit::gpu::{
    accumulate, conv, dispatch, groups_1d, kth_smallest, shaders, CombineP, PixelOpsP, SelectOf,
};
use jupiter_plugin_api::gpu::helpers::{write, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{GpuBuffer, GpuServiceBox};

use crate::brightness_contrast::BrightnessContrastParams;
use crate::gamma::GammaParams;
use crate::gaussian_blur::BlurParams;
use crate::stretch::StretchParams;
use crate::unsharp_mask::UnsharpParams;

/// A working copy of the image's pixels on the device (owned by `bufs`).
fn working_copy(
    gpu: &GpuServiceBox,
    bufs: &mut Buffers,
    image: &Image,
) -> Result<GpuBuffer, StageError> {
    let n = image.len();
    let buf = bufs.zeroed(n)?;
    match image.device.as_ref().into_option() {
        Some(input) => accumulate(gpu, *input, buf, n, 1.0)?,
        None => write(gpu, buf, 0, &image.data)?,
    }
    Ok(buf)
}

fn device_image(
    gpu: &GpuServiceBox,
    mut bufs: Buffers,
    like: &Image,
    buf: GpuBuffer,
) -> Result<Image, StageError> {
    gpu.synchronize().into_result()?;
    bufs.keep(buf);
    Ok(Image::on_device(
        like.width,
        like.height,
        like.channels,
        buf,
    ))
}

fn dims(image: &Image) -> (usize, usize, usize) {
    (
        image.width as usize,
        image.height as usize,
        image.channels as usize,
    )
}

/// `gaussian-blur` on the device.
pub fn gaussian_blur(
    gpu: &GpuServiceBox,
    image: Image,
    p: &BlurParams,
) -> Result<Image, StageError> {
    let mut bufs = Buffers::new(gpu);
    let src = working_copy(gpu, &mut bufs, &image)?;
    if p.sigma <= 0.0 || image.is_empty() {
        return device_image(gpu, bufs, &image, src);
    }
    let (tmp, dst) = (bufs.zeroed(image.len())?, bufs.zeroed(image.len())?);
    conv(
        gpu,
        src,
        tmp,
        dst,
        dims(&image),
        &gaussian_kernel(p.sigma),
        1,
    )?;
    device_image(gpu, bufs, &image, dst)
}

/// `unsharp-mask` on the device.
pub fn unsharp_mask(
    gpu: &GpuServiceBox,
    image: Image,
    p: &UnsharpParams,
) -> Result<Image, StageError> {
    let mut bufs = Buffers::new(gpu);
    let data = working_copy(gpu, &mut bufs, &image)?;
    if p.amount == 0.0 || image.is_empty() {
        return device_image(gpu, bufs, &image, data);
    }
    let n = image.len();
    let (tmp, blur) = (bufs.zeroed(n)?, bufs.zeroed(n)?);
    conv(
        gpu,
        data,
        tmp,
        blur,
        dims(&image),
        &gaussian_kernel(p.radius),
        1,
    )?;
    dispatch(
        gpu,
        shaders::COMBINE,
        "unsharp",
        &[blur, data],
        &CombineP {
            n: n as u32,
            _pad: 0,
            a: p.amount,
            b: p.threshold,
        },
        groups_1d(n, 256),
    )?;
    device_image(gpu, bufs, &image, data)
}

fn pixel_op(
    gpu: &GpuServiceBox,
    image: Image,
    entry: &str,
    a: f32,
    b: f32,
    c: f32,
) -> Result<Image, StageError> {
    let mut bufs = Buffers::new(gpu);
    let data = working_copy(gpu, &mut bufs, &image)?;
    let n = image.len();
    if n > 0 {
        dispatch(
            gpu,
            shaders::PIXEL_OPS,
            entry,
            &[data],
            &PixelOpsP {
                n: n as u32,
                a,
                b,
                c,
                ..Default::default()
            },
            groups_1d(n, 256),
        )?;
    }
    device_image(gpu, bufs, &image, data)
}

/// `gamma` on the device.
pub fn gamma(gpu: &GpuServiceBox, image: Image, p: &GammaParams) -> Result<Image, StageError> {
    pixel_op(gpu, image, "gamma", p.gamma, 0.0, 0.0)
}

/// `brightness-contrast` on the device.
pub fn brightness_contrast(
    gpu: &GpuServiceBox,
    image: Image,
    p: &BrightnessContrastParams,
) -> Result<Image, StageError> {
    pixel_op(
        gpu,
        image,
        "brightness_contrast",
        p.contrast,
        p.brightness,
        0.0,
    )
}

/// `stretch` on the device. `Ok(None)` for the degenerate cases (no samples,
/// flat image), which the CPU path reports and handles.
pub fn stretch(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    image: &Image,
    p: &StretchParams,
) -> Result<Option<Image>, StageError> {
    let n = image.len();
    if n == 0 {
        return Ok(None);
    }
    let mut bufs = Buffers::new(gpu);
    let data = working_copy(gpu, &mut bufs, image)?;
    let rank = |q: f64| ((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let black = kth_smallest(
        gpu,
        SelectOf::Values(data),
        n,
        1,
        0,
        rank(p.black_percentile as f64 / 100.0),
    )?;
    let white = kth_smallest(
        gpu,
        SelectOf::Values(data),
        n,
        1,
        0,
        rank(p.white_percentile as f64 / 100.0),
    )?;
    let (Some(black), Some(white)) = (black, white) else {
        return Ok(None);
    };
    // Also refuses NaN points.
    if white.partial_cmp(&black) != Some(std::cmp::Ordering::Greater) {
        return Ok(None);
    }
    ctx.info(&format!(
        "black point {black:.5} ({}%), white point {white:.5} ({}%), midtone {}",
        p.black_percentile, p.white_percentile, p.midtone
    ));
    dispatch(
        gpu,
        shaders::PIXEL_OPS,
        "stretch",
        &[data],
        &PixelOpsP {
            n: n as u32,
            a: black,
            b: 1.0 / (white - black),
            c: p.midtone,
            ..Default::default()
        },
        groups_1d(n, 256),
    )?;
    device_image(gpu, bufs, image, data).map(Some)
}
