//! The generated captures, and SER copies (repeated, truncated) made from them.

use super::*;

/// One capture to generate.
#[derive(Clone)]
pub(crate) struct CaseSpec {
    pub(crate) name: String,
    pub(crate) what: String,
    pub(crate) opts: SynthOptions,
}

pub(crate) fn case_specs(quick: bool) -> Vec<CaseSpec> {
    let scale = if quick { 10 } else { 1 };
    let base = SynthOptions {
        width: 640,
        height: 480,
        frames: 1000 / scale,
        seed: 11,
        ..SynthOptions::default()
    };
    vec![
        CaseSpec {
            name: "planet-mono8".into(),
            what: format!("{} × 640×480 8-bit mono (Jupiter)", base.frames),
            opts: base.clone(),
        },
        CaseSpec {
            name: "lunar-mono16".into(),
            what: format!("{} × 1024×1024 16-bit mono (lunar surface)", 500 / scale),
            opts: SynthOptions {
                width: 1024,
                height: 1024,
                frames: 500 / scale,
                depth: 16,
                scene: Scene::Lunar,
                seed: 12,
                ..base.clone()
            },
        },
        CaseSpec {
            name: "planet-bayer8".into(),
            what: format!("{} × 640×480 8-bit Bayer RGGB", base.frames),
            opts: SynthOptions {
                color: SynthColor::Bayer(Cfa::Rggb),
                seed: 13,
                ..base
            },
        },
    ]
}

/// A generated capture and its truth.
pub(crate) struct Capture {
    pub(crate) path: PathBuf,
    pub(crate) truth: Image,
    pub(crate) bytes: u64,
}

/// Generates `spec` into `dir` unless it is already there.
pub(crate) fn capture(dir: &Path, spec: &CaseSpec) -> Result<Capture, String> {
    let path = dir.join(format!("{}.ser", spec.name));
    let truth_path = dir.join(format!("{}.truth.tif", spec.name));
    if !(path.exists() && truth_path.exists()) {
        eprintln!("generating {} ({})", path.display(), spec.what);
        let t = Instant::now();
        let c = generate(&path, &spec.opts).map_err(|e| format!("{}: {e}", path.display()))?;
        write_image(&c.truth, &truth_path, (false, true), &Default::default())
            .map_err(|e| e.to_string())?;
        eprintln!("  {:.1} s", t.elapsed().as_secs_f64());
    }
    Ok(Capture {
        truth: read_image(&truth_path)?,
        bytes: std::fs::metadata(&path).map_err(|e| e.to_string())?.len(),
        path,
    })
}

/// Opens a SER file for copying: the file (positioned after the header),
/// the header, bytes per frame and frame count.
pub(crate) fn open_ser(src: &Path) -> std::io::Result<(File, Vec<u8>, u64, u64)> {
    let mut f = File::open(src)?;
    let mut header = vec![0u8; 178];
    f.read_exact(&mut header)?;
    let (frame, total) = ser_layout(&header);
    Ok((f, header, frame, total))
}

/// Bytes per frame and frame count from a SER header (178 bytes).
pub(crate) fn ser_layout(header: &[u8]) -> (u64, u64) {
    let field = |o: usize| i32::from_le_bytes(header[o..o + 4].try_into().unwrap());
    let (w, h, depth, total) = (
        field(26) as u64,
        field(30) as u64,
        field(34),
        field(38) as u64,
    );
    let planes = if matches!(field(18), 100 | 101) { 3 } else { 1 };
    (w * h * planes * if depth > 8 { 2 } else { 1 }, total)
}

/// Writes the SER `src` with its frames repeated `times` times (no
/// timestamps) to `dst`: a long capture from a short generated one.
pub(crate) fn repeat_ser(src: &Path, dst: &Path, times: usize) -> Result<(), String> {
    if dst.exists() {
        return Ok(());
    }
    let err = |e: std::io::Error| format!("{}: {e}", src.display());
    let (mut f, mut header, frame, total) = open_ser(src).map_err(err)?;
    let bytes = frame * total;
    header[38..42].copy_from_slice(&((total as usize * times) as i32).to_le_bytes());
    let tmp = dst.with_extension("ser.part");
    let mut o = std::io::BufWriter::new(File::create(&tmp).map_err(err)?);
    o.write_all(&header).map_err(err)?;
    for _ in 0..times {
        f.seek(SeekFrom::Start(178)).map_err(err)?;
        std::io::copy(&mut (&mut f).take(bytes), &mut o).map_err(err)?;
    }
    o.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, dst).map_err(err)
}

/// Writes the first `frames` frames of the SER `src` (header, frames and
/// their timestamps) to `dst`: the same capture generated with fewer frames.
pub(crate) fn truncate_ser(src: &Path, dst: &Path, frames: usize) -> Result<(), String> {
    if dst.exists() {
        return Ok(());
    }
    let err = |e: std::io::Error| format!("{}: {e}", src.display());
    let (mut f, mut header, frame, total) = open_ser(src).map_err(err)?;
    header[38..42].copy_from_slice(&(frames as i32).to_le_bytes());
    let tmp = dst.with_extension("ser.part");
    let mut o = std::io::BufWriter::new(File::create(&tmp).map_err(err)?);
    o.write_all(&header).map_err(err)?;
    // Streamed (copy), so that this process stays small: Linux carries the
    // parent's peak RSS into the children it starts.
    std::io::copy(&mut (&mut f).take(frame * frames as u64), &mut o).map_err(err)?;
    let mut ts = vec![0u8; frames * 8];
    f.seek(SeekFrom::Start(178 + frame * total)).map_err(err)?;
    f.read_exact(&mut ts).map_err(err)?;
    o.write_all(&ts).map_err(err)?;
    o.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, dst).map_err(err)
}

pub(crate) fn link_or_copy(src: &Path, dst: &Path) -> Result<(), String> {
    let _ = std::fs::remove_file(dst);
    std::fs::hard_link(src, dst)
        .or_else(|_| std::fs::copy(src, dst).map(|_| ()))
        .map_err(|e| format!("{} → {}: {e}", src.display(), dst.display()))
}
