//! The HTML report (`--report FILE.html`) of a generated capture: one
//! self-contained file (no URL at all), with the quality plot holding one
//! point per frame, the other plots and the embedded images; a batch writes
//! a page per capture and an index. Headless Chromium (Debian's `chromium`,
//! installed by `.ci/run`) renders the page without console errors and the
//! test saves a screenshot (`target/tmp/.../report.png`). Without Chromium
//! the browser test is listed as ignored, unless `CI` is set.

use std::path::Path;
use std::process::Command;

use libtest_mimic::{Arguments, Failed, Trial};

use jupiter_tests::synth::SynthOptions;
use jupiter_tests::*;

fn main() {
    let args = Arguments::from_args();
    let chromium = which("chromium").or_else(|| which("chromium-browser"));
    let required = std::env::var_os("CI").is_some();
    let browser = Trial::test("the_report_renders_in_chromium_without_errors", move || {
        let c = chromium
            .clone()
            .ok_or_else(|| Failed::from("CI is set but chromium is not installed"))?;
        renders_in_chromium(&c).map_err(Failed::from)
    })
    .with_ignored_flag(
        which("chromium")
            .or_else(|| which("chromium-browser"))
            .is_none()
            && !required,
    );
    let trials = vec![
        Trial::test("the_report_is_self_contained_with_plots_and_images", || {
            self_contained().map_err(Failed::from)
        }),
        Trial::test("a_batch_writes_a_page_per_capture_and_an_index", || {
            batch().map_err(Failed::from)
        }),
        browser,
    ];
    libtest_mimic::run(&args, trials).exit()
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .map(|p| p.display().to_string())
}

const FRAMES: usize = 40;

/// A generated capture and its HTML (and JSON) report: (dir, html text).
fn reported(name: &str) -> (std::path::PathBuf, String) {
    let o = SynthOptions {
        width: 128,
        height: 112,
        frames: FRAMES,
        ..SynthOptions::default()
    };
    let (dir, ser, _) = generated(name, &o);
    let (html, json) = (dir.join("r.html"), dir.join("r.json"));
    run_capture(
        build(),
        &ser,
        &[
            "-o".as_ref(),
            dir.join("out.tif").as_os_str(),
            "--report".as_ref(),
            html.as_os_str(),
            "--report".as_ref(),
            json.as_os_str(),
        ],
    );
    assert!(
        json.exists(),
        "the JSON report is written beside the HTML one"
    );
    (dir, std::fs::read_to_string(&html).unwrap())
}

fn self_contained() -> Result<(), String> {
    let (_, page) = reported("report-html");
    for url in ["http://", "https://", "src=\"//", "href=\"//"] {
        if page.contains(url) {
            return Err(format!("the report references {url}"));
        }
    }
    let svgs = page.matches("<svg").count();
    if svgs < 5 {
        return Err(format!(
            "{svgs} SVG plots, expected the quality (3), shifts and alignment-point ones"
        ));
    }
    // The first plot (scores in capture order) draws every frame's score:
    // one polyline of FRAMES points.
    let first = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    let most = first
        .match_indices("points=\"")
        .map(|(i, _)| {
            first[i + 8..]
                .split('"')
                .next()
                .unwrap()
                .split_whitespace()
                .count()
        })
        .max()
        .unwrap_or(0);
    if most != FRAMES {
        return Err(format!(
            "the quality plot's longest polyline has {most} points, expected {FRAMES}"
        ));
    }
    let images = page.matches("data:image/png;base64,").count();
    if images < 5 {
        return Err(format!(
            "{images} embedded PNGs, expected the thumbnail, 3 views and the AP overlay"
        ));
    }
    for want in [
        "best single frame",
        "stack, before post-processing",
        "final image",
        "deconvolve",
        "Reproduce",
        "<script>",
    ] {
        if !page.contains(want) {
            return Err(format!("the report lacks {want:?}"));
        }
    }
    Ok(())
}

fn batch() -> Result<(), String> {
    let o = SynthOptions {
        width: 96,
        height: 80,
        frames: 12,
        ..SynthOptions::default()
    };
    let (dir, a, _) = generated("report-batch-a", &o);
    let b = dir.join("b.ser");
    std::fs::copy(&a, &b).map_err(|e| e.to_string())?;
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let index = out.join("night.html");
    let mut args = vec![
        "--plugins".into(),
        build().into(),
        "-q".into(),
        "run".into(),
    ];
    args.extend([a.clone().into_os_string(), b.clone().into_os_string()]);
    args.extend([
        "-o".into(),
        out.clone().into_os_string(),
        "--report".into(),
        index.clone().into_os_string(),
    ]);
    run_ok(args);
    let text = std::fs::read_to_string(&index).map_err(|e| e.to_string())?;
    for page in ["night-cap.html", "night-b.html"] {
        if !out.join(page).exists() || !text.contains(page) {
            return Err(format!("{page}: missing, or not linked from the index"));
        }
    }
    Ok(())
}

fn renders_in_chromium(chromium: &str) -> Result<(), String> {
    let (dir, _) = reported("report-browser");
    let shot = dir.join("report.png");
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,3000",
        ])
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", dir.join("r.html").display()))
        .output()
        .map_err(|e| format!("{chromium}: {e}"))?;
    let log = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).collect();
    if !out.status.success() || !console.is_empty() {
        return Err(format!(
            "chromium: status {}, console: {console:?}\n{log}",
            out.status
        ));
    }
    let size = std::fs::metadata(&shot)
        .map_err(|e| format!("no screenshot: {e}"))?
        .len();
    eprintln!("screenshot {} ({size} bytes)", shot.display());
    if size < 10_000 {
        return Err(format!("the screenshot is only {size} bytes"));
    }
    Ok(())
}
