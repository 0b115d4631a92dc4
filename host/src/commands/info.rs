//! `info`: a capture's header, frames, colour and timestamps, for every
//! format (SER keeps its own lines: header frame count, byte order, the
//! observer fields); dates as ISO 8601 UTC.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;

use crate::cli::{Cli, OpenArgs};
use crate::io::capture::{CaptureFile, OpenOptions};
use crate::io::ser::{iso8601, SerFile};

use super::{device_text, print_out};

/// Prints what `jupiter-host info FILE` shows.
pub fn cmd_info(cli: &Cli, file: &Path, open: &OpenArgs) -> Result<()> {
    let capture = CaptureFile::open(
        file,
        OpenOptions {
            ser: open.options(),
            ..Default::default()
        },
    )?;
    let mut out = match capture.reader().as_ser() {
        Some(ser) => describe(ser)?,
        None => describe_any(&capture)?,
    };
    writeln!(out, "device:      {}", device_text(cli))?;
    print_out(&out)
}

/// The capture's header, layout and timestamps, one field a line.
fn describe(ser: &SerFile) -> Result<String, std::fmt::Error> {
    let h = &ser.header;
    let mut out = String::new();
    writeln!(out, "file:        {}", ser.path.display())?;
    writeln!(out, "format:      SER")?;
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

/// Any capture's format, geometry, dates and the reader's own lines.
fn describe_any(c: &CaptureFile) -> Result<String, std::fmt::Error> {
    let r = c.reader();
    let mut out = String::new();
    writeln!(out, "file:        {}", c.path().display())?;
    writeln!(out, "format:      {}", r.format())?;
    writeln!(out, "frames:      {}", c.frame_count())?;
    writeln!(out, "size:        {}×{}", c.width(), c.height())?;
    let colour = match (c.bayer(), c.channels()) {
        (Some(p), _) => format!("{} (raw mosaic) → 3 channels", p.name()),
        (None, 1) => "MONO → 1 channel".to_string(),
        (None, n) => format!("RGB → {n} channels"),
    };
    writeln!(out, "colour:      {colour}")?;
    writeln!(out, "bit depth:   {} bits per sample", c.bit_depth())?;
    for (name, value) in r.details() {
        writeln!(out, "{:<13}{value}", format!("{name}:"))?;
    }
    if let Some(fps) = r.frame_rate() {
        writeln!(out, "frame rate:  {fps:.3} frames/s")?;
    }
    let date = r.start_time().map_or("not set".into(), date_text);
    writeln!(out, "date (UTC):  {date}")?;
    match c.timestamps() {
        Some(ts) => writeln!(out, "timestamps:  present ({} frames)", ts.len()),
        None => writeln!(out, "timestamps:  absent"),
    }?;
    for w in c.warnings() {
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
