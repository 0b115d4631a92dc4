//! The peers: PlanetarySystemStacker and Siril, run on the same captures.

use super::*;

/// Runs PlanetarySystemStacker on a copy of the capture in its own folder
/// (it writes `<name>_pss.tiff` beside the input). Returns the measurement
/// and the output path.
pub(crate) fn run_pss(
    t: &Tools,
    cap: &Capture,
    surface: bool,
) -> Result<(Measured, PathBuf), String> {
    let dir = t.work.join("pss");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let input = dir.join(cap.path.file_name().unwrap());
    link_or_copy(&cap.path, &input)?;
    let mut c = Command::new("PlanetarySystemStacker");
    c.env("QT_QPA_PLATFORM", "offscreen")
        .arg(&input)
        .args(["--out_format", "tiff", "-s", "25", "-m"])
        .arg(if surface { "Surface" } else { "Planet" });
    let m = measure(&mut c, &t.work.join("pss.log"))?;
    let stem = input.file_stem().unwrap().to_string_lossy().to_string();
    let out = dir.join(format!("{stem}_pss.tiff"));
    if !out.exists() {
        return Err(format!("PlanetarySystemStacker wrote no {}", out.display()));
    }
    Ok((m, out))
}

/// Runs Siril (`siril-cli -s`): global star registration with a shift
/// transform, then a mean stack of the best 25 % (by registration quality)
/// without rejection or normalisation, saved as a 16-bit TIFF. Siril 1.0's
/// command-line registration is star-based and needs 10 star pairs, which a
/// planet or lunar capture does not have; then it is timed stacking all
/// frames unregistered (its reading + stacking cost, a lower bound on its
/// time), and the registration's own error is returned beside it.
pub(crate) fn run_siril(
    t: &Tools,
    cap: &Capture,
) -> Result<(Measured, PathBuf, Option<String>), String> {
    let dir = t.work.join("siril");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let name = cap.path.file_stem().unwrap().to_string_lossy().to_string();
    link_or_copy(&cap.path, &dir.join(format!("{name}.ser")))?;
    let script = |body: &str| -> Result<Command, String> {
        let path = dir.join("stack.ssf");
        std::fs::write(
            &path,
            format!(
                "requires 1.0.0\nsetcpu 2\ncd {}\n{body}load result\nsavetif result\n",
                dir.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let mut c = Command::new("siril-cli");
        c.arg("-s").arg(path);
        Ok(c)
    };
    let log = t.work.join("siril.log");
    let registered = script(&format!(
        "register {name} -transf=shift\nstack r_{name} rej n -nonorm -filter-quality=25% -out=result\n"
    ))?;
    let (m, note) = match measure(&mut { registered }, &log) {
        Ok(m) => (m, None),
        Err(e) => {
            let why = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .rfind(|l| l.contains("star") && !l.contains("Findstar"))
                .map_or(e, |l| l.trim_start_matches("log: ").to_string());
            let m = measure(
                &mut script(&format!("stack {name} rej n -nonorm -out=result\n"))?,
                &log,
            )?;
            (m, Some(why))
        }
    };
    let out = dir.join("result.tif");
    if !out.exists() {
        return Err("Siril wrote no result".into());
    }
    Ok((m, out, note))
}
