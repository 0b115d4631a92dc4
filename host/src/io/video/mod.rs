//! Compressed video (MJPEG, MPEG-4, H.264, FFV1 … in AVI, MOV, MP4, MKV)
//! through the system's FFmpeg libraries: the `ffmpeg` cargo feature.
//!
//! Compressed frames cannot be reached one by one cheaply (a frame of an
//! inter-coded stream needs every frame back to its key frame), while the
//! pipeline reads frames several times, in parallel and out of order. So the
//! first frame request decodes the whole stream once, in order, into an
//! unnamed temporary file of stored samples (8 or 16-bit, grey or RGB; in
//! `$TMPDIR`, removed by the system when the capture is closed) that is then
//! memory-mapped like an uncompressed capture: bounded memory, frames
//! decoded once, and the device upload reads the raw samples like SER's.
//! Opening only probes the stream and decodes its first frame, so `info`
//! stays quick.
//!
//! Grey content is kept grey: grey pixel formats, and YUV streams whose
//! first frame carries no colour (chroma within ±2 of neutral: what a mono
//! camera's MJPEG holds) are read as one channel from the luma plane,
//! limited-range luma stretched to the full range. Everything else is
//! converted to RGB by FFmpeg's scaler.

use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ff::format::Pixel;
use ffmpeg_next as ff;

use super::capture::{CaptureError, FrameReader, RawLayout};
use super::ser::ColorId;

/// The largest frame side accepted (as for SER, AVI and FITS).
const MAX_DIM: usize = 1 << 15;
/// The largest frame accepted, in pixels (8192 × 8192): a compressed frame
/// may be tiny on disk, so this, not the file's size, bounds what one frame
/// allocates.
const MAX_PIXELS: usize = 1 << 26;

/// How decoded frames are stored in the spill file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    /// The luma plane of a full-range stream (or a grey format), 8-bit.
    Grey8,
    /// Luma of a limited-range stream stretched to 16 bits, or 16-bit grey.
    Grey16,
    /// RGB through the scaler, 8 bits per sample.
    Rgb24,
    /// RGB through the scaler, 16 bits per sample (sources above 8 bits).
    Rgb48,
}

impl Stored {
    fn channels(self) -> usize {
        match self {
            Stored::Grey8 | Stored::Grey16 => 1,
            Stored::Rgb24 | Stored::Rgb48 => 3,
        }
    }
    fn bytes(self) -> usize {
        match self {
            Stored::Grey8 | Stored::Rgb24 => 1,
            Stored::Grey16 | Stored::Rgb48 => 2,
        }
    }
}

/// A compressed video capture, decoded once on first use.
pub struct VideoFile {
    path: PathBuf,
    width: usize,
    height: usize,
    frames: usize,
    stored: Stored,
    /// The luma is limited range (16–235) and is stretched.
    limited: bool,
    depth: u32,
    codec: String,
    container: String,
    pixel_format: String,
    rate: Option<f64>,
    warnings: Vec<String>,
    spill: OnceLock<Result<Spill, String>>,
}

/// The decoded frames, stored consecutively in an unnamed temporary file.
struct Spill {
    map: memmap2::Mmap,
    frames: usize,
}

/// The video stream's decoder, opened on `input`.
struct Opened {
    input: ff::format::context::Input,
    stream: usize,
    decoder: ff::decoder::Video,
}

fn ff_error(path: &Path, what: &str, e: ff::Error) -> CaptureError {
    CaptureError::invalid(path, format!("FFmpeg: {what}: {e}"))
}

/// Initialises FFmpeg with its own log silenced but for fatal errors: its
/// lines would interleave with the progress bars, and every error it
/// returns reaches the user in jupiter's message naming the file.
fn init(path: &Path) -> Result<(), CaptureError> {
    ff::init().map_err(|e| ff_error(path, "initialisation", e))?;
    ff::util::log::set_level(ff::util::log::Level::Fatal);
    Ok(())
}

fn open_stream(path: &Path) -> Result<Opened, CaptureError> {
    init(path)?;
    let input = ff::format::input(path).map_err(|e| ff_error(path, "cannot open", e))?;
    let stream = input
        .streams()
        .best(ff::media::Type::Video)
        .ok_or_else(|| CaptureError::invalid(path, "the file holds no video stream"))?;
    let index = stream.index();
    let ctx = ff::codec::context::Context::from_parameters(stream.parameters())
        .map_err(|e| ff_error(path, "codec parameters", e))?;
    let decoder = ctx.decoder().video().map_err(|e| {
        CaptureError::unsupported(path, format!("FFmpeg has no decoder for this video ({e})"))
    })?;
    Ok(Opened {
        input,
        stream: index,
        decoder,
    })
}

impl VideoFile {
    /// Probes `path`: stream, codec, size, frame count, and the first frame
    /// (which decides grey or colour). Decodes nothing else.
    pub fn open(path: &Path) -> Result<VideoFile, CaptureError> {
        let mut o = open_stream(path)?;
        let stream = o.input.stream(o.stream).expect("the stream just found");
        let rate = Some(stream.avg_frame_rate())
            .filter(|r| r.denominator() > 0 && r.numerator() > 0)
            .map(f64::from);
        let declared = stream.frames().max(0) as usize;
        let codec = o.decoder.id().name().to_string();
        let container = o.input.format().name().to_string();
        // The container's size, where it has one, before FFmpeg allocates
        // a frame of it.
        let (cw, ch) = (o.decoder.width() as usize, o.decoder.height() as usize);
        if cw > MAX_DIM || ch > MAX_DIM {
            return Err(CaptureError::invalid(
                path,
                format!("the video's frame size {cw}×{ch} is outside 1..={MAX_DIM}"),
            ));
        }
        let first =
            first_frame(&mut o).map_err(|e| ff_error(path, "decoding the first frame", e))?;
        let first = first.ok_or_else(|| {
            CaptureError::invalid(path, "the video stream holds no frame that decodes")
        })?;
        let (width, height) = (first.width() as usize, first.height() as usize);
        if width == 0
            || height == 0
            || width > MAX_DIM
            || height > MAX_DIM
            || width * height > MAX_PIXELS
        {
            return Err(CaptureError::invalid(
                path,
                format!("the video's frame size {width}×{height} is outside 1..={MAX_DIM} (at most {MAX_PIXELS} pixels)"),
            ));
        }
        let (stored, limited) = choose_storage(&first);
        let pixel_format = first
            .format()
            .descriptor()
            .map_or("unknown".into(), |d| d.name().to_string());
        let mut warnings = Vec::new();
        // Every frame takes at least a byte of the file: a larger count in
        // the container is broken, and is not allowed to size anything.
        let file_len = std::fs::metadata(path)
            .map_err(|e| CaptureError::io(path, e))?
            .len() as usize;
        let frames = if declared > 0 {
            declared.min(file_len)
        } else {
            count_packets(path)?
        };
        if stored.channels() == 1 && !is_grey_format(first.format()) {
            warnings.push(format!(
                "{codec} in {pixel_format}: the first frame has no colour, so the capture is read as grey (its luma)"
            ));
        }
        Ok(VideoFile {
            path: path.to_path_buf(),
            width,
            height,
            frames,
            stored,
            limited,
            depth: (stored.bytes() * 8) as u32,
            codec,
            container,
            pixel_format,
            rate,
            warnings,
            spill: OnceLock::new(),
        })
    }

    /// The spill file, decoded on first use (once; later calls wait for it).
    fn spill(&self) -> Result<&Spill, CaptureError> {
        self.spill
            .get_or_init(|| self.decode_all().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|reason| CaptureError::invalid(&self.path, reason.clone()))
    }

    fn frame_bytes(&self) -> usize {
        self.width * self.height * self.stored.channels() * self.stored.bytes()
    }

    /// Decodes every frame in order into a temporary file and maps it.
    fn decode_all(&self) -> Result<Spill, CaptureError> {
        let path = &self.path;
        let mut o = open_stream(path)?;
        let file = tempfile::tempfile().map_err(|e| CaptureError::io(path, e))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
        let mut writer = FrameWriter::new(self);
        let mut frames = 0usize;
        let mut frame = ff::frame::Video::empty();
        let mut write_ready =
            |dec: &mut ff::decoder::Video, frames: &mut usize| -> Result<(), CaptureError> {
                while dec.receive_frame(&mut frame).is_ok() {
                    if *frames < self.frames {
                        writer
                            .write(&frame, &mut out)
                            .map_err(|e| CaptureError::io(path, e))?;
                    }
                    *frames += 1;
                }
                Ok(())
            };
        for (stream, packet) in o.input.packets() {
            if stream.index() != o.stream {
                continue;
            }
            // A packet the decoder rejects is a damaged frame: it is left
            // out, and the count check below says so.
            if o.decoder.send_packet(&packet).is_ok() {
                write_ready(&mut o.decoder, &mut frames)?;
            }
        }
        if o.decoder.send_eof().is_ok() {
            write_ready(&mut o.decoder, &mut frames)?;
        }
        out.flush().map_err(|e| CaptureError::io(path, e))?;
        drop(out);
        let decoded = frames.min(self.frames);
        if decoded == 0 {
            return Err(CaptureError::invalid(path, "no frame of the video decodes"));
        }
        // SAFETY: the file is unnamed and ours alone; nothing else can
        // truncate it while it is mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CaptureError::io(path, e))?;
        Ok(Spill {
            map,
            frames: decoded,
        })
    }

    /// The stored bytes of frame `index` (decoding the video first if needed).
    fn frame(&self, index: usize) -> Result<&[u8], CaptureError> {
        let spill = self.spill()?;
        if index >= spill.frames {
            return Err(CaptureError::invalid(
                &self.path,
                format!(
                    "frame {index} did not decode (the container lists {} frames, {} decoded)",
                    self.frames, spill.frames
                ),
            ));
        }
        let n = self.frame_bytes();
        Ok(&spill.map[index * n..(index + 1) * n])
    }
}

/// Decodes packets until the first frame comes out.
fn first_frame(o: &mut Opened) -> Result<Option<ff::frame::Video>, ff::Error> {
    let mut frame = ff::frame::Video::empty();
    for (stream, packet) in o.input.packets() {
        if stream.index() != o.stream {
            continue;
        }
        if o.decoder.send_packet(&packet).is_err() {
            continue;
        }
        if o.decoder.receive_frame(&mut frame).is_ok() {
            return Ok(Some(frame));
        }
    }
    o.decoder.send_eof()?;
    Ok(o.decoder.receive_frame(&mut frame).ok().map(|_| frame))
}

/// Counts the video stream's packets (containers that do not say how many
/// frames they hold): a demux pass, no decoding.
fn count_packets(path: &Path) -> Result<usize, CaptureError> {
    let mut o = open_stream(path)?;
    let index = o.stream;
    Ok(o.input
        .packets()
        .filter(|(s, _)| s.index() == index)
        .count())
}

fn is_grey_format(f: Pixel) -> bool {
    matches!(
        f,
        Pixel::GRAY8 | Pixel::GRAY16LE | Pixel::GRAY16BE | Pixel::GRAY10LE | Pixel::GRAY12LE
    )
}

/// Bits of the first component of a pixel format.
fn component_depth(f: Pixel) -> u32 {
    f.descriptor()
        // SAFETY: the descriptor pointer comes from FFmpeg's static table.
        .map_or(8, |d| unsafe { (*d.as_ptr()).comp[0].depth } as u32)
}

/// Planar 8-bit YUV whose chroma planes are all within ±2 of neutral.
fn chroma_is_neutral(f: &ff::frame::Video) -> bool {
    let Some(d) = f.format().descriptor() else {
        return false;
    };
    let planar_yuv = d.nb_components() == 3
        && f.planes() == 3
        && d.name().starts_with("yuv")
        && component_depth(f.format()) == 8;
    if !planar_yuv {
        return false;
    }
    let (cw, ch) = (
        (f.width() as usize).div_ceil(1 << d.log2_chroma_w()),
        (f.height() as usize).div_ceil(1 << d.log2_chroma_h()),
    );
    (1..3).all(|p| {
        let (data, stride) = (f.data(p), f.stride(p));
        (0..ch).all(|y| {
            data[y * stride..y * stride + cw]
                .iter()
                .all(|&v| v.abs_diff(128) <= 2)
        })
    })
}

/// How to store a stream whose first frame is `f`, and whether its luma
/// is limited range.
fn choose_storage(f: &ff::frame::Video) -> (Stored, bool) {
    let depth = component_depth(f.format());
    if is_grey_format(f.format()) {
        return (
            if depth > 8 {
                Stored::Grey16
            } else {
                Stored::Grey8
            },
            false,
        );
    }
    if chroma_is_neutral(f) {
        let full = f.color_range() == ff::color::Range::JPEG
            || f.format()
                .descriptor()
                .is_some_and(|d| d.name().starts_with("yuvj"));
        return if full {
            (Stored::Grey8, false)
        } else {
            (Stored::Grey16, true)
        };
    }
    (
        if depth > 8 {
            Stored::Rgb48
        } else {
            Stored::Rgb24
        },
        false,
    )
}

/// Writes decoded frames in the spill file's layout.
struct FrameWriter {
    stored: Stored,
    limited: bool,
    width: usize,
    height: usize,
    scaler: Option<(ff::software::scaling::Context, ff::frame::Video)>,
    row: Vec<u8>,
}

impl FrameWriter {
    fn new(v: &VideoFile) -> FrameWriter {
        FrameWriter {
            stored: v.stored,
            limited: v.limited,
            width: v.width,
            height: v.height,
            scaler: None,
            row: Vec::with_capacity(v.width * 6),
        }
    }

    fn write(&mut self, f: &ff::frame::Video, out: &mut impl Write) -> std::io::Result<()> {
        if f.width() as usize != self.width || f.height() as usize != self.height {
            return Err(std::io::Error::other(format!(
                "a frame of {}×{} in a {}×{} video",
                f.width(),
                f.height(),
                self.width,
                self.height
            )));
        }
        let (w, h) = (self.width, self.height);
        match (self.stored, self.limited) {
            // GRAY8, or the luma plane of full-range 8-bit YUV: copied.
            (Stored::Grey8, _) => write_plane(f, w, h, out),
            (Stored::Grey16, true) => {
                let (data, stride) = (f.data(0), f.stride(0));
                for y in 0..h {
                    self.row.clear();
                    for &v in &data[y * stride..y * stride + w] {
                        let s = ((v as f32 - 16.0) / 219.0).clamp(0.0, 1.0);
                        self.row
                            .extend_from_slice(&((s * 65535.0).round() as u16).to_le_bytes());
                    }
                    out.write_all(&self.row)?;
                }
                Ok(())
            }
            _ => self.write_scaled(f, out),
        }
    }

    /// Converts through FFmpeg's scaler to the stored format (no resize).
    fn write_scaled(&mut self, f: &ff::frame::Video, out: &mut impl Write) -> std::io::Result<()> {
        let target = match self.stored {
            Stored::Grey8 => Pixel::GRAY8,
            Stored::Grey16 => Pixel::GRAY16LE,
            Stored::Rgb24 => Pixel::RGB24,
            Stored::Rgb48 => Pixel::RGB48LE,
        };
        let (w, h) = (self.width as u32, self.height as u32);
        if self
            .scaler
            .as_ref()
            .is_none_or(|(s, _)| s.input().format != f.format())
        {
            let ctx = ff::software::scaling::Context::get(
                f.format(),
                w,
                h,
                target,
                w,
                h,
                ff::software::scaling::Flags::POINT
                    | ff::software::scaling::Flags::ACCURATE_RND
                    | ff::software::scaling::Flags::BITEXACT,
            )
            .map_err(|e| std::io::Error::other(format!("FFmpeg scaler: {e}")))?;
            self.scaler = Some((ctx, ff::frame::Video::empty()));
        }
        let (ctx, dst) = self.scaler.as_mut().expect("set above");
        ctx.run(f, dst)
            .map_err(|e| std::io::Error::other(format!("FFmpeg scaler: {e}")))?;
        let row = self.width * self.stored.channels() * self.stored.bytes();
        write_plane(dst, row, self.height, out)
    }
}

/// The first `row` bytes of each of the first `rows` rows of plane 0 of `f`
/// (FFmpeg pads its rows to `stride`).
fn write_plane(
    f: &ff::frame::Video,
    row: usize,
    rows: usize,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let (data, stride) = (f.data(0), f.stride(0));
    for y in 0..rows {
        out.write_all(&data[y * stride..y * stride + row])?;
    }
    Ok(())
}

impl FrameReader for VideoFile {
    fn path(&self) -> &Path {
        &self.path
    }
    fn format(&self) -> &'static str {
        "video (FFmpeg)"
    }
    fn width(&self) -> usize {
        self.width
    }
    fn height(&self) -> usize {
        self.height
    }
    fn channels(&self) -> usize {
        self.stored.channels()
    }
    fn frame_count(&self) -> usize {
        self.frames
    }
    fn bit_depth(&self) -> u32 {
        self.depth
    }
    fn frame_rate(&self) -> Option<f64> {
        self.rate
    }
    fn warnings(&self) -> &[String] {
        &self.warnings
    }
    fn details(&self) -> Vec<(&'static str, String)> {
        vec![
            ("container", self.container.clone()),
            ("codec", self.codec.clone()),
            ("pixels", self.pixel_format.clone()),
        ]
    }

    fn decode_rows(
        &self,
        index: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), CaptureError> {
        let frame = self.frame(index)?;
        let row = self.width * self.stored.channels();
        let src = &frame[y0 * row * self.stored.bytes()..(y0 + rows) * row * self.stored.bytes()];
        match self.stored.bytes() {
            1 => {
                for (o, &b) in out.iter_mut().zip(src) {
                    *o = b as f32 / 255.0;
                }
            }
            _ => {
                for (o, b) in out.iter_mut().zip(src.chunks_exact(2)) {
                    *o = u16::from_le_bytes([b[0], b[1]]) as f32 / 65535.0;
                }
            }
        }
        Ok(())
    }

    fn raw_layout(&self) -> Option<RawLayout> {
        let bytes = self.stored.bytes();
        Some(RawLayout {
            bytes,
            little_endian: true,
            color: if self.stored.channels() == 1 {
                ColorId::Mono
            } else {
                ColorId::Rgb
            },
            scale: if bytes == 1 { 255.0 } else { 65535.0 },
        })
    }

    fn raw_frames(&self, first: usize, count: usize) -> Option<Cow<'_, [u8]>> {
        let spill = self.spill().ok()?;
        let end = first.checked_add(count).filter(|&e| e <= spill.frames)?;
        let n = self.frame_bytes();
        Some(Cow::Borrowed(&spill.map[first * n..end * n]))
    }
}
