//! `info`: a capture's header, frames, colour and timestamps.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;

use crate::cli::{Cli, OpenArgs};
use crate::io::ser::{iso8601, SerFile};

use super::{device_text, print_out};

/// Prints what `jupiter-host info FILE` shows.
pub fn cmd_info(cli: &Cli, file: &Path, open: &OpenArgs) -> Result<()> {
    let ser = SerFile::open(file, open.options())?;
    let mut out = describe(&ser)?;
    writeln!(out, "device:      {}", device_text(cli))?;
    print_out(&out)
}

/// The capture's header, layout and timestamps, one field a line.
fn describe(ser: &SerFile) -> Result<String, std::fmt::Error> {
    let h = &ser.header;
    let mut out = String::new();
    writeln!(out, "file:        {}", ser.path.display())?;
    writeln!(
        out,
        "frames:      {} (header says {})",
        ser.frame_count, h.frame_count_header
    )?;
    writeln!(out, "size:        {}×{}", h.width, h.height)?;
    writeln!(
        out,
        "colour:      {} (ID {}) → {} channel(s)",
        h.color.name(),
        h.color.code(),
        ser.channels()
    )?;
    writeln!(
        out,
        "bit depth:   {} bits per sample, {} byte(s) stored",
        h.depth,
        h.bytes_per_sample()
    )?;
    writeln!(
        out,
        "byte order:  {} (header LittleEndian flag = {})",
        if h.bytes_per_sample() == 1 {
            "n/a (8-bit)"
        } else if ser.little_endian {
            "little-endian"
        } else {
            "big-endian"
        },
        h.little_endian_flag
    )?;
    writeln!(out, "observer:    {}", h.observer)?;
    writeln!(out, "instrument:  {}", h.instrument)?;
    writeln!(out, "telescope:   {}", h.telescope)?;
    writeln!(out, "date (UTC):  {}", date_text(h.date_time_utc))?;
    writeln!(
        out,
        "date (local): {}",
        date_text(h.date_time).trim_end_matches('Z')
    )?;
    match &ser.timestamps {
        Some(ts) => writeln!(
            out,
            "timestamps:  present ({} frames, span {:.3} s)",
            ts.len(),
            (ts.last().unwrap_or(&0) - ts.first().unwrap_or(&0)) as f64 * 1e-7
        ),
        None => writeln!(out, "timestamps:  absent"),
    }?;
    for w in &ser.warnings {
        writeln!(out, "warning:     {w}")?;
    }
    Ok(out)
}

/// A SER time as ISO 8601 UTC; "not set" for 0, the raw ticks when invalid.
fn date_text(ticks: i64) -> String {
    match iso8601(ticks) {
        Some(iso) => iso,
        None if ticks == 0 => "not set".into(),
        None => format!("invalid ({ticks} ticks)"),
    }
}
