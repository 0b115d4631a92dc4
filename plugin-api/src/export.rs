//! The [`export_plugin!`] macro and the entry wrappers it instantiates. Every
//! entry looks the stage up by name and runs it inside `catch_unwind`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use abi_stable::std_types::{RResult, RStr, RVec};

use crate::backend::BackendRef;
use crate::error::{ErrorKind, StageError};
use crate::frame::{Alignment, FrameSourceRef, Image};
use crate::stage::{AlignRequest, Manifest, StackRequest, Stage, StageCtx};

/// Exports the listed stages (values implementing [`Stage`]) as this library's
/// root module. The plugin crate must be a `cdylib` and depend on `abi_stable`
/// directly (its proc macros refer to `::abi_stable`).
///
/// ```ignore
/// export_plugin!(Gaussian, Gamma, Stretch);
/// ```
#[macro_export]
macro_rules! export_plugin {
    ($($stage:expr),+ $(,)?) => {
        static __JUPITER_STAGES: &[&(dyn $crate::Stage)] = &[$(&$stage),+];

        /// The root module of this jupiter plugin library.
        #[::abi_stable::export_root_module]
        pub fn __jupiter_root_module() -> $crate::PluginMod_Ref {
            use ::abi_stable::prefix_type::PrefixTypeTrait;
            use ::abi_stable::std_types::{RResult, RStr, RVec};
            use $crate::export as ex;
            extern "C" fn stages() -> RVec<$crate::Manifest> {
                ex::stages_entry(__JUPITER_STAGES)
            }
            extern "C" fn quality(s: RStr<'_>, b: $crate::BackendRef<'_>, f: $crate::FrameSourceRef<'_>, p: RStr<'_>)
                -> RResult<RVec<f32>, $crate::StageError> {
                ex::quality_entry(__JUPITER_STAGES, s, b, f, p)
            }
            extern "C" fn align(s: RStr<'_>, b: $crate::BackendRef<'_>, f: $crate::FrameSourceRef<'_>, r: &$crate::AlignRequest, p: RStr<'_>)
                -> RResult<$crate::Alignment, $crate::StageError> {
                ex::align_entry(__JUPITER_STAGES, s, b, f, r, p)
            }
            extern "C" fn stack(s: RStr<'_>, b: $crate::BackendRef<'_>, f: $crate::FrameSourceRef<'_>, r: &$crate::StackRequest, p: RStr<'_>)
                -> RResult<$crate::Image, $crate::StageError> {
                ex::stack_entry(__JUPITER_STAGES, s, b, f, r, p)
            }
            extern "C" fn process(s: RStr<'_>, b: $crate::BackendRef<'_>, i: $crate::Image, p: RStr<'_>)
                -> RResult<$crate::Image, $crate::StageError> {
                ex::process_entry(__JUPITER_STAGES, s, b, i, p)
            }
            $crate::PluginMod { stages, quality, align, stack, process }.leak_into_prefix()
        }
    };
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".into()
    }
}

/// Runs `f` for the stage named `name`, catching panics.
fn guarded<T>(
    stages: &[&dyn Stage],
    name: RStr<'_>,
    backend: BackendRef<'_>,
    f: impl FnOnce(&dyn Stage, &StageCtx) -> Result<T, StageError>,
) -> RResult<T, StageError> {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let stage = stages
            .iter()
            .find(|s| s.manifest().name.as_str() == name.as_str())
            .ok_or_else(|| {
                StageError::unsupported(format!("this library has no stage named '{name}'"))
            })?;
        let ctx = StageCtx {
            backend,
            stage: name.to_string(),
        };
        f(*stage, &ctx)
    }));
    match result {
        Ok(r) => r.into(),
        Err(p) => RResult::RErr(StageError::new(
            ErrorKind::Panicked,
            format!("stage '{}' panicked: {}", name, panic_message(&*p)),
        )),
    }
}

pub fn stages_entry(stages: &[&dyn Stage]) -> RVec<Manifest> {
    // A manifest that panics would abort the host: catch it and drop that stage.
    stages
        .iter()
        .filter_map(|s| catch_unwind(AssertUnwindSafe(|| s.manifest())).ok())
        .collect()
}

pub fn quality_entry(
    stages: &[&dyn Stage],
    name: RStr<'_>,
    backend: BackendRef<'_>,
    frames: FrameSourceRef<'_>,
    params: RStr<'_>,
) -> RResult<RVec<f32>, StageError> {
    guarded(stages, name, backend, |s, ctx| {
        s.quality(ctx, &frames, params.as_str()).map(RVec::from)
    })
}

pub fn align_entry(
    stages: &[&dyn Stage],
    name: RStr<'_>,
    backend: BackendRef<'_>,
    frames: FrameSourceRef<'_>,
    req: &AlignRequest,
    params: RStr<'_>,
) -> RResult<Alignment, StageError> {
    guarded(stages, name, backend, |s, ctx| {
        s.align(ctx, &frames, req, params.as_str())
    })
}

pub fn stack_entry(
    stages: &[&dyn Stage],
    name: RStr<'_>,
    backend: BackendRef<'_>,
    frames: FrameSourceRef<'_>,
    req: &StackRequest,
    params: RStr<'_>,
) -> RResult<Image, StageError> {
    guarded(stages, name, backend, |s, ctx| {
        s.stack(ctx, &frames, req, params.as_str())
    })
}

pub fn process_entry(
    stages: &[&dyn Stage],
    name: RStr<'_>,
    backend: BackendRef<'_>,
    image: Image,
    params: RStr<'_>,
) -> RResult<Image, StageError> {
    guarded(stages, name, backend, |s, ctx| {
        s.process(ctx, image, params.as_str())
    })
}
