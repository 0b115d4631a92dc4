//! A turning planet for the derotation tests: an oblate, banded and
//! spotted globe rendered in orthographic projection at each frame's time,
//! so that features move across the disc as Jupiter's do, with jitter,
//! seeing blur and noise, written as SER with a timestamp trailer.
//!
//! Geometry (the host's `derotate::globe` uses the same): image x right,
//! y down; the pole's position angle `θ` from image up, counter-clockwise
//! as displayed, pole `p = (−sin θ, −cos θ)`; near-side features move along
//! `e = (cos θ, −sin θ)` (reversed when mirrored); at time `t` (seconds
//! from mid-capture) the body longitude seen at a pixel is
//! `atan2(X, Z) − ω t` (prograde).

use std::f64::consts::{PI, TAU};
use std::path::Path;
use std::sync::OnceLock;

use jupiter_kit::conv;
use jupiter_plugin_api::Image;

use crate::rng::Rng;
use crate::ser::{SerColor, SerSpec, SerWriter};

/// Jupiter's System II period (s).
pub const JUPITER_PERIOD_S: f64 = 35_740.6;
/// Jupiter's flattening.
pub const JUPITER_FLATTENING: f64 = 0.0649;

/// A rotating-planet capture.
#[derive(Debug, Clone)]
pub struct RotatingOptions {
    pub width: u32,
    pub height: u32,
    pub frames: usize,
    /// From the first frame to the last (s).
    pub duration_s: f64,
    /// Equatorial radius (px).
    pub radius: f64,
    pub flattening: f64,
    pub pole_angle_deg: f64,
    pub mirrored: bool,
    pub period_s: f64,
    /// False: the globe does not turn (the ceiling: same blur and noise, no rotation).
    pub rotate: bool,
    /// Largest random displacement of the disc (px).
    pub jitter: f32,
    /// Seeing blur sigma range (px), drawn per frame.
    pub blur: (f32, f32),
    /// How the seeing changes over the capture: frame `i`'s sigma is
    /// scaled by `1 + trend · i / (frames − 1)` (0: steady; 1: twice the
    /// blur at the end, so the sharpest frames come early).
    pub seeing_trend: f32,
    /// Photo-electrons at full scale.
    pub full_well: f32,
    pub read_noise: f32,
    /// 8, or 16 (12-bit values).
    pub depth: u32,
    pub seed: u64,
    /// UTC ticks of the first frame (100 ns since 0001-01-01).
    pub start_ticks: i64,
    /// Write the SER timestamp trailer.
    pub timestamps: bool,
}

impl Default for RotatingOptions {
    fn default() -> Self {
        RotatingOptions {
            width: 256,
            height: 256,
            frames: 200,
            duration_s: 360.0,
            radius: 100.0,
            flattening: JUPITER_FLATTENING,
            pole_angle_deg: 20.0,
            mirrored: false,
            period_s: JUPITER_PERIOD_S,
            rotate: true,
            jitter: 4.0,
            blur: (0.8, 2.2),
            seeing_trend: 0.0,
            full_well: 2000.0,
            read_noise: 3.0,
            depth: 8,
            seed: 1,
            // 2024-11-25 21:30:00 UTC
            start_ticks: 638_681_670_000_000_000,
            timestamps: true,
        }
    }
}

/// What was written: the sharp planet at mid-capture (centred, no blur or
/// noise) and each frame's time.
pub struct RotatingCapture {
    pub truth: Image,
    pub timestamps: Vec<i64>,
    /// Seconds from mid-capture.
    pub frame_times_s: Vec<f64>,
}

impl RotatingOptions {
    /// Frame `i`'s time from mid-capture (s).
    pub fn time_of(&self, i: usize) -> f64 {
        let n = self.frames.max(2) - 1;
        -self.duration_s / 2.0 + self.duration_s * i as f64 / n as f64
    }
    fn omega(&self) -> f64 {
        if self.rotate {
            TAU / self.period_s
        } else {
            0.0
        }
    }
}

/// The sharp planet at time `t_s` (from mid-capture) with its disc centred
/// on `centre`, supersampled `ss × ss` per pixel.
pub fn render_rotating(o: &RotatingOptions, t_s: f64, centre: (f64, f64), ss: usize) -> Vec<f32> {
    let (w, h) = (o.width as usize, o.height as usize);
    let (s, c) = o.pole_angle_deg.to_radians().sin_cos();
    let p = (-s, -c);
    let e = if o.mirrored { (-c, s) } else { (c, -s) };
    let (a, b) = (o.radius, o.radius * (1.0 - o.flattening));
    let spin = o.omega() * t_s;
    let tex = texture();
    let mut out = vec![SKY; w * h];
    let reach = a + 2.0;
    let (y_lo, y_hi) = (
        (centre.1 - reach).max(0.0) as usize,
        ((centre.1 + reach) as usize + 1).min(h),
    );
    let (x_lo, x_hi) = (
        (centre.0 - reach).max(0.0) as usize,
        ((centre.0 + reach) as usize + 1).min(w),
    );
    for y in y_lo..y_hi {
        for x in x_lo..x_hi {
            let mut acc = 0.0;
            for sy in 0..ss {
                for sx in 0..ss {
                    let qx = x as f64 + (sx as f64 + 0.5) / ss as f64 - 0.5 - centre.0;
                    let qy = y as f64 + (sy as f64 + 0.5) / ss as f64 - 0.5 - centre.1;
                    let (u, v) = ((qx * e.0 + qy * e.1) / a, (qx * p.0 + qy * p.1) / b);
                    let r2 = u * u + v * v;
                    acc += if r2 >= 1.0 {
                        SKY as f64
                    } else {
                        let z = (1.0 - r2).sqrt();
                        let lon = u.atan2(z) - spin;
                        tex.at(v.asin(), lon) * (0.3 + 0.7 * z.powf(0.6))
                    };
                }
            }
            out[y * w + x] = (acc / (ss * ss) as f64) as f32;
        }
    }
    out
}

const SKY: f32 = 0.02;

/// Writes the capture to `path` (mono SER).
pub fn generate_rotating(path: &Path, o: &RotatingOptions) -> std::io::Result<RotatingCapture> {
    let (w, h) = (o.width as usize, o.height as usize);
    let mid = (w as f64 / 2.0, h as f64 / 2.0);
    let truth = Image::from_vec(o.width, o.height, 1, render_rotating(o, 0.0, mid, 3));
    let max_value: f64 = if o.depth <= 8 { 255.0 } else { 4095.0 };
    let spec = SerSpec::new(
        o.width,
        o.height,
        SerColor::Mono,
        if o.depth <= 8 { 8 } else { 12 },
    );
    let mut out = SerWriter::create(path, &spec, o.frames as u32)?;
    let mut rng = Rng::new(o.seed);
    let mut times = Vec::with_capacity(o.frames);
    for i in 0..o.frames {
        let t = o.time_of(i);
        let j = o.jitter as f64;
        let centre = (mid.0 + rng.range(-j, j), mid.1 + rng.range(-j, j));
        let sharp = render_rotating(o, t, centre, 2);
        let trend = 1.0 + o.seeing_trend * i as f32 / (o.frames.max(2) - 1) as f32;
        let sigma = rng.range(o.blur.0 as f64, o.blur.1 as f64) as f32 * trend;
        let kernel = conv::gaussian_kernel(sigma);
        let mut img = vec![0.0; w * h];
        conv::separable_serial(&sharp, w, h, &kernel, 1, &mut img);
        let samples: Vec<u16> = img
            .iter()
            .map(|&v| {
                let e = v.max(0.0) as f64 * o.full_well as f64;
                let noisy = e + e.sqrt() * rng.normal() + o.read_noise as f64 * rng.normal();
                (noisy / o.full_well as f64 * max_value)
                    .round()
                    .clamp(0.0, max_value) as u16
            })
            .collect();
        out.push(&samples)?;
        times.push(t);
    }
    let timestamps: Vec<i64> = times
        .iter()
        .map(|t| o.start_ticks + ((t + o.duration_s / 2.0) * 1e7).round() as i64)
        .collect();
    out.finish(o.timestamps.then_some(timestamps.as_slice()))?;
    Ok(RotatingCapture {
        truth,
        timestamps,
        frame_times_s: times,
    })
}

/// The planet's albedo on a latitude × longitude map, built once: belts
/// and zones, a large red-spot oval, small ovals and fine turbulent detail
/// down to a few pixels on a 100-px disc, periodic in longitude.
struct Texture {
    w: usize,
    h: usize,
    data: Vec<f32>,
}

impl Texture {
    /// Bilinear lookup at latitude `lat` (−π/2..π/2) and longitude `lon` (any, wraps).
    fn at(&self, lat: f64, lon: f64) -> f64 {
        let fx = lon.rem_euclid(TAU) / TAU * self.w as f64;
        let fy = ((lat + PI / 2.0) / PI * (self.h - 1) as f64).clamp(0.0, (self.h - 1) as f64);
        let (x0, y0) = (
            fx.floor() as usize % self.w,
            (fy.floor() as usize).min(self.h - 2),
        );
        let x1 = (x0 + 1) % self.w;
        let (tx, ty) = (fx - fx.floor(), fy - y0 as f64);
        let v = |x: usize, y: usize| self.data[y * self.w + x] as f64;
        let top = v(x0, y0) * (1.0 - tx) + v(x1, y0) * tx;
        let bot = v(x0, y0 + 1) * (1.0 - tx) + v(x1, y0 + 1) * tx;
        top * (1.0 - ty) + bot * ty
    }
}

fn texture() -> &'static Texture {
    static TEX: OnceLock<Texture> = OnceLock::new();
    TEX.get_or_init(build_texture)
}

fn build_texture() -> Texture {
    let (w, h) = (2048usize, 1024usize);
    let mut rng = Rng::new(0x0A11_7E57_0000_0019);
    // Turbulence: waves in longitude (whole numbers, so periodic) and latitude.
    let waves: Vec<(f64, f64, f64, f64)> = (0..40)
        .map(|k| {
            let n = (4.0 + 150.0 * (k as f64 / 40.0).powi(2)).round();
            let m = rng.range(-60.0, 60.0);
            let amp = 0.05 / (1.0 + k as f64 / 12.0);
            (n, m, rng.range(0.0, TAU), amp)
        })
        .collect();
    // Ovals: (lat, lon, radius in lat, radius in lon, contrast).
    let mut ovals = vec![(-0.38, 1.0, 0.09, 0.2, -0.25)];
    for _ in 0..60 {
        let r = rng.range(0.01, 0.04);
        ovals.push((
            rng.range(-1.2, 1.2),
            rng.range(0.0, TAU),
            r,
            r * rng.range(1.0, 2.0),
            rng.range(-0.2, 0.2),
        ));
    }
    let mut data = vec![0.0f32; w * h];
    for y in 0..h {
        let lat = -PI / 2.0 + PI * y as f64 / (h - 1) as f64;
        let s = lat.sin();
        let bands =
            0.62 + 0.16 * (9.0 * s).cos() + 0.07 * (23.0 * s + 0.7).cos() + 0.03 * (51.0 * s).sin();
        for x in 0..w {
            let lon = TAU * x as f64 / w as f64;
            let mut v = bands;
            // Turbulence strongest at the belts' edges.
            let edge = 0.5 + 0.5 * (9.0 * s).sin().abs();
            for &(n, m, ph, amp) in &waves {
                v += edge * amp * (n * lon + m * lat + ph).sin();
            }
            for &(la, lo, rl, ro, c) in &ovals {
                let dlon = (lon - lo + PI).rem_euclid(TAU) - PI;
                let d2 = ((lat - la) / rl).powi(2) + (dlon * lat.cos() / ro).powi(2);
                if d2 < 9.0 {
                    v += c * (-d2).exp();
                }
            }
            data[y * w + x] = v.clamp(0.05, 1.0) as f32;
        }
    }
    Texture { w, h, data }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> RotatingOptions {
        RotatingOptions {
            width: 128,
            height: 128,
            radius: 50.0,
            ..RotatingOptions::default()
        }
    }

    #[test]
    fn the_texture_wraps_in_longitude() {
        let t = texture();
        for lat in [-1.0, 0.0, 0.4] {
            assert!((t.at(lat, 0.0) - t.at(lat, TAU)).abs() < 1e-9);
            assert!((t.at(lat, -0.001) - t.at(lat, TAU - 0.001)).abs() < 1e-9);
        }
    }

    /// The disc centre after `t` seconds matches the mid-capture image
    /// moved by `a · ω t` along `e`.
    fn moved_by(o: &RotatingOptions, t: f64) -> (f64, f64) {
        let c = (64.0, 64.0);
        let (a, b) = (render_rotating(o, 0.0, c, 2), render_rotating(o, t, c, 2));
        // Search the shift of a central patch (whole pixels, then parabola).
        let ssd = |dx: i64, dy: i64| -> f64 {
            let mut s = 0.0;
            for y in 54..74i64 {
                for x in 54..74i64 {
                    let d = b[((y + dy) * 128 + x + dx) as usize] - a[(y * 128 + x) as usize];
                    s += (d * d) as f64;
                }
            }
            s
        };
        let best = (-6..=6)
            .flat_map(|dy| (-6..=6).map(move |dx| (dx, dy)))
            .min_by(|p, q| ssd(p.0, p.1).total_cmp(&ssd(q.0, q.1)))
            .unwrap();
        let par = |m: f64, z: f64, p: f64| 0.5 * (m - p) / (m - 2.0 * z + p);
        let (dx, dy) = best;
        let z = ssd(dx, dy);
        (
            dx as f64 + par(ssd(dx - 1, dy), z, ssd(dx + 1, dy)),
            dy as f64 + par(ssd(dx, dy - 1), z, ssd(dx, dy + 1)),
        )
    }

    #[test]
    fn features_move_along_e_and_mirroring_reverses_them() {
        let t = 600.0; // 10 minutes: about 5 px on a 50-px disc.
        for (pole, mirrored) in [(0.0, false), (90.0, false), (30.0, true)] {
            let o = RotatingOptions {
                pole_angle_deg: pole,
                mirrored,
                ..small()
            };
            let (dx, dy) = moved_by(&o, t);
            let step = o.radius * (TAU / o.period_s * t).sin();
            let (s, c) = f64::to_radians(pole).sin_cos();
            let e = if mirrored { (-c, s) } else { (c, -s) };
            assert!(
                (dx - step * e.0).abs() < 0.3 && (dy - step * e.1).abs() < 0.3,
                "{pole} {mirrored}: ({dx:.2}, {dy:.2}) vs {:.2} along {e:?}",
                step
            );
        }
    }

    #[test]
    fn the_disc_is_oblate_along_the_pole() {
        let o = RotatingOptions {
            pole_angle_deg: 90.0,
            flattening: 0.1,
            ..small()
        };
        let img = render_rotating(&o, 0.0, (64.0, 64.0), 2);
        let lit = |x: usize, y: usize| img[y * 128 + x] > 0.1;
        // Pole to the left: the disc is narrower across x than across y.
        let across_x = (0..128).filter(|&x| lit(x, 64)).count() as f64;
        let across_y = (0..128).filter(|&y| lit(64, y)).count() as f64;
        assert!(
            (across_x - 90.0).abs() <= 2.0 && (across_y - 100.0).abs() <= 2.0,
            "{across_x} {across_y}"
        );
    }
}
