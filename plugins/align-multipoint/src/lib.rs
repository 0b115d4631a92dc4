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
//! 1. **Reference**: the mean of the best `reference_frames` frames, each
//!    globally aligned to the best one by phase correlation
//!    ([`jupiter_kit::align::mean_of_best`], shared with `align-phase`): far
//!    less noisy than one frame. Its frames' local distortions smear it, so
//!    it is then rebuilt (`reference_iterations` times) from the same frames
//!    resampled under their measured, recentred local fields (steps 3–5).
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
//! 3. **Measurement**, one streaming pass over the frames, in parallel
//!    through the host's pool (`ctx.par_map`; a task holds one decoded
//!    frame): the frame's global shift by one phase correlation against the
//!    reference (with a full-frame refinement only when no AP is active: the
//!    APs measure whatever the global shift leaves); then, at each active AP,
//!    the patch at the integer-rounded global position is phase-correlated
//!    with the AP's reference patch (its windowed spectrum is computed once;
//!    FFT plans are shared per size; gaussian sub-pixel peak fit), giving the
//!    residual local shift, and the patch's sharpness (the same structure
//!    measure) is recorded. A patch under a distortion that varies across it
//!    is stretched, which biases a single correlation by up to a third of the
//!    distortion; so a second pass (`passes`) resamples the frame once under
//!    the field measured so far and correlates each AP's patch of it again:
//!    the residual is small and nearly uniform, and adding it also removes
//!    the small window bias of the first correlation. A measurement fails
//!    when its correlation peak is below `min_peak` or it exceeds the
//!    `search` radius.
//! 4. **Cleanup per frame**: a failed local shift, or one further from the
//!    median of its valid neighbours than both `outlier` px and 5 × the
//!    frame's typical deviation (a steep but smooth distortion is not an
//!    outlier), is replaced by that median.
//! 5. **Recentring** (`recentre`): the reference is a mean of a few frames and
//!    keeps part of their distortion; the mean over *all* frames is the
//!    undistorted geometry (seeing is zero-mean). Each AP's mean local shift
//!    over the frames is subtracted (keeping the overall mean, so the result
//!    stays where the reference is).
//! 6. **Per-AP selection**: at each AP the `keep` fraction of frames with the
//!    highest local sharpness get weight 1, the others 0. So every region of
//!    the image is stacked from the frames that were sharp *there*, within
//!    the frame budget the host's selection (`--select`) gave the aligner.
//! 7. **Skipped APs** keep weight 1 for every frame (the global selection) and
//!    take their shifts from the nearest measured APs, ring by ring, so the
//!    field continues smoothly past the last measured AP (a zero shift there
//!    would put a false distortion gradient across a planet's limb).
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
//! Per frame: one full-frame FFT pair (global shift), one full-frame
//! resampling per extra pass, and one `ap_size²` FFT pair per active AP and
//! pass. At the default 50 % overlap the patches cover the frame about four
//! times whatever their size, so the time hardly depends on the AP count (see
//! docs/BENCHMARKS.md: 54 → 2022 APs on 640×480 frames cost 1.4× the time;
//! the whole 1000-frame pipeline takes 1.9× the global one). Memory: the
//! reference and per-AP spectra (a few `ap_size²` buffers per AP), one
//! decoded frame and its resampled copy per worker, and the measurements (a
//! few floats per AP and frame) — never the frame set. The stacker's cost
//! grows (per-pixel field interpolation instead of a separable shift).

pub mod cpu;
pub mod dewarp;
pub mod field;
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
    ),
    run: |ctx, frames, _req, p| cpu::align(ctx, frames, p),
};

export_plugin!(AlignMultipoint);
