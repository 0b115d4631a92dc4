//! `--large`: a capture from a large sensor (30 × 6000×4000 16-bit lunar
//! surface), jupiter's default side by side with PlanetarySystemStacker,
//! and its time per pixel·frame against the 640×480 planet's in the same
//! run; `--huge` adds 30 × 9576×6388 (jupiter alone).

use super::*;

/// Frame size and count of the large capture: a lunar imager's sensor.
const LARGE: (usize, usize, usize) = (6000, 4000, 30);

/// The largest sensor the frame-size target names (`--huge`).
const HUGE: (usize, usize, usize) = (9576, 6388, 30);

/// Writes the first `frames` frames of the 16-bit mono SER `src`, each
/// tiled over `w × h` (cropped at the right and bottom), to `dst`: a large
/// sensor's capture with the generated seeing and noise, and a known truth.
pub(crate) fn tile_ser(
    src: &Path,
    dst: &Path,
    (w, h, frames): (usize, usize, usize),
) -> Result<(), String> {
    if dst.exists() {
        return Ok(());
    }
    let err = |e: std::io::Error| format!("{}: {e}", src.display());
    let (mut f, mut header, frame, total) = open_ser(src).map_err(err)?;
    let field = |o: usize| i32::from_le_bytes(header[o..o + 4].try_into().unwrap()) as usize;
    let (sw, sh) = (field(26), field(30));
    if field(34) <= 8
        || field(18) >= 100
        || frame as usize != sw * sh * 2
        || (total as usize) < frames
    {
        return Err(format!(
            "{}: tiling needs {frames} or more 16-bit mono frames",
            src.display()
        ));
    }
    header[26..30].copy_from_slice(&(w as i32).to_le_bytes());
    header[30..34].copy_from_slice(&(h as i32).to_le_bytes());
    header[38..42].copy_from_slice(&(frames as i32).to_le_bytes());
    let tmp = dst.with_extension("ser.part");
    let mut o = std::io::BufWriter::new(File::create(&tmp).map_err(err)?);
    o.write_all(&header).map_err(err)?;
    let (mut small, mut row) = (vec![0u8; sw * sh * 2], vec![0u8; w * 2]);
    for _ in 0..frames {
        f.read_exact(&mut small).map_err(err)?;
        for y in 0..h {
            let line = &small[(y % sh) * sw * 2..][..sw * 2];
            row.chunks_mut(sw * 2)
                .for_each(|c| c.copy_from_slice(&line[..c.len()]));
            o.write_all(&row).map_err(err)?;
        }
    }
    o.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, dst).map_err(err)
}

/// `truth` tiled over `w × h` as [`tile_ser`] tiles the frames.
pub(crate) fn tile_image(truth: &Image, w: usize, h: usize) -> Image {
    let (sw, sh, c) = truth.dims();
    let mut out = Image::new(w as u32, h as u32, c as u32);
    for (y, row) in out.data.chunks_mut(w * c).enumerate() {
        let line = &truth.data[(y % sh) * sw * c..][..sw * c];
        row.chunks_mut(sw * c)
            .for_each(|r| r.copy_from_slice(&line[..r.len()]));
    }
    out
}

pub(crate) fn large(o: &Opts, t: &Tools) -> Result<(), String> {
    let lunar = case_specs(false)
        .into_iter()
        .find(|s| s.name == "lunar-mono16")
        .expect("the lunar reference capture");
    let src = capture(&o.dir, &lunar)?;
    let planet = planet_ns(o, t)?;
    println!("\nThe 640×480 figure the target compares with, in this run: `planet-mono8` (1000 × 640×480 8-bit), default, min of {} runs after one warm-up: {planet:.2} ns per pixel·frame.", o.repeat);
    let mut sizes = vec![LARGE];
    if o.huge {
        sizes.push(HUGE);
    }
    for size in sizes {
        one_size(o, t, &src, size, planet)?;
    }
    Ok(())
}

/// Nanoseconds per pixel·frame of the default run on `planet-mono8`.
fn planet_ns(o: &Opts, t: &Tools) -> Result<f64, String> {
    let spec = case_specs(false)
        .into_iter()
        .find(|s| s.name == "planet-mono8")
        .expect("the planet reference capture");
    let cap = capture(&o.dir, &spec)?;
    let out = t.work.join("large-planet.tif");
    let runs = repeat(
        o.repeat,
        true,
        || t.jupiter_with(&cap.path, &out, false, "auto"),
        &t.work.join("jupiter.log"),
    )?;
    let o = &spec.opts;
    Ok(summary(&runs).0 * 1e9 / (o.width as f64 * o.height as f64 * o.frames as f64))
}

/// The `(w, h, n)` capture tiled from `src`, jupiter (and, for
/// [`LARGE`], PSS) on it.
fn one_size(
    o: &Opts,
    t: &Tools,
    src: &Capture,
    (w, h, n): (usize, usize, usize),
    planet: f64,
) -> Result<(), String> {
    let path = o.dir.join(format!("lunar-{w}x{h}.ser"));
    tile_ser(&src.path, &path, (w, h, n))?;
    let truth = tile_image(&src.truth, w, h);
    // Beside the capture, for `e2e --psnr` on single runs.
    let truth_path = path.with_extension("truth.tif");
    if !truth_path.exists() {
        write_image(&truth, &truth_path, (false, true), &Default::default())
            .map_err(|e| e.to_string())?;
    }
    let cap = Capture {
        truth,
        bytes: std::fs::metadata(&path).map_err(|e| e.to_string())?.len(),
        path,
    };
    println!("\n### A large sensor: {n} × {w}×{h} 16-bit lunar surface\n");
    println!("The first {n} frames of `lunar-mono16` tiled and cropped (the truth tiled alike); mean stacking, no sharpening; min / median of {} runs ({} after one warm-up for jupiter), peak RSS in MB; the memory target is 24 bytes per pixel of a frame + 100 MB = {:.0} MB.\n", o.repeat, o.repeat, (24 * w * h) as f64 / 1e6 + 100.0);
    println!("| tool | time min / median (s) | peak RSS (MB) | PSNR (dB) | ns per pixel·frame | ÷ 640×480 | PSS ÷ tool |");
    println!("|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    for (label, select) in [
        ("jupiter (default)", "auto"),
        ("jupiter (`--select 25%`)", "25%"),
    ] {
        let out = t
            .work
            .join(format!("large-{}.tif", select.trim_end_matches('%')));
        let runs = repeat(
            o.repeat,
            true,
            || t.jupiter_with(&cap.path, &out, false, select),
            &t.work.join("jupiter.log"),
        )?;
        rows.push((label.to_string(), runs, out));
    }
    // PSS on the largest frames would take minutes a run and most of this
    // machine's memory: only on the 6000×4000 capture.
    let pss_min = if (w, h, n) == LARGE {
        run_pss_rows(o, t, &cap, &mut rows)
    } else {
        None
    };
    for (label, runs, out) in rows {
        let min = summary(&runs).0;
        let ratio = pss_min.map_or(String::new(), |p| format!("{:.1}", p / min));
        let ns = min * 1e9 / (w * h * n) as f64;
        println!(
            "| {label} | {} | {} | {ns:.1} | {:.2} | {ratio} |",
            fmt_run(&runs),
            psnr_text(&out, &cap.truth),
            ns / planet,
        );
    }
    Ok(())
}

/// PSS's runs on `cap` added to `rows`; its fastest time.
fn run_pss_rows(
    o: &Opts,
    t: &Tools,
    cap: &Capture,
    rows: &mut Vec<(String, Vec<Measured>, PathBuf)>,
) -> Option<f64> {
    let pss: Result<Vec<(Measured, PathBuf)>, String> =
        (0..o.repeat).map(|_| run_pss(t, cap, true)).collect();
    match pss {
        Ok(runs) => {
            let m: Vec<Measured> = runs.iter().map(|r| r.0).collect();
            let min = summary(&m).0;
            rows.push((
                "PlanetarySystemStacker (`-s 25 -m Surface`)".into(),
                m,
                runs[0].1.clone(),
            ));
            Some(min)
        }
        Err(e) => {
            println!("| PlanetarySystemStacker | failed: {e} | | | | | |");
            None
        }
    }
}
