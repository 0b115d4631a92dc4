//! `master`: combines one calibration capture (darks, flats, bias) into a
//! master FITS once, so later runs read one image instead of the capture.

use anyhow::{bail, Result};

use crate::cli::MasterArgs;
use crate::io::calibrate::Master;
use crate::io::capture::OpenOptions;
use crate::io::write::{check_output, Format};

/// Builds the master of `args.file` and writes it to `args.output`.
pub fn cmd_master(args: &MasterArgs, quiet: bool) -> Result<()> {
    if Format::from_path(&args.output, false)? != Format::Fits32 {
        bail!(
            "{}: a master is written as FITS (.fits, .fit or .fts): it keeps the raw samples as 32-bit floats",
            args.output.display()
        );
    }
    check_output(&args.output, false, args.force)?;
    let open = OpenOptions {
        ser: args.open.options(),
        bayer: args.bayer,
        // Masters keep the raw mosaic: nothing is demosaiced.
        ..Default::default()
    };
    let master = Master::load(&args.file, open, args.combine)?;
    master.write_fits(&args.output, args.force)?;
    if !quiet {
        crate::errln!(
            "{}: {} ({}) → {}",
            args.file.display(),
            master.describe(),
            master.layout.describe(),
            args.output.display()
        );
    }
    Ok(())
}
