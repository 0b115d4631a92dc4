//! Masters: a dark, flat, bias or flat-dark capture (any format jupiter
//! reads) combined pixel by pixel into one raw image, or an image that is
//! already a master (a single-frame FITS, TIFF or PNG). Masters hold raw
//! samples, before any demosaic, as the capture's frames decode them to
//! `[0, 1]`; [`Master::write_fits`] saves one in the capture's sample units.

use std::path::{Path, PathBuf};

use jupiter_plugin_api::Image;
use rayon::prelude::*;

use super::combine::Combine;
use super::{CalibrationError, Layout};
use crate::io::capture::{detect, CaptureFile, Format, OpenOptions};
use crate::io::fits::FitsCube;
use crate::io::sequence::ImageKind;
use crate::io::write::{write_image, FitsCard, OutputMeta};

/// Bytes of frame rows held at once while combining (the band height follows).
const BAND_BYTES: usize = 128 << 20;

/// A master frame and where it came from.
#[derive(Debug, Clone)]
pub struct Master {
    /// The file it was read or built from.
    pub path: PathBuf,
    pub layout: Layout,
    /// Bits per sample of the capture it stands for (`None`: unknown, a
    /// float image made elsewhere).
    pub depth: Option<u32>,
    /// Sample value of 1.0 (`None` when unknown, as for `depth`).
    pub scale: Option<f64>,
    /// Frames combined (1 for a file that was already a master).
    pub frames: usize,
    /// How the frames were combined; `None` for a file that was already a master.
    pub combine: Option<Combine>,
    /// `width × height × channels` raw samples, `[0, 1]`.
    pub data: Vec<f32>,
}

impl Master {
    /// Reads `path`: a capture of several frames is combined with `combine`,
    /// a single frame is taken as the master itself. `open` applies as for
    /// the capture (its `--bayer` included).
    pub fn load(
        path: &Path,
        open: OpenOptions,
        combine: Combine,
    ) -> Result<Master, CalibrationError> {
        Master::load_checked(path, open, combine, |_| Ok(()))
    }

    /// [`load`](Self::load), with `check` run on the master's geometry
    /// (a [`Master`] without its data) as soon as the file is open: a
    /// master that cannot fit is refused before its frames are combined.
    pub fn load_checked(
        path: &Path,
        open: OpenOptions,
        combine: Combine,
        check: impl Fn(&Master) -> Result<(), CalibrationError>,
    ) -> Result<Master, CalibrationError> {
        let (file, declared) = open_master(path, open)?;
        if let Some(d) = declared.as_ref().filter(|d| d.channels == 3) {
            let m = planar_master(path, &file, d)?;
            check(&m)?;
            return Ok(m);
        }
        let frames = file.frame_count();
        let float = file.bit_depth() > 16;
        let (depth, scale) = match declared {
            Some(d) => (d.depth, d.scale),
            None if float => (None, None),
            None => (Some(file.bit_depth()), Some(file.sample_scale())),
        };
        let mut m = Master {
            path: path.to_path_buf(),
            layout: Layout::of(&file),
            depth,
            scale,
            frames,
            combine: (frames > 1).then_some(combine),
            data: Vec::new(),
        };
        check(&m)?;
        m.data = combine_frames(&file, combine)?;
        Ok(m)
    }

    /// How the master was made, for messages and reports
    /// (`median of 32 frames`, `master image`).
    pub fn describe(&self) -> String {
        match self.combine {
            Some(c) => format!("{} of {} frames", c.name(), self.frames),
            None => "master image".into(),
        }
    }

    /// Saves the master as a 32-bit float FITS (atomically): the raw samples
    /// (a mosaic stays a mosaic) in the capture's sample units, with
    /// `DATAMAX` the sample value of full scale (so that reading it back
    /// gives the same `[0, 1]` values), `CAPDEPTH` the capture's bit depth,
    /// `BAYERPAT` the mosaic's pattern, and how it was built.
    pub fn write_fits(&self, out: &Path, force: bool) -> anyhow::Result<()> {
        let scale = self.scale.unwrap_or(1.0);
        let l = &self.layout;
        let image = Image::from_vec(
            l.width as u32,
            l.height as u32,
            l.channels as u32,
            self.data
                .iter()
                .map(|v| (*v as f64 * scale) as f32)
                .collect(),
        );
        let mut cards = vec![
            FitsCard::Text("IMAGETYP", "master".into()),
            FitsCard::Float("DATAMAX", scale),
            FitsCard::Text("COMBINE", self.describe()),
        ];
        if let Some(d) = self.depth {
            cards.push(FitsCard::Int("CAPDEPTH", d as i64));
        }
        if l.channels > 1 {
            cards.push(FitsCard::Int("CHANNELS", l.channels as i64));
        }
        if let Some(p) = l.bayer {
            cards.push(FitsCard::Text("BAYERPAT", p.short_name().into()));
        }
        if let Some(name) = self.path.file_name() {
            cards.push(FitsCard::Text(
                "SOURCE",
                name.to_string_lossy().into_owned(),
            ));
        }
        let meta = OutputMeta {
            frames: self.frames,
            source: self.path.display().to_string(),
            fits_cards: cards,
            ..OutputMeta::default()
        };
        write_image(&image, out, (false, force), &meta)
    }
}

/// What a master FITS written by jupiter says of its capture.
struct Declared {
    depth: Option<u32>,
    scale: Option<f64>,
    /// 3 for a master of RGB frames (its planes read as 3 frames).
    channels: u32,
}

/// Opens a master file: any capture format, or one FITS/TIFF/PNG image;
/// a FITS file's `CAPDEPTH` and `DATAMAX` are read too.
fn open_master(
    path: &Path,
    open: OpenOptions,
) -> Result<(CaptureFile, Option<Declared>), CalibrationError> {
    if path.is_file() && matches!(ImageKind::of(path), Some(ImageKind::Tiff | ImageKind::Png)) {
        return Ok((CaptureFile::open_image(path, open)?, None));
    }
    if detect(path)? == Format::Fits {
        let cube = FitsCube::open(path)?;
        let h = cube.header();
        let declared = h.capture_depth.map(|d| Declared {
            depth: Some(d),
            scale: h.datamax,
            channels: h.channels.unwrap_or(1),
        });
        return Ok((
            CaptureFile::from_reader(Box::new(cube), open.bayer)?,
            declared,
        ));
    }
    Ok((CaptureFile::open(path, open)?, None))
}

/// A master of RGB frames that jupiter wrote: its three planes (which
/// the FITS reader sees as frames) interleaved back into one frame.
fn planar_master(
    path: &Path,
    file: &CaptureFile,
    d: &Declared,
) -> Result<Master, CalibrationError> {
    let (w, h) = (file.width(), file.height());
    if file.frame_count() != 3 || file.raw_channels() != 1 {
        return Err(CalibrationError::Invalid {
            role: "master",
            path: path.to_path_buf(),
            reason: format!(
                "CHANNELS = 3 but the data holds {} planes of {} channel(s)",
                file.frame_count(),
                file.raw_channels()
            ),
        });
    }
    let mut data = vec![0.0f32; w * h * 3];
    for k in 0..3 {
        let plane = file.decode_frame(k)?;
        for (i, v) in plane.into_iter().enumerate() {
            data[i * 3 + k] = v;
        }
    }
    Ok(Master {
        path: path.to_path_buf(),
        layout: Layout {
            width: w,
            height: h,
            channels: 3,
            bayer: None,
        },
        depth: d.depth,
        scale: d.scale,
        frames: 1,
        combine: None,
        data,
    })
}

/// Combines every frame of `file` pixel by pixel (raw samples), band by
/// band so that a long capture never sits in memory whole.
fn combine_frames(file: &CaptureFile, combine: Combine) -> Result<Vec<f32>, CalibrationError> {
    let (w, h, c, n) = (
        file.width(),
        file.height(),
        file.raw_channels(),
        file.frame_count(),
    );
    let row = w * c;
    let band = (BAND_BYTES / (n * row * 4).max(1)).clamp(1, h.max(1));
    let mut data = vec![0.0f32; h * row];
    data.par_chunks_mut(band * row).enumerate().try_for_each(
        |(b, out)| -> Result<(), CalibrationError> {
            let (y0, rows) = (b * band, out.len() / row);
            let len = rows * row;
            let mut stack = vec![0.0f32; n * len];
            for (i, frame) in stack.chunks_exact_mut(len).enumerate() {
                file.decode_raw_rows(i, y0, rows, frame)?;
            }
            let mut values = vec![0.0f32; n];
            for (k, o) in out.iter_mut().enumerate() {
                for (i, v) in values.iter_mut().enumerate() {
                    *v = stack[i * len + k];
                }
                *o = combine.apply(&mut values);
            }
            Ok(())
        },
    )?;
    Ok(data)
}
