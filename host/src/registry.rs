//! Finds and loads plugin libraries from a directory.
//!
//! Every shared library in the directory is tried with abi_stable's loader
//! (`lib_header_from_path(..).init_root_module::<PluginMod_Ref>()`), which
//! checks the type layouts the plugin was built with against the host's. A
//! library that is not a jupiter plugin, or was built against an incompatible
//! plugin-api, is skipped with a warning naming the file and the reason. Two
//! stages with the same name are an error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jupiter_plugin_api::{Manifest, PluginMod_Ref, StageKind};

/// One stage of a loaded library.
pub struct LoadedStage {
    pub manifest: Manifest,
    pub module: PluginMod_Ref,
    pub file: PathBuf,
}

/// The stages found in a plugin directory, by name.
pub struct Registry {
    pub dir: PathBuf,
    pub stages: BTreeMap<String, LoadedStage>,
    /// Libraries skipped, with the reason.
    pub warnings: Vec<String>,
}

fn is_shared_library(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("so" | "dylib" | "dll")
    )
}

/// Shortens abi_stable's (very long) load errors to one line that says what
/// is wrong: for a layout mismatch, the type that differs and how.
fn short_reason(err: &abi_stable::library::LibraryError) -> String {
    use abi_stable::library::LibraryError as E;
    let text = err.to_string();
    let summary = match err {
        E::GetSymbolError { symbol, .. } => Some(format!(
            "it exports no jupiter root module (no symbol {})",
            String::from_utf8_lossy(symbol).trim_matches(|c: char| c == '\0' || c.is_whitespace())
        )),
        E::AbiInstability(_) => layout_mismatch(&text),
        _ => None,
    };
    let mut s = summary.unwrap_or_else(|| {
        let mut lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(4)
            .collect();
        if text.lines().count() > 4 {
            lines.push("...");
        }
        lines.join(" ")
    });
    if matches!(
        err,
        E::AbiInstability(_) | E::IncompatibleVersionNumber { .. }
    ) {
        s.push_str(" (the plugin was built against a different jupiter-plugin-api: rebuild it against this host's version)");
    }
    s
}

/// From abi_stable's layout-mismatch report: `type Manifest of
/// jupiter-plugin-api 0.1.0 (host) vs 0.1.1 (plugin): incompatible type size
/// (host 144, plugin 176); ...`. `None` when the report has another shape.
fn layout_mismatch(text: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    // The innermost differing type: the "type:" and "package:" lines after each heading.
    let described = |heading: &str| -> Option<(String, String)> {
        let at = lines.iter().rposition(|l| *l == heading)?;
        let ty = lines[at..]
            .iter()
            .find_map(|l| l.strip_prefix("type:"))?
            .trim()
            .to_string();
        let pkg = lines[at..]
            .iter()
            .find_map(|l| l.strip_prefix("package:"))?
            .replace('\'', "")
            .replace(" version:", " ");
        Some((ty, pkg))
    };
    let (ty, host_pkg) = described("Layout of expected type:")?;
    let (_, plugin_pkg) = described("Layout of found type:")?;
    let mut errors = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        if let Some(what) = l.strip_prefix("Error:") {
            let value = |label: &str| {
                lines
                    .iter()
                    .skip(i)
                    .position(|x| *x == label)
                    .and_then(|k| lines.get(i + k + 1))
                    .copied()
                    .unwrap_or("?")
            };
            errors.push(format!(
                "{what} (host {}, plugin {})",
                value("Expected:"),
                value("Found:")
            ));
        }
    }
    if errors.is_empty() {
        return None;
    }
    Some(format!(
        "type {ty} differs: {} [host: {host_pkg}; plugin: {plugin_pkg}]",
        errors.join("; ")
    ))
}

impl Registry {
    /// Loads every plugin in `dir`.
    pub fn load_dir(dir: &Path) -> Result<Registry> {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("{}: cannot read the plugin directory", dir.display()))?;
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.is_file() && is_shared_library(p))
            .collect();
        files.sort();
        let mut reg = Registry {
            dir: dir.to_path_buf(),
            stages: BTreeMap::new(),
            warnings: Vec::new(),
        };
        for file in files {
            let module = match abi_stable::library::lib_header_from_path(&file)
                .and_then(|h| h.init_root_module::<PluginMod_Ref>())
            {
                Ok(m) => m,
                Err(e) => {
                    reg.warnings.push(format!(
                        "{}: skipped, not a usable jupiter plugin: {}",
                        file.display(),
                        short_reason(&e)
                    ));
                    continue;
                }
            };
            let manifests = (module.stages())();
            if manifests.is_empty() {
                reg.warnings.push(format!(
                    "{}: skipped, the library exports no stages",
                    file.display()
                ));
            }
            for manifest in manifests {
                let name = manifest.name.to_string();
                if let Some(other) = reg.stages.get(&name) {
                    bail!(
                        "two plugins define the stage '{name}': {} and {} (remove one from {})",
                        other.file.display(),
                        file.display(),
                        dir.display()
                    );
                }
                reg.stages.insert(
                    name,
                    LoadedStage {
                        manifest,
                        module,
                        file: file.clone(),
                    },
                );
            }
        }
        Ok(reg)
    }

    /// The stage `name`, which must be of `kind`; the error lists what is available.
    pub fn get(&self, name: &str, kind: StageKind) -> Result<&LoadedStage> {
        let available = |k: StageKind| -> String {
            let v: Vec<&str> = self
                .stages
                .values()
                .filter(|s| s.manifest.kind == k)
                .map(|s| s.manifest.name.as_str())
                .collect();
            if v.is_empty() {
                "none".into()
            } else {
                v.join(", ")
            }
        };
        match self.stages.get(name) {
            None => bail!(
                "the pipeline needs the {} stage '{name}', which is not in {} (available {} stages: {})",
                kind.as_str(),
                self.dir.display(),
                kind.as_str(),
                available(kind)
            ),
            Some(s) if s.manifest.kind != kind && !(is_image_stage(kind) && is_image_stage(s.manifest.kind)) => bail!(
                "'{name}' is a {} stage, but the pipeline uses it as a {} stage (available: {})",
                s.manifest.kind.as_str(),
                kind.as_str(),
                available(kind)
            ),
            Some(s) => Ok(s),
        }
    }
}

/// Sharpen and filter stages share the image → image signature.
pub fn is_image_stage(kind: StageKind) -> bool {
    matches!(kind, StageKind::Sharpen | StageKind::Filter)
}

/// The default plugin directory: the directory of the running executable.
pub fn default_plugin_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the jupiter-host executable")?;
    Ok(exe
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".")))
}
