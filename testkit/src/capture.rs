//! Synthetic captures with a known truth: a banded planet with moons, or a
//! cratered lunar surface, rendered analytically at exact sub-pixel shifts,
//! blurred by per-frame seeing, with Poisson + read noise, written as SER.
//! Used by `jupiter-host demo` and by the end-to-end tests.

use std::path::Path;

use jupiter_kit::conv;
use jupiter_plugin_api::Image;

pub use crate::rng::Rng;
use crate::ser::{Cfa, SerColor, SerSpec, SerWriter};
pub use jupiter_kit::stats::{fitted_to, psnr_fitted, psnr_interior};

/// What the synthetic target looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scene {
    /// A banded, limb-darkened gas giant with a red spot and two moons on black sky.
    Planet,
    /// A cratered surface filling the frame.
    Lunar,
}

/// Sensor layout of the synthetic capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynthColor {
    Mono,
    Rgb,
    Bayer(Cfa),
}

/// Parameters of a synthetic capture.
#[derive(Debug, Clone)]
pub struct SynthOptions {
    pub width: u32,
    pub height: u32,
    pub frames: usize,
    pub scene: Scene,
    pub color: SynthColor,
    /// 8 or 16 (16-bit data are written as 12-bit values, like most planetary cameras).
    pub depth: u32,
    pub seed: u64,
    /// Largest global shift (pixels) in x and y; frame 0 is never shifted.
    pub jitter: f32,
    /// Seeing blur sigma range (pixels), drawn per frame.
    pub blur: (f32, f32),
    /// Photo-electrons at full scale (sets the Poisson noise).
    pub full_well: f32,
    /// Read noise in electrons.
    pub read_noise: f32,
    /// Fraction of frames carrying a bright artifact (streak, hot pixels, cosmic ray).
    pub artifacts: f32,
    /// Undersampling: each frame is rendered, displaced, blurred (and
    /// distorted) at `bin` times the frame's resolution, then binned
    /// `bin × bin` (shifts, blur and seeing in frame pixels); the truth is
    /// the scene at the fine resolution, `bin` times the frames' size.
    /// 1 = frames rendered at their own resolution.
    pub bin: u32,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            width: 192,
            height: 160,
            frames: 100,
            scene: Scene::Planet,
            color: SynthColor::Mono,
            depth: 8,
            seed: 1,
            jitter: 6.0,
            blur: (0.8, 3.0),
            full_well: 400.0,
            read_noise: 3.0,
            artifacts: 0.0,
            bin: 1,
        }
    }
}

/// The truth and the per-frame parameters of a generated capture.
pub struct SynthCapture {
    /// The scene without seeing or noise, `[0, 1]`, channels as decoded (RGB for Bayer).
    pub truth: Image,
    /// `(dx, dy)` of each frame: its content is displaced by this much.
    pub shifts: Vec<(f32, f32)>,
    /// Blur sigma of each frame.
    pub blur: Vec<f32>,
    /// Frames carrying an artifact.
    pub artifact_frames: Vec<usize>,
    /// Each frame's spatially varying seeing (empty when the capture was
    /// generated without it, see [`Seeing`]).
    pub local: Vec<LocalSeeing>,
}

/// Spatially varying seeing, on top of [`SynthOptions`]: each frame gets a
/// smooth random displacement field (a sum of a few plane waves whose
/// wavelengths lie in `scale`) and a blur whose sigma varies smoothly across
/// the field. The default is off, which leaves captures exactly as
/// [`generate`] makes them (same random sequence, same pixels).
#[derive(Debug, Clone, PartialEq)]
pub struct Seeing {
    /// Range of the per-frame RMS local displacement (pixels, length of the
    /// displacement vector), drawn per frame; `(0, 0)` = no local warp.
    pub warp: (f32, f32),
    /// Range of the wavelengths of the warp and blur variations (pixels).
    pub scale: (f32, f32),
    /// Relative variation of the blur sigma across the field: the local sigma
    /// is the frame's sigma times `1 + blur_variation * m(x, y)`, with a
    /// smooth `m` in `-1..=1`. 0 = uniform blur.
    pub blur_variation: f32,
}

impl Default for Seeing {
    fn default() -> Self {
        Seeing {
            warp: (0.0, 0.0),
            scale: (50.0, 100.0),
            blur_variation: 0.0,
        }
    }
}

impl Seeing {
    /// Typical bad local seeing: 1–3 px local displacements varying over
    /// 50–100 px, blur sigma varying by ±50 % across the field.
    pub fn turbulent() -> Seeing {
        Seeing {
            warp: (1.0, 3.0),
            scale: (50.0, 100.0),
            blur_variation: 0.5,
        }
    }
    /// True when it changes nothing.
    pub fn is_off(&self) -> bool {
        self.warp.1 <= 0.0 && self.blur_variation <= 0.0
    }
}

/// A plane wave `amplitude * cos(kx * x + ky * y + phase)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Wave {
    pub kx: f64,
    pub ky: f64,
    pub phase: f64,
    pub amplitude: f64,
}

impl Wave {
    fn random(rng: &mut Rng, scale: (f32, f32), amplitude: f64) -> Wave {
        let lambda = rng
            .range(scale.0 as f64, scale.1.max(scale.0) as f64)
            .max(1.0);
        let theta = rng.range(0.0, 2.0 * std::f64::consts::PI);
        let k = 2.0 * std::f64::consts::PI / lambda;
        Wave {
            kx: k * theta.cos(),
            ky: k * theta.sin(),
            phase: rng.range(0.0, 2.0 * std::f64::consts::PI),
            amplitude,
        }
    }
    /// The wave's value at `(x, y)`.
    pub fn at(&self, x: f64, y: f64) -> f64 {
        self.amplitude * (self.kx * x + self.ky * y + self.phase).cos()
    }
}

/// Sum of waves over a `w × h` pixel grid, by the separable identity
/// `cos(a + b) = cos a cos b - sin a sin b` (two products per wave and pixel).
fn wave_sum_grid(waves: &[Wave], w: usize, h: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; w * h];
    for wave in waves {
        let (cx, sx): (Vec<f64>, Vec<f64>) = (0..w)
            .map(|x| ((wave.kx * x as f64).cos(), (wave.kx * x as f64).sin()))
            .unzip();
        for y in 0..h {
            let b = wave.ky * y as f64 + wave.phase;
            let (cb, sb) = (b.cos() * wave.amplitude, b.sin() * wave.amplitude);
            let row = &mut out[y * w..(y + 1) * w];
            for x in 0..w {
                row[x] += cx[x] * cb - sx[x] * sb;
            }
        }
    }
    out
}

/// One frame's spatially varying seeing (see [`Seeing`]).
///
/// The frame's pixel `(x, y)` shows the scene at
/// `(x, y) - global shift - displacement(x, y)`, blurred by a gaussian of
/// sigma `blur_sigma(x, y)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSeeing {
    /// Waves of the x displacement.
    pub waves_x: Vec<Wave>,
    /// Waves of the y displacement.
    pub waves_y: Vec<Wave>,
    /// Waves of the blur modulation (their sum stays within `-1..=1`).
    pub waves_blur: Vec<Wave>,
    /// The frame's blur sigma.
    pub sigma: f32,
    /// Relative blur variation (see [`Seeing::blur_variation`]).
    pub variation: f32,
}

/// Waves per displacement component.
const WARP_WAVES: usize = 4;

impl LocalSeeing {
    fn random(rng: &mut Rng, s: &Seeing, sigma: f32) -> LocalSeeing {
        // RMS of |d| = a: each component has RMS a / sqrt(2); a sum of n
        // waves of amplitude b has RMS b * sqrt(n / 2).
        let a = if s.warp.1 > 0.0 {
            rng.range(s.warp.0 as f64, s.warp.1.max(s.warp.0) as f64)
        } else {
            0.0
        };
        let b = a / (WARP_WAVES as f64).sqrt();
        let waves_x = (0..WARP_WAVES)
            .map(|_| Wave::random(rng, s.scale, b))
            .collect();
        let waves_y = (0..WARP_WAVES)
            .map(|_| Wave::random(rng, s.scale, b))
            .collect();
        let waves_blur = (0..2).map(|_| Wave::random(rng, s.scale, 0.5)).collect();
        LocalSeeing {
            waves_x,
            waves_y,
            waves_blur,
            sigma,
            variation: s.blur_variation,
        }
    }
    /// The local displacement (on top of the frame's global shift) at `(x, y)`.
    pub fn displacement(&self, x: f64, y: f64) -> (f64, f64) {
        (
            self.waves_x.iter().map(|w| w.at(x, y)).sum(),
            self.waves_y.iter().map(|w| w.at(x, y)).sum(),
        )
    }
    /// The local blur sigma at `(x, y)`.
    pub fn blur_sigma(&self, x: f64, y: f64) -> f32 {
        let m: f64 = self.waves_blur.iter().map(|w| w.at(x, y)).sum();
        (self.sigma * (1.0 + self.variation * m as f32)).max(0.2)
    }
}

/// The scene box-filtered over one pixel, sampled every half pixel over the
/// frame plus a margin: sample `(u, v)` sits at `(u / 2 - margin, v / 2 - margin)`.
/// Frames under a displacement field are resampled from it (bicubic), which
/// is far cheaper than evaluating the scene per frame.
struct HalfPixelScene {
    data: Vec<f32>,
    width: usize,
    height: usize,
    channels: usize,
    margin: f64,
}

impl HalfPixelScene {
    fn new(scene: Scene, w: usize, h: usize, channels: usize, margin: usize) -> HalfPixelScene {
        // Quarter-pixel boxes (2×2 supersampled), then pairs of them make
        // the one-pixel box centred on each half-pixel position.
        let (qw, qh) = (2 * (w + 2 * margin) + 2, 2 * (h + 2 * margin) + 2);
        let m = margin as f64;
        let mut quarter = vec![[0.0f64; 3]; qw * qh];
        for v in 0..qh {
            for u in 0..qw {
                let (cx, cy) = (u as f64 * 0.5 - m - 0.25, v as f64 * 0.5 - m - 0.25);
                let mut acc = [0.0f64; 3];
                for (sx, sy) in [
                    (-0.125, -0.125),
                    (0.125, -0.125),
                    (-0.125, 0.125),
                    (0.125, 0.125),
                ] {
                    let c = scene_rgb(scene, w as f64, h as f64, cx + sx, cy + sy);
                    for k in 0..3 {
                        acc[k] += c[k] * 0.25;
                    }
                }
                quarter[v * qw + u] = acc;
            }
        }
        let (bw, bh) = (qw - 1, qh - 1);
        let mut data = vec![0.0f32; bw * bh * channels];
        for v in 0..bh {
            for u in 0..bw {
                let mut acc = [0.0f64; 3];
                for (du, dv) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                    let q = quarter[(v + dv) * qw + u + du];
                    for k in 0..3 {
                        acc[k] += q[k] * 0.25;
                    }
                }
                let o = (v * bw + u) * channels;
                if channels == 1 {
                    data[o] = ((acc[0] + acc[1] + acc[2]) / 3.0) as f32;
                } else {
                    for k in 0..3 {
                        data[o + k] = acc[k] as f32;
                    }
                }
            }
        }
        HalfPixelScene {
            data,
            width: bw,
            height: bh,
            channels,
            margin: m,
        }
    }

    /// Renders a frame whose pixel `(x, y)` shows the scene at
    /// `(x - dx - fx(x, y), y - dy - fy(x, y))`.
    fn render(&self, w: usize, h: usize, dx: f64, dy: f64, fx: &[f64], fy: &[f64]) -> Vec<f32> {
        let ch = self.channels;
        let win = jupiter_kit::warp::RowWindow::whole(&self.data, self.width, self.height, ch);
        let mut out = vec![0.0f32; w * h * ch];
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                let (sx, sy) = (x as f64 - dx - fx[i], y as f64 - dy - fy[i]);
                let (u, v) = (
                    ((sx + self.margin) * 2.0) as f32,
                    ((sy + self.margin) * 2.0) as f32,
                );
                for c in 0..ch {
                    out[i * ch + c] = win.sample(u, v, c, jupiter_kit::warp::Interp::Bicubic);
                }
            }
        }
        out
    }
}

/// Blurs each channel of `img` with a gaussian whose sigma varies per pixel
/// (`sigma[y * w + x]`): the image is blurred at a few sigmas spanning the
/// map's range and each pixel interpolates linearly between the two nearest.
fn varying_blur(img: &[f32], w: usize, h: usize, ch: usize, sigma: &[f32]) -> Vec<f32> {
    let lo = sigma.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = sigma.iter().copied().fold(0.0f32, f32::max);
    let levels = if hi - lo < 0.05 { 1 } else { 5 };
    let sig_of = |k: usize| {
        if levels == 1 {
            (lo + hi) * 0.5
        } else {
            lo + (hi - lo) * k as f32 / (levels - 1) as f32
        }
    };
    let blurred: Vec<Vec<f32>> = (0..levels)
        .map(|k| {
            let kernel = conv::gaussian_kernel(sig_of(k));
            conv::per_channel(img, ch, |p| {
                let mut out = vec![0.0; p.len()];
                conv::separable_serial(p, w, h, &kernel, 1, &mut out);
                Ok(out)
            })
            .expect("blur cannot fail")
        })
        .collect();
    if levels == 1 {
        return blurred.into_iter().next().unwrap_or_default();
    }
    let mut out = vec![0.0f32; img.len()];
    for (i, s) in sigma.iter().enumerate() {
        let t = ((s - lo) / (hi - lo) * (levels - 1) as f32).clamp(0.0, (levels - 1) as f32);
        let k = (t.floor() as usize).min(levels - 2);
        let f = t - k as f32;
        for c in 0..ch {
            let j = i * ch + c;
            out[j] = blurred[k][j] * (1.0 - f) + blurred[k + 1][j] * f;
        }
    }
    out
}

fn smoothstep(e0: f64, e1: f64, x: f64) -> f64 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// The scene's RGB radiance at the real position `(x, y)` of a `w × h` frame.
pub fn scene_rgb(scene: Scene, w: f64, h: f64, x: f64, y: f64) -> [f64; 3] {
    match scene {
        Scene::Planet => {
            let (cx, cy) = (w * 0.5, h * 0.5);
            let r = 0.36 * w.min(h);
            let (u, v) = ((x - cx) / r, (y - cy) / (r * 0.94));
            let d = (u * u + v * v).sqrt();
            let mut rgb = [0.0; 3];
            // Moons: small bright discs off the limb.
            for (mx, my, mr, a) in [(0.12, 0.3, 0.022, 0.7), (0.9, 0.62, 0.016, 0.55)] {
                let dm = ((x - mx * w).powi(2) + (y - my * h).powi(2)).sqrt() / w.min(h);
                let k = a * (1.0 - smoothstep(mr * 0.7, mr, dm));
                rgb.iter_mut().for_each(|c| *c += k);
            }
            if d >= 1.02 {
                return rgb;
            }
            let edge = 1.0 - smoothstep(0.985, 1.0, d);
            let limb = (1.0 - d.min(1.0).powi(2)).max(0.0).powf(0.25);
            let lat = v;
            let bands = 0.72
                + 0.16 * (lat * 9.0).cos()
                + 0.08 * (lat * 23.0 + 0.6).sin()
                + 0.04 * (lat * 47.0).cos();
            // Festoons and fine structure along the belts.
            let fine = 0.05 * ((u * 31.0 + 3.0 * (lat * 17.0).sin()).sin() * (lat * 40.0).cos())
                + 0.03 * ((u * 57.0 - lat * 13.0).sin() * (lat * 71.0 + u * 5.0).sin());
            let spot = (-(((u - 0.3) / 0.16).powi(2) + ((v - 0.35) / 0.08).powi(2))).exp();
            let base = (bands + fine) * limb * edge;
            let tint = [
                1.0,
                0.88 - 0.1 * (lat * 9.0).cos().max(0.0),
                0.70 - 0.12 * (lat * 9.0).cos().max(0.0),
            ];
            for c in 0..3 {
                let spot_col = [0.25, -0.15, -0.25][c];
                rgb[c] += 0.85 * (base * tint[c] + spot * spot_col * limb * edge).max(0.0);
            }
            rgb
        }
        Scene::Lunar => {
            let mut v = 0.45 + 0.05 * (x * 0.05).sin() * (y * 0.037).cos();
            // Deterministic craters on a jittered grid.
            let cell = 24.0;
            let (gx, gy) = ((x / cell).floor(), (y / cell).floor());
            for j in -1..=1 {
                for i in -1..=1 {
                    let (ci, cj) = (gx + i as f64, gy + j as f64);
                    let mut rng =
                        Rng::new(((ci as i64 * 73856093) ^ (cj as i64 * 19349663)) as u64);
                    let ccx = (ci + rng.range(0.2, 0.8)) * cell;
                    let ccy = (cj + rng.range(0.2, 0.8)) * cell;
                    let rad = rng.range(2.5, 10.0);
                    let d = ((x - ccx).powi(2) + (y - ccy).powi(2)).sqrt() / rad;
                    // Dark floor, bright rim lit from the left.
                    let rim = (-(d - 1.0).powi(2) * 18.0).exp() * (0.25 + 0.2 * ((x - ccx) / rad));
                    v += rim - 0.18 * (1.0 - smoothstep(0.7, 0.95, d));
                }
            }
            let v = v.clamp(0.02, 1.0);
            [v, v * 0.97, v * 0.93]
        }
    }
}

/// Renders the scene with its content displaced by `(dx, dy)` (2×2 supersampled).
pub fn render(scene: Scene, w: usize, h: usize, channels: usize, dx: f64, dy: f64) -> Vec<f32> {
    let mut out = vec![0.0f32; w * h * channels];
    for y in 0..h {
        for x in 0..w {
            let mut acc = [0.0f64; 3];
            for (sx, sy) in [(-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)] {
                let c = scene_rgb(
                    scene,
                    w as f64,
                    h as f64,
                    x as f64 + sx - dx,
                    y as f64 + sy - dy,
                );
                for k in 0..3 {
                    acc[k] += c[k] * 0.25;
                }
            }
            let o = (y * w + x) * channels;
            if channels == 1 {
                out[o] = ((acc[0] + acc[1] + acc[2]) / 3.0) as f32;
            } else {
                for k in 0..3 {
                    out[o + k] = acc[k] as f32;
                }
            }
        }
    }
    out
}

/// Adds one bright artifact: a satellite streak, hot pixels, or a cosmic-ray hit.
fn add_artifact(frame: &mut [f32], w: usize, h: usize, ch: usize, rng: &mut Rng) {
    match rng.next_u64() % 3 {
        0 => {
            let (x0, y0) = (rng.range(0.0, w as f64), 0.0);
            let slope = rng.range(-0.8, 0.8);
            for y in 0..h {
                let x = (x0 + slope * (y as f64 - y0)) as isize;
                for dx in -1..=1 {
                    let xx = x + dx;
                    if xx >= 0 && (xx as usize) < w {
                        for c in 0..ch {
                            frame[(y * w + xx as usize) * ch + c] = 1.0;
                        }
                    }
                }
            }
        }
        1 => {
            for _ in 0..(w * h / 200).max(5) {
                let (x, y) = (rng.next_u64() as usize % w, rng.next_u64() as usize % h);
                for c in 0..ch {
                    frame[(y * w + x) * ch + c] = 1.0;
                }
            }
        }
        _ => {
            let (cx, cy) = (rng.range(0.0, w as f64), rng.range(0.0, h as f64));
            for y in 0..h {
                for x in 0..w {
                    if (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2) < 9.0 {
                        for c in 0..ch {
                            frame[(y * w + x) * ch + c] = 1.0;
                        }
                    }
                }
            }
        }
    }
}

/// `b × b` binning (the mean) of an image `b` times `(w, h)`.
fn bin_down(img: Vec<f32>, (w, h, ch): (usize, usize, usize), b: usize) -> Vec<f32> {
    if b == 1 {
        return img;
    }
    let fw = w * b;
    let mut out = vec![0.0f32; w * h * ch];
    for y in 0..h * b {
        for x in 0..fw {
            for c in 0..ch {
                out[((y / b) * w + x / b) * ch + c] += img[(y * fw + x) * ch + c];
            }
        }
    }
    let k = 1.0 / (b * b) as f32;
    out.iter_mut().for_each(|v| *v *= k);
    out
}

/// Generates a capture at `path` and returns its truth.
pub fn generate(path: &Path, o: &SynthOptions) -> std::io::Result<SynthCapture> {
    generate_with_seeing(path, o, &Seeing::default())
}

/// Photon and read noise on an image in [0, 1] (`full_well` electrons at
/// 1), then quantisation to `max_value`: the stored samples of one frame
/// (one per pixel for a Bayer mosaic, `ch` otherwise).
pub(crate) fn sensor_samples(
    img: &[f32],
    (w, h, ch): (usize, usize, usize),
    o: &SynthOptions,
    planes: usize,
    max_value: f32,
    rng: &mut Rng,
    response: &Response,
) -> Vec<u16> {
    let mut samples: Vec<u16> = Vec::with_capacity(w * h * planes);
    for y in 0..h {
        for x in 0..w {
            let px = &img[(y * w + x) * ch..(y * w + x + 1) * ch];
            let values: Vec<f32> = match o.color {
                SynthColor::Bayer(p) => vec![px[p.color_at(x, y)]],
                _ => px.to_vec(),
            };
            for v in values {
                let v = response.at(samples.len(), v);
                let e = v.max(0.0) as f64 * o.full_well as f64;
                let noisy = e + e.sqrt() * rng.normal() + o.read_noise as f64 * rng.normal();
                let s = (noisy / o.full_well as f64 * max_value as f64)
                    .round()
                    .clamp(0.0, max_value as f64);
                samples.push(s as u16);
            }
        }
    }
    samples
}

/// How the sensor turns light into signal, per stored sample: `light ×
/// flat + dark × dark_scale` (a perfect sensor by default; see
/// [`crate::flaws`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Response<'a> {
    pub flat: Option<&'a [f32]>,
    pub dark: Option<&'a [f32]>,
    pub dark_scale: f32,
}

impl Response<'_> {
    fn at(&self, i: usize, v: f32) -> f32 {
        let lit = self.flat.map_or(v, |f| v * f[i]);
        lit + self.dark.map_or(0.0, |d| d[i] * self.dark_scale)
    }
}

/// Like [`generate`], with spatially varying seeing on top (see [`Seeing`]).
/// The global shifts, blur sigmas, artifacts and noise come from the same
/// random sequence as without it, so `Seeing::default()` gives exactly the
/// capture [`generate`] makes; the local seeing draws from its own sequence.
pub fn generate_with_seeing(
    path: &Path,
    o: &SynthOptions,
    seeing: &Seeing,
) -> std::io::Result<SynthCapture> {
    generate_through(path, o, seeing, &Response::default())
}

/// [`generate_with_seeing`] through a sensor `response` (flat and dark):
/// the same frames, shifts and noise draws as a perfect sensor gives.
pub(crate) fn generate_through(
    path: &Path,
    o: &SynthOptions,
    seeing: &Seeing,
    response: &Response,
) -> std::io::Result<SynthCapture> {
    let (cw, chh) = (o.width as usize, o.height as usize);
    let ch = if o.color == SynthColor::Mono { 1 } else { 3 };
    let mut rng = Rng::new(o.seed);
    // Frames are made at the fine resolution and binned to (cw, chh).
    let b = o.bin.max(1) as usize;
    let (w, h) = (cw * b, chh * b);
    let bf = b as f32;
    let seeing = &Seeing {
        warp: (seeing.warp.0 * bf, seeing.warp.1 * bf),
        scale: (seeing.scale.0 * bf, seeing.scale.1 * bf),
        blur_variation: seeing.blur_variation,
    };
    let truth = Image::from_vec(
        w as u32,
        h as u32,
        ch as u32,
        render(o.scene, w, h, ch, 0.0, 0.0),
    );
    let color = match o.color {
        SynthColor::Mono => SerColor::Mono,
        SynthColor::Rgb => SerColor::Rgb,
        SynthColor::Bayer(p) => SerColor::Bayer(p),
    };
    let max_value: f32 = if o.depth <= 8 { 255.0 } else { 4095.0 };
    let spec = SerSpec::new(o.width, o.height, color, if o.depth <= 8 { 8 } else { 12 });
    let (mut shifts, mut blurs, mut artifact_frames) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = SerWriter::create(path, &spec, o.frames as u32)?;
    let local_on = !seeing.is_off();
    let mut local = Vec::new();
    let mut seeing_rng = Rng::new(o.seed ^ 0x5EE1_4600_D15C_0000);
    let half_pixel = local_on.then(|| {
        let margin = (o.jitter.abs() * bf + 3.0 * seeing.warp.1.max(0.0)).ceil() as usize + 4;
        HalfPixelScene::new(o.scene, w, h, ch, margin)
    });
    for i in 0..o.frames {
        let (dx, dy) = if i == 0 {
            (0.0, 0.0)
        } else {
            (
                rng.range(-o.jitter as f64, o.jitter as f64) as f32,
                rng.range(-o.jitter as f64, o.jitter as f64) as f32,
            )
        };
        let sigma = rng.range(o.blur.0 as f64, o.blur.1 as f64) as f32;
        let (fdx, fdy, fsigma) = (dx * bf, dy * bf, sigma * bf);
        let img = if let Some(hp) = &half_pixel {
            let ls = LocalSeeing::random(&mut seeing_rng, seeing, fsigma);
            let fx = wave_sum_grid(&ls.waves_x, w, h);
            let fy = wave_sum_grid(&ls.waves_y, w, h);
            let img = hp.render(w, h, fdx as f64, fdy as f64, &fx, &fy);
            let m = wave_sum_grid(&ls.waves_blur, w, h);
            let sigmas: Vec<f32> = m
                .iter()
                .map(|m| (fsigma * (1.0 + ls.variation * *m as f32)).max(0.2))
                .collect();
            local.push(ls);
            varying_blur(&img, w, h, ch, &sigmas)
        } else {
            let img = render(o.scene, w, h, ch, fdx as f64, fdy as f64);
            let kernel = conv::gaussian_kernel(fsigma);
            conv::per_channel(&img, ch, |p| {
                let mut out = vec![0.0; p.len()];
                conv::separable_serial(p, w, h, &kernel, 1, &mut out);
                Ok(out)
            })
            .expect("blur cannot fail")
        };
        let (w, h) = (cw, chh);
        let mut img = bin_down(img, (w, h, ch), b);
        if (rng.uniform() as f32) < o.artifacts {
            add_artifact(&mut img, w, h, ch, &mut rng);
            artifact_frames.push(i);
        }
        let samples = sensor_samples(
            &img,
            (w, h, ch),
            o,
            color.planes(),
            max_value,
            &mut rng,
            response,
        );
        out.push(&samples)?;
        shifts.push((dx, dy));
        blurs.push(sigma);
    }
    let timestamps: Vec<i64> = (0..o.frames as i64)
        .map(|i| 638_000_000_000_000_000 + i * 100_000)
        .collect();
    out.finish(Some(&timestamps))?;
    Ok(SynthCapture {
        truth,
        shifts,
        blur: blurs,
        artifact_frames,
        local,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_roughly_normal() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        assert_eq!(a.next_u64(), b.next_u64());
        let n = 20000;
        let v: Vec<f64> = (0..n).map(|_| a.normal()).collect();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }

    #[test]
    fn half_pixel_scene_matches_the_analytic_render() {
        let (w, h) = (64, 48);
        for scene in [Scene::Planet, Scene::Lunar] {
            let hp = HalfPixelScene::new(scene, w, h, 1, 6);
            for (dx, dy) in [(0.0, 0.0), (1.5, -2.25), (-3.3, 0.7)] {
                let (fx, fy) = (vec![0.4; w * h], vec![-0.3; w * h]);
                let a = hp.render(w, h, dx, dy, &fx, &fy);
                let b = render(scene, w, h, 1, dx + 0.4, dy - 0.3);
                let rms = (a
                    .iter()
                    .zip(&b)
                    .map(|(p, q)| ((p - q) as f64).powi(2))
                    .sum::<f64>()
                    / a.len() as f64)
                    .sqrt();
                assert!(rms < 0.012, "{scene:?} ({dx},{dy}): rms {rms}");
            }
        }
    }

    #[test]
    fn local_seeing_has_the_asked_amplitude_and_smoothness() {
        let s = Seeing::turbulent();
        let mut rng = Rng::new(3);
        let (mut sq, mut n, mut grad) = (0.0f64, 0.0f64, 0.0f64);
        for _ in 0..50 {
            let ls = LocalSeeing::random(&mut rng, &s, 1.5);
            for y in (0..200).step_by(10) {
                for x in (0..200).step_by(10) {
                    let (dx, dy) = ls.displacement(x as f64, y as f64);
                    let (ex, _) = ls.displacement(x as f64 + 1.0, y as f64);
                    sq += dx * dx + dy * dy;
                    grad = grad.max((ex - dx).abs());
                    n += 1.0;
                    let b = ls.blur_sigma(x as f64, y as f64);
                    assert!((0.74..=2.26).contains(&b), "{b}");
                }
            }
        }
        let rms = (sq / n).sqrt();
        assert!((1.6..2.4).contains(&rms), "rms displacement {rms}");
        // Smooth: well under a pixel of change per pixel (3 px over 50–100 px wavelengths).
        assert!(grad < 0.6, "max gradient {grad}");
    }

    #[test]
    fn seeing_off_leaves_the_capture_unchanged_and_on_keeps_the_global_draws() {
        let dir = std::env::temp_dir().join(format!("jupiter-synth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let o = SynthOptions {
            width: 48,
            height: 40,
            frames: 4,
            scene: Scene::Lunar,
            ..Default::default()
        };
        let a = generate(&dir.join("a.ser"), &o).unwrap();
        let b = generate_with_seeing(&dir.join("b.ser"), &o, &Seeing::default()).unwrap();
        let c = generate_with_seeing(&dir.join("c.ser"), &o, &Seeing::turbulent()).unwrap();
        assert_eq!(
            std::fs::read(dir.join("a.ser")).unwrap(),
            std::fs::read(dir.join("b.ser")).unwrap()
        );
        assert!(a.local.is_empty() && b.local.is_empty() && c.local.len() == 4);
        assert_eq!(a.shifts, c.shifts);
        assert_eq!(a.blur, c.blur);
        assert_ne!(
            std::fs::read(dir.join("a.ser")).unwrap(),
            std::fs::read(dir.join("c.ser")).unwrap()
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn varying_blur_interpolates_between_uniform_blurs() {
        let (w, h) = (40, 30);
        let img: Vec<f32> = (0..w * h)
            .map(|i| {
                if (i % w / 5 + i / w / 5) % 2 == 0 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        let uniform = varying_blur(&img, w, h, 1, &vec![1.3; w * h]);
        let kernel = conv::gaussian_kernel(1.3);
        let mut want = vec![0.0; w * h];
        conv::separable_serial(&img, w, h, &kernel, 1, &mut want);
        assert!(uniform.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-6));
        // Left half sigma 0.8, right half 2.0: each half matches its own blur away from the split.
        let sig: Vec<f32> = (0..w * h)
            .map(|i| if i % w < w / 2 { 0.8 } else { 2.0 })
            .collect();
        let v = varying_blur(&img, w, h, 1, &sig);
        for (s, x) in [(0.8, 5), (2.0, 34)] {
            let mut want = vec![0.0; w * h];
            conv::separable_serial(&img, w, h, &conv::gaussian_kernel(s), 1, &mut want);
            for y in 0..h {
                assert!((v[y * w + x] - want[y * w + x]).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn shifted_render_moves_the_content() {
        let a = render(Scene::Planet, 64, 48, 1, 0.0, 0.0);
        let b = render(Scene::Planet, 64, 48, 1, 3.0, 0.0);
        // b(x + 3, y) == a(x, y)
        for y in 0..48 {
            for x in 0..60 {
                assert!((b[y * 64 + x + 3] - a[y * 64 + x]).abs() < 1e-5);
            }
        }
    }
}
