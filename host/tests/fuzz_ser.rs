//! Property tests ("fuzzing") of the SER parser and the debayer: arbitrary
//! bytes, mutated valid files and arbitrary mosaics must never panic, never
//! allocate more than the input justifies, and every error must name the file.
//!
//! The normal test run executes about 10⁵ cases in all (see [`CASES`]); set
//! `PROPTEST_CASES=N` to run N cases per property instead. The long run and its
//! figures are in `docs/FUZZING.md`:
//!
//! ```text
//! PROPTEST_CASES=1000000 cargo test --release -p jupiter-host --test fuzz_ser
//! ```
//!
//! Parsing runs on in-memory buffers (`SerFile::from_bytes`, the same code
//! as the memory-mapped path) so that each case costs microseconds; one
//! property checks that the mapped path agrees.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};

use jupiter_host::io::debayer::{debayer_rows, BayerPattern};
use jupiter_host::io::ser::{ByteOrder, OpenOptions, SerError, SerFile, HEADER_LEN};
use jupiter_testkit::ser::{frame_bytes, header_bytes, Cfa, SerColor, SerSpec, DEFAULT_DATE};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

// ---- allocation tracking -------------------------------------------------

/// The system allocator, recording the largest single request per thread.
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

/// Runs `f` and returns its result with the largest single allocation it made.
fn largest_alloc<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|c| c.set(0));
    let r = f();
    (r, LARGEST.with(|c| c.get()))
}

// ---- configuration ---------------------------------------------------------

/// Cases per property in the normal run (about 10⁵ in all), unless
/// `PROPTEST_CASES` says otherwise.
const CASES: Cases = Cases {
    bytes: 100_000,
    mutated: 200_000,
    valid: 50_000,
    mapped: 2_000,
    debayer: 50_000,
};

struct Cases {
    bytes: u32,
    mutated: u32,
    valid: u32,
    mapped: u32,
    debayer: u32,
}

fn config(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    // Crashes found become explicit regression tests (below), so no
    // regression files are written next to the sources.
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NAME: &str = "fuzz-case.ser";

fn name() -> &'static Path {
    Path::new(NAME)
}

// ---- the checks every parse must pass --------------------------------------

/// Parses `bytes` and, when it opens, decodes every frame (whole, and in row
/// bands): no panic, errors name the file, samples finite and in `[0, 1]`,
/// and no allocation larger than the input justifies.
fn check(bytes: Vec<u8>, opts: OpenOptions) -> Result<Option<SerFile>, TestCaseError> {
    let len = bytes.len();
    // Decoding makes frames of `f32` RGB from (at least) one byte per pixel:
    // 12 bytes of output per byte of input, plus small change.
    let bound = 16 * len + 64 * 1024;
    let (result, largest) = largest_alloc(|| -> Result<Option<SerFile>, String> {
        let ser = match SerFile::from_bytes(name(), bytes, opts) {
            Ok(s) => s,
            Err(e) => {
                let msg = e.to_string();
                if !msg.contains(NAME) {
                    return Err(format!("error does not name the file: {msg}"));
                }
                return Ok(None);
            }
        };
        if ser.frame_count == 0 || ser.width() == 0 || ser.height() == 0 {
            return Err(format!(
                "opened with {} frames of {}×{}",
                ser.frame_count,
                ser.width(),
                ser.height()
            ));
        }
        if !(ser.scale.is_finite() && ser.scale >= 1.0) {
            return Err(format!("scale {}", ser.scale));
        }
        let (w, h, c) = (ser.width(), ser.height(), ser.channels());
        for i in 0..ser.frame_count {
            let f = ser.decode_frame(i).map_err(|e| format!("frame {i}: {e}"))?;
            if let Some(v) = f
                .iter()
                .find(|v| !(v.is_finite() && (0.0..=1.0).contains(*v)))
            {
                return Err(format!("frame {i}: sample {v} outside [0, 1]"));
            }
            // Row bands decode to the same samples as the whole frame.
            let band = (h / 3).max(1);
            let mut y0 = 0;
            while y0 < h {
                let rows = band.min(h - y0);
                let mut out = vec![0.0f32; rows * w * c];
                ser.decode_rows(i, y0, rows, &mut out)
                    .map_err(|e| format!("frame {i} rows {y0}+{rows}: {e}"))?;
                if out[..] != f[y0 * w * c..(y0 + rows) * w * c] {
                    return Err(format!(
                        "frame {i}: rows {y0}+{rows} decode differently in a band"
                    ));
                }
                y0 += rows;
            }
        }
        // Out-of-range requests are errors naming the file, not panics.
        match ser.decode_frame(ser.frame_count) {
            Err(e @ SerError::FrameIndex { .. }) if e.to_string().contains(NAME) => {}
            other => return Err(format!("frame past the end: {:?}", other.map(|v| v.len()))),
        }
        let mut out = vec![0.0f32; w * c];
        if ser.decode_rows(0, h, 1, &mut out).is_ok() {
            return Err("a row past the bottom decoded".into());
        }
        if let Some(ts) = &ser.timestamps {
            if ts.len() != ser.frame_count {
                return Err(format!(
                    "{} timestamps for {} frames",
                    ts.len(),
                    ser.frame_count
                ));
            }
        }
        Ok(Some(ser))
    });
    let ser = result.map_err(TestCaseError::fail)?;
    prop_assert!(
        largest <= bound,
        "allocated {largest} bytes at once for an input of {len} bytes"
    );
    Ok(ser)
}

// ---- strategies ------------------------------------------------------------

fn colors() -> impl Strategy<Value = SerColor> {
    prop_oneof![
        Just(SerColor::Mono),
        Just(SerColor::Bayer(Cfa::Rggb)),
        Just(SerColor::Bayer(Cfa::Grbg)),
        Just(SerColor::Bayer(Cfa::Gbrg)),
        Just(SerColor::Bayer(Cfa::Bggr)),
        Just(SerColor::Rgb),
        Just(SerColor::Bgr),
    ]
}

fn options() -> impl Strategy<Value = OpenOptions> {
    (
        prop_oneof![
            Just(ByteOrder::Auto),
            Just(ByteOrder::Little),
            Just(ByteOrder::Big)
        ],
        any::<bool>(),
    )
        .prop_map(|(byte_order, allow_truncated)| OpenOptions {
            byte_order,
            allow_truncated,
        })
}

/// What the trailer of a generated file holds.
#[derive(Debug, Clone, Copy)]
enum Trailer {
    None,
    /// One timestamp per frame, each `step` after the previous (may be negative).
    Timestamps {
        step: i64,
    },
    /// Bytes that are not a whole trailer.
    Junk(usize),
}

/// A valid SER file: spec, samples, and its bytes.
#[derive(Debug, Clone)]
struct Valid {
    spec: SerSpec,
    frames: Vec<Vec<u16>>,
    bytes: Vec<u8>,
}

fn valid_files() -> impl Strategy<Value = Valid> {
    (
        1u32..=20,
        1u32..=20,
        colors(),
        1u32..=16,
        1usize..=4,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_flat_map(|(w, h, color, depth, frames, big, flag, seed)| {
            let trailer = prop_oneof![
                Just(Trailer::None),
                (-1_000_000i64..1_000_000).prop_map(|step| Trailer::Timestamps { step }),
                (1usize..24).prop_map(Trailer::Junk),
            ];
            (Just((w, h, color, depth, frames, big, flag, seed)), trailer)
        })
        .prop_map(|((w, h, color, depth, n, big, flag, seed), trailer)| {
            let mut spec = SerSpec::new(w, h, color, depth);
            spec.big_endian = big && depth > 8;
            spec.little_endian_flag = flag as i32;
            let max = ((1u32 << depth) - 1) as u64;
            let mut state = seed | 1;
            let mut next = || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let len = (w * h) as usize * color.planes();
            let frames: Vec<Vec<u16>> = (0..n)
                .map(|_| (0..len).map(|_| (next() % (max + 1)) as u16).collect())
                .collect();
            let mut bytes = header_bytes(&spec, n as u32);
            for f in &frames {
                bytes.extend_from_slice(&frame_bytes(&spec, f));
            }
            match trailer {
                Trailer::None => {}
                Trailer::Timestamps { step } => {
                    for i in 0..n as i64 {
                        bytes.extend_from_slice(&(DEFAULT_DATE + i * step).to_le_bytes());
                    }
                }
                Trailer::Junk(k) => bytes.extend((0..k).map(|i| i as u8)),
            }
            Valid {
                spec,
                frames,
                bytes,
            }
        })
}

/// Header fields (offset, width): colour, endianness flag, width, height,
/// depth, frame count, and the two dates.
const FIELDS: &[(usize, usize)] = &[
    (14, 4),
    (18, 4),
    (22, 4),
    (26, 4),
    (30, 4),
    (34, 4),
    (38, 4),
    (162, 8),
    (170, 8),
];

/// Values that tend to break parsers.
fn interesting() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0i64),
        Just(1),
        Just(-1),
        Just(2),
        Just(3),
        Just(7),
        Just(8),
        Just(9),
        Just(11),
        Just(12),
        Just(15),
        Just(16),
        Just(17),
        Just(19),
        Just(100),
        Just(101),
        Just(255),
        Just(256),
        Just(32767),
        Just(32768),
        Just(32769),
        Just(65535),
        Just(65536),
        Just(100_000),
        Just(1_000_000_000),
        Just(i32::MAX as i64),
        Just(i32::MIN as i64),
        Just(i64::MAX),
        Just(i64::MIN),
        any::<i64>(),
        0i64..64,
    ]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Writes a value into a header field.
    Field { field: usize, value: i64 },
    /// Overwrites one byte anywhere (position as a fraction of the length).
    Byte { at: f64, value: u8 },
    /// Cuts the file (new length as a fraction of the old).
    Truncate { keep: f64 },
    /// Appends bytes.
    Append(Vec<u8>),
    /// Removes a run of bytes from the middle.
    Splice { at: f64, len: usize },
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        4 => (0..FIELDS.len(), interesting()).prop_map(|(field, value)| Mutation::Field { field, value }),
        2 => (0.0f64..1.0, any::<u8>()).prop_map(|(at, value)| Mutation::Byte { at, value }),
        1 => (0.0f64..1.0).prop_map(|keep| Mutation::Truncate { keep }),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Mutation::Append),
        1 => (0.0f64..1.0, 1usize..16).prop_map(|(at, len)| Mutation::Splice { at, len }),
    ];
    proptest::collection::vec(one, 1..5)
}

fn mutate(mut b: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        match m {
            Mutation::Field { field, value } => {
                let (off, width) = FIELDS[*field];
                if b.len() >= off + width {
                    b[off..off + width].copy_from_slice(&value.to_le_bytes()[..width]);
                }
            }
            Mutation::Byte { at, value } => {
                if !b.is_empty() {
                    let i = ((*at * b.len() as f64) as usize).min(b.len() - 1);
                    b[i] = *value;
                }
            }
            Mutation::Truncate { keep } => b.truncate((*keep * b.len() as f64) as usize),
            Mutation::Append(extra) => b.extend_from_slice(extra),
            Mutation::Splice { at, len } => {
                let i = (*at * b.len() as f64) as usize;
                let end = (i + len).min(b.len());
                b.drain(i.min(end)..end);
            }
        }
    }
    b
}

/// Arbitrary bytes, half of them starting with the SER magic (so that the
/// header fields, not just the magic check, see random values).
fn arbitrary_files() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<bool>(),
        proptest::collection::vec(any::<u8>(), 0..700),
    )
        .prop_map(|(magic, mut b)| {
            if magic {
                let m = b"LUCAM-RECORDER";
                let n = m.len().min(b.len());
                b[..n].copy_from_slice(&m[..n]);
            }
            b
        })
}

// ---- properties ------------------------------------------------------------

/// Runs `cases` of `strategy` through `check`, then prints (and returns) how
/// many inputs opened, so that a property cannot silently degrade into
/// testing the magic check alone.
fn run_counting<S: Strategy>(
    cases: u32,
    strategy: S,
    input: impl Fn(S::Value) -> (Vec<u8>, OpenOptions),
) -> (u32, u32) {
    use std::sync::atomic::{AtomicU32, Ordering};
    let (total, opened) = (AtomicU32::new(0), AtomicU32::new(0));
    let mut runner = proptest::test_runner::TestRunner::new(config(cases));
    let result = runner.run(&strategy, |v| {
        let (bytes, opts) = input(v);
        total.fetch_add(1, Ordering::Relaxed);
        if check(bytes, opts)?.is_some() {
            opened.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    let (t, o) = (total.into_inner(), opened.into_inner());
    eprintln!("{o} of {t} inputs opened (the rest were refused with an error naming the file)");
    (t, o)
}

#[test]
fn arbitrary_bytes_never_panic() {
    run_counting(CASES.bytes, (arbitrary_files(), options()), |(b, o)| (b, o));
}

#[test]
fn mutated_files_never_panic() {
    let (total, opened) = run_counting(
        CASES.mutated,
        (valid_files(), mutations(), options()),
        |(f, m, o)| (mutate(f.bytes, &m), o),
    );
    // Enough mutants get past the header to exercise the frame decoder.
    assert!(
        opened as f64 >= 0.2 * total as f64,
        "only {opened} of {total} mutated files opened"
    );
}

proptest! {
    #![proptest_config(config(CASES.valid))]
    /// Valid files decode to the samples that were written, whatever the
    /// byte order, depth and colour layout.
    #[test]
    fn valid_files_decode_to_their_samples(file in valid_files()) {
        let spec = file.spec.clone();
        let opts = OpenOptions {
            byte_order: if spec.big_endian { ByteOrder::Big } else { ByteOrder::Little },
            allow_truncated: false,
        };
        let ser = check(file.bytes, opts)?.expect("a valid file opens");
        prop_assert_eq!(ser.frame_count, file.frames.len());
        let (w, h) = (spec.width as usize, spec.height as usize);
        let declared_max = ((1u32 << spec.depth) - 1) as f32;
        for (i, samples) in file.frames.iter().enumerate() {
            let f = ser.decode_frame(i).unwrap();
            let want = |s: u16| s as f32 / ser.scale;
            prop_assert!(ser.scale == declared_max || ser.scale == 255.0 || ser.scale == 65535.0);
            match spec.color {
                SerColor::Mono | SerColor::Rgb => {
                    for (a, b) in f.iter().zip(samples) {
                        prop_assert!((a - want(*b)).abs() < 1e-6);
                    }
                }
                SerColor::Bgr => {
                    // The writer swaps RGB to BGR, the reader swaps it back.
                    for (a, b) in f.iter().zip(samples) {
                        prop_assert!((a - want(*b)).abs() < 1e-6);
                    }
                }
                SerColor::Bayer(p) => {
                    // Each pixel keeps its own sample in its own colour.
                    for y in 0..h {
                        for x in 0..w {
                            let c = p.color_at(x, y);
                            prop_assert!((f[(y * w + x) * 3 + c] - want(samples[y * w + x])).abs() < 1e-6);
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(CASES.mapped))]
    /// The memory-mapped path agrees with the in-memory one.
    #[test]
    fn mapped_and_in_memory_agree(file in valid_files(), muts in mutations(), opts in options()) {
        let bytes = mutate(file.bytes, &muts);
        let path = scratch().join(NAME);
        std::fs::write(&path, &bytes).unwrap();
        let mapped = SerFile::open(&path, opts);
        let mem = SerFile::from_bytes(&path, bytes, opts);
        match (mapped, mem) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!((a.frame_count, a.little_endian, a.scale), (b.frame_count, b.little_endian, b.scale));
                prop_assert_eq!(&a.warnings, &b.warnings);
                for i in 0..a.frame_count {
                    prop_assert_eq!(a.decode_frame(i).unwrap(), b.decode_frame(i).unwrap());
                }
            }
            (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => prop_assert!(false, "mapped {:?} vs in memory {:?}", a.map(|s| s.frame_count), b.map(|s| s.frame_count)),
        }
    }
}

/// A directory of this test thread's own under cargo's scratch space for
/// integration tests (`target/tmp`).
fn scratch() -> PathBuf {
    thread_local! {
        static DIR: PathBuf = {
            let id = format!("{:?}", std::thread::current().id()).replace(|c: char| !c.is_ascii_alphanumeric(), "");
            let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-ser").join(id);
            std::fs::create_dir_all(&d).unwrap();
            d
        };
    }
    DIR.with(|d| d.clone())
}

fn patterns() -> impl Strategy<Value = BayerPattern> {
    prop_oneof![
        Just(BayerPattern::Rggb),
        Just(BayerPattern::Grbg),
        Just(BayerPattern::Gbrg),
        Just(BayerPattern::Bggr)
    ]
}

/// A mosaic of `w × h` (either random or flat) and a band of output rows.
fn mosaics() -> impl Strategy<Value = (usize, usize, BayerPattern, Vec<f32>, usize, usize)> {
    (1usize..=40, 1usize..=40, patterns(), any::<bool>()).prop_flat_map(|(w, h, p, flat)| {
        let data = if flat {
            (0.0f32..=1.0).prop_map(move |v| vec![v; w * h]).boxed()
        } else {
            proptest::collection::vec(0.0f32..=1.0, w * h).boxed()
        };
        (Just(w), Just(h), Just(p), data, 0..h).prop_flat_map(move |(w, h, p, d, y0)| {
            (Just(w), Just(h), Just(p), Just(d), Just(y0), 0..=h - y0)
        })
    })
}

proptest! {
    #![proptest_config(config(CASES.debayer))]
    /// Any size and data: a band decodes like the same rows of the whole
    /// image, every output lies within the input's range, each pixel keeps
    /// its own sample, and a flat mosaic stays flat.
    #[test]
    fn debayer_any_size((w, h, p, raw, y0, rows) in mosaics()) {
        let mut full = vec![f32::NAN; w * h * 3];
        debayer_rows(&raw, w, h, 0, p, 0, h, &mut full);
        let lo = y0.saturating_sub(1);
        let hi = (y0 + rows + 1).min(h);
        let mut band = vec![f32::NAN; rows * w * 3];
        debayer_rows(&raw[lo * w..hi * w], w, h, lo, p, y0, rows, &mut band);
        prop_assert_eq!(&band[..], &full[y0 * w * 3..(y0 + rows) * w * 3]);
        let min = raw.iter().copied().fold(f32::INFINITY, f32::min);
        let max = raw.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let flat = min == max;
        let present = [0, 1, 2].map(|c| (0..h).any(|y| (0..w).any(|x| p.color_at(x, y) == c)));
        for y in 0..h {
            for x in 0..w {
                let px = &full[(y * w + x) * 3..(y * w + x) * 3 + 3];
                prop_assert_eq!(px[p.color_at(x, y)], raw[y * w + x]);
                for c in 0..3 {
                    let v = px[c];
                    prop_assert!(v.is_finite());
                    // A colour with no sample in reach is 0 (1×1 and 1-wide images).
                    prop_assert!((v >= min - 1e-6 && v <= max + 1e-6) || v == 0.0, "({x},{y}) c{c} = {v} outside [{min}, {max}]");
                    if flat && present[c] && w >= 2 && h >= 2 {
                        prop_assert!((v - min).abs() < 1e-6, "flat mosaic: ({x},{y}) c{c} = {v}, want {min}");
                    }
                }
            }
        }
    }
}

// ---- hand-written edge cases and regressions --------------------------------

#[test]
fn absurd_header_in_a_tiny_file_allocates_nothing_large() {
    let mut spec = SerSpec::new(32768, 32768, SerColor::Rgb, 16);
    spec.header_frame_count = Some(i32::MAX as u32);
    let mut bytes = header_bytes(&spec, 0);
    bytes.resize(1024, 7);
    for allow_truncated in [false, true] {
        let ((), largest) = largest_alloc(|| {
            let e = SerFile::from_bytes(
                name(),
                bytes.clone(),
                OpenOptions {
                    allow_truncated,
                    ..Default::default()
                },
            )
            .err()
            .unwrap();
            let msg = e.to_string();
            assert!(msg.contains(NAME) && msg.contains("truncated"), "{msg}");
        });
        assert!(largest < 64 * 1024, "{largest} bytes allocated at once");
    }
}

#[test]
fn header_only_and_empty_inputs() {
    for len in [0, 1, 14, HEADER_LEN - 1, HEADER_LEN] {
        let mut b = header_bytes(&SerSpec::new(4, 4, SerColor::Mono, 8), 1);
        b.truncate(len);
        let e = SerFile::from_bytes(name(), b, OpenOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(NAME), "{e}");
    }
}

#[test]
fn zero_count_with_a_partial_frame_names_the_sizes() {
    let mut spec = SerSpec::new(16, 16, SerColor::Mono, 8);
    spec.header_frame_count = Some(0);
    let mut b = header_bytes(&spec, 0);
    b.extend_from_slice(&[1; 100]);
    let e = SerFile::from_bytes(name(), b, OpenOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("0 frames") && e.contains("256"), "{e}");
}
