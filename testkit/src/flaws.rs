//! A flawed sensor for the calibration tests: the same truth capture as
//! [`crate::capture::generate`] makes, rendered through a synthetic flat
//! (vignetting, dust shadows over the middle of the field, a little pixel
//! response non-uniformity: ±15 %) and dark (a gradient glow from one corner and hot pixels),
//! together with the calibration captures that undo it: darks, flats lit
//! by a coloured panel (so that a flat normalised as one image would tint
//! a colour capture), and flat-darks.

use std::path::Path;

use crate::capture::{
    generate_through, sensor_samples, Response, Seeing, SynthCapture, SynthColor, SynthOptions,
};
use crate::rng::Rng;
use crate::ser::{SerColor, SerSpec, SerWriter};

/// The flat-darks' dark signal, relative to the darks' (shorter exposure).
pub const FLAT_DARK_SCALE: f32 = 0.2;

/// The panel light of the flats, per colour (R, G, B; mono takes the mean).
pub const FLAT_LIGHT: [f32; 3] = [0.45, 0.6, 0.3];

/// A sensor's flat and dark, per stored sample (`width × height × planes`).
#[derive(Debug, Clone)]
pub struct Flaws {
    pub width: usize,
    pub height: usize,
    pub planes: usize,
    /// Relative response, 0.85 ..= 1.15.
    pub flat: Vec<f32>,
    /// Dark signal in `[0, 1]` of full scale.
    pub dark: Vec<f32>,
    /// The hot samples planted in `dark`.
    pub hot: Vec<usize>,
}

impl Flaws {
    /// Flaws for frames of `o`'s size and layout, drawn from `seed`.
    pub fn synthetic(o: &SynthOptions, seed: u64) -> Flaws {
        let (w, h) = (o.width as usize, o.height as usize);
        let planes = if o.color == SynthColor::Rgb { 3 } else { 1 };
        let mut rng = Rng::new(seed);
        let (cx, cy) = (w as f32 / 2.0, h as f32 / 2.0);
        let r2max = cx * cx + cy * cy;
        let dust: Vec<(f32, f32, f32)> = (0..4)
            .map(|_| {
                (
                    rng.range_f32(0.3, 0.7) * w as f32,
                    rng.range_f32(0.3, 0.7) * h as f32,
                    rng.range_f32(3.0, 8.0),
                )
            })
            .collect();
        let mut flat = Vec::with_capacity(w * h * planes);
        let mut dark = Vec::with_capacity(w * h * planes);
        for y in 0..h {
            for x in 0..w {
                let (fx, fy) = (x as f32 + 0.5, y as f32 + 0.5);
                let r2 = ((fx - cx).powi(2) + (fy - cy).powi(2)) / r2max;
                let mut f = 1.06 - 0.21 * r2;
                for &(dx, dy, s) in &dust {
                    let d2 = ((fx - dx).powi(2) + (fy - dy).powi(2)) / (s * s);
                    f -= 0.15 * (-d2).exp();
                }
                // Amplifier glow from the top-right corner on a pedestal
                // that rises across the frame.
                let glow = ((fx - w as f32).powi(2) + fy.powi(2)).sqrt() / w as f32;
                let d = 0.02 + 0.08 * fx / w as f32 + 0.12 * (-glow / 0.3).exp();
                for _ in 0..planes {
                    flat.push((f + 0.01 * rng.gauss()).clamp(0.85, 1.15));
                    dark.push(d);
                }
            }
        }
        let count = (w * h * planes / 300).max(3);
        let mut hot: Vec<usize> = Vec::with_capacity(count);
        while hot.len() < count {
            let i = rng.next_u64() as usize % dark.len();
            if !hot.contains(&i) {
                dark[i] += rng.range_f32(0.15, 0.8);
                hot.push(i);
            }
        }
        hot.sort_unstable();
        Flaws {
            width: w,
            height: h,
            planes,
            flat,
            dark,
            hot,
        }
    }

    fn response(&self, flat: bool, dark_scale: f32) -> Response<'_> {
        Response {
            flat: flat.then_some(self.flat.as_slice()),
            dark: Some(&self.dark),
            dark_scale,
        }
    }
}

/// The capture `o` describes (the same frames, shifts and noise draws as
/// [`crate::capture::generate`]), through the flawed sensor.
pub fn generate_flawed(
    path: &Path,
    o: &SynthOptions,
    flaws: &Flaws,
) -> std::io::Result<SynthCapture> {
    generate_through(path, o, &Seeing::default(), &flaws.response(true, 1.0))
}

/// `frames` darks: no light, the capture's dark signal and noise.
pub fn write_darks(
    path: &Path,
    o: &SynthOptions,
    flaws: &Flaws,
    frames: usize,
    seed: u64,
) -> std::io::Result<()> {
    write_uniform(path, o, [0.0; 3], &flaws.response(false, 1.0), frames, seed)
}

/// `frames` flats: the [`FLAT_LIGHT`] panel through the flat, with the
/// flat-darks' dark signal.
pub fn write_flats(
    path: &Path,
    o: &SynthOptions,
    flaws: &Flaws,
    frames: usize,
    seed: u64,
) -> std::io::Result<()> {
    let r = flaws.response(true, FLAT_DARK_SCALE);
    write_uniform(path, o, FLAT_LIGHT, &r, frames, seed)
}

/// `frames` flat-darks: no light, [`FLAT_DARK_SCALE`] of the dark signal.
pub fn write_flat_darks(
    path: &Path,
    o: &SynthOptions,
    flaws: &Flaws,
    frames: usize,
    seed: u64,
) -> std::io::Result<()> {
    let r = flaws.response(false, FLAT_DARK_SCALE);
    write_uniform(path, o, [0.0; 3], &r, frames, seed)
}

/// Frames of uniform `light` through `response`, with the noise and sample
/// format of `o`'s capture.
fn write_uniform(
    path: &Path,
    o: &SynthOptions,
    light: [f32; 3],
    response: &Response,
    frames: usize,
    seed: u64,
) -> std::io::Result<()> {
    let (w, h) = (o.width as usize, o.height as usize);
    let color = match o.color {
        SynthColor::Mono => SerColor::Mono,
        SynthColor::Rgb => SerColor::Rgb,
        SynthColor::Bayer(p) => SerColor::Bayer(p),
    };
    let ch = if o.color == SynthColor::Mono { 1 } else { 3 };
    let img: Vec<f32> = if ch == 1 {
        vec![(light[0] + light[1] + light[2]) / 3.0; w * h]
    } else {
        (0..w * h).flat_map(|_| light).collect()
    };
    let max_value: f32 = if o.depth <= 8 { 255.0 } else { 4095.0 };
    let spec = SerSpec::new(o.width, o.height, color, if o.depth <= 8 { 8 } else { 12 });
    let mut out = SerWriter::create(path, &spec, frames as u32)?;
    let mut rng = Rng::new(seed);
    for _ in 0..frames {
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
    }
    out.finish(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flaws_stay_in_their_ranges_and_plant_the_hot_pixels() {
        let o = SynthOptions {
            width: 80,
            height: 60,
            ..Default::default()
        };
        let f = Flaws::synthetic(&o, 4);
        let (lo, hi) = f
            .flat
            .iter()
            .fold((f32::MAX, f32::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
        assert!(
            (0.85..0.87).contains(&lo) && (1.05..=1.1).contains(&hi),
            "{lo} {hi}"
        );
        assert_eq!(f.hot.len(), 16);
        for &i in &f.hot {
            assert!(f.dark[i] > 0.16, "{}", f.dark[i]);
        }
        let plain = f
            .dark
            .iter()
            .enumerate()
            .filter(|(i, _)| !f.hot.contains(i));
        assert!(plain.map(|(_, d)| *d).fold(0.0f32, f32::max) < 0.23);
    }
}
