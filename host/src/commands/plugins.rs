//! `plugins`: the stages found in the plugin directory, with their parameters.

use std::fmt::Write;

use anyhow::Result;

use crate::backend::HostBackend;
use crate::cli::Cli;

use super::{device_text, load_registry, print_out};

/// Lists every stage with its version, kind, GPU path and parameters.
pub fn cmd_plugins(cli: &Cli, backend: &HostBackend) -> Result<()> {
    let reg = load_registry(cli, backend)?;
    let mut out = String::new();
    writeln!(out, "plugins in {}:", reg.dir.display())?;
    writeln!(
        out,
        "{:<20} {:<8} {:<8} {:<4} FILE",
        "NAME", "VERSION", "KIND", "GPU"
    )?;
    for s in reg.stages.values() {
        let m = &s.manifest;
        let file = s
            .file
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        writeln!(
            out,
            "{:<20} {:<8} {:<8} {:<4} {}",
            m.name,
            m.version,
            m.kind.as_str(),
            if m.gpu { "yes" } else { "no" },
            file
        )?;
        writeln!(out, "{:<20} {}", "", m.summary)?;
        for p in m.params.iter() {
            writeln!(
                out,
                "{:<22}{} = {} ({}; {})",
                "",
                p.name,
                p.default,
                p.range_text(),
                p.doc
            )?;
        }
    }
    writeln!(out, "device: {}", device_text(cli))?;
    print_out(&out)
}
