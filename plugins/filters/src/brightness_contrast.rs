//! `brightness-contrast`: `out = (in − 0.5) · contrast + 0.5 + brightness`
//! per sample (contrast pivots around mid-grey; not clamped).

use jupiter_plugin_api::prelude::*;

use crate::common::{gpu_or_cpu, host_pixels, map_samples};

jupiter_plugin_api::params! {
    /// Parameters of `brightness-contrast`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct BrightnessContrastParams {
        /// Offset added after the contrast (0 = unchanged).
        pub brightness: f32 = 0.0, float(-1.0, 1.0), "Offset added to every sample (after the contrast)";
        /// Factor applied around 0.5 (1 = unchanged).
        pub contrast: f32 = 1.0, float(0.0, 10.0), "Factor applied around mid-grey 0.5 (1 = unchanged)";
    }
}

/// Applies brightness and contrast to every sample.
pub fn apply(
    ctx: &StageCtx,
    image: Image,
    p: &BrightnessContrastParams,
) -> Result<Image, StageError> {
    p.check_ranges()?;
    host_pixels(&image)?;
    let mut image = image;
    let (b, c) = (p.brightness, p.contrast);
    map_samples(ctx, image.data.as_mut_slice(), |v| (v - 0.5) * c + 0.5 + b)?;
    Ok(image)
}

/// The `brightness-contrast` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const BrightnessContrast: ProcessFn<BrightnessContrastParams> = ProcessFn {
    info: StageInfo::new(
        "brightness-contrast",
        env!("CARGO_PKG_VERSION"),
        "Brightness offset and contrast factor around mid-grey",
    )
    .with_gpu(),
    kind: StageKind::Filter,
    run: |ctx, image, p| {
        gpu_or_cpu(
            ctx,
            image,
            |g, image| crate::gpu::brightness_contrast(g, image, p),
            |ctx, image| apply(ctx, image, p),
        )
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::reference::{max_err, noise_image};
    use jupiter_plugin_api::testing::ThreadBackend;

    #[test]
    fn matches_the_reference_formula() {
        let be = ThreadBackend::new(3);
        for (w, h, ch, b, c) in [
            (5usize, 7usize, 1usize, 0.1f32, 1.5f32),
            (9, 3, 3, -0.2, 0.5),
            (4, 4, 3, 0.0, 1.0),
        ] {
            let data = noise_image(w * h * ch, 11);
            let want: Vec<f32> = data.iter().map(|v| (v - 0.5) * c + 0.5 + b).collect();
            let img = Image::from_vec(w as u32, h as u32, ch as u32, data);
            let p = BrightnessContrastParams {
                brightness: b,
                contrast: c,
            };
            let out = be
                .with_ctx("brightness-contrast", |ctx| apply(ctx, img, &p))
                .unwrap();
            assert!(max_err(&out.data, &want) < 1e-6);
        }
        // Mid-grey is the pivot of the contrast.
        let img = Image::from_vec(1, 1, 1, vec![0.5]);
        let p = BrightnessContrastParams {
            brightness: 0.0,
            contrast: 3.0,
        };
        let out = be
            .with_ctx("brightness-contrast", |ctx| apply(ctx, img, &p))
            .unwrap();
        assert_eq!(out.data[0], 0.5);
    }

    #[test]
    fn bad_params_are_rejected() {
        let be = ThreadBackend::new(1);
        be.with_ctx("brightness-contrast", |ctx| {
            for (json, name) in [
                (r#"{"brightness": 2}"#, "brightness"),
                (r#"{"contrast": -1}"#, "contrast"),
            ] {
                let e = BrightnessContrast
                    .process(ctx, Image::new(2, 2, 3), json)
                    .unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidParams);
                assert!(e.message.contains(name), "{}", e.message);
            }
        });
    }
}
