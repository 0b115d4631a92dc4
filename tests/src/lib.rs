//! Helpers for the end-to-end tests in `tests/`: build the workspace once,
//! locate the host binary and the plugin libraries, run the host, read its
//! outputs, and compare them with the synthetic truth.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod gpu_harness;

pub use jupiter_testkit::capture as synth;

/// Where cargo puts the debug build.
pub fn target_dir() -> PathBuf {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| ws.join("target"))
        .join("debug")
}

/// Builds the host and every plugin once per test process (`cargo build
/// --workspace`, a no-op when up to date) and returns the build directory,
/// which holds `jupiter-host` and the plugin libraries.
pub fn build() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(ws)
            .args(["build", "--workspace", "--quiet"]);
        // Build the host as this test crate sees it (with or without the GPU
        // backend and FFmpeg).
        let features: Vec<&str> = [
            ("gpu", cfg!(feature = "gpu")),
            ("ffmpeg", cfg!(feature = "ffmpeg")),
        ]
        .into_iter()
        .filter_map(|(f, on)| on.then_some(f))
        .collect();
        if !features.is_empty() {
            cmd.args(["--features", &features.join(",")]);
        }
        let status = cmd.status().expect("cannot run cargo build");
        assert!(status.success(), "cargo build --workspace failed");
        target_dir()
    })
}

/// Where the out-of-workspace projects (tests/fixtures, examples/*) are built:
/// `<target>/fixtures`, one target directory so that they share compiled
/// dependencies.
pub fn fixtures_target_dir() -> PathBuf {
    target_dir().parent().unwrap().join("fixtures")
}

/// Builds one standalone cargo project (`cargo build --manifest-path ...`)
/// into [`fixtures_target_dir`]; returns the directory holding its libraries.
fn build_standalone(manifest: &Path) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = fixtures_target_dir();
    let status = Command::new(cargo)
        .arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(manifest)
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("cannot run cargo build");
    assert!(
        status.success(),
        "cargo build --manifest-path {} failed",
        manifest.display()
    );
    target.join("debug")
}

/// Builds the broken and hostile plugin fixtures (`tests/fixtures`, real
/// cdylibs) once per test process and returns the directory holding them.
pub fn fixtures() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        build_standalone(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("fixtures")
                .join("Cargo.toml"),
        )
    })
}

/// A fixture library by crate suffix (`panic` → `libjupiter_fixture_panic.so`).
pub fn fixture_file(name: &str) -> PathBuf {
    fixtures().join(library_name("jupiter_fixture", name))
}

/// The platform's file name of the cdylib `<prefix>_<name>` (dashes as
/// underscores), e.g. `libjupiter_plugin_stack_mean.so`.
fn library_name(prefix: &str, name: &str) -> String {
    format!(
        "{}{prefix}_{}{}",
        std::env::consts::DLL_PREFIX,
        name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    )
}

/// Builds `examples/third-party-stacker` (an out-of-tree plugin) once per
/// test process, exactly as its author would, and returns its library.
pub fn third_party_stacker() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ws = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let dir = build_standalone(
            &ws.join("examples")
                .join("third-party-stacker")
                .join("Cargo.toml"),
        );
        dir.join(format!(
            "{}stack_trimmed_mean{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ))
    })
}

/// The plugins a run with `--no-post` needs (library names): without
/// `align_multipoint` the default aligner is replaced by `align-phase`
/// (global alignment) with a warning.
pub const NO_POST_PLUGINS: &[&str] = &["quality", "align_phase", "stack_mean"];

/// Makes `dir` a plugin directory holding the standard plugins named in
/// `standard` (by library name, e.g. `stack_mean`, copied from the main build)
/// and the `extra` library files.
pub fn plugin_dir(dir: &Path, standard: &[&str], extra: &[&Path]) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for name in standard {
        let f = plugin_file(name);
        std::fs::copy(&f, dir.join(f.file_name().unwrap()))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    for f in extra {
        std::fs::copy(f, dir.join(f.file_name().unwrap()))
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    dir.to_path_buf()
}

/// Files in `dir` (names only), sorted.
pub fn list_dir(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    v.sort();
    v
}

/// The built host binary.
pub fn host() -> PathBuf {
    build().join(format!("jupiter-host{}", std::env::consts::EXE_SUFFIX))
}

/// Plugin libraries in the build directory, by stage library name
/// (e.g. `stack_mean` → `.../libjupiter_plugin_stack_mean.so`).
pub fn plugin_file(name: &str) -> PathBuf {
    build().join(library_name("jupiter_plugin", name))
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let d = target_dir()
        .parent()
        .unwrap()
        .join("tmp")
        .join("e2e")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the host with `args`; returns its output (never panics on failure).
pub fn run_host<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(host())
        .args(args)
        .output()
        .expect("cannot start jupiter-host")
}

/// Runs the host and panics with its stderr unless it succeeds.
pub fn run_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = run_host(args);
    assert!(
        out.status.success(),
        "jupiter-host failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A scratch directory `name` holding `cap.ser`: a small generated capture
/// (the generator's defaults otherwise). Returns `(dir, ser)`.
pub fn small_capture(name: &str, width: u32, height: u32, frames: usize) -> (PathBuf, PathBuf) {
    let o = synth::SynthOptions {
        width,
        height,
        frames,
        ..Default::default()
    };
    let (dir, ser, _) = generated(name, &o);
    (dir, ser)
}

/// A fresh scratch folder `name` holding `cap.ser` generated with `o`:
/// returns the folder, the capture's path and what the generator knows of it.
pub fn generated(name: &str, o: &synth::SynthOptions) -> (PathBuf, PathBuf, synth::SynthCapture) {
    let dir = scratch(name);
    let ser = dir.join("cap.ser");
    let cap = synth::generate(&ser, o).unwrap();
    (dir, ser, cap)
}

/// The start of a run's command line: `--plugins <plugins> run <ser>`.
pub fn capture_args(plugins: &Path, ser: &Path) -> Vec<std::ffi::OsString> {
    vec!["--plugins".into(), plugins.into(), "run".into(), ser.into()]
}

/// `jupiter-host --plugins <plugins> run <ser> <args…>` (success or not).
pub fn try_run_capture(plugins: &Path, ser: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut all = capture_args(plugins, ser);
    all.extend(args.iter().map(|a| a.to_os_string()));
    run_host(all)
}

/// `jupiter-host --plugins <plugins> run <ser> <args…>`, expected to succeed.
pub fn run_capture(plugins: &Path, ser: &Path, args: &[&std::ffi::OsStr]) -> Output {
    let mut all = capture_args(plugins, ser);
    all.extend(args.iter().map(|a| a.to_os_string()));
    run_ok(all)
}

/// `jupiter-host --plugins <plugins> run <ser> <args…>`, expected to be
/// refused with exit code 1 and no panic; returns its stderr.
pub fn refused_run(plugins: &Path, ser: &Path, args: &[&std::ffi::OsStr]) -> String {
    let o = try_run_capture(plugins, ser, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{args:?} was accepted:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// The PSNR of the capture's best single frame against the truth rendered at
/// that frame's shift (frames in `skip`, e.g. artifacts, left out).
pub fn best_frame_psnr(
    ser: &Path,
    o: &synth::SynthOptions,
    cap: &synth::SynthCapture,
    skip: &[usize],
) -> f64 {
    let (w, h) = (o.width as usize, o.height as usize);
    let ser_file = jupiter_host::io::ser::SerFile::open(ser, Default::default()).unwrap();
    (0..o.frames)
        .filter(|i| !skip.contains(i))
        .map(|i| {
            let (dx, dy) = (cap.shifts[i].0 as f64, cap.shifts[i].1 as f64);
            let t = synth::render(o.scene, w, h, 1, dx, dy);
            synth::psnr_interior(&ser_file.decode_frame(i).unwrap(), &t, w, h, 1, 8)
        })
        .fold(f64::MIN, f64::max)
}

/// `jupiter-host --plugins <plugins> run <ser> -o <out> --report <report>
/// <more…>`, expected to succeed; returns the report.
pub fn run_reported(
    plugins: &Path,
    ser: &Path,
    (out, report): (&Path, &Path),
    more: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "-o".as_ref(),
        out.as_os_str(),
        "--report".as_ref(),
        report.as_os_str(),
    ];
    args.extend(more.iter().map(|a| std::ffi::OsStr::new(*a)));
    run_capture(plugins, ser, &args);
    read_report(report)
}

/// Reads a report written with `--report`.
pub fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Reads a 16-bit TIFF written by the host.
pub fn read_tiff(path: &Path) -> jupiter_plugin_api::Image {
    jupiter_host::io::write::read_tiff(path).unwrap()
}

/// A host backend offering the GPU (software adapters allowed, as an explicit
/// request would). `None` when no adapter exists, which is a test failure
/// when `CI` or `JUPITER_REQUIRE_GPU` is set: in CI the lavapipe driver is
/// installed, so a skipped GPU test would hide a broken GPU path.
pub fn gpu_backend() -> Option<jupiter_host::backend::HostBackend> {
    use jupiter_host::backend::{select_device, BackendChoice};
    let sel = select_device(BackendChoice::Gpu);
    let Some(gpu) = sel.gpu else {
        let required =
            std::env::var_os("CI").is_some() || std::env::var_os("JUPITER_REQUIRE_GPU").is_some();
        assert!(
            !required,
            "no GPU adapter in CI: {}",
            sel.warning.unwrap_or_default()
        );
        eprintln!("skipping GPU test: {}", sel.warning.unwrap_or_default());
        return None;
    };
    let mut be = jupiter_host::backend::HostBackend::new(2, Default::default()).unwrap();
    be.quiet = true;
    be.set_gpu(Some(gpu));
    eprintln!("GPU: {}", sel.description);
    Some(be)
}

/// A GPU backend and a CPU backend, for a parity test (the GPU harness runs
/// those only where an adapter exists, or in CI where its absence fails).
pub fn backends() -> (
    jupiter_host::backend::HostBackend,
    jupiter_host::backend::HostBackend,
) {
    (gpu_only(), cpu_backend())
}

/// The GPU backend of a GPU test (which the harness runs only where an
/// adapter exists, or in CI where its absence is a failure).
pub fn gpu_only() -> jupiter_host::backend::HostBackend {
    gpu_backend().expect("no GPU adapter (the GPU harness should have ignored this test)")
}

/// A stack request over `warps` with quality scores 1, 2, 3, … (so that
/// quality weighting changes the result).
pub fn scored_request(
    warps: Vec<jupiter_plugin_api::FrameWarp>,
) -> jupiter_plugin_api::StackRequest {
    let n = warps.len();
    jupiter_plugin_api::StackRequest::new(warps)
        .with_scores((0..n).map(|k| 1.0 + k as f32).collect::<Vec<_>>())
}

/// A plain CPU host backend.
pub fn cpu_backend() -> jupiter_host::backend::HostBackend {
    let mut be = jupiter_host::backend::HostBackend::new(2, Default::default()).unwrap();
    be.quiet = true;
    be
}

pub use jupiter_testkit::reference::max_abs_diff;

/// `n` frames of [`texture`] (seeds `seed0..seed0 + n`) as an in-memory source.
pub fn texture_frames(
    (w, h, c): (usize, usize, usize),
    n: usize,
    seed0: u32,
) -> jupiter_plugin_api::testing::MemFrames {
    let frames = (0..n as u32).map(|k| texture(w, h, c, seed0 + k)).collect();
    jupiter_plugin_api::testing::MemFrames::new(w as u32, h as u32, c as u32, frames)
}

/// `n` global shifts moving linearly: frame k is shifted by
/// `(x0 + k·step_x, y0 + k·step_y)`.
pub fn linear_shifts(
    n: usize,
    (x0, step_x): (f32, f32),
    (y0, step_y): (f32, f32),
) -> Vec<jupiter_plugin_api::FrameWarp> {
    (0..n)
        .map(|k| {
            jupiter_plugin_api::FrameWarp::shift(x0 + k as f32 * step_x, y0 + k as f32 * step_y)
        })
        .collect()
}

/// `n` global shifts scattered over a few values per axis: frame k is
/// shifted by `((k·mul) mod modulus)·scale + offset` on each axis, given as
/// `(mul, modulus, scale, offset)`.
pub fn scattered_shifts(
    n: usize,
    x: (usize, usize, f32, f32),
    y: (usize, usize, f32, f32),
) -> Vec<jupiter_plugin_api::FrameWarp> {
    let at = |(mul, modulus, scale, offset): (usize, usize, f32, f32), k: usize| {
        ((k * mul) % modulus) as f32 * scale + offset
    };
    (0..n)
        .map(|k| jupiter_plugin_api::FrameWarp::shift(at(x, k), at(y, k)))
        .collect()
}

/// `frames` of `dims` uploaded to the device of `ctx`, `per_buffer` frames
/// per device buffer (so that batches span buffers), as the host keeps a
/// capture resident.
pub fn resident_frames(
    ctx: &jupiter_plugin_api::StageCtx,
    (w, h, c): (usize, usize, usize),
    frames: Vec<Vec<f32>>,
    per_buffer: usize,
) -> jupiter_plugin_api::testing::MemFrames {
    let mut mem = jupiter_plugin_api::testing::MemFrames::new(w as u32, h as u32, c as u32, frames);
    mem.upload(&ctx.gpu().unwrap(), per_buffer).unwrap();
    mem
}

/// [`texture_frames`] uploaded to the device of `ctx` (in buffers of 3
/// frames), as the host keeps a capture resident.
pub fn resident_texture_frames(
    ctx: &jupiter_plugin_api::StageCtx,
    dims: (usize, usize, usize),
    seed0: u32,
) -> jupiter_plugin_api::testing::MemFrames {
    let frames = (0..7u32)
        .map(|k| texture(dims.0, dims.1, dims.2, seed0 + k))
        .collect();
    resident_frames(ctx, dims, frames, 3)
}

/// A textured test image with sharp edges touching the borders, in [0, 1].
pub fn texture(w: usize, h: usize, c: usize, seed: u32) -> Vec<f32> {
    (0..w * h * c)
        .map(|i| {
            let p = i / c;
            let (x, y, k) = ((p % w) as f32, (p / w) as f32, (i % c) as f32);
            let v = 0.5
                + 0.3 * ((x * 0.37 + k + seed as f32).sin() * (y * 0.23 - k).cos())
                + if (x as usize / 7 + y as usize / 5).is_multiple_of(2) {
                    0.1
                } else {
                    -0.1
                };
            v.clamp(0.0, 1.0)
        })
        .collect()
}

/// A stage context over a host backend (in-process stage calls).
pub fn stage_ctx(be: &jupiter_host::backend::HostBackend) -> jupiter_plugin_api::StageCtx<'_> {
    jupiter_plugin_api::StageCtx {
        backend: be.as_ref(),
        stage: "parity".into(),
    }
}

/// An image's pixels in host memory (downloads a device image).
pub fn host_data(ctx: &jupiter_plugin_api::StageCtx, img: jupiter_plugin_api::Image) -> Vec<f32> {
    ctx.to_host(img).unwrap().data.into_vec()
}
