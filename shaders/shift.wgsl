// shift.wgsl — sub-pixel shifts of a batch of frames, as the CPU path:
// out(x, y) = frame(x + dx, y + dy), edge pixels replicated, Catmull-Rom
// (interp = 1) or bilinear (interp = 0) weights.
// Bindings (group 0): 0 src: array<f32> (read): for frame k, from word
//   frames[k].src_offset, rows src_y0 .. src_y0+src_rows of a width×height×channels
//   frame, interleaved; 1 dst: array<f32> (read_write); 2 frames: array<Frame>
//   (read), one per frame of the batch; 3 uniforms P.
// Workgroup: 16×16×1 over (x, output row r); output rows are y0 .. y0+rows.
// shift_frames:     z = k * channels + c; dst[frames[k].dst_offset + (r*width + x)*channels + c] = sample.
// shift_accumulate: z = c; dst[(r*width + x)*channels + c] += Σ_k frames[k].weight * sample_k
//                   (one pass over the batch: mean stacking without aligned copies).

struct P {
    width: u32, height: u32, channels: u32, interp: u32,
    y0: u32, rows: u32, src_y0: u32, src_rows: u32,
    count: u32, _a: u32, _b: u32, _c: u32,
};

struct Frame { dx: f32, dy: f32, weight: f32, src_offset: u32, dst_offset: u32, _a: u32, _b: u32, _c: u32 };

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> frames: array<Frame>;
@group(0) @binding(3) var<uniform> p: P;

fn at(base: u32, x: i32, y: i32, c: u32) -> f32 {
    let xx = u32(clamp(x, 0, i32(p.width) - 1));
    let yy = u32(clamp(y, i32(p.src_y0), i32(p.src_y0 + p.src_rows) - 1)) - p.src_y0;
    return src[base + (yy * p.width + xx) * p.channels + c];
}

@compute @workgroup_size(16, 16, 1)
fn shift_frames(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let r = gid.y;
    let k = gid.z / p.channels;
    let c = gid.z % p.channels;
    if (x >= p.width || r >= p.rows || k >= p.count) {
        return;
    }
    let f = frames[k];
    let y = p.y0 + r;
    dst[f.dst_offset + (r * p.width + x) * p.channels + c] = sample(f.src_offset, f32(x) + f.dx, f32(y) + f.dy, c, p.interp);
}

@compute @workgroup_size(16, 16, 1)
fn shift_accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let r = gid.y;
    let c = gid.z;
    if (x >= p.width || r >= p.rows || c >= p.channels) {
        return;
    }
    let y = p.y0 + r;
    var acc = 0.0;
    for (var k = 0u; k < p.count; k++) {
        let f = frames[k];
        acc += f.weight * sample(f.src_offset, f32(x) + f.dx, f32(y) + f.dy, c, p.interp);
    }
    dst[(r * p.width + x) * p.channels + c] += acc;
}
