// pixel_ops.wgsl — elementwise operations, in place on one buffer.
// Bindings (group 0): 0 data: array<f32> (read_write); 1 uniforms P.
// Workgroup: 256×1×1 over samples (gid.y extends past 65535 groups).
// scale:               v * a                                      (a = the factor)
// offset:              v + a                                      (a = the offset)
// gamma:               v <= 0 or NaN → 0, else v^(1/gamma)        (a = gamma)
// brightness_contrast: (v - 0.5) * contrast + 0.5 + brightness    (a = contrast, b = brightness)
// stretch:             mtf(clamp((v - black) * scale, 0, 1), m); NaN → 0
//                      (a = black, b = scale = 1/(white - black), c = midtone m)

struct P { n: u32, _pad: u32, a: f32, b: f32, c: f32, _p1: f32, _p2: f32, _p3: f32 };

@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@group(0) @binding(1) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn gamma(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    let v = data[i];
    if (!(v > 0.0)) {
        data[i] = 0.0;
    } else {
        data[i] = pow(v, 1.0 / p.a);
    }
}

@compute @workgroup_size(256, 1, 1)
fn brightness_contrast(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    data[i] = (data[i] - 0.5) * p.a + 0.5 + p.b;
}

// Midtone transfer function: mtf(0) = 0, mtf(m) = 0.5, mtf(1) = 1.
fn mtf(x: f32, m: f32) -> f32 {
    if (x <= 0.0) { return 0.0; }
    if (x >= 1.0) { return 1.0; }
    return ((m - 1.0) * x) / ((2.0 * m - 1.0) * x - m);
}

@compute @workgroup_size(256, 1, 1)
fn stretch(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    let v = data[i];
    if (v != v) {
        data[i] = 0.0;
        return;
    }
    data[i] = mtf(clamp((v - p.a) * p.b, 0.0, 1.0), p.c);
}

@compute @workgroup_size(256, 1, 1)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    data[i] *= p.a;
}

@compute @workgroup_size(256, 1, 1)
fn offset(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    data[i] += p.a;
}
