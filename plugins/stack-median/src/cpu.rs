//! CPU paths of `stack-median`: the fast pixel-major select path used by the
//! stage, and the naive gather-and-sort reference it is tested against.

use jupiter_kit::tile::{median_in_place, naive_stack, stack_bands};
use jupiter_plugin_api::prelude::*;

use crate::params::MedianParams;

/// Stacks the source under the alignment: per output sample, the median of
/// the frames' resampled samples (mean of the two middle values for an even
/// count; samples with warp-field weight 0 left out; 0 where none is left).
///
/// Fast path: bands of output rows are gathered pixel-major
/// ([`jupiter_kit::tile::PixelMajorBand`]) and each pixel's median is found
/// with `select_nth_unstable_by`, parallel over bands through the host's pool.
///
/// Memory bound: the output (`W·H·C` floats) plus, per running band (at most
/// one per worker thread), `N·R·W·C` pixel-major samples and `O(R·W·C)`
/// resampling buffers, where `N` is the frame count and `R` the band's rows
/// ([`jupiter_kit::tile::band_rows`]: 16, fewer for very large `N·W·C`). The
/// frame set is never copied.
pub fn stack(
    ctx: &StageCtx,
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MedianParams,
) -> Result<Image, StageError> {
    stack_bands(
        ctx,
        frames,
        &req.alignment.warps,
        p.interpolation,
        median_in_place,
    )
}

/// The naive reference: resamples every frame whole, then for each output
/// sample gathers the kept samples of all frames into a new `Vec`, sorts it
/// fully and takes the middle (same conventions as [`stack`]).
///
/// Sequential and simple on purpose ([`jupiter_kit::tile::naive_stack`]
/// does the resampling and gathering). It holds all `N` aligned frames and
/// their weight maps in memory (`N·W·H·(C + 1)` floats): for tests and the
/// benchmark only, never for the stage.
pub fn stack_reference(
    frames: &FrameSourceRef,
    req: &StackRequest,
    p: &MedianParams,
) -> Result<Image, StageError> {
    naive_stack(frames, &req.alignment.warps, p.interpolation, |mut v| {
        v.sort_by(f32::total_cmp);
        let m = v.len();
        match m {
            0 => 0.0,
            _ if m % 2 == 1 => v[m / 2],
            _ => (v[m / 2 - 1] + v[m / 2]) * 0.5,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
    use jupiter_plugin_api::WarpField;
    use jupiter_testkit::frames::Rng;

    fn run(mem: &MemFrames, req: &StackRequest, p: &MedianParams) -> Result<Image, StageError> {
        let be = ThreadBackend::new(3);
        be.with_ctx("stack-median", |ctx| stack(ctx, &mem.as_ref(), req, p))
    }

    /// A 3×3 field with varying shifts whose weight is 0 at the top-left
    /// point (so pixels up to `(4, 4)` drop this frame) and 1 elsewhere.
    fn field_with_hole(rng: &mut Rng, w: usize, h: usize) -> FrameWarp {
        let mut weight = vec![1.0f32; 9];
        weight[0] = 0.0;
        let (dx, dy) = (rng.range_f32(-1.0, 1.0), rng.range_f32(-1.0, 1.0));
        let local_dx = (0..9).map(|_| rng.range_f32(-0.7, 0.7)).collect();
        let local_dy = (0..9).map(|_| rng.range_f32(-0.7, 0.7)).collect();
        let step = ((w as f32 - 8.0) / 2.0, (h as f32 - 8.0) / 2.0);
        let field = WarpField::new((3, 3), (4.0, 4.0), step, [local_dx, local_dy, weight]);
        FrameWarp::with_field(dx, dy, field)
    }

    #[test]
    fn fast_path_equals_the_naive_reference() {
        let mut rng = Rng::new(3);
        for (n, ch, interp) in [
            (1, 1, "bicubic"),
            (2, 3, "bilinear"),
            (3, 1, "bicubic"),
            (8, 3, "bicubic"),
            (17, 1, "bilinear"),
            (40, 1, "bicubic"),
        ] {
            let (w, h) = (23, 37);
            let frames: Vec<Vec<f32>> = (0..n)
                .map(|_| (0..w * h * ch).map(|_| rng.uniform_f32()).collect())
                .collect();
            let mem = MemFrames::new(w as u32, h as u32, ch as u32, frames);
            let warps: Vec<FrameWarp> = (0..n)
                .map(|i| {
                    if i % 3 == 1 {
                        field_with_hole(&mut rng, w, h)
                    } else {
                        FrameWarp::shift(rng.range_f32(-2.0, 2.0), rng.range_f32(-2.0, 2.0))
                    }
                })
                .collect();
            let req = StackRequest::new(warps);
            let p = MedianParams {
                interpolation: Interpolation::parse(interp).unwrap(),
            };
            let fast = run(&mem, &req, &p).unwrap();
            let reference = stack_reference(&mem.as_ref(), &req, &p).unwrap();
            let err = jupiter_testkit::reference::max_abs_diff(&fast.data, &reference.data);
            assert!(
                err <= 1e-5,
                "{n} frames, {ch} channels, {interp}: max difference {err}"
            );
        }
    }

    #[test]
    fn even_count_gives_the_mean_of_the_two_middle_values() {
        let (w, h) = (5, 20);
        let mem = MemFrames::new(
            w,
            h,
            1,
            [0.1, 0.9, 0.2, 0.6].iter().map(|&v| vec![v; 100]).collect(),
        );
        let img = run(
            &mem,
            &StackRequest::new(vec![FrameWarp::shift(0.0, 0.0); 4]),
            &MedianParams::default(),
        )
        .unwrap();
        assert!(img.data.iter().all(|&v| (v - 0.4).abs() < 1e-6));
        // Odd count: the middle value exactly.
        let mem = MemFrames::new(
            w,
            h,
            1,
            [0.7, 0.1, 0.3].iter().map(|&v| vec![v; 100]).collect(),
        );
        let img = run(
            &mem,
            &StackRequest::new(vec![FrameWarp::shift(0.0, 0.0); 3]),
            &MedianParams::default(),
        )
        .unwrap();
        assert!(img.data.iter().all(|&v| v == 0.3));
    }

    #[test]
    fn zero_weight_samples_are_excluded() {
        let (w, h) = (12, 10);
        // Frames 3 and 4 are bright but have weight 0 everywhere: the median
        // of the other three (0.2, 0.3, 0.4) is 0.3, not 0.4.
        let values = [0.2, 0.3, 0.4, 1.0, 1.0];
        let mem = MemFrames::new(
            w as u32,
            h as u32,
            1,
            values.iter().map(|&v| vec![v; w * h]).collect(),
        );
        let off = |_: usize| {
            let zero = WarpField::new(
                (1, 1),
                (0.0, 0.0),
                (1.0, 1.0),
                [vec![0.0], vec![0.0], vec![0.0]],
            );
            FrameWarp::with_field(0.0, 0.0, zero)
        };
        let warps = vec![
            FrameWarp::shift(0.0, 0.0),
            FrameWarp::shift(0.0, 0.0),
            FrameWarp::shift(0.0, 0.0),
            off(3),
            off(4),
        ];
        let img = run(&mem, &StackRequest::new(warps), &MedianParams::default()).unwrap();
        assert!(
            img.data.iter().all(|&v| (v - 0.3).abs() < 1e-6),
            "{:?}",
            &img.data[..4]
        );
        // No frame kept anywhere: zeros, no panic.
        let mem = MemFrames::new(w as u32, h as u32, 1, vec![vec![0.5; w * h]; 2]);
        let img = run(
            &mem,
            &StackRequest::new(vec![off(0), off(1)]),
            &MedianParams::default(),
        )
        .unwrap();
        assert!(img.data.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        jupiter_testkit::reference::stack_contract_errors(&crate::StackMedian, "stack-median");
        let mem = MemFrames::new(4, 4, 1, vec![vec![0.0; 16]; 2]);
        let p = MedianParams::default();
        let e = run(
            &mem,
            &StackRequest::new(vec![FrameWarp::shift(0.0, 0.0)]),
            &p,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Internal);
        assert!(stack_reference(&mem.as_ref(), &StackRequest::new(vec![]), &p).is_err());
        assert_eq!(
            MedianParams::parse(r#"{"interpolation": "nearest"}"#)
                .unwrap_err()
                .kind,
            ErrorKind::InvalidParams
        );
    }

    #[test]
    fn median_beats_the_mean_on_frames_with_artifacts() {
        jupiter_testkit::reference::beats_the_mean_on_artifacts(|mem, req| {
            vec![(
                "median".into(),
                run(mem, req, &MedianParams::default()).unwrap(),
            )]
        });
    }
}
