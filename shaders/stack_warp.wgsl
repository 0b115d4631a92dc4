// stack_warp.wgsl — weighted mean stacking under warp fields (multi-point
// alignment, C1 + C3; warp_grid.wgsl prepended): each frame is resampled at (x + dx + fdx, y + dy + fdy)
// where (fdx, fdy, fw) is its alignment-point grid interpolated bilinearly at
// the pixel (the CPU's WarpField::sample, same operations and order); the
// pixel's weight is the frame weight × fw. Edges replicate; Catmull-Rom
// (interp = 1) or bilinear (interp = 0) as the CPU path.
// Bindings (group 0): 0 src: array<f32> (read), the batch's frames, frame k from
//   word frames[k].src_offset; 1 acc: array<f32> (read_write), Σ weight·sample,
//   interleaved; 2 wsum: array<f32> (read_write), Σ weight per pixel;
//   3 frames: array<WarpFrame> (read); 4 grids: array<f32> (read), frame k's
//   grid dx, dy, weight (cols·rows each) from word frames[k].grid_offset;
//   5 uniforms P.
// Workgroup: 16×16×1 over (x, y); channels looped in the thread.
// warp_accumulate adds a batch; normalize (same bindings) turns acc into acc / wsum (0 where wsum = 0).

struct P { width: u32, height: u32, channels: u32, interp: u32, count: u32, _a: u32, _b: u32, _c: u32 };

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read_write> wsum: array<f32>;
@group(0) @binding(3) var<storage, read> frames: array<WarpFrame>;
@group(0) @binding(4) var<storage, read> grids: array<f32>;
@group(0) @binding(5) var<uniform> p: P;

fn at(base: u32, x: i32, y: i32, c: u32) -> f32 {
    let xx = u32(clamp(x, 0, i32(p.width) - 1));
    let yy = u32(clamp(y, 0, i32(p.height) - 1));
    return src[base + (yy * p.width + xx) * p.channels + c];
}

@compute @workgroup_size(16, 16, 1)
fn warp_accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) {
        return;
    }
    let pix = y * p.width + x;
    var ws = 0.0;
    for (var k = 0u; k < p.count; k++) {
        let f = frames[k];
        let g = grid_at(f, f32(x), f32(y));
        let wt = f.weight * g.z;
        if (wt <= 0.0) {
            continue;
        }
        let dx = f.dx + g.x;
        let dy = f.dy + g.y;
        ws += wt;
        for (var c = 0u; c < p.channels; c++) {
            acc[pix * p.channels + c] += wt * sample(f.src_offset, f32(x) + dx, f32(y) + dy, c, p.interp);
        }
    }
    wsum[pix] += ws;
}

@compute @workgroup_size(16, 16, 1)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.width || y >= p.height) {
        return;
    }
    // Never true: keeps every binding of the module in this entry's layout,
    // so both entries take the same bind group.
    if (p.count == 0xffffffffu) {
        acc[0] = src[0] + grids[0] + frames[0].dx;
    }
    let pix = y * p.width + x;
    let ws = wsum[pix];
    for (var c = 0u; c < p.channels; c++) {
        let i = pix * p.channels + c;
        if (ws > 0.0) {
            acc[i] = acc[i] / ws;
        } else {
            acc[i] = 0.0;
        }
    }
}
