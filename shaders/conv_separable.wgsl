// conv_separable.wgsl — separable convolution with dilated taps:
// gaussian blur, unsharp mask and the à-trous wavelet share it.
// Bindings (group 0): 0 src: array<f32> (read) width×height×channels interleaved;
//   1 dst: array<f32> (read_write), same layout; 2 taps: array<f32> (read),
//   2*radius+1 weights; 3 uniforms P.
// Workgroup: 16×16×1 over (x, y); z = channel. Edges replicate (clamp), as the CPU path.
// conv_x convolves along rows, conv_y along columns; taps are `dilation` pixels apart.

struct P { width: u32, height: u32, channels: u32, radius: u32, dilation: u32, _a: u32, _b: u32, _c: u32 };

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<storage, read> taps: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

@compute @workgroup_size(16, 16, 1)
fn conv_x(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.width || gid.y >= p.height || gid.z >= p.channels) { return; }
    let r = i32(p.radius);
    var acc = 0.0;
    for (var k = -r; k <= r; k++) {
        let sx = u32(clamp(i32(gid.x) + k * i32(p.dilation), 0, i32(p.width) - 1));
        acc += taps[u32(k + r)] * src[(gid.y * p.width + sx) * p.channels + gid.z];
    }
    dst[(gid.y * p.width + gid.x) * p.channels + gid.z] = acc;
}

@compute @workgroup_size(16, 16, 1)
fn conv_y(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (gid.x >= p.width || gid.y >= p.height || gid.z >= p.channels) { return; }
    let r = i32(p.radius);
    var acc = 0.0;
    for (var k = -r; k <= r; k++) {
        let sy = u32(clamp(i32(gid.y) + k * i32(p.dilation), 0, i32(p.height) - 1));
        acc += taps[u32(k + r)] * src[(sy * p.width + gid.x) * p.channels + gid.z];
    }
    dst[(gid.y * p.width + gid.x) * p.channels + gid.z] = acc;
}
