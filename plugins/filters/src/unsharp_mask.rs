//! `unsharp-mask`: adds back the difference between the image and its
//! gaussian blur, `out = in + amount · (in − blur)`, where that difference
//! exceeds a threshold.

use jupiter_plugin_api::prelude::*;

use crate::common::{blur_channels, host_pixels, CHUNK};

jupiter_plugin_api::params! {
    /// Parameters of `unsharp-mask`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct UnsharpParams {
        /// Sigma of the gaussian blur that defines "detail", pixels.
        pub radius: f32 = 1.5, float(0.1, 50.0), "Gaussian sigma of the blur that defines detail, pixels";
        /// How much of the detail is added back (0 = unchanged, 1 = doubled).
        pub amount: f32 = 0.7, float(0.0, 20.0), "Fraction of the detail added back (0 = unchanged)";
        /// Detail whose magnitude is at most this is left alone (keeps noise
        /// in flat areas from being amplified); image units (0..1).
        pub threshold: f32 = 0.0, float(0.0, 1.0), "Only sharpen where |image - blur| exceeds this";
    }
}

/// The unsharp-mask formula for one sample and its blurred value.
#[inline]
pub fn unsharp(v: f32, blurred: f32, amount: f32, threshold: f32) -> f32 {
    let d = v - blurred;
    if d.abs() > threshold {
        v + amount * d
    } else {
        v
    }
}

/// Sharpens every channel of `image`.
pub fn apply(ctx: &StageCtx, image: Image, p: &UnsharpParams) -> Result<Image, StageError> {
    p.check_ranges()?;
    host_pixels(&image)?;
    if p.amount == 0.0 || image.is_empty() {
        return Ok(image);
    }
    let (w, h, ch) = image.dims();
    let blurred = blur_channels(ctx, &image.data, w, h, ch, p.radius)?;
    let mut data = image.data.into_vec();
    let b = &blurred;
    ctx.par_chunks_mut(&mut data, CHUNK, |k, chunk| {
        let base = k * CHUNK;
        for (i, v) in chunk.iter_mut().enumerate() {
            *v = unsharp(*v, b[base + i], p.amount, p.threshold);
        }
    })?;
    Ok(Image::from_vec(
        image.width,
        image.height,
        image.channels,
        data,
    ))
}

crate::filter_stage! {
    /// The `unsharp-mask` stage (named like the unit struct it was).
    UnsharpMask: UnsharpParams = (
        "unsharp-mask",
        "Unsharp mask: in + amount·(in − gaussian blur) where the difference exceeds a threshold",
        crate::gpu::unsharp_mask
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::reference::{blur, max_err, noise_image};
    use jupiter_plugin_api::testing::ThreadBackend;

    #[test]
    fn matches_the_reference_formula() {
        let be = ThreadBackend::new(3);
        for (w, h, ch) in [(11usize, 7usize, 1usize), (9, 13, 3)] {
            let data = noise_image(w * h * ch, 99);
            for p in [
                UnsharpParams {
                    radius: 1.0,
                    amount: 1.5,
                    threshold: 0.0,
                },
                UnsharpParams {
                    radius: 2.0,
                    amount: 0.5,
                    threshold: 0.15,
                },
            ] {
                let b = blur(&data, w, h, ch, p.radius);
                let want: Vec<f32> = data
                    .iter()
                    .zip(&b)
                    .map(|(&v, &bl)| {
                        if (v - bl).abs() > p.threshold {
                            v + p.amount * (v - bl)
                        } else {
                            v
                        }
                    })
                    .collect();
                let img = Image::from_vec(w as u32, h as u32, ch as u32, data.clone());
                let out = be
                    .with_ctx("unsharp-mask", |ctx| apply(ctx, img, &p))
                    .unwrap();
                let e = max_err(&out.data, &want);
                assert!(e < 1e-4, "{w}×{h}×{ch} {p:?}: max error {e}");
                if p.threshold > 0.0 {
                    // Samples whose detail is clearly under the threshold are untouched.
                    let kept = (0..data.len())
                        .filter(|&i| (data[i] - b[i]).abs() < p.threshold - 1e-4)
                        .count();
                    assert!(kept > 0);
                    for i in
                        (0..data.len()).filter(|&i| (data[i] - b[i]).abs() < p.threshold - 1e-4)
                    {
                        assert_eq!(out.data[i], data[i]);
                    }
                }
            }
        }
    }

    #[test]
    fn bad_params_are_rejected() {
        let be = ThreadBackend::new(1);
        let img = Image::new(3, 3, 1);
        be.with_ctx("unsharp-mask", |ctx| {
            for (json, name) in [
                (r#"{"radius": 0}"#, "radius"),
                (r#"{"amount": -1}"#, "amount"),
                (r#"{"threshold": 2}"#, "threshold"),
            ] {
                let e = UnsharpMask.process(ctx, img.clone(), json).unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidParams);
                assert!(e.message.contains(name), "{}", e.message);
            }
        });
    }
}
