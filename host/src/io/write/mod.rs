//! Image writers: 16-bit TIFF, 8/16-bit PNG, 32-bit float FITS. The format
//! follows the extension. Every write goes to a temporary file in the target
//! directory and is renamed into place, so a crash or Ctrl-C never leaves a
//! half-written image under the final name. What the image records about
//! its capture and pipeline ([`OutputMeta`]) is in `meta.rs`.

mod meta;

pub use meta::{mid_capture, mid_from_start, FitsCard, OutputMeta};

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jupiter_plugin_api::Image;

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tiff16,
    Png16,
    Png8,
    Fits32,
}

impl Format {
    /// The format for a path's extension (`.tif/.tiff`, `.png`, `.fit/.fits/.fts`).
    pub fn from_path(path: &Path, png8: bool) -> Result<Format> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .unwrap_or_default();
        Ok(match ext.as_str() {
            "tif" | "tiff" => Format::Tiff16,
            "png" if png8 => Format::Png8,
            "png" => Format::Png16,
            "fit" | "fits" | "fts" => Format::Fits32,
            _ => bail!(
                "{}: unknown output format '.{ext}' (use .tif, .png or .fits)",
                path.display()
            ),
        })
    }
}

fn to_u16(v: f32) -> u16 {
    (v.clamp(0.0, 1.0) * 65535.0).round() as u16
}

/// A temporary sibling of `path`, removed on drop unless persisted.
struct TempPath(Option<PathBuf>);

/// Temporary files being written, so that an immediate exit (a second
/// Ctrl-C) can remove them: see [`remove_temporaries`].
static LIVE_TEMPS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn live_temps() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE_TEMPS.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes every temporary output file still being written. Called before
/// the process exits without unwinding (a second Ctrl-C).
pub fn remove_temporaries() {
    for p in live_temps().drain(..) {
        let _ = std::fs::remove_file(p);
    }
}

impl TempPath {
    fn for_target(path: &Path) -> TempPath {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "out".into());
        let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
        live_temps().push(tmp.clone());
        TempPath(Some(tmp))
    }
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap()
    }
    fn forget(p: &Path) {
        live_temps().retain(|q| q != p);
    }
    fn persist(mut self, to: &Path) -> Result<()> {
        let p = self.0.take().unwrap();
        Self::forget(&p);
        std::fs::rename(&p, to)
            .with_context(|| format!("{}: cannot move the finished file into place", to.display()))
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            Self::forget(&p);
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Everything about an output that can be checked before any work: a
/// known format for its extension, no existing file unless `force`, and a
/// location that is (or can become) a writable directory. A run calls it
/// before reading a frame, so that a typo costs nothing.
pub fn check_output(path: &Path, png8: bool, force: bool) -> Result<()> {
    if path.is_dir() {
        bail!("{}: is a directory", path.display());
    }
    Format::from_path(path, png8)?;
    if path.exists() && !force {
        bail!(
            "{}: already exists (use --force to replace it)",
            path.display()
        );
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // The nearest existing ancestor must be a directory we may write in
    // (missing directories below it are created when the image is written).
    let existing = dir
        .ancestors()
        .find(|d| d.exists())
        .unwrap_or(Path::new("."));
    if !existing.is_dir() {
        bail!(
            "{}: {} is not a directory",
            path.display(),
            existing.display()
        );
    }
    let probe = existing.join(format!(".jupiter-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .with_context(|| format!("{}: cannot write in {}", path.display(), existing.display()))
}

/// Writes `image` to `path` atomically, recording `meta` as the format
/// allows. Refuses to replace an existing file unless `force`.
pub fn write_image(
    image: &Image,
    path: &Path,
    (png8, force): (bool, bool),
    meta: &OutputMeta,
) -> Result<()> {
    let format = Format::from_path(path, png8)?;
    if image.channels != 1 && image.channels != 3 {
        bail!(
            "{}: cannot write an image with {} channels",
            path.display(),
            image.channels
        );
    }
    if image.data.len() != image.len() {
        bail!(
            "{}: image holds {} samples, expected {}",
            path.display(),
            image.data.len(),
            image.len()
        );
    }
    if path.exists() && !force {
        bail!(
            "{}: already exists (use --force to replace it)",
            path.display()
        );
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create the directory", dir.display()))?;
    }
    let tmp = TempPath::for_target(path);
    match format {
        Format::Tiff16 => write_tiff(image, tmp.path(), meta),
        Format::Png16 | Format::Png8 => write_png(image, tmp.path(), format == Format::Png8, meta),
        Format::Fits32 => write_fits(image, tmp.path(), meta),
    }
    .with_context(|| format!("{}: cannot write the image", path.display()))?;
    tmp.persist(path)
}

/// `text` with every character outside printable ASCII replaced by `?`
/// (TIFF ASCII tags and FITS cards hold nothing else).
fn ascii(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c == '\n' || (' '..='~').contains(&c) {
                c
            } else {
                '?'
            }
        })
        .collect()
}

fn write_tiff(image: &Image, path: &Path, meta: &OutputMeta) -> Result<()> {
    use tiff::encoder::colortype::{self, ColorType};
    use tiff::encoder::{TiffEncoder, TiffKind};
    use tiff::tags::Tag;
    fn tagged<W, C, K>(
        enc: &mut TiffEncoder<W, K>,
        (w, h): (u32, u32),
        data: &[C::Inner],
        meta: &OutputMeta,
    ) -> Result<()>
    where
        W: std::io::Write + std::io::Seek,
        C: ColorType,
        K: TiffKind,
        [C::Inner]: tiff::encoder::TiffValue,
    {
        let mut img = enc.new_image::<C>(w, h)?;
        let dir = img.encoder();
        dir.write_tag(Tag::Software, OutputMeta::software().as_str())?;
        dir.write_tag(Tag::ImageDescription, ascii(&meta.description()).as_str())?;
        if let Some(d) = meta.tiff_date() {
            dir.write_tag(Tag::DateTime, d.as_str())?;
        }
        if !meta.observer.is_empty() {
            dir.write_tag(Tag::Artist, ascii(&meta.observer).as_str())?;
        }
        img.write_data(data)?;
        Ok(())
    }
    let data: Vec<u16> = image.data.iter().map(|&v| to_u16(v)).collect();
    let mut enc = TiffEncoder::new(BufWriter::new(File::create(path)?))?;
    let size = (image.width, image.height);
    if image.channels == 1 {
        tagged::<_, colortype::Gray16, _>(&mut enc, size, &data, meta)
    } else {
        tagged::<_, colortype::RGB16, _>(&mut enc, size, &data, meta)
    }
}

fn write_png(image: &Image, path: &Path, eight: bool, meta: &OutputMeta) -> Result<()> {
    let mut enc = png::Encoder::new(
        BufWriter::new(File::create(path)?),
        image.width,
        image.height,
    );
    if let Some(d) = meta.iso_date() {
        enc.add_text_chunk("Creation Time".into(), d)?;
    }
    enc.add_text_chunk("Software".into(), OutputMeta::software())?;
    // iTXt: UTF-8 (observer names, stage parameters), where tEXt is Latin-1.
    enc.add_itxt_chunk("Description".into(), meta.description())?;
    if !meta.observer.is_empty() {
        enc.add_itxt_chunk("Author".into(), meta.observer.clone())?;
    }
    enc.set_color(if image.channels == 1 {
        png::ColorType::Grayscale
    } else {
        png::ColorType::Rgb
    });
    let bytes: Vec<u8> = if eight {
        enc.set_depth(png::BitDepth::Eight);
        image
            .data
            .iter()
            .map(|&v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect()
    } else {
        enc.set_depth(png::BitDepth::Sixteen);
        image
            .data
            .iter()
            .flat_map(|&v| to_u16(v).to_be_bytes())
            .collect()
    };
    let mut w = enc.write_header()?;
    w.write_image_data(&bytes)?;
    w.finish()?;
    Ok(())
}

fn write_fits(image: &Image, path: &Path, meta: &OutputMeta) -> Result<()> {
    use fitsio::images::{ImageDescription, ImageType};
    use fitsio::FitsFile;
    let (w, h, c) = image.dims();
    // FITS stores planes; rows are written top-down and say so (ROWORDER).
    let planar: Vec<f32> = (0..c)
        .flat_map(|k| image.data.iter().skip(k).step_by(c).copied())
        .collect();
    let dims: Vec<usize> = if c == 1 { vec![h, w] } else { vec![c, h, w] };
    let desc = ImageDescription {
        data_type: ImageType::Float,
        dimensions: &dims,
    };
    let mut f = FitsFile::create(path).with_custom_primary(&desc).open()?;
    let hdu = f.primary_hdu()?;
    hdu.write_image(&mut f, &planar)?;
    hdu.write_key(&mut f, "ROWORDER", "TOP-DOWN")?;
    hdu.write_key(&mut f, "CREATOR", OutputMeta::software())?;
    if let Some(d) = meta.fits_date() {
        hdu.write_key(
            &mut f,
            "DATE-OBS",
            (d, "UTC at mid-capture of the stacked frames"),
        )?;
    }
    if meta.frames > 0 {
        hdu.write_key(&mut f, "NCOMBINE", (meta.frames as i64, "frames stacked"))?;
    }
    for (key, value) in [
        ("OBSERVER", &meta.observer),
        ("TELESCOP", &meta.telescope),
        ("INSTRUME", &meta.instrument),
    ] {
        if !value.is_empty() {
            hdu.write_key(&mut f, key, ascii(value))?;
        }
    }
    for card in &meta.fits_cards {
        match card {
            FitsCard::Text(k, v) => hdu.write_key(&mut f, k, ascii(v))?,
            FitsCard::Int(k, v) => hdu.write_key(&mut f, k, *v)?,
            FitsCard::Float(k, v) => hdu.write_key(&mut f, k, *v)?,
        }
    }
    for line in &meta.history {
        fits_history(&mut f, &ascii(line))?;
    }
    Ok(())
}

/// Appends `HISTORY` cards holding `text` (cfitsio splits it over as many
/// cards as it needs); fitsio has no call for them.
fn fits_history(f: &mut fitsio::FitsFile, text: &str) -> Result<()> {
    let c = std::ffi::CString::new(text.replace('\n', " "))?;
    let mut status = 0;
    // SAFETY: `f` is an open FITS file with its primary HDU current, and `c`
    // a NUL-terminated string that outlives the call.
    unsafe {
        fitsio::sys::ffphis(f.as_raw(), c.as_ptr(), &mut status);
    }
    if status != 0 {
        bail!("cannot write a HISTORY card (cfitsio status {status})");
    }
    Ok(())
}

/// Reads a 16-bit TIFF written by [`write_image`] back to `[0, 1]` floats
/// (for tests and the demo's measurements).
pub fn read_tiff(path: &Path) -> Result<Image> {
    use tiff::decoder::{Decoder, DecodingResult};
    let mut dec = Decoder::new(std::io::BufReader::new(File::open(path)?))?;
    let (w, h) = dec.dimensions()?;
    let ct = dec.colortype()?;
    let channels = match ct {
        tiff::ColorType::Gray(16) => 1,
        tiff::ColorType::RGB(16) => 3,
        other => bail!("{}: unsupported TIFF colour type {other:?}", path.display()),
    };
    let DecodingResult::U16(data) = dec.read_image()? else {
        bail!("{}: not a 16-bit TIFF", path.display());
    };
    Ok(Image::from_vec(
        w,
        h,
        channels,
        data.iter().map(|&v| v as f32 / 65535.0).collect(),
    ))
}

/// Writes a text file atomically (temp file + rename), replacing any old one.
pub fn write_text_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = TempPath::for_target(path);
    std::fs::write(tmp.path(), text)?;
    tmp.persist(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_are_checked_before_any_work() {
        let dir = std::env::temp_dir().join(format!("jupiter-check-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let msg = |p: &Path| check_output(p, false, false).unwrap_err().to_string();
        assert!(msg(&dir.join("x.jpg")).contains("unknown output format '.jpg'"));
        assert!(msg(&dir).contains("is a directory"));
        let file = dir.join("there.tif");
        std::fs::write(&file, b"x").unwrap();
        assert!(msg(&file).contains("already exists"));
        assert!(check_output(&file, false, true).is_ok());
        assert!(msg(&file.join("below.tif")).contains("is not a directory"));
        // Missing directories are fine: they are created when writing.
        assert!(check_output(&dir.join("new/deeper/out.png"), false, false).is_ok());
        assert!(!dir.join("new").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn writes_all_formats_atomically_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("jupiter-write-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = Image::from_vec(5, 3, 3, (0..45).map(|i| i as f32 / 44.0).collect());
        for name in ["a.tif", "a.png", "a.fits"] {
            let p = dir.join(name);
            let _ = std::fs::remove_file(&p);
            write_image(&img, &p, (false, false), &OutputMeta::default()).unwrap();
            assert!(p.metadata().unwrap().len() > 0);
            let e = write_image(&img, &p, (false, false), &OutputMeta::default())
                .unwrap_err()
                .to_string();
            assert!(e.contains("already exists"), "{e}");
            write_image(&img, &p, (false, true), &OutputMeta::default()).unwrap();
        }
        let back = read_tiff(&dir.join("a.tif")).unwrap();
        assert_eq!((back.width, back.height, back.channels), (5, 3, 3));
        for (a, b) in back.data.iter().zip(img.data.iter()) {
            assert!((a - b).abs() < 1.0 / 65535.0);
        }
        // No temporary files are left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        assert!(write_image(
            &img,
            &dir.join("a.jpg"),
            (false, true),
            &OutputMeta::default()
        )
        .unwrap_err()
        .to_string()
        .contains("unknown output format"));
    }

    /// The 80-character cards of a FITS file's primary header.
    fn fits_cards(path: &Path) -> Vec<String> {
        let bytes = std::fs::read(path).unwrap();
        let cards: Vec<String> = bytes
            .chunks(80)
            .map(|c| String::from_utf8_lossy(c).trim_end().to_string())
            .collect();
        let end = cards.iter().position(|c| c == "END").unwrap();
        cards[..end].to_vec()
    }

    #[test]
    fn every_format_records_the_metadata() {
        let dir = std::env::temp_dir().join(format!("jupiter-write-meta-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let img = Image::from_vec(4, 2, 1, (0..8).map(|i| i as f32 / 7.0).collect());
        let meta = OutputMeta {
            // 2022-08-29T10:13:20.450Z
            date_obs: Some(637_973_648_004_500_000),
            frames: 42,
            observer: "Ann Observer".into(),
            telescope: "C14".into(),
            instrument: String::new(),
            source: "cap.ser".into(),
            history: vec![
                "quality: quality {}".into(),
                format!("stack: stack-mean {{\"note\":\"{}\"}}", "x".repeat(100)),
            ],
            fits_cards: vec![
                FitsCard::Text("IMAGETYP", "master".into()),
                FitsCard::Float("DATAMAX", 4095.0),
            ],
        };
        let software = OutputMeta::software();
        for name in ["m.fits", "m.tif", "m.png"] {
            write_image(&img, &dir.join(name), (false, true), &meta).unwrap();
        }

        let cards = fits_cards(&dir.join("m.fits"));
        let card = |key: &str| {
            cards
                .iter()
                .find(|c| c.starts_with(&format!("{key:<8}=")))
                .unwrap_or_else(|| panic!("no {key} in {cards:#?}"))
                .clone()
        };
        assert!(card("DATE-OBS").contains("'2022-08-29T10:13:20.450'"));
        assert!(card("NCOMBINE").contains(" 42 "));
        assert!(card("OBSERVER").contains("'Ann Observer'"));
        // FITS pads short strings to 8 characters.
        assert!(card("TELESCOP").contains("'C14     '"));
        assert!(card("CREATOR").contains(&software));
        assert!(card("IMAGETYP").contains("'master  '"));
        assert!(card("DATAMAX").contains("4095"));
        assert!(!cards.iter().any(|c| c.starts_with("INSTRUME")));
        let history: Vec<&String> = cards.iter().filter(|c| c.starts_with("HISTORY")).collect();
        assert_eq!(history[0], "HISTORY quality: quality {}");
        // The long line continues on further cards.
        assert!(history.len() >= 3, "{history:#?}");

        use tiff::decoder::Decoder;
        use tiff::tags::Tag;
        let mut tif = Decoder::new(std::io::BufReader::new(
            File::open(dir.join("m.tif")).unwrap(),
        ))
        .unwrap();
        assert_eq!(
            tif.get_tag_ascii_string(Tag::DateTime).unwrap(),
            "2022:08:29 10:13:20"
        );
        assert_eq!(tif.get_tag_ascii_string(Tag::Software).unwrap(), software);
        let desc = tif.get_tag_ascii_string(Tag::ImageDescription).unwrap();
        assert!(
            desc.starts_with("Stack of 42 frames of cap.ser, mid-capture 2022-08-29T10:13:20.450Z"),
            "{desc}"
        );
        assert!(desc.contains("quality: quality {}"));

        let png = png::Decoder::new(std::io::BufReader::new(
            File::open(dir.join("m.png")).unwrap(),
        ))
        .read_info()
        .unwrap();
        let info = png.info();
        let text = |k: &str| {
            info.uncompressed_latin1_text
                .iter()
                .find(|c| c.keyword == k)
                .map(|c| c.text.clone())
        };
        assert_eq!(text("Creation Time").unwrap(), "2022-08-29T10:13:20.450Z");
        assert_eq!(text("Software").unwrap(), software);
        let itxt = info
            .utf8_text
            .iter()
            .find(|c| c.keyword == "Description")
            .unwrap();
        assert_eq!(itxt.get_text().unwrap(), meta.description());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
