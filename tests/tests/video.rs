//! Compressed video through FFmpeg (the `ffmpeg` feature): one generated
//! capture written as an uncompressed Y800 AVI, then re-encoded by the
//! `ffmpeg` command as lossless FFV1 (MKV), MJPEG (AVI) and inter-coded
//! MPEG-4 (MP4). The lossless file must stack bit for bit like its
//! uncompressed twin, the lossy ones within 0.5 dB of it (PSNR against the
//! truth). Without the feature, such a file is refused with an error that
//! names the feature. Trials that cannot run (no `ffmpeg` command, or the
//! other build) are listed as ignored, never passed; with `CI` set a missing
//! `ffmpeg` command fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

use jupiter_host::io::ser::SerFile;
use jupiter_testkit::avi::{write_avi, AviPixels, AviSpec};
use jupiter_tests::synth::{psnr_interior, render, Scene, SynthColor, SynthOptions};
use jupiter_tests::*;

fn main() {
    let args = Arguments::from_args();
    let have_ffmpeg = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    let required = std::env::var_os("CI").is_some();
    let feature = cfg!(feature = "ffmpeg");
    let needs = move |f: fn() -> Result<(), String>| {
        move || {
            if !have_ffmpeg {
                return Err(Failed::from(
                    "CI is set but the ffmpeg command is not installed",
                ));
            }
            f().map_err(Failed::from)
        }
    };
    let skip = !have_ffmpeg && !required;
    let trials = vec![
        Trial::test("lossless_video_stacks_bit_for_bit", needs(lossless))
            .with_ignored_flag(skip || !feature),
        Trial::test(
            "lossy_video_stacks_like_its_uncompressed_twin",
            needs(lossy),
        )
        .with_ignored_flag(skip || !feature),
        Trial::test(
            "without_the_feature_compressed_video_is_refused",
            needs(refused),
        )
        .with_ignored_flag(skip || feature),
    ];
    libtest_mimic::run(&args, trials).exit()
}

fn options() -> SynthOptions {
    SynthOptions {
        width: 128,
        height: 96,
        frames: 24,
        scene: Scene::Planet,
        color: SynthColor::Mono,
        depth: 8,
        seed: 23,
        jitter: 4.0,
        blur: (0.8, 1.8),
        full_well: 250.0,
        read_noise: 3.0,
        artifacts: 0.0,
        bin: 1,
    }
}

/// A generated capture as an uncompressed Y800 AVI, with its directory and
/// the truth at the position of the frame the stack is registered to.
struct Twin {
    dir: PathBuf,
    avi: PathBuf,
    o: SynthOptions,
    shifts: Vec<(f32, f32)>,
}

fn twin(name: &str) -> Twin {
    let o = options();
    let (dir, ser, cap) = generated(name, &o);
    let s = SerFile::open(&ser, Default::default()).unwrap();
    let frames: Vec<Vec<u16>> = (0..s.frame_count)
        .map(|i| {
            let f = s.decode_frame(i).unwrap();
            f.iter().map(|v| (v * 255.0).round() as u16).collect()
        })
        .collect();
    let avi = dir.join("twin.avi");
    let mut spec = AviSpec::new(o.width, o.height, AviPixels::Y800);
    (spec.rate, spec.scale) = (25, 1);
    write_avi(&avi, &spec, &frames).unwrap();
    Twin {
        dir,
        avi,
        shifts: cap.shifts.clone(),
        o,
    }
}

/// Re-encodes `input` with the `ffmpeg` command.
fn encode(input: &Path, out: &Path, codec_args: &[&str]) -> Result<(), String> {
    let st = Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(codec_args)
        .arg(out)
        .status()
        .map_err(|e| format!("ffmpeg: {e}"))?;
    if !st.success() {
        return Err(format!("ffmpeg failed to write {}", out.display()));
    }
    Ok(())
}

/// Global alignment, half the frames, no post-processing: the report and
/// the stack's samples.
fn stack(input: &Path, out: &Path) -> (serde_json::Value, Vec<f32>) {
    let report = out.with_extension("json");
    let more = ["--select", "50%", "--no-post", "--aligner", "align-phase"];
    let r = run_reported(build(), input, (out, &report), &more);
    (r, read_tiff(out).data.to_vec())
}

fn lossless() -> Result<(), String> {
    let t = twin("video-lossless");
    let mkv = t.dir.join("ffv1.mkv");
    encode(&t.avi, &mkv, &["-c:v", "ffv1", "-pix_fmt", "gray"])?;
    let (r0, a) = stack(&t.avi, &t.dir.join("twin.tif"));
    let (r1, b) = stack(&mkv, &t.dir.join("ffv1.tif"));
    if r0["frames"] != r1["frames"] || r0["selected"] != r1["selected"] {
        return Err(format!(
            "another selection: {} vs {}",
            r0["selected"], r1["selected"]
        ));
    }
    if a != b {
        return Err("the FFV1 stack differs from the uncompressed AVI's".into());
    }
    let info =
        String::from_utf8_lossy(&run_ok(["info".as_ref(), mkv.as_os_str()]).stdout).into_owned();
    for want in [
        "video (FFmpeg)",
        "ffv1",
        "frames:      24",
        "MONO",
        "25.000 frames/s",
    ] {
        if !info.contains(want) {
            return Err(format!("info lacks {want:?}:\n{info}"));
        }
    }
    Ok(())
}

fn lossy() -> Result<(), String> {
    let t = twin("video-lossy");
    let (w, h) = (t.o.width as usize, t.o.height as usize);
    let (r0, a) = stack(&t.avi, &t.dir.join("twin.tif"));
    let best = r0["selected"][0].as_u64().unwrap() as usize;
    let (bx, by) = t.shifts[best];
    let truth = render(t.o.scene, w, h, 1, bx as f64, by as f64);
    let reference = psnr_interior(&a, &truth, w, h, 1, 8);
    eprintln!("uncompressed AVI: {reference:.2} dB");
    for (name, args) in [
        ("mjpeg.avi", &["-c:v", "mjpeg", "-q:v", "2"][..]),
        // Inter-coded (key frame every 8): frames must come out in order.
        (
            "mpeg4.mp4",
            &["-c:v", "mpeg4", "-q:v", "2", "-g", "8", "-bf", "2"][..],
        ),
    ] {
        let file = t.dir.join(name);
        encode(&t.avi, &file, args)?;
        let (r, data) = stack(&file, &t.dir.join(format!("{name}.tif")));
        if r["frames"] != r0["frames"] {
            return Err(format!(
                "{name}: {} frames vs {}",
                r["frames"], r0["frames"]
            ));
        }
        if data.len() != a.len() {
            return Err(format!(
                "{name}: {} samples vs {} (colour?)",
                data.len(),
                a.len()
            ));
        }
        let psnr = psnr_interior(&data, &truth, w, h, 1, 8);
        eprintln!("{name}: {psnr:.2} dB (uncompressed {reference:.2} dB)");
        if psnr < reference - 0.5 {
            return Err(format!(
                "{name}: {psnr:.2} dB, more than 0.5 dB below the uncompressed {reference:.2} dB"
            ));
        }
    }
    Ok(())
}

fn refused() -> Result<(), String> {
    let t = twin("video-refused");
    for name in ["mjpeg.avi", "mpeg4.mp4"] {
        let file = t.dir.join(name);
        let codec: &[&str] = if name.ends_with("avi") {
            &["-c:v", "mjpeg"]
        } else {
            &["-c:v", "mpeg4"]
        };
        encode(&t.avi, &file, codec)?;
        let out = t.dir.join(format!("{name}.tif"));
        let o = run_host([
            "--plugins".as_ref(),
            build().as_os_str(),
            "run".as_ref(),
            file.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.code() != Some(1)
            || !err.contains("`ffmpeg` feature")
            || !err.contains(name)
            || out.exists()
        {
            return Err(format!("{name}: exit {:?}, stderr: {err}", o.status.code()));
        }
    }
    Ok(())
}
