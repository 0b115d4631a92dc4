//! # deconvolve: Richardson–Lucy and Wiener deconvolution
//!
//! A stack is the sharp scene blurred by the mean point-spread function of
//! its frames (seeing, optics, residual misregistration) plus noise. This
//! stage removes a PSF model from it:
//!
//! - **PSF**: Gaussian or Moffat (`psf`, `moffat_beta`), of width `sigma`
//!   (Gaussian sigma in px; a Moffat of the same FWHM), or — `sigma = 0`,
//!   the default — estimated from the image: above the noise floor, the
//!   radially averaged power spectrum of a blurred scene of edges is
//!   `f^-3` times the Gaussian transfer function `exp(−4π²σ²f²)`; a linear
//!   least-squares fit of `ln(P − N)` gives the blur, and the scene's own
//!   finest width (`scene_sigma`) is taken out of it in quadrature
//!   ([`psf::estimate_sigma`]).
//! - **Richardson–Lucy** (`method = "rl"`): iterated until the re-blurred
//!   estimate's residual reaches the noise (`stop` × the noise variance,
//!   measured on the image: the discrepancy principle), so noise is not
//!   amplified without bound; `iterations` caps it.
//! - **Wiener** (`method = "wiener"`): one regularised inverse filter,
//!   `H* / (|H|² + k)`, `k` from the measured noise unless given.
//!
//! Convolutions run by FFT over a mirror-padded copy of each plane (padding
//! ≥ the kernel's radius), so the circular convolution never wraps one
//! edge into the other. Colour images are deconvolved channel by channel
//! with one PSF (estimated on the luminance) — linked settings.

pub mod cpu;
pub mod gpu;
pub mod params;
pub mod psf;

use jupiter_plugin_api::prelude::*;

/// The `deconvolve` stage.
#[allow(non_upper_case_globals)]
pub const Deconvolve: ProcessFn<params::DeconvolveParams> = ProcessFn {
    info: StageInfo::new(
        "deconvolve",
        env!("CARGO_PKG_VERSION"),
        "Richardson-Lucy (stopped at the noise) or Wiener deconvolution; Gaussian or Moffat PSF, given or estimated from the image",
    )
    .with_gpu(),
    kind: StageKind::Sharpen,
    run: |ctx, image, p| {
        let (out, applied) = deconvolve(ctx, image, p)?;
        match applied {
            Some(a) => ctx.info(&format!(
                "{} with a {} PSF of sigma {:.2} px ({}); noise {:.2e}{}",
                p.method,
                p.psf,
                a.sigma,
                match a.measured {
                    Some(m) => format!(
                        "estimated: the spectrum shows {m:.2} px, less the scene's own {:.2} px",
                        p.scene_sigma
                    ),
                    None => "given".into(),
                },
                a.noise,
                if p.method == "rl" {
                    format!("; {} iterations", a.iterations)
                } else {
                    String::new()
                }
            )),
            None => ctx.warn("no blur could be measured above the noise: the image is left as it is"),
        }
        Ok(out)
    },
};

/// The stage: measured on a host copy, run on the GPU when the host offers
/// one and the plan is Richardson–Lucy with a Gaussian PSF, else on the CPU.
pub fn deconvolve(
    ctx: &StageCtx,
    image: Image,
    p: &params::DeconvolveParams,
) -> Result<(Image, Option<cpu::Applied>), StageError> {
    let Some(g) = ctx.gpu() else {
        return cpu::deconvolve(ctx, ctx.to_host(image)?, p);
    };
    let host = gpu::host_copy(&g, &image)?;
    match cpu::Plan::new(&host, p)? {
        Some(plan) if gpu::handles(&plan) => {
            let (out, it) = gpu::richardson_lucy(ctx, &g, &host, &plan, p)?;
            Ok((out, Some(plan.applied(it))))
        }
        Some(plan) => {
            let (out, it) = cpu::run(ctx, &host, &plan, p)?;
            Ok((out, Some(plan.applied(it))))
        }
        None => Ok((image, None)),
    }
}

export_plugin!(Deconvolve);

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{check_manifest, ThreadBackend};

    #[test]
    fn manifest_and_parameters() {
        let params = [
            "method",
            "psf",
            "sigma",
            "scene_sigma",
            "moffat_beta",
            "iterations",
            "stop",
            "wiener_k",
        ];
        check_manifest(&Deconvolve, "deconvolve", StageKind::Sharpen, true, &params);
        let be = ThreadBackend::new(2);
        be.with_ctx("deconvolve", |ctx| {
            let img = Image::from_vec(
                40,
                30,
                3,
                (0..3600).map(|i| (i % 37) as f32 / 37.0).collect(),
            );
            let out = Deconvolve
                .process(ctx, img.clone(), r#"{"sigma": 1.2}"#)
                .unwrap();
            assert_eq!((out.width, out.height, out.channels), (40, 30, 3));
            assert!(out.data.iter().all(|v| v.is_finite()));
            for bad in [
                r#"{"method": "blind"}"#,
                r#"{"sigma": -1}"#,
                r#"{"iterations": 0}"#,
                r#"{"nope": 1}"#,
            ] {
                let e = Deconvolve.process(ctx, img.clone(), bad).unwrap_err();
                assert_eq!(e.kind, ErrorKind::InvalidParams, "{bad}");
            }
        });
    }
}
