//! End-to-end: the output records its capture — `DATE-OBS` at mid-capture
//! of the stacked frames (from the SER trailer), `NCOMBINE`, the SER
//! observer fields, the program and the pipeline in FITS; `DateTime`,
//! `Software` and a description in TIFF; text chunks in PNG — and the
//! default output names keep the capture's file stem (capture programs put
//! the UTC time there).

use std::path::Path;

use jupiter_tests::synth::SynthOptions;
use jupiter_tests::*;

/// The generator's trailer: frame `i` at this time + `i` × 10 ms.
const START: i64 = 638_000_000_000_000_000;

fn options() -> SynthOptions {
    SynthOptions {
        width: 96,
        height: 80,
        frames: 24,
        ..Default::default()
    }
}

/// The primary header's cards, blanks trimmed on the right, up to `END`.
fn fits_cards(path: &Path) -> Vec<String> {
    let bytes = std::fs::read(path).unwrap();
    let cards: Vec<String> = bytes
        .chunks(80)
        .map(|c| String::from_utf8_lossy(c).trim_end().to_string())
        .collect();
    let end = cards.iter().position(|c| c == "END").expect("no END card");
    cards[..end].to_vec()
}

/// The value of `key` (quotes and comment removed).
fn card(cards: &[String], key: &str) -> String {
    let c = cards
        .iter()
        .find(|c| c.starts_with(&format!("{key:<8}= ")))
        .unwrap_or_else(|| panic!("no {key} card in {cards:#?}"));
    let v = &c[10..];
    match v.trim_start().strip_prefix('\'') {
        Some(s) => s[..s.find('\'').unwrap()].trim_end().to_string(),
        None => v.split('/').next().unwrap().trim().to_string(),
    }
}

fn run_fits(ser: &Path, out: &Path, select: &str) -> serde_json::Value {
    let report = out.with_extension("json");
    let more = ["--select", select, "--no-post", "--aligner", "align-phase"];
    run_reported(build(), ser, (out, &report), &more)
}

#[test]
fn fits_output_records_the_mid_capture_time_and_the_stack() {
    let (dir, ser, _) = generated("meta-fits", &options());
    let out = dir.join("all.fits");
    run_fits(&ser, &out, "100%");
    let cards = fits_cards(&out);
    // Frames 0..23, 10 ms apart: mid-capture 115 ms after the first.
    assert_eq!(card(&cards, "DATE-OBS"), "2022-09-28T22:13:20.115");
    assert_eq!(card(&cards, "NCOMBINE"), "24");
    assert_eq!(card(&cards, "OBSERVER"), "jupiter");
    assert_eq!(card(&cards, "TELESCOP"), "synthetic");
    assert_eq!(card(&cards, "INSTRUME"), "synthetic");
    assert_eq!(
        card(&cards, "CREATOR"),
        format!("jupiter {}", env!("CARGO_PKG_VERSION"))
    );
    let history: Vec<&str> = cards
        .iter()
        .filter_map(|c| c.strip_prefix("HISTORY "))
        .collect();
    assert_eq!(history[0], "quality: quality {}");
    assert_eq!(history[1], "select: 100% (24 of 24 frames)");
    assert!(history[2].starts_with("align: align-phase"), "{history:?}");
    assert!(history[3].starts_with("stack: stack-mean"), "{history:?}");

    // Four frames: the date is half-way between the first and last kept.
    let out = dir.join("half.fits");
    let r = run_fits(&ser, &out, "4");
    let sel: Vec<i64> = r["selected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    let (lo, hi) = (*sel.iter().min().unwrap(), *sel.iter().max().unwrap());
    let mid = START + lo * 100_000 + (hi - lo) * 100_000 / 2;
    let cards = fits_cards(&out);
    assert_eq!(card(&cards, "NCOMBINE"), "4");
    let want = jupiter_host::io::ser::iso8601(mid).unwrap();
    assert_eq!(card(&cards, "DATE-OBS"), want.trim_end_matches('Z'));
    assert_ne!(
        card(&cards, "DATE-OBS"),
        "2022-09-28T22:13:20.115",
        "{sel:?}"
    );
}

#[test]
fn tiff_and_png_outputs_keep_the_stem_and_carry_the_date_and_software() {
    let (dir, _, _) = generated("meta-tiff-png", &options());
    // A capture named the way capture programs name them (UTC in the name).
    let ser = dir.join("2022-09-28-2213_3-Jupiter.ser");
    std::fs::rename(dir.join("cap.ser"), &ser).unwrap();
    let software = format!("jupiter {}", env!("CARGO_PKG_VERSION"));
    for format in ["tif", "png"] {
        let more = [
            "--select",
            "100%",
            "--no-post",
            "--aligner",
            "align-phase",
            "--format",
            format,
        ];
        run_capture(build(), &ser, &more.map(std::ffi::OsStr::new));
        let out = dir.join(format!("2022-09-28-2213_3-Jupiter_jupiter.{format}"));
        assert!(
            out.exists(),
            "{} missing: {:?}",
            out.display(),
            list_dir(&dir)
        );
        let file = std::io::BufReader::new(std::fs::File::open(&out).unwrap());
        if format == "tif" {
            use tiff::tags::Tag;
            let mut d = tiff::decoder::Decoder::new(file).unwrap();
            assert_eq!(
                d.get_tag_ascii_string(Tag::DateTime).unwrap(),
                "2022:09:28 22:13:20"
            );
            assert_eq!(d.get_tag_ascii_string(Tag::Software).unwrap(), software);
            let desc = d.get_tag_ascii_string(Tag::ImageDescription).unwrap();
            assert!(desc.starts_with("Stack of 24 frames of 2022-09-28-2213_3-Jupiter.ser, mid-capture 2022-09-28T22:13:20.115Z"), "{desc}");
            assert!(desc.contains("\nObserver: jupiter\n"), "{desc}");
        } else {
            let reader = png::Decoder::new(file).read_info().unwrap();
            let info = reader.info();
            let text = |k: &str| {
                info.uncompressed_latin1_text
                    .iter()
                    .find(|c| c.keyword == k)
                    .map(|c| c.text.clone())
            };
            assert_eq!(text("Creation Time").unwrap(), "2022-09-28T22:13:20.115Z");
            assert_eq!(text("Software").unwrap(), software);
            let desc = info
                .utf8_text
                .iter()
                .find(|c| c.keyword == "Description")
                .unwrap()
                .get_text()
                .unwrap();
            assert!(desc.starts_with("Stack of 24 frames"), "{desc}");
            assert!(desc.contains("select: 100% (24 of 24 frames)"), "{desc}");
        }
    }
}
