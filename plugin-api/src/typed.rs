//! Stages written as one typed function: the [`Stage`] boilerplate (the
//! manifest built from the declared parameters, the JSON parsed and
//! range-checked with [`StageParams::parse`], the one method of the stage's
//! kind) written once here instead of in every plugin. Plain Rust on the
//! plugin's side of the boundary: nothing here crosses it.
//!
//! ```ignore
//! /// The `stack-mean` stage.
//! pub const STACK_MEAN: StackFn<MeanParams> = StackFn {
//!     info: StageInfo::new("stack-mean", env!("CARGO_PKG_VERSION"), "Mean of the aligned frames"),
//!     run: |ctx, frames, req, p| cpu::stack(ctx, frames, req, p),
//! };
//! export_plugin!(STACK_MEAN);
//! ```

use crate::error::StageError;
use crate::frame::{Alignment, FrameSourceRef, Image};
use crate::params::StageParams;
use crate::stage::{AlignRequest, Manifest, StackRequest, Stage, StageCtx, StageKind};

/// What a stage's manifest says besides its kind and parameters.
#[derive(Debug, Clone, Copy)]
pub struct StageInfo {
    /// Unique stage name, e.g. `stack-median`.
    pub name: &'static str,
    /// The stage's own version (the plugin's `CARGO_PKG_VERSION`).
    pub version: &'static str,
    /// One line for `jupiter-host plugins`.
    pub summary: &'static str,
    /// True when the stage has a GPU path.
    pub gpu: bool,
}

impl StageInfo {
    /// A stage without a GPU path.
    pub const fn new(name: &'static str, version: &'static str, summary: &'static str) -> Self {
        StageInfo {
            name,
            version,
            summary,
            gpu: false,
        }
    }
    /// The same stage, declaring a GPU path.
    pub const fn with_gpu(self) -> Self {
        StageInfo { gpu: true, ..self }
    }
    /// The manifest of a stage of `kind` whose parameters are `P`.
    pub fn manifest<P: StageParams>(&self, kind: StageKind) -> Manifest {
        Manifest {
            gpu: self.gpu,
            ..Manifest::new(self.name, self.version, kind, self.summary, P::specs())
        }
    }
}

/// A `Quality` stage: one score per frame from typed parameters.
pub struct QualityFn<P> {
    pub info: StageInfo,
    pub run: fn(&StageCtx, &FrameSourceRef, &P) -> Result<Vec<f32>, StageError>,
}

impl<P: StageParams> Stage for QualityFn<P> {
    fn manifest(&self) -> Manifest {
        self.info.manifest::<P>(StageKind::Quality)
    }
    fn quality(&self, ctx: &StageCtx, f: &FrameSourceRef, p: &str) -> Result<Vec<f32>, StageError> {
        (self.run)(ctx, f, &P::parse(p)?)
    }
}

/// An `Align` stage: one warp per frame from typed parameters.
pub struct AlignFn<P> {
    pub info: StageInfo,
    pub run: fn(&StageCtx, &FrameSourceRef, &AlignRequest, &P) -> Result<Alignment, StageError>,
}

impl<P: StageParams> Stage for AlignFn<P> {
    fn manifest(&self) -> Manifest {
        self.info.manifest::<P>(StageKind::Align)
    }
    fn align(
        &self,
        ctx: &StageCtx,
        f: &FrameSourceRef,
        r: &AlignRequest,
        p: &str,
    ) -> Result<Alignment, StageError> {
        (self.run)(ctx, f, r, &P::parse(p)?)
    }
}

/// A `Stack` stage: the stacked image from typed parameters.
pub struct StackFn<P> {
    pub info: StageInfo,
    pub run: fn(&StageCtx, &FrameSourceRef, &StackRequest, &P) -> Result<Image, StageError>,
}

impl<P: StageParams> Stage for StackFn<P> {
    fn manifest(&self) -> Manifest {
        self.info.manifest::<P>(StageKind::Stack)
    }
    fn stack(
        &self,
        ctx: &StageCtx,
        f: &FrameSourceRef,
        r: &StackRequest,
        p: &str,
    ) -> Result<Image, StageError> {
        (self.run)(ctx, f, r, &P::parse(p)?)
    }
}

/// A `Sharpen` or `Filter` stage (`kind` says which): image in, image out.
pub struct ProcessFn<P> {
    pub info: StageInfo,
    pub kind: StageKind,
    pub run: fn(&StageCtx, Image, &P) -> Result<Image, StageError>,
}

impl<P: StageParams> Stage for ProcessFn<P> {
    fn manifest(&self) -> Manifest {
        self.info.manifest::<P>(self.kind)
    }
    fn process(&self, ctx: &StageCtx, image: Image, p: &str) -> Result<Image, StageError> {
        (self.run)(ctx, image, &P::parse(p)?)
    }
}
