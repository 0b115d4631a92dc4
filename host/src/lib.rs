//! # jupiter-host
//!
//! The host of the jupiter planetary lucky-imaging pipeline: the CLI, the SER
//! reader, plugin loading, the compute backend, the pipeline runner and the
//! image writers. Every algorithm stage lives in a plugin library loaded at
//! run time (see `jupiter-plugin-api`). The library half exists so that the
//! end-to-end tests and the harnesses can reach the reader, the backend and
//! the frame source. `docs/ARCHITECTURE.md` maps the modules.

/// `eprintln!` that never panics: a line for a stderr that was closed
/// (`jupiter-host run x.ser 2>&1 | head -1`) is dropped and the command
/// goes on, where `eprintln!` would panic in the middle of a run.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr().lock(), $($arg)*);
    }};
}

pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod derotate;
pub mod frames;
pub mod io;
pub mod pipeline;
pub mod registry;
pub mod timeline;
