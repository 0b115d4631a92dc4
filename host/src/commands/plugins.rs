//! `plugins`: the stages found in the plugin directory, with their parameters.

use anyhow::Result;

use crate::backend::{describe_device, HostBackend};
use crate::cli::{backend_choice, Cli};

use super::load_registry;

/// Lists every stage with its version, kind, GPU path and parameters.
pub fn cmd_plugins(cli: &Cli, backend: &HostBackend) -> Result<()> {
    let reg = load_registry(cli, backend)?;
    println!("plugins in {}:", reg.dir.display());
    println!(
        "{:<20} {:<8} {:<8} {:<4} FILE",
        "NAME", "VERSION", "KIND", "GPU"
    );
    for s in reg.stages.values() {
        let m = &s.manifest;
        let file = s
            .file
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        println!(
            "{:<20} {:<8} {:<8} {:<4} {}",
            m.name,
            m.version,
            m.kind.as_str(),
            if m.gpu { "yes" } else { "no" },
            file
        );
        println!("{:<20} {}", "", m.summary);
        for p in m.params.iter() {
            println!(
                "{:<22}{} = {} ({}; {})",
                "",
                p.name,
                p.default,
                p.range_text(),
                p.doc
            );
        }
    }
    println!("device: {}", describe_device(backend_choice(cli, None)));
    Ok(())
}
