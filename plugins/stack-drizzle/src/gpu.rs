//! GPU path of `stack-drizzle` (to come): for now the CPU path.

use jupiter_plugin_api::prelude::*;
use jupiter_plugin_api::GpuServiceBox;

use crate::cpu::{self, Drizzled};
use crate::geometry::Geometry;
use crate::params::DrizzleParams;

pub fn drizzle(
    ctx: &StageCtx,
    _gpu: &GpuServiceBox,
    frames: &FrameSourceRef,
    req: &StackRequest,
    g: &Geometry,
    p: &DrizzleParams,
) -> Result<Drizzled, StageError> {
    cpu::drizzle(ctx, frames, req, g, p)
}
