//! Parameters of the `deconvolve` stage.

use jupiter_plugin_api::{StageError, StageParams};

jupiter_plugin_api::params! {
    /// Parameters (JSON/TOML keys in snake_case).
    #[derive(Debug, Clone, PartialEq)]
    pub struct DeconvolveParams {
        /// `rl` (Richardson–Lucy) or `wiener`.
        pub method: String = "rl".into(), choice(&["rl", "wiener"]), "rl: Richardson-Lucy, stopped when the residual reaches the noise; wiener: one regularised inverse filter";
        /// The PSF's shape.
        pub psf: String = "gaussian".into(), choice(&["gaussian", "moffat"]), "PSF model: gaussian or moffat";
        /// PSF width as a Gaussian sigma in pixels (a Moffat PSF of the same
        /// FWHM, 2.3548 sigma); 0 = estimated from the image's power spectrum.
        pub sigma: f32 = 0.0, float(0.0, 20.0), "PSF width as Gaussian sigma in px (Moffat: same FWHM); 0 = estimated from the image";
        /// The width (Gaussian sigma, px) of the scene's own finest
        /// structure, taken out of the estimated blur in quadrature: what
        /// the image's spectrum shows is the PSF and the scene's sharpest
        /// edges together (see `psf::estimate_sigma`).
        pub scene_sigma: f32 = 0.6, float(0.0, 5.0), "With sigma = 0: the scene's own finest width (px), taken out of the measured blur in quadrature";
        /// Moffat's beta (wings fall as r^-2beta; large beta → Gaussian).
        pub moffat_beta: f32 = 3.0, float(1.0, 20.0), "Moffat beta (larger = lighter wings)";
        /// Richardson–Lucy: the most iterations.
        pub iterations: u32 = 50, int(1, 1000), "Richardson-Lucy: most iterations";
        /// Richardson–Lucy stops once the mean squared residual of the
        /// re-blurred estimate falls to this multiple of the noise variance
        /// (the discrepancy principle); 0 = always run every iteration.
        pub stop: f32 = 1.0, float(0.0, 100.0), "Richardson-Lucy: stop when the residual falls to this × the noise variance (0 = run all iterations)";
        /// Wiener: noise-to-signal power ratio; 0 = from the measured noise.
        pub wiener_k: f32 = 0.0, float(0.0, 10.0), "Wiener: noise-to-signal power ratio (0 = from the measured noise)";
    }
}

/// The deconvolution method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    RichardsonLucy,
    Wiener,
}

/// The PSF model and its width (`None`: estimate it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PsfModel {
    Gaussian,
    /// Moffat with this beta.
    Moffat(f32),
}

impl DeconvolveParams {
    /// Checks the ranges; returns the method and the PSF model.
    pub fn resolve(&self) -> Result<(Method, PsfModel), StageError> {
        self.check_ranges()?;
        let method = match self.method.as_str() {
            "rl" => Method::RichardsonLucy,
            "wiener" => Method::Wiener,
            m => return Err(StageError::invalid_params(format!("unknown method '{m}'"))),
        };
        let psf = match self.psf.as_str() {
            "gaussian" => PsfModel::Gaussian,
            "moffat" => PsfModel::Moffat(self.moffat_beta),
            m => return Err(StageError::invalid_params(format!("unknown psf '{m}'"))),
        };
        Ok((method, psf))
    }
}
