// drizzle.wgsl — drizzle onto a grid finer than the frames (warp_grid.wgsl
// prepended; the
// `stack-drizzle` CPU path's arithmetic, geometry.rs): output pixel (u, v)
// spans [u/sx − ½, (u+1)/sx − ½] × [v/sy − ½, (v+1)/sy − ½] in reference
// pixels; frame k's displacement (dx, dy) and weight there come from its
// global shift and its alignment-point grid interpolated at the pixel's
// centre (as WarpField::sample); frame pixel (xf, yf) is a square drop of
// side pixfrac centred at (xf − dx, yf − dy), and adds its value with the
// overlap area × the weight. Frames have no edge replication: a drop is
// only where a frame pixel is.
// Bindings (group 0): as stack_warp.wgsl: 0 src: array<f32> (read), the
//   batch's frames; 1 acc: array<f32> (read_write), Σ weight·value over the
//   output, interleaved; 2 wsum: array<f32> (read_write), Σ weight per
//   output pixel; 3 frames: array<WarpFrame> (read); 4 grids: array<f32>
//   (read); 5 uniforms P.
// Workgroup: 16×16×1 over output (u, v); channels looped in the thread.

struct P {
    width: u32, height: u32, channels: u32, count: u32,
    out_w: u32, out_h: u32, _a: u32, _b: u32,
    sx: f32, sy: f32, pixfrac: f32, _c: f32,
};

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<storage, read_write> wsum: array<f32>;
@group(0) @binding(3) var<storage, read> frames: array<WarpFrame>;
@group(0) @binding(4) var<storage, read> grids: array<f32>;
@group(0) @binding(5) var<uniform> p: P;

@compute @workgroup_size(16, 16, 1)
fn drizzle_accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let u = gid.x;
    let v = gid.y;
    if (u >= p.out_w || v >= p.out_h) {
        return;
    }
    let rx = (f32(u) + 0.5) / p.sx - 0.5;
    let ry = (f32(v) + 0.5) / p.sy - 0.5;
    let a0x = f32(u) / p.sx - 0.5;
    let a1x = f32(u + 1u) / p.sx - 0.5;
    let a0y = f32(v) / p.sy - 0.5;
    let a1y = f32(v + 1u) / p.sy - 0.5;
    let half = 0.5 * p.pixfrac;
    let pix = v * p.out_w + u;
    var ws = 0.0;
    for (var k = 0u; k < p.count; k++) {
        let f = frames[k];
        let g = grid_at(f, rx, ry);
        let wt = f.weight * g.z;
        if (wt <= 0.0) {
            continue;
        }
        let dx = f.dx + g.x;
        let dy = f.dy + g.y;
        let y_first = max(i32(floor(a0y + dy - half)), 0);
        let y_last = min(i32(ceil(a1y + dy + half)), i32(p.height) - 1);
        let x_first = max(i32(floor(a0x + dx - half)), 0);
        let x_last = min(i32(ceil(a1x + dx + half)), i32(p.width) - 1);
        for (var yf = y_first; yf <= y_last; yf++) {
            let cy = f32(yf) - dy;
            let oy = min(a1y, cy + half) - max(a0y, cy - half);
            if (oy <= 0.0) {
                continue;
            }
            for (var xf = x_first; xf <= x_last; xf++) {
                let cx = f32(xf) - dx;
                let ox = min(a1x, cx + half) - max(a0x, cx - half);
                if (ox <= 0.0) {
                    continue;
                }
                let kw = wt * ox * oy;
                ws += kw;
                let base = f.src_offset + (u32(yf) * p.width + u32(xf)) * p.channels;
                for (var c = 0u; c < p.channels; c++) {
                    acc[pix * p.channels + c] += kw * src[base + c];
                }
            }
        }
    }
    wsum[pix] += ws;
}
