//! End-to-end GPU behaviour of the built host: `--gpu` and `--cpu` give the
//! same image, and a `--gpu` run without a usable adapter warns once and
//! produces exactly the CPU output.
#![cfg_attr(not(feature = "gpu"), allow(dead_code))]

use std::path::Path;

use jupiter_testkit::flaws::{generate_flawed, write_darks, write_flat_darks, write_flats, Flaws};
use jupiter_tests::synth::{self, generate, Scene, SynthColor, SynthOptions};
use jupiter_tests::*;

fn capture(dir: &Path) -> std::path::PathBuf {
    let ser = dir.join("cap.ser");
    let o = SynthOptions {
        width: 96,
        height: 80,
        frames: 16,
        scene: Scene::Planet,
        color: SynthColor::Rgb,
        seed: 3,
        jitter: 3.0,
        ..Default::default()
    };
    generate(&ser, &o).unwrap();
    ser
}

/// What most runs here keep.
const SELECT: &[&str] = &["--select", "50%"];

fn run_with(
    dir: &Path,
    ser: &Path,
    name: &str,
    device: &str,
    env: &[(&str, &str)],
    extra: &[&str],
) -> (std::process::Output, std::path::PathBuf, serde_json::Value) {
    let out = dir.join(format!("{name}.tif"));
    let report = dir.join(format!("{name}.json"));
    let o = std::process::Command::new(host())
        .envs(env.iter().copied())
        .args([
            "--plugins".as_ref(),
            build().as_os_str(),
            device.as_ref(),
            "run".as_ref(),
            ser.as_os_str(),
            "-o".as_ref(),
            out.as_os_str(),
            "--report".as_ref(),
            report.as_os_str(),
        ])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = read_report(&report);
    (o, out, r)
}

/// What a GPU run may differ from the CPU run by: 1e-4 of full scale for
/// the kernels, plus one 16-bit quantisation step.
const PARITY: f32 = 1e-4 + 1.0 / 65535.0;

/// `--cpu` and `--gpu` runs of `ser` with `extra`: both reports and the
/// largest difference between their images. The GPU run must have used the
/// adapter (these tests only run where one exists; else they are ignored).
fn cpu_and_gpu(
    dir: &Path,
    ser: &Path,
    extra: &[&str],
) -> (serde_json::Value, serde_json::Value, f32) {
    let (_, cpu_out, cpu_r) = run_with(dir, ser, "cpu", "--cpu", &[], extra);
    let (_, gpu_out, gpu_r) = run_with(dir, ser, "gpu", "--gpu", &[], extra);
    assert!(
        gpu_r["device"].as_str().unwrap().starts_with("GPU"),
        "the GPU run must use the adapter: {}",
        gpu_r["device"]
    );
    let d = max_abs_diff(&read_tiff(&cpu_out).data, &read_tiff(&gpu_out).data);
    (cpu_r, gpu_r, d)
}

fn gpu_and_cpu_runs_agree() {
    let dir = scratch("gpu-vs-cpu");
    let ser = capture(&dir);
    let (cpu_r, gpu_r, d) = cpu_and_gpu(&dir, &ser, SELECT);
    assert!(cpu_r["device"].as_str().unwrap().starts_with("CPU"));
    assert!(
        d <= PARITY,
        "max |cpu - gpu| = {d:e} (device: {})",
        gpu_r["device"]
    );
    eprintln!(
        "--gpu on {}: max difference to --cpu {d:e}",
        gpu_r["device"]
    );
}

/// A calibrated capture, uploaded raw and calibrated in the decode kernel:
/// the GPU run stacks the same image as the CPU run.
fn calibrated_gpu_and_cpu_runs_agree() {
    let dir = scratch("gpu-calibrated");
    let o = SynthOptions {
        width: 96,
        height: 80,
        frames: 16,
        scene: Scene::Planet,
        color: SynthColor::Bayer(jupiter_testkit::ser::Cfa::Rggb),
        seed: 5,
        jitter: 3.0,
        ..Default::default()
    };
    let flaws = Flaws::synthetic(&o, 8);
    let ser = dir.join("cap.ser");
    generate_flawed(&ser, &o, &flaws).unwrap();
    let (darks, flats) = (dir.join("darks.ser"), dir.join("flats.ser"));
    write_darks(&darks, &o, &flaws, 8, 1).unwrap();
    write_flats(&flats, &o, &flaws, 8, 2).unwrap();
    let mut extra = SELECT.to_vec();
    extra.extend([
        "--dark",
        darks.to_str().unwrap(),
        "--flat",
        flats.to_str().unwrap(),
    ]);
    let (cpu_r, gpu_r, d) = cpu_and_gpu(&dir, &ser, &extra);
    assert_eq!(cpu_r["calibration"], gpu_r["calibration"]);
    assert!(gpu_r["calibration"]["hot_pixels"].as_u64().unwrap() > 0);
    eprintln!("calibrated --gpu: max difference to --cpu {d:e}");
    assert!(d <= PARITY, "max |cpu - gpu| = {d:e}");
}

/// A derotated run: the aligner reads derotated frames from the host (not
/// the device copy), the stacker the device frames under the composed
/// warp fields; the GPU run stacks the CPU's image.
fn derotated_gpu_and_cpu_runs_agree() {
    use jupiter_testkit::rotating::{generate_rotating, RotatingOptions};
    let dir = scratch("gpu-derotated");
    let ser = dir.join("jupiter.ser");
    let o = RotatingOptions {
        width: 160,
        height: 160,
        radius: 60.0,
        frames: 24,
        ..RotatingOptions::default()
    };
    generate_rotating(&ser, &o).unwrap();
    let mut extra = SELECT.to_vec();
    extra.extend(["--derotate", "jupiter", "--no-post"]);
    let (cpu_r, gpu_r, d) = cpu_and_gpu(&dir, &ser, &extra);
    assert_eq!(cpu_r["derotation"], gpu_r["derotation"]);
    eprintln!("derotated --gpu: max difference to --cpu {d:e}");
    assert!(d <= PARITY, "max |cpu - gpu| = {d:e}");
}

/// A calibrated Bayer capture (the setup of `tests/calibration.rs`: a
/// flawed sensor, darks, flats and flat-darks) stacked with `--gpu`, where
/// the decode kernel calibrates, comes as close to the truth as with
/// `--cpu`: PSNRs within 0.05 dB.
fn calibrated_gpu_run_has_the_cpu_psnr() {
    let dir = scratch("gpu-calibrated-psnr");
    let o = SynthOptions {
        width: 160,
        height: 120,
        frames: 24,
        scene: Scene::Planet,
        color: SynthColor::Bayer(jupiter_testkit::ser::Cfa::Rggb),
        depth: 8,
        seed: 23,
        jitter: 4.0,
        blur: (0.8, 1.8),
        full_well: 250.0,
        read_noise: 3.0,
        artifacts: 0.0,
        bin: 1,
    };
    let flaws = Flaws::synthetic(&o, 77);
    let ser = dir.join("cap.ser");
    let shifts = generate_flawed(&ser, &o, &flaws).unwrap().shifts;
    let masters = [
        dir.join("darks.ser"),
        dir.join("flats.ser"),
        dir.join("fd.ser"),
    ];
    write_darks(&masters[0], &o, &flaws, 32, 101).unwrap();
    write_flats(&masters[1], &o, &flaws, 32, 102).unwrap();
    write_flat_darks(&masters[2], &o, &flaws, 32, 103).unwrap();
    let m = |i: usize| masters[i].to_str().unwrap();
    let extra = [
        "--select",
        "50%",
        "--no-post",
        "--aligner",
        "align-phase",
        "--dark",
        m(0),
        "--flat",
        m(1),
        "--flat-dark",
        m(2),
    ];
    let psnr = |name: &str, device: &str| {
        let (_, out, r) = run_with(&dir, &ser, name, device, &[], &extra);
        let best = r["selected"][0].as_u64().unwrap() as usize;
        let (dx, dy) = shifts[best];
        let truth = synth::render(o.scene, 160, 120, 3, dx as f64, dy as f64);
        (
            r,
            synth::psnr_fitted(&read_tiff(&out).data.to_vec(), &truth, 160, 120, 3, 8),
        )
    };
    let (cpu_r, cpu) = psnr("cal-cpu", "--cpu");
    let (gpu_r, gpu) = psnr("cal-gpu", "--gpu");
    assert!(gpu_r["device"].as_str().unwrap().starts_with("GPU"));
    assert_eq!(cpu_r["calibration"], gpu_r["calibration"]);
    eprintln!("calibrated Bayer stack PSNR: --cpu {cpu:.3} dB, --gpu {gpu:.3} dB");
    assert!(
        (cpu - gpu).abs() <= 0.05,
        "--cpu {cpu:.3} dB vs --gpu {gpu:.3} dB"
    );
}

fn gpu_request_without_adapter_warns_once_and_matches_cpu() {
    let dir = scratch("gpu-fallback");
    let ser = capture(&dir);
    let (_, cpu_out, _) = run_with(&dir, &ser, "cpu", "--cpu", &[], SELECT);
    // Only the GL backend, which this build does not contain: no adapter at all.
    let (o, fb_out, r) = run_with(
        &dir,
        &ser,
        "fallback",
        "--gpu",
        &[
            ("WGPU_BACKEND", "gl"),
            ("VK_ICD_FILENAMES", "/nonexistent.json"),
        ],
        SELECT,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("GPU requested").count(), 1, "stderr:\n{err}");
    assert!(r["device"].as_str().unwrap().starts_with("CPU"));
    assert_eq!(
        std::fs::read(&cpu_out).unwrap(),
        std::fs::read(&fb_out).unwrap(),
        "fallback output differs from the CPU output"
    );
}

/// A stage whose GPU path fails is re-run on the CPU with one warning, and
/// the run's output equals a `--cpu` run's.
fn a_failing_gpu_stage_is_rerun_on_the_cpu() {
    let dir = scratch("gpu-stage-fails");
    let ser = capture(&dir);
    let plugins = plugin_dir(
        &dir.join("plugins"),
        &["quality", "align_phase"],
        &[&fixture_file("gpu-fail")],
    );
    let run = |device: &str, out: &str| {
        let o = std::process::Command::new(host())
            .args([
                "--plugins".as_ref(),
                plugins.as_os_str(),
                device.as_ref(),
                "run".as_ref(),
                ser.as_os_str(),
                "-o".as_ref(),
                dir.join(out).as_os_str(),
                "--stacker".as_ref(),
                "fixture-gpu-fail".as_ref(),
                "--no-post".as_ref(),
            ])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{device}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stderr).to_string()
    };
    let err = run("--gpu", "gpu.tif");
    assert_eq!(err.matches("GPU path failed").count(), 1, "stderr:\n{err}");
    assert!(
        err.contains("fixture-gpu-fail")
            && err.contains("simulated device loss")
            && err.contains("re-running it on the CPU"),
        "{err}"
    );
    run("--cpu", "cpu.tif");
    assert_eq!(
        std::fs::read(dir.join("gpu.tif")).unwrap(),
        std::fs::read(dir.join("cpu.tif")).unwrap()
    );
}

/// Multi-point alignment (warp fields) stacks on the GPU too, like the CPU.
fn multipoint_stacks_agree_on_gpu_and_cpu() {
    let o = SynthOptions {
        width: 160,
        height: 128,
        frames: 12,
        scene: Scene::Lunar,
        color: SynthColor::Mono,
        seed: 8,
        jitter: 2.0,
        ..Default::default()
    };
    let (dir, ser, _) = generated("gpu-multipoint", &o);
    let run = |device: &str, name: &str| {
        let more = ["--aligner", "align-multipoint", "--no-post"];
        let (_, out, report) = run_with(&dir, &ser, name, device, &[], &more);
        (read_tiff(&out), report)
    };
    let (cpu, _) = run("--cpu", "cpu");
    let (gpu, r) = run("--gpu", "gpu");
    let d = max_abs_diff(&cpu.data, &gpu.data);
    assert!(d <= PARITY, "max |cpu - gpu| = {d:e} on {}", r["device"]);
}

/// A batch (`run A B C D`) gives each capture the image a run of it alone
/// gives, on the CPU and on the GPU (where the second and later captures
/// are decoded into the device buffers the earlier ones leave: the same
/// size, a smaller one, then a larger one that needs new buffers); a broken
/// capture in the batch is reported (exit 1, an error entry naming it in
/// the report) and the others are still written.
fn a_batch_gives_each_capture_its_own_result() {
    batch_on("--cpu");
}

fn a_gpu_batch_gives_each_capture_its_own_result() {
    batch_on("--gpu");
}

fn batch_on(device: &str) {
    let dir = scratch(&format!("batch{device}"));
    let make = |name: &str, w: u32, h: u32, frames: usize, seed: u64| {
        let ser = dir.join(format!("{name}.ser"));
        let o = SynthOptions {
            width: w,
            height: h,
            frames,
            scene: Scene::Planet,
            color: SynthColor::Mono,
            seed,
            jitter: 3.0,
            ..Default::default()
        };
        generate(&ser, &o).unwrap();
        ser
    };
    let caps = [
        make("a", 96, 80, 16, 5),
        make("b", 96, 80, 16, 6),
        make("c", 64, 64, 12, 7),
        make("d", 128, 96, 20, 8),
    ];
    let broken = dir.join("broken.ser");
    std::fs::write(&broken, b"not a SER file").unwrap();
    {
        let out = dir.join(format!("out{device}"));
        let report = dir.join(format!("batch{device}.json"));
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--plugins".as_ref(),
            build().as_os_str(),
            device.as_ref(),
            "run".as_ref(),
        ];
        args.extend(caps[..2].iter().map(|p| p.as_os_str()));
        args.push(broken.as_os_str());
        args.extend(caps[2..].iter().map(|p| p.as_os_str()));
        args.extend([
            "-o".as_ref(),
            out.as_os_str(),
            "--report".as_ref(),
            report.as_os_str(),
            "--select".as_ref(),
            "50%".as_ref(),
        ]);
        let o = run_host(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{device}: {err}");
        assert!(err.contains("broken.ser"), "{device}: {err}");
        assert!(err.contains("1 of 5 captures failed"), "{device}: {err}");
        let r = read_report(&report);
        let entries = r.as_array().expect("a batch report is an array");
        assert_eq!(entries.len(), 5);
        assert!(entries[2]["error"].as_str().unwrap().contains("broken.ser"));
        for (k, cap) in caps.iter().enumerate() {
            let name = cap.file_stem().unwrap().to_string_lossy().to_string();
            let (_, alone, _) =
                run_with(&dir, cap, &format!("{name}{device}"), device, &[], SELECT);
            let batched = out.join(format!("{name}_jupiter.tif"));
            let entry = &entries[if k < 2 { k } else { k + 1 }];
            assert_eq!(
                entry["output"].as_str().unwrap(),
                batched.display().to_string()
            );
            let (a, b) = (read_tiff(&alone), read_tiff(&batched));
            assert_eq!((a.width, a.height), (b.width, b.height));
            // Bit-identical: a batch runs each capture exactly as alone.
            assert_eq!(
                max_abs_diff(&a.data, &b.data),
                0.0,
                "{device}: {name} batched differs from {name} alone"
            );
        }
    }
}

jupiter_tests::gpu_main!(
    gpu: [
        gpu_and_cpu_runs_agree,
        calibrated_gpu_and_cpu_runs_agree,
        derotated_gpu_and_cpu_runs_agree,
        calibrated_gpu_run_has_the_cpu_psnr,
        a_failing_gpu_stage_is_rerun_on_the_cpu,
        multipoint_stacks_agree_on_gpu_and_cpu,
        a_gpu_batch_gives_each_capture_its_own_result,
    ],
    always: [
        gpu_request_without_adapter_warns_once_and_matches_cpu,
        a_batch_gives_each_capture_its_own_result,
    ],
);
