//! `derotate`: stacks of a turning planet taken minutes apart, brought to
//! one time and combined (see `crate::derotate::stacks`).

use anyhow::{bail, Context, Result};

use crate::cli::DerotateArgs;
use crate::derotate::{derotate_stacks, Combine, DerotationSpec, Stack};
use crate::io::fits::date_ticks;
use crate::io::ser::iso8601;
use crate::io::write::{check_output, write_image, OutputMeta};

/// Reads the stacks, fits the planet, derotates and writes the result.
pub fn cmd_derotate(args: &DerotateArgs, quiet: bool) -> Result<()> {
    let spec = spec_of(args)?;
    check_output(&args.output, false, args.force)?;
    let (paths, combine) = match &args.rgb {
        Some(rgb) => (rgb.clone(), Combine::Rgb),
        None => (args.images.clone(), Combine::Mean),
    };
    let reference = match &args.time {
        Some(t) => {
            Some(date_ticks(t).with_context(|| format!("--time {t}: not an ISO 8601 UTC time"))?)
        }
        None => None,
    };
    let stacks = paths
        .iter()
        .map(|p| Stack::read(p, spec.flattening()))
        .collect::<Result<Vec<_>>>()?;
    let (image, fit) = derotate_stacks(&stacks, &spec, reference, combine)?;
    if !quiet {
        let g = &fit.globe;
        for (s, (dt, shift)) in stacks.iter().zip(&fit.moves) {
            crate::errln!(
                "{}: {} (from {}), {:+.1} s, disc ({:.1}, {:.1}) radii {:.1} × {:.1} px, {:.2} px at the centre",
                s.path.display(),
                iso8601(s.ticks).unwrap_or_default(),
                s.time_from,
                dt,
                s.disc.cx,
                s.disc.cy,
                s.disc.a,
                s.disc.b,
                shift
            );
        }
        crate::errln!(
            "derotate: to {}; pole at {:.1}° ({}){}; features move towards {:.1}°",
            iso8601(fit.reference_ticks).unwrap_or_default(),
            g.pole_deg,
            if fit.pole_fitted.is_some() {
                "fitted"
            } else {
                "given"
            },
            if g.mirrored { ", mirrored" } else { "" },
            g.motion_deg()
        );
    }
    let meta = OutputMeta {
        date_obs: Some(fit.reference_ticks),
        frames: 0,
        observer: String::new(),
        telescope: String::new(),
        instrument: String::new(),
        source: paths
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        history: vec![format!(
            "derotate: {} stacks to {}, pole {:.1} deg",
            stacks.len(),
            iso8601(fit.reference_ticks).unwrap_or_default(),
            fit.globe.pole_deg
        )],
        fits_cards: Vec::new(),
    };
    write_image(&image, &args.output, (false, args.force), &meta)?;
    if !quiet {
        crate::errln!("→ {}", args.output.display());
    }
    Ok(())
}

/// The derotation asked for: `--derotate BODY` and `--set derotate.KEY=VALUE`.
fn spec_of(args: &DerotateArgs) -> Result<DerotationSpec> {
    let mut spec = DerotationSpec {
        body: args.derotate,
        ..DerotationSpec::default()
    };
    for s in &args.set {
        let Some((key, value)) = s.split_once('=') else {
            bail!("--set '{s}': expected derotate.KEY=VALUE");
        };
        let Some(key) = key.trim().strip_prefix("derotate.") else {
            bail!("--set '{s}': the derotate command takes derotate.KEY=VALUE only");
        };
        spec.set(key, &crate::config::parse_value(value.trim()))?;
    }
    if !spec.is_on() {
        bail!("derotate: name the planet with --derotate jupiter|jupiter1|saturn|mars (or --set derotate.period_hours=H)");
    }
    Ok(spec)
}
