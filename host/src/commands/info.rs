//! `info`: a capture's header, frames, colour and timestamps.

use std::path::Path;

use anyhow::Result;

use crate::backend::describe_device;
use crate::cli::{backend_choice, Cli, OpenArgs};
use crate::io::ser::SerFile;

/// Prints what `jupiter-host info FILE` shows.
pub fn cmd_info(cli: &Cli, file: &Path, open: &OpenArgs) -> Result<()> {
    let ser = SerFile::open(file, open.options())?;
    let h = &ser.header;
    println!("file:        {}", file.display());
    println!(
        "frames:      {} (header says {})",
        ser.frame_count, h.frame_count_header
    );
    println!("size:        {}×{}", h.width, h.height);
    println!(
        "colour:      {} (ID {}) → {} channel(s)",
        h.color.name(),
        h.color.code(),
        ser.channels()
    );
    println!(
        "bit depth:   {} bits per sample, {} byte(s) stored",
        h.depth,
        h.bytes_per_sample()
    );
    println!(
        "byte order:  {} (header LittleEndian flag = {})",
        if h.bytes_per_sample() == 1 {
            "n/a (8-bit)"
        } else if ser.little_endian {
            "little-endian"
        } else {
            "big-endian"
        },
        h.little_endian_flag
    );
    println!("observer:    {}", h.observer);
    println!("instrument:  {}", h.instrument);
    println!("telescope:   {}", h.telescope);
    println!("date (UTC):  {}", h.date_time_utc);
    match &ser.timestamps {
        Some(ts) => println!(
            "timestamps:  present ({} frames, span {:.3} s)",
            ts.len(),
            (ts.last().unwrap_or(&0) - ts.first().unwrap_or(&0)) as f64 * 1e-7
        ),
        None => println!("timestamps:  absent"),
    }
    for w in &ser.warnings {
        println!("warning:     {w}");
    }
    println!(
        "device:      {}",
        describe_device(backend_choice(cli, None))
    );
    Ok(())
}
