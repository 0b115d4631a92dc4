// shift.wgsl — sub-pixel shift of one frame (C3).
// Bindings (group 0): 0 src: array<f32> (read), from word src_offset: rows
//   src_y0 .. src_y0+src_rows of a width×height×channels frame, interleaved; 1 dst: array<f32> (read_write);
//   2 uniforms P.
// Workgroup: 16×16×1 over (x, output row); z = channel.
// dst[dst_offset + ((y - y0) * width + x) * channels + c] = frame(x + dx, y + dy, c)
// for output rows y0 .. y0+rows, with edge pixels replicated and the same
// Catmull-Rom (interp = 1) or bilinear (interp = 0) weights as the CPU path.

struct P {
    width: u32, height: u32, channels: u32, interp: u32,
    dx: f32, dy: f32, y0: u32, rows: u32,
    src_y0: u32, src_rows: u32, dst_offset: u32, src_offset: u32,
};

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: P;

fn at(x: i32, y: i32, c: u32) -> f32 {
    let xx = u32(clamp(x, 0, i32(p.width) - 1));
    let yy = u32(clamp(y, i32(p.src_y0), i32(p.src_y0 + p.src_rows) - 1)) - p.src_y0;
    return src[p.src_offset + (yy * p.width + xx) * p.channels + c];
}

fn cubic(t: f32) -> vec4<f32> {
    let t2 = t * t;
    let t3 = t2 * t;
    return vec4<f32>(0.5 * (-t3 + 2.0 * t2 - t), 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
                     0.5 * (-3.0 * t3 + 4.0 * t2 + t), 0.5 * (t3 - t2));
}

fn sample(sx: f32, sy: f32, c: u32) -> f32 {
    let fx = floor(sx);
    let fy = floor(sy);
    let tx = sx - fx;
    let ty = sy - fy;
    let ix = i32(fx);
    let iy = i32(fy);
    if (p.interp == 0u) {
        let a = at(ix, iy, c) * (1.0 - tx) + at(ix + 1, iy, c) * tx;
        let b = at(ix, iy + 1, c) * (1.0 - tx) + at(ix + 1, iy + 1, c) * tx;
        return a * (1.0 - ty) + b * ty;
    }
    let wx = cubic(tx);
    let wy = cubic(ty);
    var acc = 0.0;
    for (var j = 0; j < 4; j++) {
        let yy = iy + j - 1;
        let row = wx.x * at(ix - 1, yy, c) + wx.y * at(ix, yy, c) + wx.z * at(ix + 1, yy, c) + wx.w * at(ix + 2, yy, c);
        acc += wy[j] * row;
    }
    return acc;
}

@compute @workgroup_size(16, 16, 1)
fn shift_frame(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let r = gid.y;
    let c = gid.z;
    if (x >= p.width || r >= p.rows || c >= p.channels) {
        return;
    }
    let y = p.y0 + r;
    dst[p.dst_offset + (r * p.width + x) * p.channels + c] = sample(f32(x) + p.dx, f32(y) + p.dy, c);
}
