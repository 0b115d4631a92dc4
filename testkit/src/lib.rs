//! # jupiter-testkit
//!
//! Test and benchmark support, kept out of the product: the host links it
//! only for `jupiter-host demo`, plugins only as a dev-dependency.
//!
//! - [`rng`]: the one deterministic generator all test data comes from.
//! - [`capture`]: synthetic SER captures with a known truth (a banded planet
//!   with moons, or a cratered lunar surface; per-frame seeing, local
//!   seeing, Poisson and read noise), for the demo, the end-to-end tests and
//!   the harnesses.
//! - [`rotating`]: a turning, oblate, textured planet at each frame's time
//!   (SER with timestamps), for the derotation tests.
//! - [`flaws`]: a flawed sensor (flat, dark, hot pixels) and its dark,
//!   flat and flat-dark captures, for the calibration tests.
//! - [`frames`]: small in-memory captures with bright artifacts, for the
//!   stackers' unit tests and benchmarks.
//! - [`ser`]: the SER writer; [`avi`], [`fits`], [`sequence`]: writers of
//!   the other capture formats (the same frames as AVI, FITS cube, image files).
//! - [`reference`]: the plain mean of aligned frames and the memory-bound
//!   check the tile-based stackers' tests share.

pub mod avi;
pub mod capture;
pub mod fits;
pub mod flaws;
pub mod frames;
pub mod reference;
pub mod rng;
pub mod rotating;
pub mod sequence;
pub mod ser;

pub use rng::Rng;
