//! Synthetic captures with a known truth, for stacker tests and benchmarks:
//! a smooth banded planet disc, shifted sub-pixel per frame, gaussian noise,
//! and on a fraction of the frames bright artifacts (a satellite streak, hot
//! pixels, a cosmic-ray blob). Deterministic for a given seed.

use jupiter_plugin_api::FrameWarp;

pub use crate::rng::Rng;

/// The noiseless scene at real position `(x, y)` of a `w × h` image: a dark
/// sky (0.05) and a limb-darkened disc with soft cloud bands, smooth enough
/// that bicubic resampling reproduces it closely.
/// A `w × h` image whose pixel `(x, y)` is `f(x, y)`, row by row: the
/// synthetic test planes of unit tests.
pub fn image_from(w: usize, h: usize, f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    (0..w * h)
        .map(|i| f((i % w) as f32, (i / w) as f32))
        .collect()
}

pub fn truth_at(x: f32, y: f32, w: usize, h: usize) -> f32 {
    let (cx, cy) = (w as f32 * 0.5, h as f32 * 0.5);
    let radius = w.min(h) as f32 * 0.38;
    let r = ((x - cx).powi(2) + (y - cy).powi(2)).sqrt() / radius;
    // Smooth limb over about two pixels.
    let inside = 1.0 / (1.0 + ((r - 1.0) * radius * 0.6).exp());
    let limb = (1.0 - r * r).max(0.0).sqrt().powf(0.4);
    let bands =
        0.5 + 0.12 * ((y - cy) * 0.35).sin() + 0.05 * ((x - cx) * 0.11 + (y - cy) * 0.05).cos();
    0.05 + inside * limb * bands
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct CaptureSpec {
    pub width: usize,
    pub height: usize,
    /// Mono (1) or RGB (3, same scene in each channel with its own noise).
    pub channels: usize,
    pub frames: usize,
    /// Standard deviation of the gaussian noise.
    pub noise: f32,
    /// Frame shifts are uniform in `±max_shift` pixels on each axis.
    pub max_shift: f32,
    /// Fraction of frames carrying artifacts (rounded to a frame count).
    pub artifact_fraction: f32,
    pub seed: u64,
}

impl Default for CaptureSpec {
    fn default() -> Self {
        CaptureSpec {
            width: 64,
            height: 64,
            channels: 1,
            frames: 40,
            noise: 0.02,
            max_shift: 1.5,
            artifact_fraction: 0.1,
            seed: 1,
        }
    }
}

/// A generated capture: the truth (reference frame), the frames, and the
/// warps that align each frame onto the truth.
#[derive(Debug, Clone)]
pub struct Capture {
    pub spec: CaptureSpec,
    /// `width × height × channels` noiseless reference.
    pub truth: Vec<f32>,
    pub frames: Vec<Vec<f32>>,
    pub warps: Vec<FrameWarp>,
    /// Indices of the frames that carry artifacts.
    pub artifact_frames: Vec<usize>,
}

/// Generates a capture. Frame `i` is the truth displaced by its warp's
/// `(dx, dy)` (`frame(x + dx, y + dy) = truth(x, y)`) plus noise, clamped to
/// `[0, 1]`; artifact frames add a 2-pixel-wide satellite streak, 0.5 % hot
/// pixels and a cosmic-ray blob, all near saturation.
pub fn capture(spec: &CaptureSpec) -> Capture {
    let (w, h, ch) = (spec.width, spec.height, spec.channels.max(1));
    let mut rng = Rng::new(spec.seed);
    let truth_plane: Vec<f32> = (0..w * h)
        .map(|i| truth_at((i % w) as f32, (i / w) as f32, w, h))
        .collect();
    let truth = truth_plane
        .iter()
        .flat_map(|&v| std::iter::repeat_n(v, ch))
        .collect();
    let n_art = ((spec.frames as f32 * spec.artifact_fraction).round() as usize).min(spec.frames);
    let artifact_frames: Vec<usize> = (0..n_art).map(|k| k * spec.frames / n_art.max(1)).collect();
    let mut frames = Vec::with_capacity(spec.frames);
    let mut warps = Vec::with_capacity(spec.frames);
    for i in 0..spec.frames {
        let (dx, dy) = (
            rng.range_f32(-spec.max_shift, spec.max_shift),
            rng.range_f32(-spec.max_shift, spec.max_shift),
        );
        let mut f = vec![0.0f32; w * h * ch];
        for y in 0..h {
            for x in 0..w {
                let t = truth_at(x as f32 - dx, y as f32 - dy, w, h);
                for c in 0..ch {
                    f[(y * w + x) * ch + c] = t + spec.noise * rng.gauss();
                }
            }
        }
        if artifact_frames.contains(&i) {
            add_artifacts(&mut f, w, h, ch, &mut rng);
        }
        f.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        frames.push(f);
        warps.push(FrameWarp::shift(dx, dy));
    }
    Capture {
        spec: spec.clone(),
        truth,
        frames,
        warps,
        artifact_frames,
    }
}

fn add_artifacts(f: &mut [f32], w: usize, h: usize, ch: usize, rng: &mut Rng) {
    let set = |f: &mut [f32], x: usize, y: usize, v: f32| {
        for c in 0..ch {
            let s = &mut f[(y * w + x) * ch + c];
            *s = s.max(v);
        }
    };
    // Satellite streak: a line across the frame, about two pixels wide.
    let (x0, y0) = (rng.range_f32(0.0, w as f32), rng.range_f32(0.0, h as f32));
    let angle = rng.range_f32(0.0, std::f32::consts::PI);
    let (nx, ny) = (-angle.sin(), angle.cos());
    for y in 0..h {
        for x in 0..w {
            let d = ((x as f32 - x0) * nx + (y as f32 - y0) * ny).abs();
            if d < 1.0 {
                set(f, x, y, 0.95);
            }
        }
    }
    // Hot pixels.
    for _ in 0..(w * h / 200).max(1) {
        let (x, y) = (
            (rng.uniform_f32() * w as f32) as usize,
            (rng.uniform_f32() * h as f32) as usize,
        );
        set(f, x.min(w - 1), y.min(h - 1), 1.0);
    }
    // Cosmic-ray blob: a bright gaussian spot of radius ~2.5 px.
    let (bx, by) = (rng.range_f32(0.0, w as f32), rng.range_f32(0.0, h as f32));
    for y in 0..h {
        for x in 0..w {
            let r2 = (x as f32 - bx).powi(2) + (y as f32 - by).powi(2);
            if r2 < 36.0 {
                for c in 0..ch {
                    f[(y * w + x) * ch + c] += 0.9 * (-r2 / 6.0).exp();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_has_the_requested_shape_and_artifact_share() {
        let spec = CaptureSpec {
            width: 32,
            height: 24,
            channels: 3,
            frames: 30,
            ..Default::default()
        };
        let c = capture(&spec);
        assert_eq!(c.frames.len(), 30);
        assert_eq!(c.warps.len(), 30);
        assert_eq!(c.truth.len(), 32 * 24 * 3);
        assert!(c
            .frames
            .iter()
            .all(|f| f.len() == 32 * 24 * 3 && f.iter().all(|v| (0.0..=1.0).contains(v))));
        assert_eq!(c.artifact_frames, vec![0, 10, 20]);
        // Same seed, same capture.
        assert_eq!(capture(&spec).frames, c.frames);
    }

    #[test]
    fn gauss_has_unit_variance() {
        let mut r = Rng::new(7);
        let v: Vec<f64> = (0..20000).map(|_| r.gauss() as f64).collect();
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(
            m.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "mean {m}, variance {var}"
        );
    }
}
