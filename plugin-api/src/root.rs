//! The root module every plugin library exports (a prefix type).

use abi_stable::library::RootModule;
use abi_stable::sabi_types::VersionStrings;
use abi_stable::std_types::{RResult, RStr, RVec};
use abi_stable::{declare_root_module_statics, package_version_strings, StableAbi};

use crate::backend::BackendRef;
use crate::error::StageError;
use crate::frame::{Alignment, FrameSourceRef, Image};
use crate::stage::{AlignRequest, Manifest, StackRequest};

/// The plugin library's root module. Every entry takes the stage name first,
/// since one library may export several stages. Fields are only appended
/// (after `process`, the current last prefix field).
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(StableAbi)]
#[sabi(kind(Prefix(prefix_ref = PluginMod_Ref)))]
pub struct PluginMod {
    /// Manifests of every stage this library exports.
    pub stages: extern "C" fn() -> RVec<Manifest>,
    pub quality: extern "C" fn(
        RStr<'_>,
        BackendRef<'_>,
        FrameSourceRef<'_>,
        RStr<'_>,
    ) -> RResult<RVec<f32>, StageError>,
    pub align: extern "C" fn(
        RStr<'_>,
        BackendRef<'_>,
        FrameSourceRef<'_>,
        &AlignRequest,
        RStr<'_>,
    ) -> RResult<Alignment, StageError>,
    pub stack: extern "C" fn(
        RStr<'_>,
        BackendRef<'_>,
        FrameSourceRef<'_>,
        &StackRequest,
        RStr<'_>,
    ) -> RResult<Image, StageError>,
    #[sabi(last_prefix_field)]
    pub process:
        extern "C" fn(RStr<'_>, BackendRef<'_>, Image, RStr<'_>) -> RResult<Image, StageError>,
}

impl RootModule for PluginMod_Ref {
    declare_root_module_statics! {PluginMod_Ref}
    const BASE_NAME: &'static str = "jupiter_plugin";
    const NAME: &'static str = "jupiter_plugin";
    const VERSION_STRINGS: VersionStrings = package_version_strings!();
}
