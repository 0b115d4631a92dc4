//! Input and output: the capture readers behind [`capture::CaptureFile`]
//! (SER, memory-mapped), the debayer, and the TIFF / PNG / FITS writers (all
//! writes atomic: temp file + rename).

pub mod avi;
pub mod calibrate;
pub mod capture;
pub mod dates;
pub mod debayer;
pub mod fits;
pub mod mapped;
mod scratch;
pub mod sequence;
pub mod ser;
#[cfg(feature = "ffmpeg")]
pub mod video;
pub mod write;
