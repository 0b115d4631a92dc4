// point_measure.wgsl — align-multipoint's alignment-point measurements on
// the device (common.wgsl, sample.wgsl, warp_grid.wgsl and peak.wgsl
// prepended), the
// arithmetic of its CPU path, one workgroup per item (a frame and a point):
//   correlate: the point's patch of the frame's luminance at an integer
//     offset (edges clamped; 2×2-binned when bin = 2, as kit::fft::bin2),
//     minus its mean, times the Hann window, 2-D DFT, cross-power with the
//     point's reference spectrum (stored as realfft's half, `half` = n/2 + 1
//     columns, the rest mirrored: X(k) = conj X(−k)) partially whitened
//     (|c|^-whiten) under the
//     low-pass, inverse DFT, arg-max (first index on ties) and a 3-point
//     gaussian fit per axis: kit::fft::PhaseCorrelator::raw_shift. The
//     transforms are direct DFTs (n ≤ 128, any n): patches are small, and
//     a plain sum per output needs no radix plan. out = (dx, dy, peak, 0)
//     in full-resolution pixels.
//   structure: the point's sharpness on the patch at an integer offset
//     (edges clamped), grid.rs's `structure`: the RMS of the [1 2 1]/4 ⊗
//     [1 2 1]/4 smoothed central differences over the patch's interior
//     (2 px in from each side), halved. out = (sharpness, 0, 0, 0).
//   gradient: the sums of align-multipoint's gradient fit
//     (gradient.rs: Σ w·p, Σ w·ref·p, Σ w·∂x ref·p, Σ w·∂y ref·p over the
//     patch's interior) on the patch of the frame resampled bilinearly
//     under its global shift plus its warp field (dewarp.rs); the CPU
//     solves the 4×4 system.
// Bindings (group 0): 0 src: array<f32> (read), decoded frames (one device
//   buffer); 1 items: array<Item> (read); 2 frames: array<WarpFrame>
//   (read), the batch frames' warps; 3 grids: array<f32> (read), their
//   grids; 4 refs: array<f32> (read), the points' reference spectra
//   (re, im interleaved, n rows × half each), twiddles, low-pass (n × n),
//   window and taper at the offsets in P; 5 scratch: array<vec2<f32>>
//   (read_write), 2 · n² per workgroup slot; 6 out: array<vec4<f32>>
//   (read_write), one per item; 7 refplane: array<f32> (read), the
//   reference plane (fw × fh); 8 uniforms P.
// Workgroup: 256×1×1, one per item (wg.x + 65535 · wg.y, from item `base`).

struct P {
    fw: u32, fh: u32, fc: u32, mode: u32,
    n: u32, bin: u32, s: u32, count: u32,
    base: u32, slot: u32, tw: u32, lp: u32,
    win: u32, taper: u32, half: u32, whiten: f32,
};

struct Item {
    src: u32, frame: u32, ox: i32, oy: i32,
    spec: u32, self_peak: f32, _a: u32, _b: u32,
};

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> items: array<Item>;
@group(0) @binding(2) var<storage, read> frames: array<WarpFrame>;
@group(0) @binding(3) var<storage, read> grids: array<f32>;
@group(0) @binding(4) var<storage, read> refs: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read> refplane: array<f32>;
@group(0) @binding(8) var<uniform> p: P;

// Every entry point binds the same buffers.
fn touch() {
    _ = src[0];
    _ = items[0];
    _ = frames[0];
    _ = grids[0];
    _ = refs[0];
    _ = scratch[0];
    _ = out[0];
    _ = refplane[0];
}

// Luminance (mean of the channels) at (x, y) of the frame from word `base`,
// edges clamped: the `at` of sample.wgsl.
fn at(base: u32, x: i32, y: i32, c: u32) -> f32 {
    let xx = u32(clamp(x, 0, i32(p.fw) - 1));
    let yy = u32(clamp(y, 0, i32(p.fh) - 1));
    let o = base + (yy * p.fw + xx) * p.fc;
    if (p.fc == 1u) {
        return src[o];
    }
    if (p.fc == 3u) {
        return (src[o] + src[o + 1u] + src[o + 2u]) / 3.0;
    }
    var s = 0.0;
    for (var k = 0u; k < p.fc; k++) { s += src[o + k]; }
    return s / f32(p.fc);
}

// Patch sample (u, v) of item `it` at its integer offset, edges clamped.
fn patch_at(it: Item, u: u32, v: u32) -> f32 {
    return at(it.src, it.ox + i32(u), it.oy + i32(v), 0u);
}

// Patch sample (u, v) of the frame resampled under its warp: the pixel
// (clamped to the frame) at source position pixel + global + field there.
fn dewarped_at(it: Item, u: u32, v: u32) -> f32 {
    let x = clamp(it.ox + i32(u), 0, i32(p.fw) - 1);
    let y = clamp(it.oy + i32(v), 0, i32(p.fh) - 1);
    let f = frames[it.frame];
    let g = grid_at(f, f32(x), f32(y));
    let sx = g.x + (f32(x) + f.dx);
    let sy = g.y + (f32(y) + f.dy);
    return sample(it.src, sx, sy, 0u, 0u);
}

var<workgroup> tw: array<vec2<f32>, 128>;
var<workgroup> red4: array<vec4<f32>, 256>;

// One 1-D DFT pass over the n × n block: scratch[a ..] → scratch[b ..],
// along x (`cols` false) or y; exp(∓2πi m / n) from `tw` (conjugated for
// the inverse).
fn dft_pass(a: u32, b: u32, li: u32, cols: bool, inv: bool) {
    let n = p.n;
    for (var o = li; o < n * n; o += 256u) {
        let y = o / n;
        let k = o % n;
        var acc = vec2<f32>(0.0);
        var m = 0u;
        // Along x: out(k, y) = Σ_x in(x, y) w^(x k); along y: out(k, y) = Σ_t in(k, t) w^(t y).
        var step = k;
        if (cols) { step = y; }
        for (var t = 0u; t < n; t++) {
            var idx = y * n + t;
            if (cols) { idx = t * n + k; }
            var w = tw[m];
            if (inv) { w.y = -w.y; }
            acc += cmul(scratch[a + idx], w);
            m += step;
            if (m >= n) { m -= n; }
        }
        scratch[b + o] = acc;
    }
    storageBarrier();
}

fn surface(a: u32, x: i32, y: i32) -> f32 {
    let n = i32(p.n);
    return scratch[a + u32(((y + n) % n) * n + (x + n) % n)].x;
}

// The conjugate of bin o (row-major over n × n) of the reference spectrum
// stored from word `spec`: bins past the stored half are the conjugates of
// their mirrors, so this is the mirror itself there.
fn conj_ref(spec: u32, o: u32) -> vec2<f32> {
    let n = p.n;
    let x = o % n;
    let y = o / n;
    if (x < p.half) {
        let i = spec + 2u * (y * p.half + x);
        return vec2<f32>(refs[i], -refs[i + 1u]);
    }
    let i = spec + 2u * (((n - y) % n) * p.half + (n - x));
    return vec2<f32>(refs[i], refs[i + 1u]);
}

fn item_index(wg: vec3<u32>) -> u32 {
    return wg.x + wg.y * 65535u;
}

@compute @workgroup_size(256, 1, 1)
fn correlate(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let slot = item_index(wg);
    if (slot >= p.count) { return; }
    let it = items[p.base + slot];
    let n = p.n;
    let nn = n * n;
    let a = slot * p.slot;
    let b = a + nn;
    for (var m = li; m < n; m += 256u) {
        tw[m] = vec2<f32>(refs[p.tw + 2u * m], refs[p.tw + 2u * m + 1u]);
    }
    // The patch (binned) and its sum.
    var s = 0.0;
    for (var o = li; o < nn; o += 256u) {
        let u = o % n;
        let v = o / n;
        var x = 0.0;
        if (p.bin == 2u) {
            x = 0.25 * (patch_at(it, 2u * u, 2u * v) + patch_at(it, 2u * u + 1u, 2u * v)
                + patch_at(it, 2u * u, 2u * v + 1u) + patch_at(it, 2u * u + 1u, 2u * v + 1u));
        } else {
            x = patch_at(it, u, v);
        }
        scratch[a + o] = vec2<f32>(x, 0.0);
        s += x;
    }
    let mean = sum256(li, s) / f32(nn);
    for (var o = li; o < nn; o += 256u) {
        scratch[a + o] = vec2<f32>((scratch[a + o].x - mean) * refs[p.win + o], 0.0);
    }
    storageBarrier();
    dft_pass(a, b, li, false, false);
    dft_pass(b, a, li, true, false);
    // Cross-power with the reference, partially whitened, low-passed.
    for (var o = li; o < nn; o += 256u) {
        let c = cmul(scratch[a + o], conj_ref(it.spec, o));
        let m2 = dot(c, c);
        let lp = refs[p.lp + o];
        var w = 0.0;
        if (m2 > 1e-30 && lp > 1e-7) {
            w = lp * pow(m2, -0.5 * p.whiten);
        }
        scratch[a + o] = c * w;
    }
    storageBarrier();
    dft_pass(a, b, li, false, true);
    dft_pass(b, a, li, true, true);
    // Arg-max of the surface (real part), first index on ties.
    var bv = -3.4e38;
    var bi = 0u;
    for (var o = li; o < nn; o += 256u) {
        let v = scratch[a + o].x;
        if (v > bv) { bv = v; bi = o; }
    }
    argmax256(li, bv, bi);
    if (li == 0u) {
        let best = best_v[0];
        let px = best_i[0] % n;
        let py = best_i[0] / n;
        let xi = i32(px);
        let yi = i32(py);
        let ox = peak_offset(surface(a, xi - 1, yi), best, surface(a, xi + 1, yi));
        let oy = peak_offset(surface(a, xi, yi - 1), best, surface(a, xi, yi + 1));
        let scale = f32(p.bin);
        out[p.base + slot] = vec4<f32>(
            scale * (wrap(px, n) + ox),
            scale * (wrap(py, n) + oy),
            max(best / it.self_peak, 0.0),
            0.0,
        );
    }
}

// Reference plane sample at (x, y) of the frame, edges clamped.
fn ref_at(x: i32, y: i32) -> f32 {
    let xx = u32(clamp(x, 0, i32(p.fw) - 1));
    let yy = u32(clamp(y, 0, i32(p.fh) - 1));
    return refplane[yy * p.fw + xx];
}

@compute @workgroup_size(256, 1, 1)
fn gradient(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let slot = item_index(wg);
    if (slot >= p.count) { return; }
    let it = items[p.base + slot];
    let s = p.s;
    var acc = vec4<f32>(0.0);
    for (var o = li; o < s * s; o += 256u) {
        let u = o % s;
        let v = o / s;
        if (u == 0u || v == 0u || u == s - 1u || v == s - 1u) { continue; }
        // Reference patch samples (the patch of the clamped plane).
        let x = it.ox + i32(u);
        let y = it.oy + i32(v);
        let cx = clamp(x, 0, i32(p.fw) - 1);
        let cy = clamp(y, 0, i32(p.fh) - 1);
        let r = ref_at(cx, cy);
        let gx = 0.5 * (ref_at(clamp(x + 1, 0, i32(p.fw) - 1), cy) - ref_at(clamp(x - 1, 0, i32(p.fw) - 1), cy));
        let gy = 0.5 * (ref_at(cx, clamp(y + 1, 0, i32(p.fh) - 1)) - ref_at(cx, clamp(y - 1, 0, i32(p.fh) - 1)));
        let w = refs[p.taper + u] * refs[p.taper + v];
        let pv = dewarped_at(it, u, v);
        acc += vec4<f32>(w * pv, (w * r) * pv, (w * gx) * pv, (w * gy) * pv);
    }
    red4[li] = acc;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (li < st) { red4[li] += red4[li + st]; }
        workgroupBarrier();
    }
    if (li == 0u) {
        out[p.base + slot] = red4[0];
    }
}

// The patch of item `it` at its integer offset, smoothed [1 2 1]/4 along
// rows then columns (grid.rs's EnergyRows order), at (u, v).
fn smoothed_at(it: Item, u: i32, v: i32) -> f32 {
    var hz = array<f32, 3>(0.0, 0.0, 0.0);
    for (var j = 0; j < 3; j++) {
        let y = it.oy + v + j - 1;
        let x = it.ox + u;
        hz[j] = 0.25 * (at(it.src, x - 1, y, 0u) + 2.0 * at(it.src, x, y, 0u) + at(it.src, x + 1, y, 0u));
    }
    return 0.25 * (hz[0] + 2.0 * hz[1] + hz[2]);
}

@compute @workgroup_size(256, 1, 1)
fn structure(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let slot = item_index(wg);
    if (slot >= p.count) { return; }
    let it = items[p.base + slot];
    let s = p.s;
    let inner = s - 4u;
    var acc = 0.0;
    for (var o = li; o < inner * inner; o += 256u) {
        let u = i32(o % inner) + 2;
        let v = i32(o / inner) + 2;
        let gx = smoothed_at(it, u + 1, v) - smoothed_at(it, u - 1, v);
        let gy = smoothed_at(it, u, v + 1) - smoothed_at(it, u, v - 1);
        acc += gx * gx + gy * gy;
    }
    let total = sum256(li, acc);
    if (li == 0u) {
        out[p.base + slot] = vec4<f32>(sqrt(total / f32(inner * inner)) * 0.5, 0.0, 0.0, 0.0);
    }
}
