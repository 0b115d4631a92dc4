//! Scoring an output against the truth: registration, gain/offset fit, PSNR.

use super::*;

pub(crate) fn read_image(path: &Path) -> Result<Image, String> {
    use tiff::decoder::{Decoder, DecodingResult};
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut dec = Decoder::new(std::io::BufReader::new(
        File::open(path).map_err(|e| err(&e))?,
    ))
    .map_err(|e| err(&e))?;
    let (w, h) = dec.dimensions().map_err(|e| err(&e))?;
    let channels = match dec.colortype().map_err(|e| err(&e))? {
        tiff::ColorType::Gray(_) => 1,
        tiff::ColorType::RGB(_) => 3,
        tiff::ColorType::RGBA(_) => 4,
        other => return Err(err(&format!("unsupported colour type {other:?}"))),
    };
    let data: Vec<f32> = match dec.read_image().map_err(|e| err(&e))? {
        DecodingResult::U8(v) => v.iter().map(|&x| x as f32 / 255.0).collect(),
        DecodingResult::U16(v) => v.iter().map(|&x| x as f32 / 65535.0).collect(),
        DecodingResult::F32(v) => v,
        _ => return Err(err(&"unsupported sample type")),
    };
    let data = if channels == 4 {
        data.chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect()
    } else {
        data
    };
    Ok(Image::from_vec(w, h, channels.min(3), data))
}

/// The PSNR of the image at `out` against `truth`, for a table cell.
pub(crate) fn psnr_text(out: &Path, truth: &Image) -> String {
    read_image(out)
        .and_then(|img| psnr_vs_truth(&img, truth))
        .map_or_else(|e| format!("n/a ({e})"), |p| format!("{p:.2}"))
}

/// `out(x, y) = plane(x + dx, y + dy)` by a phase ramp on the spectrum of
/// the plane mirrored to `2w × 2h` (so that its periodic extension has no
/// edges): exact for detail below the sampling limit. The scorer must not
/// soften what it scores: a cubic resampling of the output by its
/// registration shift took up to 1 dB off stacks that sit a fraction of a
/// pixel from the truth, and nothing off a motionless capture's mean.
pub(crate) fn fourier_shift(plane: &[f32], w: usize, h: usize, dx: f32, dy: f32) -> Vec<f32> {
    let (pw, ph) = (2 * w, 2 * h);
    let mut padded = vec![0.0f32; pw * ph];
    for y in 0..ph {
        let sy = if y < h { y } else { ph - 1 - y };
        for x in 0..pw {
            let sx = if x < w { x } else { pw - 1 - x };
            padded[y * pw + x] = plane[sy * w + sx];
        }
    }
    let fft = jupiter_kit::fft::Fft2d::cached(pw, ph);
    let mut spec = fft.forward(&padded);
    let b = fft.bins();
    let tau = std::f64::consts::TAU;
    for ky in 0..ph {
        let fy = jupiter_kit::fft::row_frequency(ky, ph) as f64;
        for kx in 0..b {
            let fx = kx as f64 / pw as f64;
            let phase = tau * (fx * dx as f64 + fy * dy as f64);
            let v = &mut spec[ky * b + kx];
            // Nyquist bins of a real signal keep only the real part.
            if 2 * kx == pw || 2 * ky == ph {
                *v *= phase.cos() as f32;
            } else {
                *v *= jupiter_kit::fft::Complex32::new(phase.cos() as f32, phase.sin() as f32);
            }
        }
    }
    let back = fft.inverse(spec);
    let scale = 1.0 / (pw * ph) as f32;
    (0..w * h)
        .map(|i| back[(i / w) * pw + i % w] * scale)
        .collect()
}

/// PSNR (dB) of `out` against `truth` after registration and a per-channel
/// gain/offset fit (see the module doc). An output smaller than the truth
/// (PlanetarySystemStacker crops its borders) is placed centred on a canvas
/// of the truth's size for registration and scored where it has data.
pub(crate) fn psnr_vs_truth(out: &Image, truth: &Image) -> Result<f64, String> {
    let (w, h) = (truth.width as usize, truth.height as usize);
    let (ow, oh) = (out.width as usize, out.height as usize);
    if ow > w || oh > h {
        return Err(format!(
            "output is {ow}×{oh}, larger than the truth ({w}×{h})"
        ));
    }
    let (ox, oy) = ((w - ow) / 2, (h - oh) / 2);
    let (tc, oc) = (truth.channels as usize, out.channels as usize);
    // Output planes on the truth-sized canvas (edges replicated).
    let canvas = |plane: &[f32]| -> Vec<f32> {
        let win = RowWindow::whole(plane, ow, oh, 1);
        (0..w * h)
            .map(|i| {
                win.sample(
                    (i % w) as f32 - ox as f32,
                    (i / w) as f32 - oy as f32,
                    0,
                    Interp::Bilinear,
                )
            })
            .collect()
    };
    let out_planes: Vec<Vec<f32>> = if oc == tc {
        (0..tc)
            .map(|c| {
                canvas(
                    &out.data
                        .iter()
                        .skip(c)
                        .step_by(oc)
                        .copied()
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    } else {
        vec![canvas(&luminance(&out.data, oc)); tc]
    };
    let truth_lum = luminance(&truth.data, tc);
    let out_lum: Vec<f32> = (0..w * h)
        .map(|i| out_planes.iter().map(|p| p[i]).sum::<f32>() / tc as f32)
        .collect();
    let s = PhaseCorrelator::new(&truth_lum, w, h).shift_of(&out_lum);
    // Truth pixels whose registered position lies 24 px inside the output.
    let m = 24.0;
    let inside = |x: usize, y: usize| {
        let (u, v) = (x as f32 + s.dx - ox as f32, y as f32 + s.dy - oy as f32);
        u >= m && v >= m && u <= ow as f32 - 1.0 - m && v <= oh as f32 - 1.0 - m
    };
    let (mut se, mut n) = (0.0f64, 0usize);
    for (c, plane) in out_planes.iter().enumerate() {
        let moved = fourier_shift(plane, w, h, s.dx, s.dy);
        let mut pairs = Vec::new();
        for y in 0..h {
            for x in 0..w {
                if inside(x, y) {
                    let v = moved[y * w + x] as f64;
                    pairs.push((v, truth.data[(y * w + x) * tc + c] as f64));
                }
            }
        }
        if pairs.is_empty() {
            return Err("no overlap with the truth".into());
        }
        let m = pairs.len() as f64;
        let (sx, sy) = pairs.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0, a.1 + p.1));
        let (mx, my) = (sx / m, sy / m);
        let (sxy, sxx) = pairs.iter().fold((0.0, 0.0), |a, p| {
            (a.0 + (p.0 - mx) * (p.1 - my), a.1 + (p.0 - mx).powi(2))
        });
        let gain = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        for (v, t) in pairs {
            se += (my + gain * (v - mx) - t).powi(2);
            n += 1;
        }
    }
    Ok(10.0 * (n as f64 / se.max(1e-30)).log10())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jupiter_host::io::ser::{OpenOptions, SerFile};

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("jupiter-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn truncated_capture_equals_the_first_frames() {
        let dir = scratch("trunc");
        let opts = SynthOptions {
            width: 40,
            height: 30,
            frames: 6,
            ..SynthOptions::default()
        };
        let full = dir.join("full.ser");
        generate(&full, &opts).unwrap();
        let short = dir.join("short.ser");
        truncate_ser(&full, &short, 4).unwrap();
        let (a, b) = (
            SerFile::open(&full, OpenOptions::default()).unwrap(),
            SerFile::open(&short, OpenOptions::default()).unwrap(),
        );
        assert_eq!(b.frame_count, 4);
        assert!(b.warnings.is_empty(), "{:?}", b.warnings);
        assert_eq!(
            b.timestamps.as_deref(),
            a.timestamps.as_deref().map(|t| &t[..4])
        );
        for i in 0..4 {
            assert_eq!(a.decode_frame(i).unwrap(), b.decode_frame(i).unwrap());
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn psnr_registers_rescales_and_crops_like_a_peer_output() {
        let (w, h) = (160usize, 120usize);
        let plane = jupiter_testkit::capture::render(Scene::Planet, w, h, 1, 0.0, 0.0);
        let truth = Image::from_vec(w as u32, h as u32, 1, plane.clone());
        // A peer's output: shifted by (1.5, -2.25), gain 0.8 + offset, 6 px cropped per side.
        let moved = jupiter_kit::warp::shift_plane(&plane, w, h, 1, 1.5, -2.25, Interp::Bicubic);
        let (cw, ch) = (w - 12, h - 12);
        let cropped: Vec<f32> = (0..cw * ch)
            .map(|i| 0.8 * moved[(i / cw + 6) * w + i % cw + 6] + 0.05)
            .collect();
        let out = Image::from_vec(cw as u32, ch as u32, 1, cropped);
        let p = psnr_vs_truth(&out, &truth).unwrap();
        assert!(p > 45.0, "{p}");
        // Noise lowers it as expected: σ = 0.01 → about 40 dB.
        let noisy: Vec<f32> = out
            .data
            .iter()
            .enumerate()
            .map(|(i, v)| v + 0.008 * (((i * 7919) % 1000) as f32 / 1000.0 * 2.0 - 1.0) * 1.732)
            .collect();
        let q = psnr_vs_truth(&Image::from_vec(cw as u32, ch as u32, 1, noisy), &truth).unwrap();
        assert!(q < p && q > 36.0 && q < 44.0, "{q}");
        // Larger than the truth: an error, not a panic.
        let big = Image::from_vec(w as u32 + 2, h as u32, 1, vec![0.0; (w + 2) * h]);
        assert!(psnr_vs_truth(&big, &truth).is_err());
    }

    #[test]
    fn fourier_shift_moves_detail_without_softening_it() {
        let (w, h) = (96usize, 80usize);
        // Detail up to 0.3 cycles per pixel, smooth across the mirrored edges.
        let at =
            |x: f32, y: f32| (0.9 * x).sin() * (0.7 * y).cos() + 0.5 * (1.8 * x + 0.4 * y).sin();
        let plane: Vec<f32> = (0..w * h)
            .map(|i| at((i % w) as f32, (i / w) as f32))
            .collect();
        let (dx, dy) = (1.5f32, -2.25f32);
        let moved = fourier_shift(&plane, w, h, dx, dy);
        let (mut fourier, mut cubic) = (0.0f32, 0.0f32);
        let cub = jupiter_kit::warp::shift_plane(&plane, w, h, 1, dx, dy, Interp::Bicubic);
        for y in 16..h - 16 {
            for x in 16..w - 16 {
                let want = at(x as f32 + dx, y as f32 + dy);
                fourier = fourier.max((moved[y * w + x] - want).abs());
                cubic = cubic.max((cub[y * w + x] - want).abs());
            }
        }
        assert!(
            fourier < 0.05 && fourier < cubic / 4.0,
            "fourier {fourier}, cubic {cubic}"
        );
    }

    #[test]
    fn measure_reports_failures_with_the_error_output() {
        let dir = scratch("measure");
        let log = dir.join("log");
        let ok = measure(Command::new("true").arg("x"), &log).unwrap();
        assert!(ok.secs >= 0.0 && ok.rss_mb > 0.0);
        let mut bad = Command::new("sh");
        bad.args(["-c", "echo broken input >&2; exit 3"]);
        let e = measure(&mut bad, &log).unwrap_err();
        assert!(e.contains("broken input"), "{e}");
        assert!(measure(&mut Command::new("/nonexistent/tool"), &log).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
