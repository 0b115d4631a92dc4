//! The AVX2 copies of the hot loops (`jupiter_plugin_api::simd`, kit's
//! samplers and sums, the host's demosaic) against the portable code:
//! whole default runs of the host on generated captures, once as the CPU
//! allows and once with `JUPITER_SIMD=portable`, must write the same
//! TIFF bit for bit (the AVX2 code does the same operations in the same
//! order). Ignored (shown as such) on a CPU without AVX2, where both runs
//! would take the portable path.

use std::path::Path;

use jupiter_testkit::capture::{Scene, SynthColor, SynthOptions};
use jupiter_testkit::ser::Cfa;
use jupiter_tests::*;
use libtest_mimic::{Arguments, Failed, Trial};

/// The default run's output, with `JUPITER_SIMD` set to `simd` if given.
fn stacked(ser: &Path, out: &Path, simd: Option<&str>) -> Result<Vec<u8>, Failed> {
    let mut cmd = std::process::Command::new(host());
    cmd.args(capture_args(build(), ser))
        .args(["--no-post", "--force", "-q", "-o"])
        .arg(out)
        .env_remove("JUPITER_SIMD");
    if let Some(v) = simd {
        cmd.env("JUPITER_SIMD", v);
    }
    let o = cmd.output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("run failed: {}", String::from_utf8_lossy(&o.stderr)).into());
    }
    std::fs::read(out).map_err(|e| Failed::from(e.to_string()))
}

fn same_bits(name: &str, o: SynthOptions) -> Result<(), Failed> {
    let (dir, ser, _) = generated(name, &o);
    let wide = stacked(&ser, &dir.join("wide.tif"), None)?;
    let portable = stacked(&ser, &dir.join("portable.tif"), Some("portable"))?;
    if wide != portable {
        return Err(format!("{name}: the AVX2 and portable runs wrote different stacks").into());
    }
    Ok(())
}

fn options(scene: Scene, color: SynthColor, depth: u32) -> SynthOptions {
    SynthOptions {
        width: 256,
        height: 192,
        frames: 48,
        scene,
        color,
        depth,
        ..Default::default()
    }
}

fn main() {
    let args = Arguments::from_args();
    #[cfg(target_arch = "x86_64")]
    let avx2 = std::arch::is_x86_feature_detected!("avx2");
    #[cfg(not(target_arch = "x86_64"))]
    let avx2 = false;
    let cases: Vec<(&str, SynthOptions)> = vec![
        (
            "simd-planet-mono8",
            options(Scene::Planet, SynthColor::Mono, 8),
        ),
        (
            "simd-planet-bayer8",
            options(Scene::Planet, SynthColor::Bayer(Cfa::Rggb), 8),
        ),
        (
            "simd-lunar-mono16",
            options(Scene::Lunar, SynthColor::Mono, 16),
        ),
        ("simd-lunar-rgb8", options(Scene::Lunar, SynthColor::Rgb, 8)),
    ];
    let trials = cases
        .into_iter()
        .map(|(name, o)| {
            Trial::test(
                format!("avx2_and_portable_runs_write_the_same_stack_{name}"),
                move || same_bits(name, o),
            )
            .with_ignored_flag(!avx2)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}
