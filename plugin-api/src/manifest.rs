//! What a stage declares about itself. In a file of its own so that the
//! old-API test fixture (`tests/fixtures/old-api`) can replace just this
//! layout and share every other module of plugin-api.

use abi_stable::std_types::{RString, RVec};
use abi_stable::StableAbi;

use crate::params::ParamSpec;
use crate::stage::StageKind;

/// What a stage declares about itself.
#[repr(C)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Unique stage name, e.g. `stack-median`.
    pub name: RString,
    /// The stage's own version (semver text).
    pub version: RString,
    pub kind: StageKind,
    /// One line for `jupiter-host plugins`.
    pub summary: RString,
    pub params: RVec<ParamSpec>,
    /// True when the stage has a GPU path.
    pub gpu: bool,
}

impl Manifest {
    /// A manifest with this crate's conventions (version from the plugin's Cargo.toml).
    pub fn new(
        name: &str,
        version: &str,
        kind: StageKind,
        summary: &str,
        params: Vec<ParamSpec>,
    ) -> Manifest {
        Manifest {
            name: name.into(),
            version: version.into(),
            kind,
            summary: summary.into(),
            params: params.into(),
            gpu: false,
        }
    }
    /// The same manifest, declaring a GPU path.
    pub fn with_gpu(self) -> Manifest {
        Manifest { gpu: true, ..self }
    }
}
