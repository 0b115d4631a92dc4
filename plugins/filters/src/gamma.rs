//! `gamma`: `out = max(in, 0) ^ (1 / gamma)` per sample (gamma > 1 brightens
//! the midtones, < 1 darkens them; 0 and 1 stay put).

use jupiter_plugin_api::prelude::*;

use crate::common::{gpu_or_cpu, host_pixels, map_samples};

jupiter_plugin_api::params! {
    /// Parameters of `gamma`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct GammaParams {
        /// The gamma (> 0); 1 leaves the image unchanged.
        pub gamma: f32 = 1.0, float(0.05, 10.0), "out = in^(1/gamma) on values clamped at 0 (> 1 brightens midtones; 1 = unchanged)";
    }
}

/// Applies the gamma to every sample (negative and NaN samples become 0).
pub fn apply(ctx: &StageCtx, image: Image, p: &GammaParams) -> Result<Image, StageError> {
    p.check_ranges()?;
    host_pixels(&image)?;
    let mut image = image;
    let e = 1.0 / p.gamma;
    // `f32::max` returns the non-NaN operand, so NaN maps to 0 as well.
    map_samples(ctx, image.data.as_mut_slice(), |v| v.max(0.0).powf(e))?;
    Ok(image)
}

/// The `gamma` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const Gamma: ProcessFn<GammaParams> = ProcessFn {
    info: StageInfo::new(
        "gamma",
        env!("CARGO_PKG_VERSION"),
        "Gamma curve: in^(1/gamma), values clamped at 0",
    )
    .with_gpu(),
    kind: StageKind::Filter,
    run: |ctx, image, p| {
        gpu_or_cpu(
            ctx,
            image,
            |g, image| crate::gpu::gamma(g, image, p),
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
        for (w, h, ch, gamma) in [(5usize, 3usize, 1usize, 2.2f32), (7, 9, 3, 0.6)] {
            // Values in -0.2 .. 1.2: negatives clamp to 0, above 1 is allowed.
            let data: Vec<f32> = noise_image(w * h * ch, 5)
                .iter()
                .map(|v| v * 1.4 - 0.2)
                .collect();
            let want: Vec<f32> = data.iter().map(|v| v.max(0.0).powf(1.0 / gamma)).collect();
            let img = Image::from_vec(w as u32, h as u32, ch as u32, data);
            let out = be
                .with_ctx("gamma", |ctx| apply(ctx, img, &GammaParams { gamma }))
                .unwrap();
            assert!(max_err(&out.data, &want) < 1e-6);
        }
        let img = Image::from_vec(4, 1, 1, vec![-0.5, 0.25, f32::NAN, 1.0]);
        let out = be
            .with_ctx("gamma", |ctx| apply(ctx, img, &GammaParams { gamma: 2.0 }))
            .unwrap();
        assert_eq!(out.data.as_slice(), &[0.0, 0.5, 0.0, 1.0]);
    }

    #[test]
    fn gamma_must_be_positive() {
        let be = ThreadBackend::new(1);
        be.with_ctx("gamma", |ctx| {
            for json in [r#"{"gamma": 0}"#, r#"{"gamma": -2}"#, r#"{"gamma": 11}"#] {
                let e = Gamma.process(ctx, Image::new(2, 2, 1), json).unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidParams);
                assert!(e.message.contains("gamma"), "{}", e.message);
            }
        });
    }
}
