//! Broken and hostile plugins (real cdylibs from `tests/fixtures`, built by
//! the test) loaded by the unchanged host binary: the host keeps control,
//! names the plugin and the file, exits non-zero without aborting and never
//! leaves an output file behind.

use std::path::{Path, PathBuf};
use std::process::Output;

use jupiter_tests::*;

/// A small capture and a plugin directory with the standard plugins plus `extra`.
fn setup(name: &str, extra: &[&Path]) -> (PathBuf, PathBuf, PathBuf) {
    let (dir, ser) = small_capture(&format!("hostile-{name}"), 64, 48, 6);
    let plugins = plugin_dir(&dir.join("plugins"), NO_POST_PLUGINS, extra);
    (dir, ser, plugins)
}

fn run_in(plugins: &Path, ser: &Path, out: &Path, more: &[&str]) -> Output {
    let mut args = capture_args(plugins, ser);
    args.append(&mut vec!["-o".into(), out.into(), "--no-post".into()]);
    args.extend(more.iter().map(|s| s.into()));
    run_host(args)
}

/// The line of `err` that names `lib`'s file.
fn line_naming<'e>(err: &'e str, lib: &Path) -> &'e str {
    err.lines()
        .find(|l| l.contains(&file_name(lib)))
        .unwrap_or_else(|| panic!("no line naming {}:\n{err}", lib.display()))
}

/// A run with the fixture library `name` beside the standard plugins: it
/// succeeds and writes its output, and one warning line names the library as
/// skipped. Returns the run's folder, capture, plugin folder and that line.
fn run_beside_fixture(name: &str) -> (PathBuf, PathBuf, PathBuf, String) {
    let lib = fixture_file(name);
    let (dir, ser, plugins) = setup(name, &[&lib]);
    let out = dir.join("out.tif");
    let o = run_in(&plugins, &ser, &out, &[]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.exists());
    let warning = line_naming(&err, &lib).to_string();
    assert!(
        warning.starts_with("warning:") && warning.contains("skipped"),
        "{warning}"
    );
    (dir, ser, plugins, warning)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Exit code 1: an error, not an abort (134 / SIGABRT) or another signal.
fn assert_clean_failure(o: &Output) {
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected exit code 1, got {} with:\n{}",
        o.status,
        stderr(o)
    );
}

/// Neither the output nor a temporary file of it exists.
fn assert_no_output(dir: &Path, out: &Path) {
    assert!(!out.exists(), "{} was written", out.display());
    let left: Vec<String> = list_dir(dir)
        .into_iter()
        .filter(|f| f.ends_with(".tmp") || f.contains("out.tif"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().to_string()
}

#[test]
fn a_panicking_stage_is_an_error_naming_plugin_and_stage() {
    let lib = fixture_file("panic");
    let (dir, ser, plugins) = setup("panic", &[&lib]);
    for mode in ["direct", "parallel"] {
        let out = dir.join("out.tif");
        let o = run_in(
            &plugins,
            &ser,
            &out,
            &[
                "--stacker",
                "fixture-panic",
                "--set",
                &format!("stack.mode={mode}"),
            ],
        );
        assert_clean_failure(&o);
        let err = stderr(&o);
        assert!(
            err.contains("stage 'fixture-panic'")
                && err.contains("stack")
                && err.contains("panicked"),
            "{mode}:\n{err}"
        );
        assert!(
            err.contains(&file_name(&lib)),
            "{mode}: plugin file not named:\n{err}"
        );
        assert!(
            err.contains("deliberate panic"),
            "{mode}: the panic message is lost:\n{err}"
        );
        assert_no_output(&dir, &out);
    }
}

/// Runs with the fixture `name` in the plugin directory (as the stacker
/// `stacker` when given), expects a clean failure that leaves no output, and
/// returns its stderr, the fixture's file name and the plugin directory.
fn refused(name: &str, stacker: Option<&str>) -> (String, String, PathBuf) {
    let lib = fixture_file(name);
    let (dir, ser, plugins) = setup(name, &[&lib]);
    let out = dir.join("out.tif");
    let more: &[&str] = match &stacker {
        Some(s) => &["--stacker", s],
        None => &[],
    };
    let o = run_in(&plugins, &ser, &out, more);
    assert_clean_failure(&o);
    assert_no_output(&dir, &out);
    (stderr(&o), file_name(&lib), plugins)
}

#[test]
fn nan_output_is_refused_naming_the_plugin() {
    let (err, file, _) = refused("nan", Some("fixture-nan"));
    assert!(
        err.contains("fixture-nan") && err.contains(&file) && err.contains("non-finite"),
        "{err}"
    );
}

#[test]
fn wrong_size_output_is_refused_naming_the_plugin() {
    let (err, file, _) = refused("wrong-size", Some("fixture-wrong-size"));
    assert!(
        err.contains("fixture-wrong-size") && err.contains(&file),
        "{err}"
    );
    assert!(
        err.contains("65×48×1") && err.contains("expected 64×48×1"),
        "{err}"
    );
}

#[test]
fn a_duplicate_stage_name_is_an_error_naming_both_files() {
    let (err, file, plugins) = refused("dup", None);
    assert!(
        err.contains("'stack-mean'")
            && err.contains(&file)
            && err.contains(&file_name(&plugin_file("stack_mean"))),
        "{err}"
    );
    // Listing the plugins says the same.
    let o = run_host([
        "--plugins".as_ref(),
        plugins.as_os_str(),
        "plugins".as_ref(),
    ]);
    assert_clean_failure(&o);
    assert!(stderr(&o).contains(&file));
}

#[test]
fn an_incompatible_plugin_is_skipped_and_the_rest_still_work() {
    let (dir, ser, plugins, warning) = run_beside_fixture("old-api");
    assert!(warning.contains("rebuild"), "{warning}");
    // What differs is said (abi_stable's layout check, shortened): the
    // fixture's `Manifest` has one field more.
    // (The exact type depends on what plugin-api holds now; today it is
    // "type Manifest differs: ... too many fields (host 6, plugin 7)".)
    assert!(
        warning.contains("type ") && warning.contains(" differs: "),
        "{warning}"
    );
    // Its stage is not available: asking for it lists what is.
    let o = run_in(
        &plugins,
        &ser,
        &dir.join("other.tif"),
        &["--stacker", "fixture-old-api"],
    );
    assert_clean_failure(&o);
    let err = stderr(&o);
    assert!(
        err.contains("'fixture-old-api'") && err.contains("stack-mean"),
        "{err}"
    );
}

#[test]
fn a_library_that_is_not_a_plugin_is_skipped_with_a_warning() {
    let (_, _, _, warning) = run_beside_fixture("not-a-plugin");
    assert!(
        warning.contains("exports no jupiter root module"),
        "{warning}"
    );
}
