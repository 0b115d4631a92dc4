//! GPU path of `deconvolve`: Richardson–Lucy with a Gaussian PSF, every
//! iteration on the device and the result left there. The measurement (PSF
//! width, noise model, the lift) runs on a host copy of the image, as the
//! CPU path's does; then per iteration: the blur (two passes of
//! `shaders/conv_separable.wgsl`, the CPU path's taps and replicated
//! edges), the ratio and the residual's partial sums
//! (`shaders/deconvolve.wgsl`; the parts are read back and added in f64 for
//! the stopping rule), the blur of the ratio and the update
//! (`combine.wgsl`'s `multiply`). Wiener and the Moffat PSF (an FFT over a
//! padded plane) run on the CPU path.

use jupiter_kit::gpu::{conv, dispatch, groups_1d, shaders, CombineP, PixelOpsP};
use jupiter_plugin_api::gpu::helpers::{download, Buffers};
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::{GpuBuffer, GpuServiceBox};

use crate::cpu::{planes, Lift, Plan};
use crate::params::{DeconvolveParams, Method, PsfModel};
use crate::psf::gaussian_taps;

/// Whether the GPU path runs `plan`.
pub fn handles(plan: &Plan) -> bool {
    plan.method == Method::RichardsonLucy && plan.model == PsfModel::Gaussian
}

/// The image's pixels on the host, for measuring: a device image is read
/// (its buffer belongs to the host and stays).
pub fn host_copy(gpu: &GpuServiceBox, image: &Image) -> Result<Image, StageError> {
    match image.device.as_ref().into_option() {
        Some(buf) => Ok(Image::from_vec(
            image.width,
            image.height,
            image.channels,
            download(gpu, *buf, image.len())?,
        )),
        None => Ok(image.clone()),
    }
}

/// Richardson–Lucy of `host` (the image's host copy) on the device, for a
/// plan [`handles`] accepts; returns a device image and the iterations run.
pub fn richardson_lucy(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    host: &Image,
    plan: &Plan,
    p: &DeconvolveParams,
) -> Result<(Image, u32), StageError> {
    let (w, h, c) = host.dims();
    let n = host.len();
    let lift = Lift::new(&planes(host));
    let mut inv_var = vec![0.0f32; n];
    for (i, v) in host.data.iter().enumerate() {
        inv_var[i] = 1.0 / plan.noise[i % c].variance(*v).max(lift.var_floor);
    }
    let lifted: Vec<f32> = host.data.iter().map(|v| v + lift.offset).collect();
    let mut bufs = Buffers::new(gpu);
    let (data, u) = (bufs.upload(&lifted)?, bufs.upload(&lifted)?);
    let inv_var = bufs.upload(&inv_var)?;
    let groups = groups_1d(n, 256);
    let n_parts = (groups[0] * groups[1]) as usize;
    let (tmp, est, ratio, parts) = (
        bufs.zeroed(n)?,
        bufs.zeroed(n)?,
        bufs.zeroed(n)?,
        bufs.zeroed(n_parts)?,
    );
    let taps = gaussian_taps(plan.sigma);
    let step = CombineP {
        n: n as u32,
        _pad: 0,
        a: lift.div_floor,
        b: 0.0,
    };
    let mut done = 0;
    for _ in 0..p.iterations {
        ctx.check_cancelled()?;
        conv(gpu, u, tmp, est, (w, h, c), &taps, 1)?;
        dispatch(
            gpu,
            shaders::DECONVOLVE,
            "ratio_residual",
            &[data, est, inv_var, ratio, parts],
            &step,
            groups,
        )?;
        if p.stop > 0.0 {
            let resid: f64 = download(gpu, parts, n_parts)?
                .iter()
                .map(|&v| v as f64)
                .sum();
            if resid / n.max(1) as f64 <= p.stop as f64 {
                break;
            }
        }
        conv(gpu, ratio, tmp, est, (w, h, c), &taps, 1)?;
        dispatch(
            gpu,
            shaders::COMBINE,
            "multiply",
            &[est, u],
            &step,
            groups_1d(n, 256),
        )?;
        done += 1;
        ctx.progress(done as u64, p.iterations as u64);
    }
    offset(gpu, u, n, -lift.offset)?;
    gpu.synchronize().into_result()?;
    bufs.keep(u);
    Ok((
        Image::on_device(host.width, host.height, host.channels, u),
        done,
    ))
}

fn offset(gpu: &GpuServiceBox, buf: GpuBuffer, n: usize, a: f32) -> Result<(), StageError> {
    dispatch(
        gpu,
        shaders::PIXEL_OPS,
        "offset",
        &[buf],
        &PixelOpsP {
            n: n as u32,
            a,
            ..Default::default()
        },
        groups_1d(n, 256),
    )
}
