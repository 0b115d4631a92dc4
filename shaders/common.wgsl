// common.wgsl — helpers shared by several kernels. WGSL has no includes: the
// shader registry (kit::gpu::shaders) prepends this file to the kernels that
// use it, so it declares no bindings and no entry point of its own.
// Bindings: none. Workgroup: none (helpers only).

// Index of a 1-D pass whose workgroups of `size` spill over y past 65535
// groups (kit::gpu::groups_1d).
fn flat_index(gid: vec3<u32>, size: u32) -> u32 {
    return gid.x + gid.y * 65535u * size;
}

// Order-preserving map from f32 to u32 (negative values reversed below the
// positive ones), and back.
fn key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if ((b & 0x80000000u) != 0u) {
        return ~b;
    }
    return b | 0x80000000u;
}

fn unkey(k: u32) -> f32 {
    if ((k & 0x80000000u) != 0u) {
        return bitcast<f32>(k & 0x7fffffffu);
    }
    return bitcast<f32>(~k);
}

// Catmull-Rom weights of the four taps around a fractional offset t in [0, 1).
fn cubic(t: f32) -> vec4<f32> {
    let t2 = t * t;
    let t3 = t2 * t;
    return vec4<f32>(0.5 * (-t3 + 2.0 * t2 - t), 0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
                     0.5 * (-3.0 * t3 + 4.0 * t2 + t), 0.5 * (t3 - t2));
}

// Cubic convolution with a = -0.75 (interp = 2, "bicubic-sharp"), as
// kit::warp::sharp_cubic_weights.
fn sharp_cubic(t: f32) -> vec4<f32> {
    let a = -0.75;
    let n0 = ((a + 2.0) * t - (a + 3.0)) * t * t + 1.0;
    let u = 1.0 - t;
    let n1 = ((a + 2.0) * u - (a + 3.0)) * u * u + 1.0;
    let d0 = 1.0 + t;
    let d1 = 2.0 - t;
    let f0 = a * (((d0 - 5.0) * d0 + 8.0) * d0 - 4.0);
    let f1 = a * (((d1 - 5.0) * d1 + 8.0) * d1 - 4.0);
    return vec4<f32>(f0, n0, n1, f1);
}
