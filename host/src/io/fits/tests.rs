//! FITS cubes built in memory by `jupiter_testkit::fits`, decoded exactly.

use super::*;
use crate::io::capture::{CaptureFile, OpenOptions};
use crate::io::ser::iso8601;
use jupiter_testkit::fits::{fits_bytes, write_fits, FitsSpec};

fn values(n: usize, k: usize, max: f64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i * 37 + k * 11) as f64 % (max + 1.0)).floor())
        .collect()
}

fn cube(spec: &FitsSpec, frames: &[Vec<f64>]) -> FitsCube {
    FitsCube::from_bytes(Path::new("t.fits"), fits_bytes(spec, frames)).unwrap()
}

fn decoded(c: FitsCube, bayer: Option<BayerPattern>) -> Vec<Vec<f32>> {
    let c = CaptureFile::from_reader(Box::new(c), bayer).unwrap();
    (0..c.frame_count())
        .map(|k| c.decode_frame(k).unwrap())
        .collect()
}

#[test]
fn unsigned_16_bit_cube_with_bzero() {
    let spec = FitsSpec::u16(7, 5);
    let f: Vec<Vec<f64>> = (0..3).map(|k| values(35, k, 65535.0)).collect();
    let c = cube(&spec, &f);
    assert_eq!(
        (c.width(), c.height(), c.frame_count(), c.bit_depth()),
        (7, 5, 3, 16)
    );
    // The device layout: big-endian after the sign flip, the same values.
    let raw = c.raw_frames(1, 1).unwrap();
    let v: Vec<f64> = raw
        .chunks_exact(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]) as f64)
        .collect();
    assert_eq!(v, f[1]);
    for (k, got) in decoded(c, None).iter().enumerate() {
        let want: Vec<f32> = f[k].iter().map(|&v| (v / 65535.0) as f32).collect();
        assert_eq!(got, &want, "frame {k}");
    }
}

#[test]
fn eight_bit_and_float_cubes() {
    let mut spec = FitsSpec::u16(4, 3);
    spec.bitpix = 8;
    spec.bzero = 0.0;
    let f: Vec<Vec<f64>> = (0..2).map(|k| values(12, k, 255.0)).collect();
    let c = cube(&spec, &f);
    assert!(matches!(c.raw_frames(0, 2), Some(Cow::Borrowed(_))));
    assert_eq!(
        decoded(c, None)[1],
        f[1].iter().map(|&v| (v / 255.0) as f32).collect::<Vec<_>>()
    );
    // Floats in [0, 1] are read as they are; BSCALE applies.
    spec.bitpix = -32;
    spec.bscale = 2.0;
    let f: Vec<Vec<f64>> = (0..2)
        .map(|k| values(12, k, 10.0).iter().map(|v| v / 20.0).collect())
        .collect();
    let c = cube(&spec, &f);
    assert!(c.raw_layout().is_none());
    let got = decoded(c, None);
    for k in 0..2 {
        for (g, w) in got[k].iter().zip(&f[k]) {
            assert!((*g as f64 - w).abs() < 1e-6);
        }
    }
    // Floats up to 4000: scaled by 65535.
    let f = vec![values(12, 0, 4000.0)];
    let c = cube(&spec, &f);
    assert_eq!(c.scale, 65535.0);
}

#[test]
fn bayerpat_and_date_obs() {
    let mut spec = FitsSpec::u16(8, 6);
    spec.cube = false;
    spec.cards.push(("BAYERPAT".into(), "'GRBG    '".into()));
    spec.cards
        .push(("DATE-OBS".into(), "'2023-08-21T01:02:03.250'".into()));
    spec.cards.push(("OBJECT".into(), "'Jupiter'".into()));
    let f = vec![values(48, 0, 65535.0)];
    let c = cube(&spec, &f);
    assert_eq!(c.mosaic(), Some(BayerPattern::Grbg));
    assert_eq!(
        iso8601(c.start_time().unwrap()).unwrap(),
        "2023-08-21T01:02:03.250Z"
    );
    assert!(c
        .details()
        .iter()
        .any(|(k, v)| *k == "object" && v == "Jupiter"));
    let cap = CaptureFile::from_reader(Box::new(c), None).unwrap();
    assert_eq!((cap.channels(), cap.bayer()), (3, Some(BayerPattern::Grbg)));
    assert_eq!(
        cap.raw_layout().unwrap().color,
        ColorId::Bayer(BayerPattern::Grbg)
    );
}

#[test]
fn broken_headers_and_cut_cubes() {
    let spec = FitsSpec::u16(8, 8);
    let f: Vec<Vec<f64>> = (0..3).map(|k| values(64, k, 65535.0)).collect();
    let bytes = fits_bytes(&spec, &f);
    // Cut inside frame 2 (of 0..3): the two complete frames, with a warning.
    let c =
        FitsCube::from_bytes(Path::new("cut.fits"), bytes[..2880 + 2 * 128 + 10].to_vec()).unwrap();
    assert_eq!(c.frame_count(), 2);
    assert!(c.warnings[0].contains("claims 3"), "{:?}", c.warnings);
    for (bytes, what) in [
        (bytes[..2880].to_vec(), "truncated"),
        (bytes[..400].to_vec(), "END"),
        (b"SIMPLE  =                    F".to_vec(), "END"),
    ] {
        let e = FitsCube::from_bytes(Path::new("bad.fits"), bytes)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("bad.fits") && e.contains(what), "{e}");
    }
    let mut spec = FitsSpec::u16(8, 8);
    spec.bitpix = 12;
    let e = FitsCube::from_bytes(Path::new("b.fits"), fits_bytes(&spec, &f))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("BITPIX = 12"), "{e}");
}

#[test]
fn opens_mapped_through_capture() {
    let p = std::env::temp_dir().join(format!("jupiter-fits-test-{}.fts", std::process::id()));
    let spec = FitsSpec::u16(6, 4);
    let f: Vec<Vec<f64>> = (0..2).map(|k| values(24, k, 65535.0)).collect();
    write_fits(&p, &spec, &f).unwrap();
    let c = CaptureFile::open(&p, OpenOptions::default()).unwrap();
    assert_eq!(c.reader().format(), "FITS");
    assert_eq!(c.decode_frame(1).unwrap()[5], (f[1][5] / 65535.0) as f32);
    std::fs::remove_file(&p).unwrap();
}
