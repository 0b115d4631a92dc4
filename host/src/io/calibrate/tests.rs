use std::path::{Path, PathBuf};
use std::sync::Arc;

use jupiter_testkit::rng::Rng;
use jupiter_testkit::ser::{write_ser, Cfa, SerColor, SerSpec};

use super::*;
use crate::io::capture::{CaptureFile, OpenOptions};
use crate::io::debayer::Demosaic;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jupiter-calib-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn mono(w: usize, h: usize) -> Layout {
    Layout {
        width: w,
        height: h,
        channels: 1,
        bayer: None,
    }
}

fn rggb(w: usize, h: usize) -> Layout {
    Layout {
        bayer: Some(BayerPattern::Rggb),
        ..mono(w, h)
    }
}

/// A SER file of `frames` (8-bit samples) at `path`.
fn ser(path: &Path, (w, h): (usize, usize), color: SerColor, frames: &[Vec<u16>]) -> PathBuf {
    write_ser(
        path,
        &SerSpec::new(w as u32, h as u32, color, 8),
        frames,
        None,
    )
    .unwrap();
    path.to_path_buf()
}

/// `luminance_rows` is `decode_rows` then the channel mean, bit for bit,
/// for the whole frame and for bands (the MHC mosaic path reads its own
/// margin).
fn assert_luminance_is_the_channel_mean(file: &CaptureFile, what: &str) {
    let (w, h, c) = (file.width(), file.height(), file.channels());
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (y0, rows) in [(0, h), (0, 1), (1, 3), (h - 2, 2)] {
        let mut rgb = vec![0.0f32; rows * w * c];
        file.decode_rows(0, y0, rows, &mut rgb).unwrap();
        let mut lum = vec![f32::NAN; rows * w];
        file.luminance_rows(0, y0, rows, &mut lum).unwrap();
        let want = jupiter_plugin_api::channel_mean(&rgb, c);
        assert_eq!(bits(&lum), bits(&want), "{what}: rows {y0}+{rows}");
        // The mosaic's samples are the demosaiced pixels' own colours.
        let mut mosaic = vec![f32::NAN; rows * w];
        let read = file.mosaic_rows(0, y0, rows, &mut mosaic);
        match file.bayer() {
            Some(p) => {
                read.unwrap();
                let own: Vec<f32> = (0..rows * w)
                    .map(|k| rgb[k * 3 + p.color_at(k % w, y0 + k / w)])
                    .collect();
                assert_eq!(bits(&mosaic), bits(&own), "{what}: mosaic rows {y0}+{rows}");
            }
            None => assert!(
                read.is_err(),
                "{what}: mosaic rows of frames without a mosaic"
            ),
        }
    }
    // A wrong buffer is an error, not a panic.
    assert!(file
        .luminance_rows(0, 0, 1, &mut vec![0.0; w * c + 1])
        .is_err());
}

#[test]
fn luminance_rows_are_the_channel_mean_of_the_decoded_rows() {
    let dir = scratch("luminance");
    let (w, h) = (19, 14);
    let mut rng = Rng::new(3);
    let frame: Vec<u16> = (0..w * h).map(|_| (rng.uniform() * 255.0) as u16).collect();
    let colors = [
        SerColor::Mono,
        SerColor::Bayer(Cfa::Rggb),
        SerColor::Bayer(Cfa::Grbg),
        SerColor::Bayer(Cfa::Gbrg),
        SerColor::Bayer(Cfa::Bggr),
    ];
    for (k, color) in colors.into_iter().enumerate() {
        let path = ser(
            &dir.join(format!("c{k}.ser")),
            (w, h),
            color,
            &[frame.clone()],
        );
        for demosaic in [Demosaic::Mhc, Demosaic::Bilinear] {
            let opts = OpenOptions {
                demosaic,
                ..Default::default()
            };
            let file = CaptureFile::open(&path, opts).unwrap();
            assert_luminance_is_the_channel_mean(&file, &format!("{color:?} {demosaic:?}"));
        }
    }
    // Interleaved RGB: three samples per pixel.
    let rgb: Vec<u16> = (0..w * h * 3).map(|i| (i * 37 % 256) as u16).collect();
    let path = ser(&dir.join("rgb.ser"), (w, h), SerColor::Rgb, &[rgb]);
    let file = CaptureFile::open(&path, OpenOptions::default()).unwrap();
    assert_luminance_is_the_channel_mean(&file, "RGB");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn median_and_sigma_clip_reject_an_outlier() {
    let mut v = [0.50, 0.52, 0.48, 0.51, 0.49, 0.95];
    assert!((median(&mut v) - 0.505).abs() < 1e-6);
    let mut v = [0.50, 0.52, 0.48, 0.51, 0.49, 0.95];
    // The plain mean is 0.575; the clipped mean leaves 0.95 out.
    assert!((sigma_clipped_mean(&mut v) - 0.50).abs() < 1e-6);
    let mut odd = [3.0, 1.0, 2.0];
    assert_eq!(median(&mut odd), 2.0);
    // Quantised values mostly equal: the clipped mean is their value.
    let mut q = [0.2, 0.2, 0.2, 0.2, 0.2, 0.6];
    assert!((sigma_clipped_mean(&mut q) - 0.2).abs() < 1e-6);
    assert!((Combine::SigmaClip.apply(&mut [1.0, 1.0, 1.0, 9.0]) - 1.0).abs() < 1e-6);
}

#[test]
fn each_cfa_colour_of_the_flat_is_normalised_to_its_own_mean() {
    let (w, h) = (16, 12);
    let l = rggb(w, h);
    // A flat lit in orange (R 0.6, G 0.8, B 0.3) with a vignetting-like
    // spatial factor; the flat-dark is 0.05 everywhere.
    let colour = [0.6f32, 0.8, 0.3];
    let spatial = |i: usize| 0.8 + 0.4 * ((i % w) as f32 / (w - 1) as f32);
    let flat: Vec<f32> = (0..w * h)
        .map(|i| colour[l.class_of(i)] * spatial(i) + 0.05)
        .collect();
    let dark = vec![0.05f32; w * h];
    let (gain, dead) = flat_gain(&flat, Some(&dark), &l).unwrap();
    assert!(dead.is_empty());
    let norm: Vec<f32> = gain.iter().map(|g| 1.0 / g).collect();
    for (k, m) in class_means(&norm, &l).iter().enumerate() {
        assert!((m - 1.0).abs() < 1e-5, "colour {k}: mean {m}");
    }
    // Every colour keeps only the spatial factor, over its own mean.
    let sp: Vec<f32> = (0..w * h).map(spatial).collect();
    let sm = class_means(&sp, &l);
    for i in 0..w * h {
        let want = sp[i] / sm[l.class_of(i)];
        assert!((norm[i] - want).abs() < 1e-5, "{i}: {} vs {want}", norm[i]);
    }
    // A flat normalised as one image would tint: red 0.6/0.62 ≠ 1.
    let one = flat_gain(&flat, Some(&dark), &mono(w, h)).unwrap().0;
    assert!((1.0 / one[0] - 0.6 * 0.8 / 0.625).abs() < 0.02);
    // A pixel with no light is dead (repaired, not divided by).
    let mut f = flat.clone();
    f[5] = 0.05;
    assert_eq!(flat_gain(&f, Some(&dark), &l).unwrap().1, vec![5]);
    // No signal at all in a colour: an error naming it.
    let blue_missing: Vec<f32> = (0..w * h)
        .map(|i| if l.class_of(i) == 2 { 0.05 } else { 0.5 })
        .collect();
    let e = flat_gain(&blue_missing, Some(&dark), &l).unwrap_err();
    assert!(e.contains("blue"), "{e}");
}

#[test]
fn hot_pixels_are_found_in_a_dark_and_repaired_from_their_colour() {
    let (w, h) = (64, 48);
    let l = mono(w, h);
    let mut rng = Rng::new(3);
    // A glow gradient with noise, and three hot pixels of various strength.
    let mut dark: Vec<f32> = (0..w * h)
        .map(|i| 0.02 + 0.03 * (i % w) as f32 / w as f32 + 0.002 * rng.gauss())
        .collect();
    let hot = [w * 10 + 7, w * 30 + 40, w * 47 + 63];
    for (k, &i) in hot.iter().enumerate() {
        dark[i] += 0.05 + 0.2 * k as f32;
    }
    assert_eq!(hot_in_dark(&dark, &l), hot.to_vec());

    // Bayer: a hot green pixel among red, green and blue at other levels is
    // repaired to the green level, not to a mix of colours.
    let l = rggb(8, 8);
    let level = [0.2f32, 0.5, 0.8];
    let mut raw: Vec<f32> = (0..64).map(|i| level[l.class_of(i)]).collect();
    let g = 3 * 8 + 4; // (4, 3): green in RGGB
    assert_eq!(l.class_of(g), 1);
    raw[g] = 1.0;
    assert_eq!(hot_in_dark(&raw, &l), vec![g]);
    let mut mask = vec![false; 64];
    mask[g] = true;
    repair(&mut raw, 0, 8, &l, &[g], &mask);
    assert_eq!(raw[g], 0.5);
    // Repairing a band of rows uses only the rows it holds.
    let mut band: Vec<f32> = (2 * 8..6 * 8).map(|i| level[l.class_of(i)]).collect();
    band[g - 16] = 1.0;
    repair(&mut band, 2, 4, &l, &[g], &mask);
    assert_eq!(band[g - 16], 0.5);
}

#[test]
fn hot_pixels_without_a_dark_come_from_outliers_in_every_frame() {
    let dir = scratch("frames");
    let (w, h) = (40, 32);
    let mut rng = Rng::new(9);
    // A moving bright spot (outlier in one frame at a time) and a hot pixel
    // that stays.
    let frames: Vec<Vec<u16>> = (0..12)
        .map(|f| {
            let mut v: Vec<u16> = (0..w * h)
                .map(|_| (40.0 + 3.0 * rng.gauss()).round() as u16)
                .collect();
            v[(5 + f) * w + 3 + 2 * f] = 250;
            v[20 * w + 30] = 200;
            v
        })
        .collect();
    let path = ser(&dir.join("cap.ser"), (w, h), SerColor::Mono, &frames);
    let file = CaptureFile::open(&path, OpenOptions::default()).unwrap();
    assert_eq!(
        hot_in_frames(&file, &Layout::of(&file)).unwrap(),
        vec![20 * w + 30]
    );
    // Asked for without masters, the run's calibration repairs it.
    let spec = CalibrationSpec {
        hot_pixels: Some(true),
        ..Default::default()
    };
    let cal = Calibration::prepare(&spec, OpenOptions::default(), None)
        .unwrap()
        .unwrap();
    let applied = cal.attach(&file).unwrap();
    assert_eq!(applied.summary().hot_pixels, 1);
    assert_eq!(applied.summary().hot_pixels_from, "frames");
    let file = file.with_calibration(Arc::new(applied));
    let f0 = file.decode_frame(0).unwrap();
    assert!(
        (f0[20 * w + 30] * 255.0 - 40.0).abs() < 8.0,
        "{}",
        f0[20 * w + 30] * 255.0
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn calibration_applies_dark_and_flat_to_raw_samples_before_the_debayer() {
    let dir = scratch("apply");
    let (w, h) = (16, 12);
    let l = rggb(w, h);
    // Truth: a flat grey 100; flat factor 0.8 on the left half, 1.2 on the
    // right; dark 20 with one hot pixel.
    let factor = |i: usize| if i % w < w / 2 { 0.8 } else { 1.2 };
    let hot = 5 * w + 9;
    let dark_at = |i: usize| if i == hot { 200.0 } else { 20.0 };
    let light: Vec<u16> = (0..w * h)
        .map(|i| (100.0 * factor(i) + dark_at(i)) as u16)
        .collect();
    let darks = vec![(0..w * h).map(|i| dark_at(i) as u16).collect::<Vec<u16>>(); 3];
    // The flat lit in colour: per-colour levels must not tint the result.
    let tint = [150.0, 200.0, 100.0];
    let flats = vec![
        (0..w * h)
            .map(|i| (tint[l.class_of(i)] * factor(i) + 10.0) as u16)
            .collect::<Vec<u16>>();
        3
    ];
    let flat_darks = vec![vec![10u16; w * h]; 3];
    let bayer = SerColor::Bayer(Cfa::Rggb);
    let cap = ser(&dir.join("cap.ser"), (w, h), bayer, &[light]);
    let spec = CalibrationSpec {
        dark: Some(ser(&dir.join("dark.ser"), (w, h), bayer, &darks)),
        flat: Some(ser(&dir.join("flat.ser"), (w, h), bayer, &flats)),
        flat_dark: Some(ser(&dir.join("fd.ser"), (w, h), bayer, &flat_darks)),
        ..Default::default()
    };
    let cal = Calibration::prepare(&spec, OpenOptions::default(), None)
        .unwrap()
        .unwrap();
    let file = CaptureFile::open(&cap, OpenOptions::default()).unwrap();
    let applied = cal.attach(&file).unwrap();
    let s = applied.summary().clone();
    assert_eq!(s.formula, "(frame − dark) / normalised(flat − flat-dark)");
    assert_eq!((s.hot_pixels, s.dead_pixels), (1, 0));
    assert_eq!(s.masters.len(), 3);
    assert_eq!(s.masters[0].built, "median of 3 frames");
    let file = file.with_calibration(Arc::new(applied));
    assert!(
        file.raw_layout().is_some(),
        "a calibrated capture uploads its raw samples (calibrated on the device)"
    );
    // Every pixel and channel: 100 / 255 × mean factor (1.0).
    let rgb = file.decode_frame(0).unwrap();
    for (i, v) in rgb.iter().enumerate() {
        assert!((v * 255.0 - 100.0).abs() < 1.5, "sample {i}: {}", v * 255.0);
    }
    // Band by band gives the same as the whole frame.
    let mut band = vec![0.0f32; 4 * w * 3];
    file.decode_rows(0, 4, 4, &mut band).unwrap();
    assert_eq!(band, rgb[4 * w * 3..8 * w * 3]);
    assert_luminance_is_the_channel_mean(&file, "calibrated RGGB");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_mismatched_master_is_an_error_naming_both_files() {
    let dir = scratch("mismatch");
    let cap = ser(
        &dir.join("cap.ser"),
        (16, 12),
        SerColor::Mono,
        &[vec![50; 192]],
    );
    let small = ser(
        &dir.join("small_dark.ser"),
        (8, 12),
        SerColor::Mono,
        &[vec![5; 96]],
    );
    let file = CaptureFile::open(&cap, OpenOptions::default()).unwrap();
    let attach = |spec: CalibrationSpec| {
        Calibration::prepare(&spec, OpenOptions::default(), None)
            .and_then(|c| c.unwrap().attach(&file).map(|_| ()))
            .unwrap_err()
            .to_string()
    };
    let e = attach(CalibrationSpec {
        dark: Some(small.clone()),
        ..Default::default()
    });
    assert!(
        e.contains("small_dark.ser")
            && e.contains("cap.ser")
            && e.contains("8×12")
            && e.contains("16×12"),
        "{e}"
    );
    // Another Bayer pattern.
    let grbg = ser(
        &dir.join("grbg_flat.ser"),
        (16, 12),
        SerColor::Bayer(Cfa::Grbg),
        &[vec![90; 192]],
    );
    let rggb_cap = ser(
        &dir.join("rggb.ser"),
        (16, 12),
        SerColor::Bayer(Cfa::Rggb),
        &[vec![90; 192]],
    );
    let spec = CalibrationSpec {
        flat: Some(grbg.clone()),
        ..Default::default()
    };
    let cal = Calibration::prepare(&spec, OpenOptions::default(), None)
        .unwrap()
        .unwrap();
    let rf = CaptureFile::open(&rggb_cap, OpenOptions::default()).unwrap();
    let e = cal.attach(&rf).err().unwrap().to_string();
    assert!(
        e.contains("grbg_flat.ser")
            && e.contains("rggb.ser")
            && e.contains("GRBG")
            && e.contains("RGGB"),
        "{e}"
    );
    // Another bit depth.
    let deep = dir.join("deep_dark.ser");
    write_ser(
        &deep,
        &SerSpec::new(16, 12, SerColor::Mono, 12),
        &[vec![5; 192]],
        None,
    )
    .unwrap();
    let e = attach(CalibrationSpec {
        dark: Some(deep),
        ..Default::default()
    });
    assert!(
        e.contains("deep_dark.ser") && e.contains("12-bit") && e.contains("8-bit"),
        "{e}"
    );
    // Two masters that disagree are named together.
    let e = Calibration::prepare(
        &CalibrationSpec {
            dark: Some(cap.clone()),
            flat: Some(small.clone()),
            ..Default::default()
        },
        OpenOptions::default(),
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("small_dark.ser") && e.contains("cap.ser"), "{e}");
    // Given the capture, the masters are checked before being combined.
    let e = Calibration::prepare(
        &CalibrationSpec {
            dark: Some(small),
            ..Default::default()
        },
        OpenOptions::default(),
        Some(&file),
    )
    .err()
    .unwrap();
    assert!(
        matches!(e, CalibrationError::Mismatch { .. }) && e.to_string().contains("8×12"),
        "{e}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_master_written_as_fits_reads_back_as_the_same_master() {
    let dir = scratch("fits");
    let (w, h) = (12, 10);
    let mut rng = Rng::new(5);
    let frames: Vec<Vec<u16>> = (0..5)
        .map(|_| (0..w * h).map(|_| rng.below_or_eq(255) as u16).collect())
        .collect();
    let src = ser(
        &dir.join("flats.ser"),
        (w, h),
        SerColor::Bayer(Cfa::Gbrg),
        &frames,
    );
    let built = Master::load(&src, OpenOptions::default(), Combine::SigmaClip).unwrap();
    assert_eq!(built.describe(), "sigma-clip of 5 frames");
    let out = dir.join("master.fits");
    built.write_fits(&out, false).unwrap();
    let back = Master::load(&out, OpenOptions::default(), Combine::Median).unwrap();
    assert_eq!(back.describe(), "master image");
    assert_eq!(back.layout, built.layout);
    assert_eq!((back.depth, back.scale), (Some(8), Some(255.0)));
    let worst = back
        .data
        .iter()
        .zip(&built.data)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-6, "{worst}");
    // The median of each pixel, sample for sample.
    let mut col: Vec<f32> = frames.iter().map(|f| f[17] as f32 / 255.0).collect();
    let m = Master::load(&src, OpenOptions::default(), Combine::Median).unwrap();
    assert!((m.data[17] - median(&mut col)).abs() < 1e-6);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn masters_come_from_any_capture_format_or_a_single_image() {
    use jupiter_testkit::fits::{write_fits, FitsSpec};
    use jupiter_testkit::sequence::write_png;
    let dir = scratch("formats");
    let (w, h) = (10, 8);
    // A FITS cube of three frames: the median of each pixel.
    let frames: Vec<Vec<f64>> = [1000.0, 3000.0, 2000.0]
        .iter()
        .map(|v| vec![*v; w * h])
        .collect();
    let cube = dir.join("darks.fits");
    write_fits(&cube, &FitsSpec::u16(w, h), &frames).unwrap();
    let m = Master::load(&cube, OpenOptions::default(), Combine::Median).unwrap();
    assert_eq!((m.frames, m.depth), (3, Some(16)));
    assert!(m.data.iter().all(|v| (v * 65535.0 - 2000.0).abs() < 0.01));
    // A 16-bit PNG taken as a master image as it is.
    let png = dir.join("flat.png");
    let samples: Vec<u16> = (0..w * h).map(|i| 20000 + i as u16).collect();
    write_png(&png, (w as u32, h as u32, 1), 16, &samples).unwrap();
    let m = Master::load(&png, OpenOptions::default(), Combine::Median).unwrap();
    assert_eq!(m.describe(), "master image");
    assert_eq!(m.layout, mono(w, h));
    assert!((m.data[7] * 65535.0 - 20007.0).abs() < 0.01);
    // A directory of PNG frames is a capture like any other.
    let seq = dir.join("bias");
    std::fs::create_dir_all(&seq).unwrap();
    for k in 0..3u16 {
        let v = vec![100 + 10 * k; w * h];
        write_png(
            &seq.join(format!("b_{k}.png")),
            (w as u32, h as u32, 1),
            16,
            &v,
        )
        .unwrap();
    }
    let m = Master::load(&seq, OpenOptions::default(), Combine::SigmaClip).unwrap();
    assert_eq!(m.describe(), "sigma-clip of 3 frames");
    assert!(m.data.iter().all(|v| (v * 65535.0 - 110.0).abs() < 0.01));
    // Something that is no image: an error naming it.
    let junk = dir.join("notes.txt");
    std::fs::write(&junk, "not a master").unwrap();
    let e = Master::load(&junk, OpenOptions::default(), Combine::Median)
        .unwrap_err()
        .to_string();
    assert!(e.contains("notes.txt"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_master_of_rgb_frames_reads_back_as_one_rgb_frame() {
    let dir = scratch("rgb");
    let (w, h) = (6, 4);
    let frames: Vec<Vec<u16>> = (0..3)
        .map(|f| (0..w * h * 3).map(|i| (i * 3 + f) as u16 % 256).collect())
        .collect();
    let src = ser(&dir.join("darks.ser"), (w, h), SerColor::Rgb, &frames);
    let built = Master::load(&src, OpenOptions::default(), Combine::Median).unwrap();
    assert_eq!(built.layout.channels, 3);
    let out = dir.join("dark.fits");
    built.write_fits(&out, false).unwrap();
    let back = Master::load(&out, OpenOptions::default(), Combine::Median).unwrap();
    assert_eq!((back.layout, back.frames), (built.layout, 1));
    assert!(back
        .data
        .iter()
        .zip(&built.data)
        .all(|(a, b)| (a - b).abs() < 1e-6));
    let cap = CaptureFile::open(&src, OpenOptions::default()).unwrap();
    let spec = CalibrationSpec {
        dark: Some(out),
        ..Default::default()
    };
    let cal = Calibration::prepare(&spec, OpenOptions::default(), None)
        .unwrap()
        .unwrap();
    assert!(cal.attach(&cap).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hot_pixels_of_a_flawed_planet_capture_are_found_without_a_dark() {
    use jupiter_testkit::capture::{Scene, SynthColor, SynthOptions};
    use jupiter_testkit::flaws::{generate_flawed, Flaws};
    let dir = scratch("flawed");
    for color in [SynthColor::Mono, SynthColor::Bayer(Cfa::Rggb)] {
        let o = SynthOptions {
            width: 128,
            height: 96,
            frames: 16,
            scene: Scene::Planet,
            color,
            jitter: 4.0,
            ..Default::default()
        };
        let flaws = Flaws::synthetic(&o, 31);
        let path = dir.join("flawed.ser");
        generate_flawed(&path, &o, &flaws).unwrap();
        let file = CaptureFile::open(&path, OpenOptions::default()).unwrap();
        let found = hot_in_frames(&file, &Layout::of(&file)).unwrap();
        let false_hits: Vec<&usize> = found.iter().filter(|i| !flaws.hot.contains(i)).collect();
        eprintln!(
            "{color:?}: {} of {} planted hot pixels found, {} false",
            found.len() - false_hits.len(),
            flaws.hot.len(),
            false_hits.len()
        );
        assert!(false_hits.is_empty(), "{color:?}: not hot: {false_hits:?}");
        assert!(
            found.len() * 10 >= flaws.hot.len() * 8,
            "{color:?}: {} of {}",
            found.len(),
            flaws.hot.len()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
