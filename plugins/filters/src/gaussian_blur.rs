//! `gaussian-blur`: separable gaussian convolution of every channel.

use jupiter_plugin_api::prelude::*;

use crate::common::{blur_channels, host_pixels};

jupiter_plugin_api::params! {
    /// Parameters of `gaussian-blur`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct BlurParams {
        /// Gaussian standard deviation in pixels (0 = unchanged). The kernel
        /// reaches `ceil(3 sigma)` pixels either side.
        pub sigma: f32 = 1.0, float(0.0, 50.0), "Gaussian sigma in pixels (0 = unchanged)";
    }
}

/// Blurs every channel of `image`.
pub fn apply(ctx: &StageCtx, image: Image, p: &BlurParams) -> Result<Image, StageError> {
    p.check_ranges()?;
    host_pixels(&image)?;
    if p.sigma == 0.0 || image.is_empty() {
        return Ok(image);
    }
    let (w, h, ch) = image.dims();
    let out = blur_channels(ctx, &image.data, w, h, ch, p.sigma)?;
    Ok(Image::from_vec(
        image.width,
        image.height,
        image.channels,
        out,
    ))
}

crate::filter_stage! {
    /// The `gaussian-blur` stage (named like the unit struct it was).
    GaussianBlur: BlurParams = (
        "gaussian-blur",
        "Gaussian blur of every channel",
        crate::gpu::gaussian_blur
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::reference::{blur, max_err, noise_image};
    use jupiter_plugin_api::testing::ThreadBackend;

    #[test]
    fn matches_direct_convolution_on_odd_sizes_and_rgb() {
        let be = ThreadBackend::new(3);
        for (w, h, ch, sigma) in [
            (13usize, 9usize, 1usize, 1.2f32),
            (7, 5, 3, 0.8),
            (31, 18, 3, 2.5),
            (1, 6, 1, 1.0),
        ] {
            let data = noise_image(w * h * ch, (w * 31 + h) as u64);
            let img = Image::from_vec(w as u32, h as u32, ch as u32, data.clone());
            let out = be
                .with_ctx("gaussian-blur", |ctx| {
                    apply(ctx, img, &BlurParams { sigma })
                })
                .unwrap();
            let e = max_err(&out.data, &blur(&data, w, h, ch, sigma));
            assert!(e < 1e-5, "{w}×{h}×{ch} sigma {sigma}: max error {e}");
        }
    }

    #[test]
    fn zero_sigma_is_the_identity_and_bad_sigma_is_rejected() {
        let be = ThreadBackend::new(2);
        let img = Image::from_vec(3, 2, 1, vec![0.1, 0.9, 0.3, 0.4, 0.5, 0.6]);
        be.with_ctx("gaussian-blur", |ctx| {
            assert_eq!(
                apply(ctx, img.clone(), &BlurParams { sigma: 0.0 }).unwrap(),
                img
            );
            let e = GaussianBlur
                .process(ctx, img.clone(), r#"{"sigma": -1}"#)
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams);
            assert!(e.message.contains("sigma"), "{}", e.message);
            let e = GaussianBlur
                .process(ctx, img, r#"{"radius": 1}"#)
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams);
        });
    }
}
