// warp_grid.wgsl — a frame's warp in a batch (prepended to stack_warp.wgsl
// and drizzle.wgsl, which declare `grids`): its global shift, weight,
// offsets and alignment-point grid, and the grid interpolated at a point
// (bilinear, along the grid's columns first, then along the row: the
// operations of the CPU's WarpField::sample, in its order).
// Bindings: none of its own (reads the kernel's `grids`). Workgroup: none
// (helpers only).

struct WarpFrame {
    dx: f32, dy: f32, weight: f32, src_offset: u32,
    grid_offset: u32, cols: u32, rows: u32, _a: u32,
    x0: f32, y0: f32, step_x: f32, step_y: f32,
};

fn lerp_grid(off: u32, i0: u32, i1: u32, tx: f32, r0: u32, r1: u32, ty: f32) -> f32 {
    let a = grids[off + r0 + i0] * (1.0 - ty) + grids[off + r1 + i0] * ty;
    let b = grids[off + r0 + i1] * (1.0 - ty) + grids[off + r1 + i1] * ty;
    return a * (1.0 - tx) + b * tx;
}

// (dx, dy, weight) of frame f's grid at (x, y), the global shift not added.
fn grid_at(f: WarpFrame, x: f32, y: f32) -> vec3<f32> {
    let fx = clamp((x - f.x0) / f.step_x, 0.0, f32(f.cols - 1u));
    let i0 = min(u32(floor(fx)), f.cols - 1u);
    let i1 = min(i0 + 1u, f.cols - 1u);
    let tx = fx - f32(i0);
    let fy = clamp((y - f.y0) / f.step_y, 0.0, f32(f.rows - 1u));
    let j0 = min(u32(floor(fy)), f.rows - 1u);
    let r0 = j0 * f.cols;
    let r1 = min(j0 + 1u, f.rows - 1u) * f.cols;
    let ty = fy - f32(j0);
    let n = f.cols * f.rows;
    return vec3<f32>(
        lerp_grid(f.grid_offset, i0, i1, tx, r0, r1, ty),
        lerp_grid(f.grid_offset + n, i0, i1, tx, r0, r1, ty),
        lerp_grid(f.grid_offset + 2u * n, i0, i1, tx, r0, r1, ty),
    );
}
