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
//!    less noisy than one frame.
//! 2. **AP grid** on the reference: square patches of `ap_size` px every
//!    `ap_step` px (default: half the size, i.e. 50 % overlap), centred on the
//!    frame. `ap_size = 0` picks the size from the image: a sixth of the short
//!    side (surface) or a quarter of the disc diameter (planet), 24–128 px.
//!    APs are skipped when their reference patch is darker than
//!    `min_brightness` × the bright level, or has less structure (RMS
//!    gradient of the smoothed patch) than `min_structure` × the 90th
//!    percentile over APs. Presets: `mode = "surface"` uses the whole grid;
//!    `mode = "planet"` also requires half of the patch to lie on the disc
//!    (reference brighter than background + `disc_threshold` × (bright −
//!    background)), so APs sit only on the planet.
//! 3. **Measurement**, one streaming pass over the frames, in parallel
//!    through the host's pool (`ctx.par_map`; a task holds one decoded
//!    frame): the frame's global shift by phase correlation against the
//!    reference; then, at each active AP, the patch at the integer-rounded
//!    global position is phase-correlated with the AP's reference patch (its
//!    windowed spectrum is computed once; FFT plans are shared per size),
//!    with sub-pixel refinement, giving the residual local shift; and the
//!    patch's sharpness (the same structure measure) is recorded. A
//!    measurement fails when its correlation peak is below `min_peak` or it
//!    exceeds the `search` radius.
//! 4. **Cleanup per frame**: a failed local shift, or one further than
//!    `outlier` px from the median of its valid neighbours, is replaced by
//!    that median (local distortion is smooth over a few APs).
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
//!
//! ## Cost and memory
//!
//! Per frame: one full-frame phase correlation (two FFTs with refinement)
//! plus two `ap_size²` FFTs per active AP. Memory: the reference and per-AP
//! spectra (a few `ap_size²` buffers per AP), one decoded frame per worker,
//! and the measurements (a few floats per AP and frame) — never the frame
//! set. The stacker's cost grows a little (per-pixel field interpolation).

pub mod cpu;
pub mod field;
pub mod grid;
pub mod params;

use jupiter_plugin_api::prelude::*;

/// The `align-multipoint` stage.
pub struct AlignMultipoint;

impl Stage for AlignMultipoint {
    fn manifest(&self) -> Manifest {
        Manifest::new(
            "align-multipoint",
            env!("CARGO_PKG_VERSION"),
            StageKind::Align,
            "Multi-point alignment: global shift plus local shifts on a grid of alignment points, best frames kept per point",
            params::specs(),
        )
    }

    fn align(&self, ctx: &StageCtx, frames: &FrameSourceRef, _req: &AlignRequest, params: &str) -> Result<Alignment, StageError> {
        let p: params::MultipointParams = parse_params(params)?;
        cpu::align(ctx, frames, &p)
    }
}

export_plugin!(AlignMultipoint);
