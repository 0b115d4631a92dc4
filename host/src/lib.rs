//! # jupiter-host
//!
//! The host of the jupiter planetary lucky-imaging pipeline: the CLI, the SER
//! reader, plugin loading, the compute backend, the pipeline runner and the
//! image writers. Every algorithm stage lives in a plugin library loaded at
//! run time (see `jupiter-plugin-api`). The library half exists so that the
//! end-to-end tests and the harnesses can reach the reader, the backend and
//! the frame source. `docs/ARCHITECTURE.md` maps the modules.

pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod frames;
pub mod io;
pub mod pipeline;
pub mod registry;
pub mod timeline;
