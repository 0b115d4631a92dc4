//! # sharpen-wavelet: à-trous wavelet sharpening (RegiStax-style)
//!
//! The image is split by the undecimated ("à trous", with holes) wavelet
//! transform: starting from `c₀ = image`, each step smooths with the B3-spline
//! kernel `(1, 4, 6, 4, 1) / 16` applied separably with its taps `2^j` pixels
//! apart, `c_{j+1} = B3_{2^j} ⊛ c_j`, and the detail layer is the difference
//! `w_j = c_j − c_{j+1}`. Layer 1 holds the finest detail (≈ 1–2 px), layer
//! `j` scales around `2^j` px, and the residual `c_L` the smooth rest; since
//! the sum telescopes, `c_L + Σ w_j` is the image again, exactly.
//!
//! Sharpening recombines the layers with a gain each,
//! `out = c_L + Σ g_j · soft(w_j, t_j · σ_j)`, where `soft` shrinks a
//! coefficient towards zero by the threshold (soft thresholding, which keeps
//! noise in the finest layer from being amplified) and `σ_j` is that layer's
//! robust noise estimate `median(|w_j|) / 0.6745`. Thresholds are given in
//! units of `σ_j`, so the same setting suits bright and faint captures.
//!
//! Colour images are processed channel by channel with the same (linked)
//! gains and thresholds; each channel's noise sigma is its own. The output is
//! not clamped (later stages stretch it) but is always finite. Convolutions
//! and per-pixel passes run in parallel through the host's backend.
//!
//! When the host offers a GPU, `gpu.rs` runs the same computation on the
//! device (all layers stay there; the image is left on the device for the
//! next stage).

pub mod cpu;
pub mod gpu;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `sharpen-wavelet` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const SharpenWavelet: ProcessFn<params::WaveletParams> = ProcessFn {
    info: StageInfo::new(
        "sharpen-wavelet",
        env!("CARGO_PKG_VERSION"),
        "À-trous B3-spline wavelet sharpening with per-layer gain and noise threshold",
    )
    .with_gpu(),
    kind: StageKind::Sharpen,
    run: |ctx, image, p| {
        let (settings, warning) = p.resolve()?;
        if let Some(w) = warning {
            ctx.warn(&w);
        }
        match ctx.gpu() {
            Some(g) if image.channels <= 4 => gpu::sharpen(ctx, &g, image, &settings),
            _ => cpu::sharpen(ctx, ctx.to_host(image)?, &settings),
        }
    },
};

export_plugin!(SharpenWavelet);

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::ThreadBackend;

    #[test]
    fn stage_runs_through_its_trait_and_rejects_bad_params() {
        let be = ThreadBackend::new(2);
        be.with_ctx("sharpen-wavelet", |ctx| {
            let img = Image::from_vec(4, 3, 1, (0..12).map(|i| i as f32 / 12.0).collect());
            let out = SharpenWavelet.process(ctx, img.clone(), "").unwrap();
            assert_eq!((out.width, out.height, out.channels), (4, 3, 1));
            let e = SharpenWavelet
                .process(ctx, img.clone(), r#"{"layers": 99}"#)
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams);
            let e = SharpenWavelet
                .process(ctx, img, r#"{"bogus": 1}"#)
                .unwrap_err();
            assert_eq!(e.kind, ErrorKind::InvalidParams);
        });
        let m = SharpenWavelet.manifest();
        assert_eq!(
            (m.name.as_str(), m.kind),
            ("sharpen-wavelet", StageKind::Sharpen)
        );
        assert_eq!(m.params.len(), 3);
    }
}
