//! Sequences of PNG, TIFF and FITS files written by the testkit.

use super::*;
use crate::io::capture::{CaptureFile, OpenOptions};
use jupiter_testkit::fits::{write_fits, FitsSpec};
use jupiter_testkit::sequence::{write_png, write_tiff, write_tiff_f32};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("jupiter-seq-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn samples(n: usize, k: usize, max: u32) -> Vec<u16> {
    (0..n)
        .map(|i| ((i * 37 + k * 101) as u32 % (max + 1)) as u16)
        .collect()
}

#[test]
fn png_frames_in_natural_order() {
    let d = dir("png");
    let (w, h) = (5u32, 3u32);
    // Written so that plain text order (1, 10, 2) differs from frame order.
    for k in [1usize, 2, 10] {
        write_png(
            &d.join(format!("frame_{k}.png")),
            (w, h, 3),
            16,
            &samples(45, k, 65535),
        )
        .unwrap();
    }
    std::fs::write(d.join("notes.txt"), "seeing 2/5").unwrap();
    let c = CaptureFile::open(&d, OpenOptions::default()).unwrap();
    assert_eq!(
        (
            c.width(),
            c.height(),
            c.channels(),
            c.frame_count(),
            c.bit_depth()
        ),
        (5, 3, 3, 3, 16)
    );
    for (i, k) in [1usize, 2, 10].into_iter().enumerate() {
        let want: Vec<f32> = samples(45, k, 65535)
            .iter()
            .map(|&v| v as f32 / 65535.0)
            .collect();
        assert_eq!(c.decode_frame(i).unwrap(), want, "frame {i}");
        let mut band = vec![0.0; 15];
        c.decode_rows(i, 2, 1, &mut band).unwrap();
        assert_eq!(band, want[30..]);
    }
}

#[test]
fn tiff_8_bit_and_float() {
    let d = dir("tiff8");
    for k in 0..2 {
        write_tiff(
            &d.join(format!("f{k}.tif")),
            (4, 4, 1),
            8,
            &samples(16, k, 255),
        )
        .unwrap();
    }
    let c = CaptureFile::open(&d, OpenOptions::default()).unwrap();
    assert_eq!(
        c.decode_frame(1).unwrap()[3],
        samples(16, 1, 255)[3] as f32 / 255.0
    );
    let d = dir("tiff32");
    let f: Vec<f32> = (0..16).map(|i| i as f32 / 16.0).collect();
    write_tiff_f32(&d.join("a.tiff"), (4, 4, 1), &f).unwrap();
    let c = CaptureFile::open(&d, OpenOptions::default()).unwrap();
    assert_eq!(c.decode_frame(0).unwrap(), f);
}

#[test]
fn fits_frames_with_bayerpat() {
    let d = dir("fits");
    let mut spec = FitsSpec::u16(6, 4);
    spec.cube = false;
    spec.cards.push(("BAYERPAT".into(), "'RGGB'".into()));
    for k in 0..3 {
        let v: Vec<f64> = samples(24, k, 65535).iter().map(|&s| s as f64).collect();
        write_fits(&d.join(format!("img{k}.fits")), &spec, &[v]).unwrap();
    }
    let c = CaptureFile::open(&d, OpenOptions::default()).unwrap();
    assert_eq!(
        (c.frame_count(), c.channels(), c.bayer()),
        (3, 3, Some(BayerPattern::Rggb))
    );
    c.decode_frame(2).unwrap();
}

#[test]
fn fits_frames_give_their_date_obs_as_frame_times() {
    let d = dir("fits-times");
    for k in 0..3 {
        let mut spec = FitsSpec::u16(6, 4);
        spec.cube = false;
        spec.cards
            .push(("DATE-OBS".into(), format!("'2022-09-28T22:13:2{k}.500'")));
        let v: Vec<f64> = samples(24, k, 65535).iter().map(|&s| s as f64).collect();
        write_fits(&d.join(format!("img{k}.fits")), &spec, &[v]).unwrap();
    }
    let c = CaptureFile::open(&d, OpenOptions::default()).unwrap();
    let ts = c.timestamps().expect("every file has DATE-OBS");
    // 2022-09-28T22:13:20.500Z in SER ticks, then one second apart.
    let t0 = 638_000_000_005_000_000;
    assert_eq!(ts, [t0, t0 + 10_000_000, t0 + 20_000_000]);
    // A file without DATE-OBS: no per-frame times at all.
    let mut spec = FitsSpec::u16(6, 4);
    spec.cube = false;
    let v: Vec<f64> = samples(24, 3, 65535).iter().map(|&s| s as f64).collect();
    write_fits(&d.join("img3.fits"), &spec, &[v]).unwrap();
    let c = CaptureFile::open(&d, OpenOptions::default()).unwrap();
    assert_eq!(c.timestamps(), None);
}

#[test]
fn mismatched_files_are_refused_naming_the_file() {
    let d = dir("mismatch");
    write_png(&d.join("a1.png"), (4, 4, 1), 8, &samples(16, 0, 255)).unwrap();
    write_png(&d.join("a2.png"), (4, 4, 1), 16, &samples(16, 0, 255)).unwrap();
    let e = CaptureFile::open(&d, OpenOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("a2.png") && e.contains("16-bit") && e.contains("a1.png"),
        "{e}"
    );
    std::fs::remove_file(d.join("a2.png")).unwrap();
    write_png(&d.join("a3.png"), (5, 4, 1), 8, &samples(20, 0, 255)).unwrap();
    let e = CaptureFile::open(&d, OpenOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a3.png") && e.contains("5×4"), "{e}");
    std::fs::remove_file(d.join("a3.png")).unwrap();
    write_tiff(&d.join("a4.tif"), (4, 4, 1), 8, &samples(16, 0, 255)).unwrap();
    let e = CaptureFile::open(&d, OpenOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a4.tif") && e.contains("TIFF"), "{e}");
    std::fs::remove_file(d.join("a4.tif")).unwrap();
    std::fs::write(d.join("a5.png"), b"not a png").unwrap();
    let e = CaptureFile::open(&d, OpenOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("a5.png"), "{e}");
    let empty = dir("empty");
    let e = CaptureFile::open(&empty, OpenOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("no FITS, TIFF or PNG"), "{e}");
}
