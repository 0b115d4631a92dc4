//! `stretch`: histogram stretch. The black and white points are percentiles
//! of all samples (every channel together, so the colour balance is kept);
//! they are mapped to 0 and 1, values outside clamp, and an optional midtone
//! transfer function bends the curve in between.

use jupiter_plugin_api::prelude::*;

use crate::common::{gpu_or_cpu, host_pixels, map_samples};

jupiter_plugin_api::params! {
    /// Parameters of `stretch`.
    #[derive(Debug, Clone, PartialEq)]
    pub struct StretchParams {
        /// Percentile of all samples mapped to 0, in percent.
        pub black_percentile: f32 = 0.1, float(0.0, 100.0), "Percentile of all samples mapped to black (0), percent";
        /// Percentile of all samples mapped to 1, in percent.
        pub white_percentile: f32 = 99.99, float(0.0, 100.0), "Percentile of all samples mapped to white (1), percent";
        /// Midtone balance `m` of the midtone transfer function (PixInsight's
        /// MTF): the stretched value `m` becomes 0.5. 0.5 is linear, smaller
        /// values brighten the midtones, larger darken them.
        pub midtone: f32 = 0.5, float(0.001, 0.999), "Midtone balance of the MTF: this stretched value becomes 0.5 (0.5 = linear, lower = brighter)";
    }
}

impl StretchParams {
    /// Checks every value against its range, and that the black point lies
    /// below the white point.
    pub fn validate(&self) -> Result<(), StageError> {
        self.check_ranges()?;
        if self.black_percentile >= self.white_percentile {
            return Err(StageError::invalid_params(format!(
                "`black_percentile` ({}) must be below `white_percentile` ({})",
                self.black_percentile, self.white_percentile
            )));
        }
        Ok(())
    }
}

/// The midtone transfer function `MTF_m(x) = (m − 1) x / ((2m − 1) x − m)`
/// for `x` in `[0, 1]`: fixes 0 and 1 and maps `m` to 0.5. The denominator
/// is negative on the whole interval for `0 < m < 1`.
#[inline]
pub fn mtf(x: f32, m: f32) -> f32 {
    if m == 0.5 {
        x
    } else {
        (m - 1.0) * x / ((2.0 * m - 1.0) * x - m)
    }
}

/// The `q_lo` and `q_hi` quantiles (0..=1, `q_lo <= q_hi`) of the finite
/// samples, by selection on one copy; the rank of quantile `q` is
/// `round((n − 1) q)`, as in `jupiter_kit::stats::percentile`. `None` when
/// no sample is finite.
pub fn quantiles(data: &[f32], q_lo: f64, q_hi: f64) -> Option<(f32, f32)> {
    let mut v: Vec<f32> = data.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    let rank = |q: f64| ((v.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    let (k_lo, k_hi) = (rank(q_lo), rank(q_hi));
    let (_, lo, upper) = v.select_nth_unstable_by(k_lo, |a, b| a.total_cmp(b));
    let lo = *lo;
    // Every sample of rank above k_lo is in `upper`, in no particular order.
    let hi = if k_hi > k_lo {
        let (_, hi, _) = upper.select_nth_unstable_by(k_hi - k_lo - 1, |a, b| a.total_cmp(b));
        *hi
    } else {
        lo
    };
    Some((lo, hi))
}

/// Stretches `image`; returns it with every sample in `[0, 1]`.
pub fn apply(ctx: &StageCtx, image: Image, p: &StretchParams) -> Result<Image, StageError> {
    p.validate()?;
    host_pixels(&image)?;
    let mut image = image;
    let Some((black, white)) = quantiles(
        &image.data,
        p.black_percentile as f64 / 100.0,
        p.white_percentile as f64 / 100.0,
    ) else {
        if !image.is_empty() {
            ctx.warn("no finite samples: output is black");
        }
        image.data.iter_mut().for_each(|v| *v = 0.0);
        return Ok(image);
    };
    ctx.info(&format!(
        "black point {black:.5} ({}%), white point {white:.5} ({}%), midtone {}",
        p.black_percentile, p.white_percentile, p.midtone
    ));
    let m = p.midtone;
    if white > black {
        let scale = 1.0 / (white - black);
        // NaN → 0; ±inf clamp to 1 / 0.
        map_samples(ctx, image.data.as_mut_slice(), |v| {
            if v.is_nan() {
                0.0
            } else {
                mtf(((v - black) * scale).clamp(0.0, 1.0), m)
            }
        })?;
    } else {
        ctx.warn(&format!("black and white points are equal ({black}): the image is flat there; output is 0 up to it and 1 above"));
        map_samples(ctx, image.data.as_mut_slice(), |v| {
            if v > black {
                1.0
            } else {
                0.0
            }
        })?;
    }
    Ok(image)
}

/// The `stretch` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const Stretch: ProcessFn<StretchParams> = ProcessFn {
    info: StageInfo::new(
        "stretch",
        env!("CARGO_PKG_VERSION"),
        "Histogram stretch: percentile black/white points to 0..1, optional midtone transfer",
    )
    .with_gpu(),
    kind: StageKind::Filter,
    run: |ctx, image, p| {
        p.validate()?;
        gpu_or_cpu(
            ctx,
            image,
            |g, image| match crate::gpu::stretch(ctx, g, &image, p)? {
                Some(out) => Ok(out),
                None => apply(ctx, ctx.to_host(image)?, p),
            },
            |ctx, image| apply(ctx, image, p),
        )
    },
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::reference::{max_err, noise_image};
    use jupiter_kit::stats::percentile;
    use jupiter_plugin_api::testing::ThreadBackend;

    #[test]
    fn chosen_percentiles_map_to_0_and_1() {
        // 11×13 RGB = 429 samples: a shuffled ramp 0.2 .. 0.8.
        let (w, h, ch) = (11usize, 13usize, 3usize);
        let n = w * h * ch;
        let mut data: Vec<f32> = (0..n)
            .map(|i| 0.2 + 0.6 * i as f32 / (n - 1) as f32)
            .collect();
        for i in (1..n).rev() {
            data.swap(i, (i * 7919 + 13) % (i + 1));
        }
        let p = StretchParams {
            black_percentile: 5.0,
            white_percentile: 90.0,
            midtone: 0.5,
        };
        let (black, white) = (percentile(&data, 0.05), percentile(&data, 0.90));
        let img = Image::from_vec(w as u32, h as u32, ch as u32, data.clone());
        let be = ThreadBackend::new(3);
        let out = be.with_ctx("stretch", |ctx| apply(ctx, img, &p)).unwrap();
        for (o, v) in out.data.iter().zip(&data) {
            if *v == black {
                assert_eq!(*o, 0.0);
            }
            if *v == white {
                assert!((o - 1.0).abs() < 1e-6, "white point maps to {o}");
            }
            let want = ((v - black) / (white - black)).clamp(0.0, 1.0);
            assert!((o - want).abs() < 1e-6);
        }
        // 5% of 429 samples lie at or below the black point, 10% at or above the white point.
        let zeros = out.data.iter().filter(|&&o| o == 0.0).count();
        let ones = out.data.iter().filter(|&&o| o >= 1.0 - 1e-6).count();
        assert_eq!(zeros, (0.05f64 * (n - 1) as f64).round() as usize + 1);
        assert_eq!(ones, n - (0.90f64 * (n - 1) as f64).round() as usize);
    }

    #[test]
    fn quantiles_agree_with_kit_percentile() {
        let data = noise_image(1001, 3);
        for (a, b) in [(0.001, 0.9999), (0.1, 0.5), (0.3, 0.3), (0.0, 1.0)] {
            assert_eq!(
                quantiles(&data, a, b),
                Some((percentile(&data, a), percentile(&data, b)))
            );
        }
        assert_eq!(quantiles(&[f32::NAN], 0.1, 0.9), None);
    }

    #[test]
    fn midtone_transfer_maps_m_to_one_half() {
        for m in [0.1f32, 0.25, 0.5, 0.8] {
            assert!((mtf(m, m) - 0.5).abs() < 1e-6);
            assert_eq!(mtf(0.0, m), 0.0);
            assert!((mtf(1.0, m) - 1.0).abs() < 1e-6);
        }
        // Against the formula on a small mono image with the default percentiles.
        let data: Vec<f32> = noise_image(7 * 5, 17)
            .iter()
            .map(|v| v * 0.5 + 0.1)
            .collect();
        let p = StretchParams {
            midtone: 0.25,
            ..Default::default()
        };
        let (b, wp) = (percentile(&data, 0.001), percentile(&data, 0.9999));
        let want: Vec<f32> = data
            .iter()
            .map(|v| mtf(((v - b) / (wp - b)).clamp(0.0, 1.0), 0.25))
            .collect();
        let be = ThreadBackend::new(2);
        let out = be
            .with_ctx("stretch", |ctx| {
                apply(ctx, Image::from_vec(7, 5, 1, data), &p)
            })
            .unwrap();
        assert!(max_err(&out.data, &want) < 1e-6);
        assert!(out.data.iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn flat_non_finite_and_bad_inputs() {
        let be = ThreadBackend::new(2);
        be.with_ctx("stretch", |ctx| {
            let flat = apply(
                ctx,
                Image::from_vec(3, 1, 1, vec![0.4; 3]),
                &StretchParams::default(),
            )
            .unwrap();
            assert_eq!(flat.data.as_slice(), &[0.0; 3]);
            let img = Image::from_vec(5, 1, 1, vec![0.0, f32::NAN, 1.0, f32::INFINITY, 0.5]);
            let out = apply(
                ctx,
                img,
                &StretchParams {
                    black_percentile: 0.0,
                    white_percentile: 100.0,
                    midtone: 0.5,
                },
            )
            .unwrap();
            assert_eq!(out.data.as_slice(), &[0.0, 0.0, 1.0, 1.0, 0.5]);
            for (json, name) in [
                (
                    r#"{"black_percentile": 50, "white_percentile": 40}"#,
                    "black_percentile",
                ),
                (r#"{"white_percentile": 101}"#, "white_percentile"),
                (r#"{"midtone": 1.0}"#, "midtone"),
            ] {
                let e = Stretch.process(ctx, Image::new(2, 2, 1), json).unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidParams);
                assert!(e.message.contains(name), "{}", e.message);
            }
        });
    }
}
