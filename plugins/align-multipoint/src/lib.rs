//! # align-multipoint: local (alignment-point) alignment with per-point frame selection
//!
//! Global alignment gives each frame one shift, but the atmosphere distorts
//! different parts of the field differently (and blurs them differently), so
//! surface and large-planet stacks stay soft. This aligner measures the
//! distortion on a grid of alignment points (APs) and returns, for every
//! frame, its global shift plus a [`WarpField`]: a local shift and a weight
//! per AP. It needs no special stacker: the field's shifts and weights are
//! interpolated bilinearly per pixel ([`WarpField::sample`]), every frame is
//! resampled under its interpolated local shift, and the stacker accumulates
//! with the interpolated weight (`stack-mean`: weighted sum / sum of weights).
//! Because both the shifts and the weights vary continuously between APs,
//! overlapping APs blend smoothly (a bilinear, i.e. triangular, window of
//! one grid step around each AP) and there are no seams.
//!
//! ## Algorithm
//!
//! 1. **Reference**: the mean of the best `reference_frames` frames (at
//!    most a third of those to align, at least 3), each
//!    globally aligned to the best one by phase correlation
//!    ([`jupiter_kit::align::mean_of_best`], shared with `align-phase`): far
//!    less noisy than one frame. Its frames' local distortions smear it, so
//!    it is then rebuilt (`reference_iterations` times) from the same frames
//!    resampled under their measured, recentred local fields (steps 3–5).
//!    In surface mode with the automatic step, a probe first measures the
//!    local shifts of the best 4 frames on about 200 points: where their RMS
//!    is below `sparse_rms` (0.25 px) the distortion is too small to smear
//!    the mean or to need half-overlapping points, so the reference is kept
//!    and the points go a whole size apart (a quarter as many; the lunar
//!    captures' stacks moved by −0.02 to +0.01 dB, a 6000×4000 run took 40 %
//!    less time).
//! 2. **AP grid** on the reference: square patches of `ap_size` px every
//!    `ap_step` px (default: half the size, i.e. 50 % overlap), centred on the
//!    frame. `ap_size = 0` picks the size from the image: a sixth of the short
//!    side (surface) or a quarter of the disc diameter (planet), 24–128 px.
//!    APs with little structure (RMS gradient of the smoothed reference patch
//!    below `min_structure` × the 90th percentile over APs) are skipped.
//!    Presets (`mode = "auto"`, the default, picks one from the reference:
//!    `planet` when its largest bright region lies wholly inside the frame,
//!    `surface` otherwise, and logs the choice): `mode = "surface"` also skips APs darker than
//!    `min_brightness` × the bright level; `mode = "planet"` keeps only APs
//!    whose patch touches the disc or a moon (reference brighter than
//!    background + `disc_threshold` × (bright − background)), limb included:
//!    the limb is the sharpest feature of a planet, and leaving its APs out
//!    costs more than a dB on the synthetic planet.
//! 3. **Scan**, one streaming pass over the frames, in parallel through the
//!    host's pool (`ctx.par_map`; a task holds one decoded frame): the
//!    frame's global shift by one phase correlation against the reference
//!    (with a full-frame refinement only when no AP is active: the APs
//!    measure whatever the global shift leaves), and at each active AP the
//!    sharpness (the same structure measure) of the patch at the
//!    integer-rounded global position.
//! 4. **Per-AP selection** on the scan: at each AP the frames with the
//!    highest local sharpness get weight 1, the others 0: with `keep = 0`
//!    (the default) as many as [`field::auto_count`] finds worth it from
//!    the spread of sharpness and the noise there (a noise model fitted on
//!    the best frame, at the AP's level), else the `keep` fraction. So
//!    every region of the image is stacked from the frames that were sharp
//!    *there*, within the frames the host's selection gave the aligner.
//!    APs not measured (a planet's sky) stack the globally best frames, as
//!    many as the median AP keeps (all frames with a fixed `keep`).
//! 5. **Measurement**, a second streaming pass over the frames kept at some
//!    AP, only at those APs and their neighbours (the stacker interpolates
//!    the field between them), plus every `count / 100`-th frame at every
//!    AP (step 7 needs many frames per AP): the patch at the rounded
//!    global position is phase-correlated with the AP's reference patch
//!    (its windowed spectrum is computed once; FFT plans are shared per
//!    size; gaussian sub-pixel peak fit), giving the residual local shift. A
//!    patch under a distortion that varies across it is stretched, which
//!    biases a single correlation by up to a third of the distortion; so a
//!    later pass (`passes`) resamples the frame once under the field
//!    measured so far (only the rows and columns of those APs) and measures
//!    each AP's residual again (a gradient fit, `refine`), which also removes
//!    the small window bias of the first correlation. A measurement fails
//!    when its correlation peak is below `min_peak` or it exceeds the
//!    `search` radius; a kept AP whose measurement failed is dropped there.
//! 6. **Cleanup per frame**: a failed or missing local shift, or one further
//!    from the median of its valid neighbours than both `outlier` px and 5 ×
//!    the frame's typical deviation (a steep but smooth distortion is not an
//!    outlier), is replaced by that median.
//! 7. **Recentring** (`recentre`): the reference is a mean of a few frames and
//!    keeps part of their distortion; the mean over many frames is the
//!    undistorted geometry (seeing is zero-mean). Each AP's mean local shift
//!    over the frames measured there is subtracted (keeping the overall
//!    mean, so the result stays where the reference is). Skipped APs take
//!    their shifts from the nearest measured APs, ring by ring, so the field
//!    continues smoothly past the last measured AP (a zero shift there would
//!    put a false distortion gradient across a planet's limb).
//! 8. **Field**: the AP grid is refined `field_refine` times by cubic
//!    interpolation (shifts and weights, weights clamped to 0..=1), so the
//!    stacker's bilinear interpolation follows a distortion that varies over
//!    a few AP steps; no extra measurement.
//!
//! ## Stackers
//!
//! `stack-mean` blends with the interpolated weights (weighted sum / sum of
//! weights), which is what makes the blending seamless. A stacker that only
//! excludes samples of weight 0 and counts every other sample fully still
//! gets the local alignment, but its per-AP selection changes abruptly
//! where an interpolated weight reaches 0.
//!
//! ## Cost and memory
//!
//! Per frame: one full-frame FFT pair (global shift) and the sharpness of
//! each AP's patch; where the frame is kept (and around), one `ap_size²` FFT
//! pair per AP and one resampling of those APs' rows per extra pass. At the
//! default 50 % overlap the patches cover the frame about four times
//! whatever their size, so the time hardly depends on the AP count. Memory:
//! the reference and per-AP spectra (a few `ap_size²` buffers per AP), one
//! decoded frame and its resampled copy per worker, and the measurements (a
//! few floats per AP and frame) — never the frame set. The stacker's cost
//! grows (per-pixel field interpolation instead of a separable shift).

pub mod cpu;
pub mod dewarp;
pub mod field;
pub mod gpu;
pub mod gradient;
pub mod grid;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `align-multipoint` stage (named like the unit struct it was).
#[allow(non_upper_case_globals)]
pub const AlignMultipoint: AlignFn<params::MultipointParams> = AlignFn {
    info: StageInfo::new(
        "align-multipoint",
        env!("CARGO_PKG_VERSION"),
        "Multi-point alignment: global shift plus local shifts on a grid of alignment points, best frames kept per point",
    )
    .with_gpu(),
    run: |ctx, frames, _req, p| cpu::align(ctx, frames, p),
};

export_plugin!(AlignMultipoint);
