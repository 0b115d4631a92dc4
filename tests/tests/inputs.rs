//! End-to-end: one generated capture written as SER, AVI (Y800), a FITS
//! cube and a directory of PNG frames; `jupiter-host run` on each must give
//! the same stack as on the SER file (same PSNR against the truth within a
//! small tolerance), and `jupiter-host info` must describe each.

use std::path::{Path, PathBuf};

use jupiter_host::io::ser::SerFile;
use jupiter_testkit::avi::{write_avi, AviPixels, AviSpec};
use jupiter_testkit::fits::{write_fits, FitsSpec};
use jupiter_testkit::sequence::write_png;
use jupiter_tests::synth::{psnr_interior, render, Scene, SynthColor, SynthOptions};
use jupiter_tests::*;

fn options() -> SynthOptions {
    SynthOptions {
        width: 128,
        height: 96,
        frames: 24,
        scene: Scene::Planet,
        color: SynthColor::Mono,
        depth: 8,
        seed: 17,
        jitter: 4.0,
        blur: (0.8, 1.8),
        full_well: 250.0,
        read_noise: 3.0,
        artifacts: 0.0,
        bin: 1,
    }
}

/// The stored 8-bit samples of every frame of `ser`.
fn samples(ser: &Path) -> Vec<Vec<u16>> {
    let s = SerFile::open(ser, Default::default()).unwrap();
    (0..s.frame_count)
        .map(|i| {
            let f = s.decode_frame(i).unwrap();
            f.iter().map(|v| (v * 255.0).round() as u16).collect()
        })
        .collect()
}

/// The same frames as AVI, FITS cube and PNG directory.
fn other_formats(dir: &Path, o: &SynthOptions, frames: &[Vec<u16>]) -> Vec<PathBuf> {
    let (w, h) = (o.width, o.height);
    let avi = dir.join("cap.avi");
    write_avi(&avi, &AviSpec::new(w, h, AviPixels::Y800), frames).unwrap();
    let fits = dir.join("cap.fits");
    let mut spec = FitsSpec::u16(w as usize, h as usize);
    spec.cards
        .push(("DATE-OBS".into(), "'2024-11-05T21:30:00.125'".into()));
    // 16-bit samples of the 8-bit values × 257: the same fraction of full scale.
    let physical: Vec<Vec<f64>> = frames
        .iter()
        .map(|f| f.iter().map(|&s| s as f64 * 257.0).collect())
        .collect();
    write_fits(&fits, &spec, &physical).unwrap();
    let pngs = dir.join("cap_png");
    std::fs::create_dir_all(&pngs).unwrap();
    for (k, f) in frames.iter().enumerate() {
        write_png(&pngs.join(format!("frame_{k}.png")), (w, h, 1), 8, f).unwrap();
    }
    vec![avi, fits, pngs]
}

/// Runs the pipeline (global alignment, no post-processing) on `input`.
fn stack(input: &Path, out: &Path) -> (serde_json::Value, Vec<f32>) {
    let report = out.with_extension("json");
    let more = ["--select", "50%", "--no-post", "--aligner", "align-phase"];
    let r = run_reported(build(), input, (out, &report), &more);
    (r, read_tiff(out).data.to_vec())
}

#[test]
fn every_format_stacks_like_the_ser_file() {
    let o = options();
    let (dir, ser, cap) = generated("inputs", &o);
    let frames = samples(&ser);
    let inputs = other_formats(&dir, &o, &frames);
    let (ser_report, ser_stack) = stack(&ser, &dir.join("ser.tif"));
    let best = ser_report["selected"][0].as_u64().unwrap() as usize;
    let (w, h) = (o.width as usize, o.height as usize);
    let (bx, by) = cap.shifts[best];
    let truth = render(o.scene, w, h, 1, bx as f64, by as f64);
    let reference = psnr_interior(&ser_stack, &truth, w, h, 1, 8);
    eprintln!("SER: stack PSNR {reference:.3} dB");
    for input in &inputs {
        let name = input.file_name().unwrap().to_string_lossy().to_string();
        let (r, data) = stack(input, &dir.join(format!("{name}.tif")));
        assert_eq!(r["frames"], ser_report["frames"], "{name}");
        assert_eq!(
            r["selected"], ser_report["selected"],
            "{name}: another selection"
        );
        let psnr = psnr_interior(&data, &truth, w, h, 1, 8);
        let agree = psnr_interior(&data, &ser_stack, w, h, 1, 8);
        eprintln!("{name}: stack PSNR {psnr:.3} dB; against the SER stack {agree:.1} dB");
        assert!(
            (psnr - reference).abs() < 0.05,
            "{name}: {psnr:.3} dB vs SER {reference:.3} dB"
        );
    }
}

#[test]
fn info_describes_every_format() {
    let o = SynthOptions {
        frames: 3,
        ..options()
    };
    let (dir, ser, _) = generated("inputs-info", &o);
    let frames = samples(&ser);
    let inputs = other_formats(&dir, &o, &frames);
    let text = |p: &Path| {
        String::from_utf8_lossy(&run_ok(["info".as_ref(), p.as_os_str()]).stdout).into_owned()
    };
    let t = text(&ser);
    assert!(
        t.contains("format:      SER") && t.contains("date (UTC):  2022-09-28T22:13:20.000Z"),
        "{t}"
    );
    let t = text(&inputs[0]);
    assert!(
        t.contains("format:      AVI")
            && t.contains("frames:      3")
            && t.contains("Y800")
            && t.contains("30.000 frames/s"),
        "{t}"
    );
    let t = text(&inputs[1]);
    assert!(
        t.contains("format:      FITS")
            && t.contains("128×96")
            && t.contains("2024-11-05T21:30:00.125Z"),
        "{t}"
    );
    let t = text(&inputs[2]);
    assert!(
        t.contains("PNG image sequence") && t.contains("frame_0.png") && t.contains("frame_2.png"),
        "{t}"
    );
    // A compressed AVI is refused naming the codec.
    let mut spec = AviSpec::new(8, 8, AviPixels::Y800);
    spec.fourcc = Some(*b"H264");
    let bad = dir.join("compressed.avi");
    write_avi(&bad, &spec, &[vec![0; 64]]).unwrap();
    let out = run_host(["info".as_ref(), bad.as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("compressed.avi")
            && err.contains("H264")
            && err.contains("ffmpeg"),
        "{err}"
    );
}
