//! AVI files built in memory by `jupiter_testkit::avi`, decoded exactly.

use super::*;
use crate::io::capture::{CaptureFile, OpenOptions};
use crate::io::debayer::BayerPattern;
use jupiter_testkit::avi::{avi_bytes, write_avi, AviIndex, AviPixels, AviSpec};

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jupiter-avi-test-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join(name)
}

/// Frames of distinct, recognisable samples up to `max`.
fn frames(w: u32, h: u32, planes: usize, n: usize, max: u32) -> Vec<Vec<u16>> {
    (0..n)
        .map(|k| {
            (0..(w * h) as usize * planes)
                .map(|i| ((i * 37 + k * 101) as u32 % (max + 1)) as u16)
                .collect()
        })
        .collect()
}

fn open(spec: &AviSpec, f: &[Vec<u16>]) -> AviFile {
    AviFile::from_bytes(Path::new("t.avi"), avi_bytes(spec, f)).unwrap()
}

/// Every frame decodes to exactly its samples / `max`.
fn check(a: &AviFile, f: &[Vec<u16>], max: f32) {
    assert_eq!(a.frame_count(), f.len());
    let c = CaptureFile::from_reader(Box::new(clone_of(a)), None).unwrap();
    for (k, samples) in f.iter().enumerate() {
        let got = c.decode_frame(k).unwrap();
        let want: Vec<f32> = samples.iter().map(|&s| s as f32 / max).collect();
        assert_eq!(got, want, "frame {k}");
    }
}

/// A second reader over the same bytes (the first stays with the caller).
fn clone_of(a: &AviFile) -> AviFile {
    AviFile::from_bytes(&a.path, a.data.to_vec()).unwrap()
}

#[test]
fn y800_with_idx1() {
    let spec = AviSpec::new(7, 5, AviPixels::Y800);
    let f = frames(7, 5, 1, 3, 255);
    let a = open(&spec, &f);
    assert_eq!(
        (a.width(), a.height(), a.channels(), a.bit_depth()),
        (7, 5, 1, 8)
    );
    assert_eq!(a.frame_rate(), Some(30.0));
    assert_eq!(a.index_source, "idx1");
    check(&a, &f, 255.0);
}

#[test]
fn grey_dib_bottom_up_with_padded_rows() {
    let spec = AviSpec::new(5, 4, AviPixels::Grey8Dib);
    let f = frames(5, 4, 1, 2, 255);
    let a = open(&spec, &f);
    assert!(a.video.bottom_up && a.video.stride == 8);
    check(&a, &f, 255.0);
}

#[test]
fn bgr24_both_row_orders_odd_width() {
    for bottom_up in [true, false] {
        let spec = AviSpec::new(5, 3, AviPixels::Bgr24 { bottom_up });
        let f = frames(5, 3, 3, 2, 255);
        let a = open(&spec, &f);
        assert_eq!(
            (a.channels(), a.video.stride, a.video.bottom_up),
            (3, 16, bottom_up)
        );
        check(&a, &f, 255.0);
    }
}

#[test]
fn y16_little_endian() {
    let spec = AviSpec::new(6, 4, AviPixels::Y16);
    let f = frames(6, 4, 1, 2, 65535);
    let a = open(&spec, &f);
    assert_eq!(a.bit_depth(), 16);
    check(&a, &f, 65535.0);
}

#[test]
fn opendml_with_avix_extensions() {
    let mut spec = AviSpec::new(9, 7, AviPixels::Y800);
    spec.index = AviIndex::OpenDml { per_riff: 2 };
    let f = frames(9, 7, 1, 5, 255);
    let bytes = avi_bytes(&spec, &f);
    // Three RIFFs: the first `AVI ` and two `AVIX`.
    assert_eq!(bytes.windows(4).filter(|w| w == b"AVIX").count(), 2);
    let a = AviFile::from_bytes(Path::new("t.avi"), bytes).unwrap();
    assert!(a.index_source.starts_with("OpenDML"), "{}", a.index_source);
    check(&a, &f, 255.0);
}

#[test]
fn no_index_walks_movi() {
    let mut spec = AviSpec::new(4, 4, AviPixels::Bgr24 { bottom_up: true });
    spec.index = AviIndex::None;
    let f = frames(4, 4, 3, 3, 255);
    let a = open(&spec, &f);
    assert!(a.index_source.starts_with("scan"));
    check(&a, &f, 255.0);
}

#[test]
fn compressed_video_names_the_codec() {
    let mut spec = AviSpec::new(4, 4, AviPixels::Y800);
    spec.fourcc = Some(*b"MJPG");
    let e = AviFile::from_bytes(
        Path::new("moon.avi"),
        avi_bytes(&spec, &frames(4, 4, 1, 1, 255)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("moon.avi") && e.contains("MJPG") && e.contains("ffmpeg"),
        "{e}"
    );
}

#[test]
fn a_cut_file_keeps_its_complete_frames() {
    let spec = AviSpec::new(8, 8, AviPixels::Y800);
    let f = frames(8, 8, 1, 4, 255);
    let mut bytes = avi_bytes(&spec, &f);
    // idx1 is at the end: cut into the movi list instead, keeping idx1 out.
    let movi_end = bytes.windows(4).position(|w| w == b"idx1").unwrap();
    bytes.truncate(movi_end - 40);
    let a = AviFile::from_bytes(Path::new("cut.avi"), bytes).unwrap();
    // No idx1 left: the walk finds 3 whole frames and the partial 4th.
    assert_eq!(a.frame_count(), 3, "{:?}", a.warnings);
    assert!(
        a.warnings.iter().any(|w| w.contains("cut short")),
        "{:?}",
        a.warnings
    );
    let e = AviFile::from_bytes(Path::new("cut.avi"), b"RIFF\x04\0\0\0AVI ".to_vec())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cut.avi") && e.contains("hdrl"), "{e}");
}

#[test]
fn opens_mapped_through_capture_with_a_bayer_override() {
    let spec = AviSpec::new(8, 6, AviPixels::Y800);
    // A flat RGGB mosaic: R 200, G 120, B 40.
    let mosaic: Vec<u16> = (0..48)
        .map(|i| match BayerPattern::Rggb.color_at(i % 8, i / 8) {
            0 => 200,
            1 => 120,
            _ => 40,
        })
        .collect();
    let p = tmp("mosaic.avi");
    write_avi(&p, &spec, &[mosaic.clone(), mosaic]).unwrap();
    let opts = OpenOptions {
        bayer: Some(BayerPattern::Rggb),
        ..Default::default()
    };
    let c = CaptureFile::open(&p, opts).unwrap();
    assert_eq!((c.channels(), c.frame_count()), (3, 2));
    // A flat colour comes back (to f32 rounding: MHC's kernels sum
    // samples with weights that cancel).
    for px in c.decode_frame(1).unwrap().chunks_exact(3) {
        let want = [200.0 / 255.0, 120.0 / 255.0, 40.0 / 255.0];
        assert!(
            px.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6),
            "{px:?}"
        );
    }
    // The device layout: the raw mosaic, debayered there.
    let l = c.raw_layout().unwrap();
    assert_eq!((l.bytes, l.color), (1, ColorId::Bayer(BayerPattern::Rggb)));
    assert_eq!(c.raw_frames(0, 2).unwrap().len(), 96);
    // Rows in bands decode as whole frames do.
    let whole = c.decode_frame(0).unwrap();
    let mut band = vec![0.0; 2 * 8 * 3];
    c.decode_rows(0, 3, 2, &mut band).unwrap();
    assert_eq!(band, whole[3 * 24..5 * 24]);
}

#[test]
fn capture_dates_read_from_idit_and_icrd_forms() {
    let t = crate::io::fits::date_ticks("2024-11-25T21:30:24").unwrap();
    assert_eq!(header::avi_date(b"Mon Nov 25 21:30:24 2024\n\0"), Some(t));
    assert_eq!(header::avi_date(b"2024-11-25 21:30:24"), Some(t));
    assert_eq!(header::avi_date(b"2024-11-25T21:30:24\0"), Some(t));
    assert_eq!(header::avi_date(b"yesterday"), None);
    assert_eq!(header::avi_date(b"Mon Foo 25 21:30:24 2024"), None);
}

#[test]
fn an_info_list_dates_the_capture() {
    let spec = AviSpec::new(8, 4, AviPixels::Y800);
    let f = frames(8, 4, 1, 2, 255);
    let mut bytes = avi_bytes(&spec, &f);
    assert_eq!(open(&spec, &f).start_time(), None);
    // Append `LIST INFO { ICRD "2024-11-25 21:30:24" }` inside the RIFF.
    let text = b"2024-11-25 21:30:24\0";
    let mut list = b"LIST".to_vec();
    list.extend_from_slice(&(4 + 8 + text.len() as u32).to_le_bytes());
    list.extend_from_slice(b"INFOICRD");
    list.extend_from_slice(&(text.len() as u32).to_le_bytes());
    list.extend_from_slice(text);
    bytes.extend_from_slice(&list);
    let riff = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) + list.len() as u32;
    bytes[4..8].copy_from_slice(&riff.to_le_bytes());
    let a = AviFile::from_bytes(Path::new("t.avi"), bytes).unwrap();
    assert_eq!(
        a.start_time(),
        crate::io::fits::date_ticks("2024-11-25T21:30:24")
    );
}
