// combine.wgsl — elementwise combinations of a source buffer into a
// destination, in place.
// Bindings (group 0): 0 src: array<f32> (read); 1 dst: array<f32> (read_write);
//   2 uniforms P. Workgroup: 256×1×1 over samples (gid.y extends past 65535 groups).
// accumulate: dst[i] += a * src[i] (weighted mean stacking; the division by
//             the total weight is pixel_ops.wgsl's scale).
// multiply:  dst[i] *= src[i] (Richardson–Lucy's update).
// unsharp:    with v = dst[i], d = v - src[i] (src: the blurred image from
//             conv_separable.wgsl): dst[i] = v + a * d where |d| > b, else v
//             (a = amount, b = threshold).

struct P { n: u32, _pad: u32, a: f32, b: f32 };

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    dst[i] += p.a * src[i];
}

@compute @workgroup_size(256, 1, 1)
fn unsharp(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    let v = dst[i];
    let d = v - src[i];
    if (abs(d) > p.b) {
        dst[i] = v + p.a * d;
    }
}

@compute @workgroup_size(256, 1, 1)
fn multiply(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    dst[i] *= src[i];
}
