//! jupiter-bench: CPU benchmark harness. Figures go to `docs/BENCHMARKS.md`
//! together with the command that produced them.
//!
//! ```text
//! cargo run --release -p jupiter-bench -- median [--frames N] [--width W] [--height H]
//!                                                [--threads T] [--interp bicubic|bilinear] [--repeat R]
//! ```
//!
//! `median` times the naive reference of `stack-median` (every frame resampled
//! whole, then per pixel a new `Vec` of all frames' samples, fully sorted)
//! against the stage's fast path (pixel-major bands, `select_nth_unstable`,
//! parallel over bands through a [`ThreadBackend`] with all cores) on the same
//! synthetic capture (default: 100 frames of 512×512 mono with sub-pixel
//! shifts, noise and artifacts on 10 % of the frames), checks that both agree,
//! and prints the times and the speed-up.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use jupiter_kit::warp::{warped_rows, Interp};
use jupiter_plugin_api::testing::{MemFrames, ThreadBackend};
use jupiter_plugin_api::{Image, StackRequest, StageError};
use jupiter_plugin_stack_median::cpu::{stack, stack_reference};
use jupiter_plugin_stack_median::params::MedianParams;
use jupiter_testkit::frames::{capture, CaptureSpec};

const USAGE: &str = "usage: jupiter-bench median [--frames N] [--width W] [--height H] [--threads T] [--interp bicubic|bilinear] [--repeat R]";

/// Options of the `median` subcommand.
struct MedianOpts {
    frames: usize,
    width: usize,
    height: usize,
    threads: usize,
    interp: String,
    repeat: usize,
}

fn parse_median(args: &[String]) -> Result<MedianOpts, String> {
    let mut o = MedianOpts {
        frames: 100,
        width: 512,
        height: 512,
        threads: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        interp: "bicubic".into(),
        repeat: 3,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            value
                .parse::<usize>()
                .map_err(|_| format!("{flag}: '{value}' is not a positive integer"))
                .and_then(|v| {
                    if v == 0 {
                        Err(format!("{flag} must be at least 1"))
                    } else {
                        Ok(v)
                    }
                })
        };
        match flag.as_str() {
            "--frames" => o.frames = num()?,
            "--width" => o.width = num()?,
            "--height" => o.height = num()?,
            "--threads" => o.threads = num()?,
            "--repeat" => o.repeat = num()?,
            "--interp" => o.interp = value.clone(),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(o)
}

/// Runs `f` `repeat` times; the fastest run's time and its result.
fn best_of<T>(
    repeat: usize,
    mut f: impl FnMut() -> Result<T, StageError>,
) -> Result<(Duration, T), StageError> {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        let r = f()?;
        let d = t.elapsed();
        if best.as_ref().is_none_or(|(b, _)| d < *b) {
            best = Some((d, r));
        }
    }
    Ok(best.expect("at least one run"))
}

fn max_diff(a: &Image, b: &Image) -> f32 {
    a.data
        .iter()
        .zip(b.data.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn median(o: &MedianOpts) -> Result<(), String> {
    let err = |e: StageError| e.to_string();
    eprintln!(
        "generating {} frames of {}×{} …",
        o.frames, o.width, o.height
    );
    let spec = CaptureSpec {
        width: o.width,
        height: o.height,
        frames: o.frames,
        ..Default::default()
    };
    let cap = capture(&spec);
    let mem = MemFrames::new(o.width as u32, o.height as u32, 1, cap.frames);
    let req = StackRequest::new(cap.warps);
    let p = MedianParams {
        interpolation: Interp::parse(&o.interp).map_err(err)?,
    };
    let frames = mem.as_ref();

    eprintln!("resampling alone …");
    let interp = Interp::parse(&o.interp).map_err(err)?;
    let (resample_t, _) = best_of(1, || {
        let (mut buf, mut wt, mut scratch) = (
            vec![0.0f32; o.width * o.height],
            vec![0.0f32; o.width * o.height],
            Vec::new(),
        );
        for (i, warp) in req.alignment.warps.iter().enumerate() {
            warped_rows(
                &frames,
                i,
                warp,
                interp,
                0,
                o.height,
                &mut buf,
                Some(&mut wt),
                &mut scratch,
            )?;
        }
        Ok(())
    })
    .map_err(err)?;
    eprintln!("naive reference …");
    let (naive_t, naive) = best_of(1, || stack_reference(&frames, &req, &p)).map_err(err)?;
    eprintln!("pixel-major select, {} threads …", o.threads);
    let all = ThreadBackend::new(o.threads);
    let (fast_t, fast) = best_of(o.repeat, || {
        all.with_ctx("stack-median", |ctx| stack(ctx, &frames, &req, &p))
    })
    .map_err(err)?;
    eprintln!("pixel-major select, 1 thread …");
    let one = ThreadBackend::new(1);
    let (one_t, one_img) = best_of(o.repeat, || {
        one.with_ctx("stack-median", |ctx| stack(ctx, &frames, &req, &p))
    })
    .map_err(err)?;

    let diff = max_diff(&naive, &fast).max(max_diff(&naive, &one_img));
    let s = |d: Duration| d.as_secs_f64();
    println!("median stacking: {} frames of {}×{} mono, {} resampling, {} threads available to the fast path", o.frames, o.width, o.height, o.interp, o.threads);
    let row = |what: &str, d: Duration| {
        println!(
            "  {what:<48} {:8.3} s   speed-up {:5.1}×",
            s(d),
            s(naive_t) / s(d)
        )
    };
    row("naive gather-and-sort (1 thread)", naive_t);
    row(
        &format!(
            "pixel-major select ({} threads, best of {})",
            o.threads, o.repeat
        ),
        fast_t,
    );
    row(
        &format!("pixel-major select (1 thread, best of {})", o.repeat),
        one_t,
    );
    println!(
        "  {:<48} {:8.3} s   (included in each time above)",
        "resampling alone, every frame once (1 thread)",
        s(resample_t)
    );
    println!("  max |fast − naive|: {diff:e}");
    if diff > 1e-5 {
        return Err(format!("fast path differs from the reference by {diff}"));
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("median") => parse_median(&args[1..]).and_then(|o| median(&o)),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jupiter-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
