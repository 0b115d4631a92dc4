// peak.wgsl — the peak of a correlation surface, shared by phase_corr.wgsl
// and point_measure.wgsl (prepended by the shader registry): the complex
// product, the sum and the arg-max of a workgroup's values (first index on
// ties) and the sub-pixel fit of kit::fft::peak_offset.
// Bindings: none. Workgroup: sum256 and argmax256 reduce over 256 invocations.

var<workgroup> best_v: array<f32, 256>;
var<workgroup> best_i: array<u32, 256>;

fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x);
}

// The sum of the 256 invocations' values `v`, for every invocation (it
// holds barriers: every invocation of the workgroup calls it).
fn sum256(li: u32, v: f32) -> f32 {
    best_v[li] = v;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (li < st) { best_v[li] += best_v[li + st]; }
        workgroupBarrier();
    }
    let total = best_v[0];
    // best_v is free again only when every invocation has read it.
    workgroupBarrier();
    return total;
}

// Leaves in best_v[0], best_i[0] the largest of the 256 invocations'
// candidates (value v at index i), the smallest index on ties. Every
// invocation of the workgroup calls it (it holds barriers).
fn argmax256(li: u32, v: f32, i: u32) {
    best_v[li] = v;
    best_i[li] = i;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (li < st) {
            let ov = best_v[li + st];
            let oi = best_i[li + st];
            if (ov > best_v[li] || (ov == best_v[li] && oi < best_i[li])) {
                best_v[li] = ov;
                best_i[li] = oi;
            }
        }
        workgroupBarrier();
    }
}

// kit::fft::peak_offset: gaussian fit when all three are positive, else a parabola.
fn peak_offset(a: f32, b: f32, c: f32) -> f32 {
    var o = 0.0;
    if (a > 0.0 && b > 0.0 && c > 0.0) {
        let la = log(a);
        let lb = log(b);
        let lc = log(c);
        let d = la - 2.0 * lb + lc;
        if (abs(d) >= 1e-12) { o = 0.5 * (la - lc) / d; }
    } else {
        let d = a - 2.0 * b + c;
        if (abs(d) >= 1e-12) { o = 0.5 * (a - c) / d; }
    }
    return clamp(o, -0.5, 0.5);
}

// A peak index in 0..n as a signed shift (past the middle: negative).
fn wrap(v: u32, n: u32) -> f32 {
    if (v > n / 2u) { return f32(v) - f32(n); }
    return f32(v);
}
