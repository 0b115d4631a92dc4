//! Property tests ("fuzzing") of the capture readers added beside SER: the
//! AVI parser (RIFF, headers, idx1 and OpenDML indexes), the FITS header and
//! cube layout, and image sequences (file order, PNG/TIFF headers). Arbitrary
//! bytes and mutated valid files must never panic, never hang, never
//! allocate more than the input justifies, and every error must name the
//! file. `docs/FUZZING.md` has the figures; `PROPTEST_CASES=N` runs N cases
//! per property:
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test --release -p jupiter-host --test fuzz_inputs
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

use jupiter_host::io::avi::{avi_date, AviFile};
use jupiter_host::io::capture::{CaptureFile, FrameReader, OpenOptions};
use jupiter_host::io::dates::name_time;
use jupiter_host::io::debayer::BayerPattern;
use jupiter_host::io::fits::FitsCube;
use jupiter_host::io::sequence::natural;
use jupiter_testkit::avi::{avi_bytes, AviIndex, AviPixels, AviSpec};
use jupiter_testkit::fits::{fits_bytes, FitsSpec};
use jupiter_testkit::sequence::{write_png, write_tiff};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---- allocation tracking (as in fuzz_ser.rs) --------------------------------

struct Tracking;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    let _ = LARGEST.try_with(|c| {
        if size > c.get() {
            c.set(size)
        }
    });
}

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Tracking = Tracking;

fn largest_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|c| c.set(0));
    let r = f();
    (r, LARGEST.with(|c| c.get()))
}

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- the checks every parse must pass ---------------------------------------

/// Opens `bytes` with `open` and, when it opens, decodes every frame whole
/// and in bands (also debayered when mono): no panic, errors name the file,
/// samples finite and in `[0, 1]`, no allocation beyond 16 × the input +
/// 64 KiB. Returns the decoded frames of a file that opened.
fn check<R: FrameReader + 'static, E: std::fmt::Display>(
    name: &str,
    bytes: Vec<u8>,
    open: impl FnOnce(&Path, Vec<u8>) -> Result<R, E>,
) -> Result<Option<Vec<Vec<f32>>>, TestCaseError> {
    let len = bytes.len();
    let bound = 16 * len + 64 * 1024;
    let (result, largest) = largest_alloc(|| -> Result<Option<Vec<Vec<f32>>>, String> {
        let reader = match open(Path::new(name), bytes) {
            Ok(r) => r,
            Err(e) => {
                let msg = e.to_string();
                return if msg.contains(name) {
                    Ok(None)
                } else {
                    Err(format!("error does not name the file: {msg}"))
                };
            }
        };
        let cap = CaptureFile::from_reader(Box::new(reader), None).map_err(|e| e.to_string())?;
        let frames = decode_all(&cap)?;
        if cap.channels() == 1 {
            // The same file read as a raw mosaic.
            let r = CaptureFile::from_reader(Box::new(ReaderBox(cap)), Some(BayerPattern::Gbrg))
                .map_err(|e| e.to_string())?;
            decode_all(&r)?;
        }
        Ok(Some(frames))
    });
    let frames = result.map_err(TestCaseError::fail)?;
    prop_assert!(
        largest <= bound,
        "allocated {largest} bytes at once for an input of {len} bytes"
    );
    Ok(frames)
}

/// Every frame whole and in bands of rows; out-of-range requests refused.
fn decode_all(c: &CaptureFile) -> Result<Vec<Vec<f32>>, String> {
    let (w, h, ch, n) = (c.width(), c.height(), c.channels(), c.frame_count());
    if n == 0 || w == 0 || h == 0 {
        return Err(format!("opened with {n} frames of {w}×{h}"));
    }
    let mut all = Vec::new();
    for i in 0..n {
        let f = c.decode_frame(i).map_err(|e| format!("frame {i}: {e}"))?;
        if let Some(v) = f
            .iter()
            .find(|v| !(v.is_finite() && (0.0..=1.0).contains(*v)))
        {
            return Err(format!("frame {i}: sample {v} outside [0, 1]"));
        }
        let band = (h / 3).max(1);
        let mut y0 = 0;
        while y0 < h {
            let rows = band.min(h - y0);
            let mut out = vec![0.0f32; rows * w * ch];
            c.decode_rows(i, y0, rows, &mut out)
                .map_err(|e| format!("frame {i} rows {y0}: {e}"))?;
            if out[..] != f[y0 * w * ch..(y0 + rows) * w * ch] {
                return Err(format!(
                    "frame {i}: rows {y0}+{rows} decode differently in a band"
                ));
            }
            y0 += rows;
        }
        all.push(f);
    }
    if c.decode_frame(n).is_ok() {
        return Err("a frame past the end decoded".into());
    }
    if let Some(l) = c.raw_layout() {
        let raw = c.raw_frames(0, n).ok_or("no raw frames")?;
        let fb = w * h * l.color.planes() * l.bytes;
        if raw.len() != n * fb {
            return Err(format!("{} raw bytes for {n} frames of {fb}", raw.len()));
        }
    }
    Ok(all)
}

/// A capture read again as a reader (to apply a Bayer pattern on top).
struct ReaderBox(CaptureFile);

impl FrameReader for ReaderBox {
    fn path(&self) -> &Path {
        self.0.path()
    }
    fn format(&self) -> &'static str {
        "test"
    }
    fn width(&self) -> usize {
        self.0.width()
    }
    fn height(&self) -> usize {
        self.0.height()
    }
    fn channels(&self) -> usize {
        self.0.channels()
    }
    fn frame_count(&self) -> usize {
        self.0.frame_count()
    }
    fn bit_depth(&self) -> u32 {
        self.0.bit_depth()
    }
    fn warnings(&self) -> &[String] {
        self.0.warnings()
    }
    fn decode_rows(
        &self,
        i: usize,
        y0: usize,
        rows: usize,
        out: &mut [f32],
    ) -> Result<(), jupiter_host::io::capture::CaptureError> {
        self.0.decode_rows(i, y0, rows, out)
    }
}

// ---- mutations ----------------------------------------------------------------

/// Values that tend to break parsers, as 32-bit fields.
fn interesting() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        Just(1),
        Just(2),
        Just(3),
        Just(4),
        Just(8),
        Just(16),
        Just(24),
        Just(0x7fff),
        Just(0x8000),
        Just(0xffff),
        Just(0x1_0000),
        Just(1_000_000_000),
        Just(i32::MAX as u32),
        Just(0x8000_0000),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        any::<u32>(),
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// A 32-bit little-endian field at a fraction of the file set.
    Field(f64, u32),
    /// One byte overwritten.
    Byte(f64, u8),
    /// The file cut at a fraction of its length.
    Cut(f64),
    /// Bytes inserted or removed at a fraction of the file.
    Insert(f64, Vec<u8>),
    Remove(f64, usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let m = prop_oneof![
        4 => (0.0..1.0f64, interesting()).prop_map(|(p, v)| Mutation::Field(p, v)),
        3 => (0.0..1.0f64, any::<u8>()).prop_map(|(p, v)| Mutation::Byte(p, v)),
        1 => (0.0..1.0f64).prop_map(Mutation::Cut),
        1 => (0.0..1.0f64, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, v)| Mutation::Insert(p, v)),
        1 => (0.0..1.0f64, 1usize..16).prop_map(|(p, n)| Mutation::Remove(p, n)),
    ];
    prop::collection::vec(m, 1..=4)
}

fn mutate(mut b: Vec<u8>, ms: &[Mutation]) -> Vec<u8> {
    for m in ms {
        let at = |p: f64, len: usize| ((p * len as f64) as usize).min(len.saturating_sub(1));
        match m {
            Mutation::Field(p, v) if b.len() >= 4 => {
                // Aligned to 2 bytes, where RIFF fields start.
                let i = at(*p, b.len() - 3) & !1;
                b[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            Mutation::Byte(p, v) if !b.is_empty() => {
                let i = at(*p, b.len());
                b[i] = *v;
            }
            Mutation::Cut(p) => b.truncate((p * b.len() as f64) as usize),
            Mutation::Insert(p, v) => {
                let i = at(*p, b.len() + 1).min(b.len());
                b.splice(i..i, v.iter().copied());
            }
            Mutation::Remove(p, n) if !b.is_empty() => {
                let i = at(*p, b.len());
                let end = (i + n).min(b.len());
                b.drain(i..end);
            }
            _ => {}
        }
    }
    b
}

/// Samples from a seed (xorshift).
fn samples(len: usize, max: u32, seed: u64) -> Vec<u16> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s % (max as u64 + 1)) as u16
        })
        .collect()
}

// ---- AVI ----------------------------------------------------------------------

const AVI: &str = "fuzz-case.avi";

#[derive(Debug, Clone)]
struct ValidAvi {
    spec: AviSpec,
    frames: Vec<Vec<u16>>,
}

fn valid_avis() -> impl Strategy<Value = ValidAvi> {
    let pixels = prop_oneof![
        Just(AviPixels::Y800),
        Just(AviPixels::Grey8Dib),
        Just(AviPixels::Bgr24 { bottom_up: true }),
        Just(AviPixels::Bgr24 { bottom_up: false }),
        Just(AviPixels::Y16),
    ];
    let index = prop_oneof![
        Just(AviIndex::Idx1),
        (1usize..=3).prop_map(|per_riff| AviIndex::OpenDml { per_riff }),
        Just(AviIndex::None),
    ];
    (
        1u32..=12,
        1u32..=12,
        pixels,
        index,
        1usize..=4,
        any::<u64>(),
    )
        .prop_map(|(w, h, pixels, index, n, seed)| {
            let mut spec = AviSpec::new(w, h, pixels);
            spec.index = index;
            let (planes, max) = match pixels {
                AviPixels::Bgr24 { .. } => (3, 255),
                AviPixels::Y16 => (1, 65535),
                _ => (1, 255),
            };
            let frames = (0..n)
                .map(|k| samples((w * h) as usize * planes, max, seed + k as u64))
                .collect();
            ValidAvi { spec, frames }
        })
}

fn open_avi(p: &Path, b: Vec<u8>) -> Result<AviFile, jupiter_host::io::capture::CaptureError> {
    AviFile::from_bytes(p, b)
}

proptest! {
    #![proptest_config(config(20_000))]
    #[test]
    fn avi_arbitrary_bytes_never_panic(
        riff in any::<bool>(),
        tail in prop::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut b = Vec::new();
        if riff {
            b.extend_from_slice(b"RIFF");
            b.extend_from_slice(&(tail.len() as u32 + 4).to_le_bytes());
            b.extend_from_slice(b"AVI ");
        }
        b.extend_from_slice(&tail);
        check(AVI, b, open_avi)?;
    }
}

proptest! {
    #![proptest_config(config(50_000))]
    #[test]
    fn avi_mutated_files_never_panic(v in valid_avis(), ms in mutations()) {
        check(AVI, mutate(avi_bytes(&v.spec, &v.frames), &ms), open_avi)?;
    }
}

proptest! {
    #![proptest_config(config(10_000))]
    #[test]
    fn avi_valid_files_decode_to_their_samples(v in valid_avis()) {
        let got = check(AVI, avi_bytes(&v.spec, &v.frames), open_avi)?.expect("a valid AVI opens");
        let max = if v.spec.pixels == AviPixels::Y16 { 65535.0 } else { 255.0 };
        for (g, f) in got.iter().zip(&v.frames) {
            let want: Vec<f32> = f.iter().map(|&s| s as f32 / max).collect();
            prop_assert_eq!(g, &want);
        }
    }
}

// ---- FITS ---------------------------------------------------------------------

const FITS: &str = "fuzz-case.fits";

#[derive(Debug, Clone)]
struct ValidFits {
    spec: FitsSpec,
    frames: Vec<Vec<f64>>,
}

fn valid_fits() -> impl Strategy<Value = ValidFits> {
    let bitpix = prop_oneof![Just(8), Just(16), Just(32), Just(-32), Just(-64)];
    (
        1usize..=12,
        1usize..=12,
        bitpix,
        1usize..=4,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(|(w, h, bitpix, n, cube, bayer, seed)| {
            let mut spec = FitsSpec::u16(w, h);
            spec.bitpix = bitpix;
            spec.cube = cube;
            if bitpix != 16 {
                spec.bzero = 0.0;
            }
            if bayer {
                spec.cards.push(("BAYERPAT".into(), "'BGGR'".into()));
            }
            spec.cards
                .push(("DATE-OBS".into(), "'2024-03-01T22:10:05.5'".into()));
            let max = if bitpix == 8 { 255 } else { 65535 };
            let frames = (0..n)
                .map(|k| {
                    samples(w * h, max, seed + k as u64)
                        .iter()
                        .map(|&s| s as f64)
                        .collect()
                })
                .collect();
            ValidFits { spec, frames }
        })
}

fn open_fits(p: &Path, b: Vec<u8>) -> Result<FitsCube, jupiter_host::io::capture::CaptureError> {
    FitsCube::from_bytes(p, b)
}

/// Offsets of the value fields of the first cards (where a mutation of a
/// FITS header bites: the text of BITPIX, NAXISn, BZERO, …).
fn fits_text_mutation() -> impl Strategy<Value = (usize, String)> {
    let values = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("3".to_string()),
        Just("99999999999999999999".to_string()),
        Just("32768".to_string()),
        Just("1E308".to_string()),
        Just("NaN".to_string()),
        Just("'".to_string()),
        Just("".to_string()),
        any::<i32>().prop_map(|v| v.to_string()),
    ];
    (0usize..10, values)
}

proptest! {
    #![proptest_config(config(20_000))]
    #[test]
    fn fits_arbitrary_bytes_never_panic(
        simple in any::<bool>(),
        tail in prop::collection::vec(any::<u8>(), 0..3200),
    ) {
        let mut b = Vec::new();
        if simple {
            b.extend_from_slice(b"SIMPLE  =                    T");
        }
        b.extend_from_slice(&tail);
        check(FITS, b, open_fits)?;
    }
}

proptest! {
    #![proptest_config(config(30_000))]
    #[test]
    fn fits_mutated_files_never_panic(
        v in valid_fits(),
        text in prop::option::of(fits_text_mutation()),
        ms in prop::option::of(mutations()),
    ) {
        let mut b = fits_bytes(&v.spec, &v.frames);
        if let Some((card, value)) = text {
            let at = card * 80 + 10;
            let field = format!("{value:>20}");
            let n = field.len().min(70);
            b[at..at + n].copy_from_slice(&field.as_bytes()[..n]);
        }
        if let Some(ms) = ms {
            b = mutate(b, &ms);
        }
        check(FITS, b, open_fits)?;
    }
}

proptest! {
    #![proptest_config(config(10_000))]
    #[test]
    fn fits_valid_files_decode_to_their_values(v in valid_fits()) {
        let got = check(FITS, fits_bytes(&v.spec, &v.frames), open_fits)?.expect("a valid FITS opens");
        prop_assert_eq!(got.len(), v.frames.len());
        if v.spec.cards.iter().all(|(k, _)| k != "BAYERPAT") {
            let scale = match v.spec.bitpix {
                8 => 255.0,
                16 => 65535.0,
                32 => u32::MAX as f64,
                // Floats: the smallest of 1, 255, 65535 that holds the first,
                // middle and last frames (the reader's documented rule; a
                // tiny frame of small values reads as 8-bit).
                _ => {
                    let n = v.frames.len();
                    let max = [0, n / 2, n - 1]
                        .iter()
                        .flat_map(|&k| v.frames[k].iter().copied())
                        .fold(0.0f64, f64::max);
                    [1.0, 255.0, 65535.0].into_iter().find(|&s| max <= s).unwrap_or(max)
                }
            };
            for (g, f) in got.iter().zip(&v.frames) {
                for (a, b) in g.iter().zip(f) {
                    prop_assert!((*a as f64 - b / scale).abs() < 1e-6, "{} vs {}", a, b / scale);
                }
            }
        }
    }
}

// ---- image sequences -------------------------------------------------------------

proptest! {
    #![proptest_config(config(20_000))]
    #[test]
    fn natural_order_is_a_total_order(
        a in "[a-c0-9_]{0,12}",
        b in "[a-c0-9_]{0,12}",
        c in "[a-c0-9_]{0,12}",
    ) {
        prop_assert_eq!(natural(&a, &b), natural(&b, &a).reverse());
        prop_assert_eq!(natural(&a, &b) == Ordering::Equal, a == b);
        if natural(&a, &b) != Ordering::Greater && natural(&b, &c) != Ordering::Greater {
            prop_assert!(natural(&a, &c) != Ordering::Greater, "{} {} {}", a, b, c);
        }
    }
}

// ---- dates in names and AVI headers -----------------------------------------------

proptest! {
    #![proptest_config(config(50_000))]
    #[test]
    fn dates_in_names_and_avi_chunks_never_panic(
        name in "[0-9_\\-a-zé€ .]{0,40}",
        raw in proptest::collection::vec(any::<u8>(), 0..40),
        (y, mo, d, h, mi, t) in (1900u32..2200, 1u32..13, 1u32..29, 0u32..24, 0u32..60, 0u32..10),
    ) {
        let _ = name_time(&name);
        let _ = avi_date(&raw);
        let _ = avi_date(name.as_bytes());
        // A well-formed name reads back to its own time, with text around it.
        let stamp = format!("{y:04}-{mo:02}-{d:02}-{h:02}{mi:02}_{t}");
        let iso = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{:02}", t * 6);
        let want = jupiter_host::io::fits::date_ticks(&iso);
        prop_assert!(want.is_some());
        prop_assert_eq!(name_time(&format!("é{name}{stamp}-Jup.ser")), want);
        prop_assert_eq!(avi_date(iso.as_bytes()), want);
    }
}

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("jupiter-fuzz-seq-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

proptest! {
    // Each case writes files: fewer cases.
    #![proptest_config(config(300))]
    #[test]
    fn sequences_of_mutated_images_fail_cleanly(
        png in any::<bool>(),
        w in 1u32..=8,
        h in 1u32..=8,
        n in 1usize..=3,
        victim in 0usize..3,
        ms in mutations(),
        seed in any::<u64>(),
    ) {
        let d = scratch().join(format!("case-{seed:016x}"));
        std::fs::create_dir_all(&d).unwrap();
        let ext = if png { "png" } else { "tif" };
        let files: Vec<PathBuf> = (0..n).map(|k| d.join(format!("f{k}.{ext}"))).collect();
        for (k, f) in files.iter().enumerate() {
            let s = samples((w * h) as usize, 255, seed + k as u64);
            if png {
                write_png(f, (w, h, 1), 8, &s).unwrap();
            } else {
                write_tiff(f, (w, h, 1), 8, &s).unwrap();
            }
        }
        let victim = &files[victim % n];
        let bytes = mutate(std::fs::read(victim).unwrap(), &ms);
        std::fs::write(victim, &bytes).unwrap();
        let r = std::panic::catch_unwind(|| match CaptureFile::open(&d, OpenOptions::default()) {
            Ok(c) => decode_all(&c).map(|_| ()).or_else(|e| {
                // A header that still reads but a body that does not: the
                // frame's error must name the file.
                if e.contains(&*victim.file_name().unwrap().to_string_lossy()) { Ok(()) } else { Err(e) }
            }),
            Err(e) => {
                let msg = e.to_string();
                if msg.contains(&*d.to_string_lossy()) { Ok(()) } else { Err(format!("error names no file: {msg}")) }
            }
        });
        let _ = std::fs::remove_dir_all(&d);
        match r {
            Ok(r) => r.map_err(TestCaseError::fail)?,
            Err(_) => return Err(TestCaseError::fail("panicked")),
        }
    }
}

// ---- compressed video through FFmpeg (the `ffmpeg` feature) ----------------

/// Small videos made by the `ffmpeg` command, once: MJPEG in AVI, inter-coded
/// MPEG-4 in MP4, FFV1 in MKV. The feature's build needs FFmpeg installed,
/// and so does this test: a missing command fails it, it never passes empty.
#[cfg(feature = "ffmpeg")]
fn video_seeds() -> &'static [(String, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(|| {
        let d = scratch().join("video-seeds");
        std::fs::create_dir_all(&d).unwrap();
        [
            ("seed.avi", &["-c:v", "mjpeg", "-q:v", "3"][..]),
            ("seed.mp4", &["-c:v", "mpeg4", "-g", "3", "-bf", "1"][..]),
            ("seed.mkv", &["-c:v", "ffv1", "-pix_fmt", "gray"][..]),
        ]
        .into_iter()
        .map(|(name, codec)| {
            let out = d.join(name);
            let st = std::process::Command::new("ffmpeg")
                .args([
                    "-loglevel",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    "testsrc=size=24x16:rate=10",
                    "-frames:v",
                    "4",
                ])
                .args(codec)
                .arg(&out)
                .status()
                .expect("the ffmpeg command is needed for the ffmpeg feature's fuzz test");
            assert!(st.success(), "ffmpeg could not write {name}");
            (name.to_string(), std::fs::read(&out).unwrap())
        })
        .collect()
    })
}

#[cfg(feature = "ffmpeg")]
proptest! {
    #![proptest_config(config(400))]
    /// Mutated compressed videos: FFmpeg parses them, jupiter's reader must
    /// turn whatever comes out into frames in [0, 1] or an error naming the
    /// file, never a panic.
    #[test]
    fn compressed_videos_mutated_never_panic(which in 0usize..3, ms in mutations(), seed in any::<u64>()) {
        let (name, bytes) = &video_seeds()[which];
        let path = scratch().join(format!("v-{seed:016x}-{name}"));
        std::fs::write(&path, mutate(bytes.clone(), &ms)).unwrap();
        let r = std::panic::catch_unwind(|| match CaptureFile::open(&path, OpenOptions::default()) {
            Ok(c) => decode_all(&c).map(|_| ()).or_else(|e| {
                if e.contains(&*path.to_string_lossy()) { Ok(()) } else { Err(e) }
            }),
            Err(e) => {
                let msg = e.to_string();
                if msg.contains(&*path.to_string_lossy()) { Ok(()) } else { Err(format!("error names no file: {msg}")) }
            }
        });
        let _ = std::fs::remove_file(&path);
        match r {
            Ok(r) => r.map_err(TestCaseError::fail)?,
            Err(_) => return Err(TestCaseError::fail(format!("panicked on a mutated {name}"))),
        }
    }
}
