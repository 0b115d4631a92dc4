//! Input and output: the SER reader (memory-mapped), the debayer, and the
//! TIFF / PNG / FITS writers (all writes atomic: temp file + rename).

pub mod debayer;
pub mod ser;
pub mod write;
