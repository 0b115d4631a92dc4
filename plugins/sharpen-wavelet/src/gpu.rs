//! GPU path of `sharpen-wavelet`: the whole à-trous decomposition and the
//! weighted recombination run on the device; the image stays there.
//!
//! Per layer: B3 smoothing with dilated taps (`shaders/conv_separable.wgsl`),
//! then `out += gain · soft(cur − next, t)` (`shaders/wavelet.wgsl`). The noise
//! threshold needs the layer's median |detail| per channel: it is selected
//! exactly on the device by a radix histogram (`shaders/select_hist.wgsl`,
//! four passes reading back 256 counts each), so the thresholds equal the
//! CPU path's.

use jupiter_kit::conv::B3_SPLINE;
use jupiter_kit::gpu::{accumulate, conv, dispatch, kth_smallest, SelectOf, WaveletP};
use jupiter_plugin_api::gpu::helpers::Buffers;
use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::GpuServiceBox;

use crate::params::LayerSettings;

const MAD_TO_SIGMA: f32 = 0.6745;

/// Sharpens `image` (host or device resident) on the GPU; returns a device image.
pub fn sharpen(
    ctx: &StageCtx,
    gpu: &GpuServiceBox,
    image: Image,
    s: &LayerSettings,
) -> Result<Image, StageError> {
    let (w, h, c) = image.dims();
    if c > 4 {
        return Err(StageError::unsupported(
            "the GPU wavelet handles at most 4 channels",
        ));
    }
    let n = image.len();
    let mut bufs = Buffers::new(gpu);
    let (mut cur, mut next, tmp, out) = (
        bufs.zeroed(n)?,
        bufs.zeroed(n)?,
        bufs.zeroed(n)?,
        bufs.zeroed(n)?,
    );
    match image.device.into_option() {
        // The input buffer belongs to the host: work on a copy.
        Some(input) => accumulate(gpu, input, cur, n, 1.0)?,
        None => jupiter_plugin_api::gpu::helpers::write(gpu, cur, 0, &image.data)?,
    }
    let pixels = w * h;
    let layers = s.gains.len();
    for (j, (&gain, &thr)) in s.gains.iter().zip(&s.thresholds).enumerate() {
        ctx.check_cancelled()?;
        conv(gpu, cur, tmp, next, (w, h, c), &B3_SPLINE, 1 << j)?;
        let mut t = [0.0f32; 4];
        if thr > 0.0 && pixels > 0 {
            for (ch, tc) in t.iter_mut().enumerate().take(c) {
                let median =
                    kth_smallest(gpu, SelectOf::AbsDiff(cur, next), pixels, c, ch, pixels / 2)?
                        .unwrap_or(0.0);
                let sigma = median / MAD_TO_SIGMA;
                *tc = thr * sigma;
                ctx.log(
                    LogLevel::Debug,
                    &format!(
                        "channel {ch} layer {}: noise sigma {sigma:.3e}, threshold {:.3e}",
                        j + 1,
                        *tc
                    ),
                );
            }
        }
        dispatch(
            gpu,
            jupiter_kit::gpu::shaders::WAVELET,
            "detail",
            &[cur, next, out],
            &WaveletP {
                n: n as u32,
                channels: c as u32,
                gain,
                _a: 0.0,
                t: [t[0], t[1], t[2], t[3]],
            },
            jupiter_kit::gpu::groups_1d(n, 256),
        )?;
        std::mem::swap(&mut cur, &mut next);
        ctx.progress((j + 1) as u64, layers as u64);
    }
    // `cur` is the residual.
    accumulate(gpu, cur, out, n, 1.0)?;
    gpu.synchronize().into_result()?;
    bufs.keep(out);
    Ok(Image::on_device(
        image.width,
        image.height,
        image.channels,
        out,
    ))
}
