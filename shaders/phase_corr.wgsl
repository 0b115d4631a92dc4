// phase_corr.wgsl — phase correlation of a batch of frames against one
// reference on the device, the arithmetic of `kit::fft::PhaseCorrelator`:
// luminance of the region of interest (optionally 2×2- or 4×4-binned, or resampled
// by a first estimate with Catmull-Rom weights, edges replicated), minus its
// mean, times a separable Hann window; frames 2q and 2q+1 of a batch share
// one complex transform (2q the real part, 2q+1 the imaginary part: the
// spectra of real planes separate by symmetry); 2-D FFT (mixed-radix Stockham, radices
// 2 3 4 5 7 11 13, one row or column per workgroup in shared memory, twiddles
// from a table computed in f64 on the CPU); cross-power with the reference
// spectrum, partially whitened (|c|^-whiten) under a gaussian low-pass;
// inverse FFT; arg-max and a 3-point gaussian fit per axis.
// Bindings (group 0): 0 src: array<f32> (read), decoded frames (or the
//   reference plane); 1 table: array<u32> (read), word offset in `src` of each
//   batch frame; 2 res: array<vec4<f32>> (read_write), per batch frame
//   (dx, dy, peak, _) at `prev`/`out` and its mean at `means`; 3 plane:
//   array<f32> (read_write), batch × n0 × n1 real planes; 4 spec:
//   array<vec2<f32>> (read_write), batch / 2 × n0 × n1 spectra (one per
//   pair of frames); 5 refspec:
//   array<vec2<f32>> (read_write), the reference spectrum; 6 consts:
//   array<f32> (read), twiddles (cos, sin of -2πm/n for n0 and n1), Hann
//   windows, low-pass factors; 7 uniforms P.
// Workgroups: load 16×16×1 over (x, y), z = frame; mean_part, peak_part
//   256×1×1, (PARTS, frames); mean, peak 64×1×1 over frames; rows, cols
//   256×1×1 over (lines / lines per workgroup, pairs of frames); cross
//   256×1×1 over the samples of the pairs, save_ref over samples
//   (x + 65535·256·y).

struct P {
    fw: u32, fh: u32, fc: u32, bin: u32,
    rx: u32, ry: u32, rw: u32, rh: u32,
    n0: u32, n1: u32, count: u32, base: u32,
    prev: u32, out: u32, means: u32, use_prev: u32,
    prev_scale: f32, self_peak: f32, whiten: f32, mode: u32,
    tw0: u32, tw1: u32, wx: u32, wy: u32,
    gx: u32, gy: u32, inverse: u32, part: u32,
};

@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read> table: array<u32>;
@group(0) @binding(2) var<storage, read_write> res: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> plane: array<f32>;
@group(0) @binding(4) var<storage, read_write> spec: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> refspec: array<vec2<f32>>;
@group(0) @binding(6) var<storage, read> consts: array<f32>;
@group(0) @binding(7) var<uniform> p: P;

// Every entry point binds the same buffers (layouts come from the shader).
fn touch() {
    _ = src[0];
    _ = table[0];
    _ = res[0];
    _ = plane[0];
    _ = spec[0];
    _ = refspec[0];
    _ = consts[0];
}

// Luminance at (u, v) of the region of frame `b`.
fn lum(b: u32, u: u32, v: u32) -> f32 {
    let o = table[b] + ((p.ry + v) * p.fw + p.rx + u) * p.fc;
    if (p.fc == 1u) {
        return src[o];
    }
    if (p.fc == 3u) {
        return (src[o] + src[o + 1u] + src[o + 2u]) / 3.0;
    }
    var s = 0.0;
    for (var c = 0u; c < p.fc; c++) { s += src[o + c]; }
    return s / f32(p.fc);
}

fn lum_clamped(b: u32, u: i32, v: i32) -> f32 {
    return lum(b, u32(clamp(u, 0, i32(p.rw) - 1)), u32(clamp(v, 0, i32(p.rh) - 1)));
}

// The mean of the 2×2 block (x, y) of the region of frame `b` (kit::fft::bin2).
fn binned2(b: u32, x: u32, y: u32) -> f32 {
    return 0.25 * (lum(b, 2u * x, 2u * y) + lum(b, 2u * x + 1u, 2u * y)
        + lum(b, 2u * x, 2u * y + 1u) + lum(b, 2u * x + 1u, 2u * y + 1u));
}

@compute @workgroup_size(16, 16, 1)
fn load(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (p.count == 0xffffffffu) { touch(); }
    let x = gid.x;
    let y = gid.y;
    if (x >= p.n0 || y >= p.n1 || gid.z >= p.count) {
        return;
    }
    let b = p.base + gid.z;
    var v = 0.0;
    if (p.bin == 2u) {
        v = binned2(b, x, y);
    } else if (p.bin == 4u) {
        // kit::fft::bin2 twice, in its order.
        v = 0.25 * (binned2(b, 2u * x, 2u * y) + binned2(b, 2u * x + 1u, 2u * y)
            + binned2(b, 2u * x, 2u * y + 1u) + binned2(b, 2u * x + 1u, 2u * y + 1u));
    } else if (p.use_prev == 1u) {
        let s = res[p.prev + b].xy * p.prev_scale;
        let sx = f32(x) + s.x;
        let sy = f32(y) + s.y;
        let fx = floor(sx);
        let fy = floor(sy);
        let wx = cubic(sx - fx);
        let wy = cubic(sy - fy);
        let ix = i32(fx);
        let iy = i32(fy);
        // Rows first, as kit::warp's separable resampling.
        for (var j = 0; j < 4; j++) {
            let yy = iy + j - 1;
            let row = wx.x * lum_clamped(b, ix - 1, yy) + wx.y * lum_clamped(b, ix, yy)
                + wx.z * lum_clamped(b, ix + 1, yy) + wx.w * lum_clamped(b, ix + 2, yy);
            v += wy[j] * row;
        }
    } else {
        v = lum(b, x, y);
    }
    plane[(b * p.n1 + y) * p.n0 + x] = v;
}

// Partial results per frame: PARTS workgroups each reduce an interleaved
// share of the plane into res[part + b · PARTS + g] (x: sum; y, z: largest
// value and its index), then one invocation per frame combines them.
const PARTS: u32 = 32u;

@compute @workgroup_size(256, 1, 1)
fn mean_part(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let b = p.base + wg.y;
    let n = p.n0 * p.n1;
    var s = 0.0;
    for (var i = wg.x * 256u + li; i < n; i += PARTS * 256u) {
        s += plane[b * n + i];
    }
    let total = sum256(li, s);
    if (li == 0u) {
        res[p.part + b * PARTS + wg.x] = vec4<f32>(total, 0.0, 0.0, 0.0);
    }
}

@compute @workgroup_size(64, 1, 1)
fn mean(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (p.count == 0xffffffffu) { touch(); }
    if (gid.x >= p.count) { return; }
    let b = p.base + gid.x;
    var s = 0.0;
    for (var g = 0u; g < PARTS; g++) { s += res[p.part + b * PARTS + g].x; }
    res[p.means + b] = vec4<f32>(s / f32(p.n0 * p.n1), 0.0, 0.0, 0.0);
}

// ---- FFT of one line held in shared memory --------------------------------

var<workgroup> sh: array<vec2<f32>, 2048>;

// exp(∓2πi m / n) from the table at `tw` (conjugated for the inverse).
fn twiddle(tw: u32, m: u32, inv: bool) -> vec2<f32> {
    let t = vec2<f32>(consts[tw + 2u * m], consts[tw + 2u * m + 1u]);
    if (inv) { return vec2<f32>(t.x, -t.y); }
    return t;
}

// Invocations per line of n samples: n / 4 rounded up to a power of two,
// within 32 ..= 256 (kit::gpu::phase_corr::lanes).
fn lanes(n: u32) -> u32 {
    let q = max((n + 3u) / 4u, 2u);
    let p2 = 1u << (32u - countLeadingZeros(q - 1u));
    return clamp(p2, 32u, 256u);
}

fn radix(rem: u32) -> u32 {
    if (rem % 4u == 0u) { return 4u; }
    if (rem % 2u == 0u) { return 2u; }
    if (rem % 3u == 0u) { return 3u; }
    if (rem % 5u == 0u) { return 5u; }
    if (rem % 7u == 0u) { return 7u; }
    if (rem % 11u == 0u) { return 11u; }
    return 13u;
}

// One radix-4 butterfly: inputs v0..v3 (read before the stage's barrier),
// outputs written to sh.
fn radix4(at: u32, j: u32, ns: u32, step: u32, tw: u32, inv: bool, rot: f32,
          v0: vec2<f32>, v1: vec2<f32>, v2: vec2<f32>, v3: vec2<f32>) {
    let jn = j / ns;
    let k = j - jn * ns;
    let a1 = cmul(v1, twiddle(tw, k * step, inv));
    let a2 = cmul(v2, twiddle(tw, 2u * k * step, inv));
    let a3 = cmul(v3, twiddle(tw, 3u * k * step, inv));
    let s02 = v0 + a2;
    let d02 = v0 - a2;
    let s13 = a1 + a3;
    let d13 = a1 - a3;
    // (a1 - a3) · (∓i)
    let d13r = vec2<f32>(-rot * d13.y, rot * d13.x);
    let dst = at + jn * ns * 4u + k;
    sh[dst] = s02 + s13;
    sh[dst + ns] = d02 + d13r;
    sh[dst + 2u * ns] = s02 - s13;
    sh[dst + 3u * ns] = d02 - d13r;
}

// In-place transform of sh[0 .. n] (unnormalised). Stockham autosort: each
// stage combines r sub-transforms of length ns into length ns·r; every
// invocation loads all of its butterflies' inputs before the barrier, then
// writes the outputs, so one shared array suffices. A workgroup transforms
// 256 / lanes(n) lines at once, `lanes` invocations each, the line at sh[at..]
// (the host checks that ceil(n / r / lanes) · r ≤ 16 for every stage).
// Radix 4 and 2 have their own butterflies (no multiplications inside);
// 3, 5, 7, 11, 13 a generic DFT. Twiddle indices k·q·n/(ns·r) stay below n
// (k < ns, q < r), so they need no reduction.
fn fft_line(lt: u32, lanes: u32, at: u32, n: u32, tw: u32, inv: bool) {
    var ns = 1u;
    // +i for the inverse, -i for the forward transform, as a rotation.
    var rot = -1.0;
    if (inv) { rot = 1.0; }
    loop {
        if (ns >= n) { break; }
        let r = radix(n / ns);
        let m = n / r;
        let step = n / (ns * r);
        if (r == 4u) {
            // At most 2 butterflies per invocation (n ≤ 2048, lanes ≥ n / 8),
            // held in plain variables (no private array).
            let j0 = lt;
            let j1 = lt + lanes;
            var x0 = vec2<f32>(0.0);
            var x1 = vec2<f32>(0.0);
            var x2 = vec2<f32>(0.0);
            var x3 = vec2<f32>(0.0);
            var y0 = vec2<f32>(0.0);
            var y1 = vec2<f32>(0.0);
            var y2 = vec2<f32>(0.0);
            var y3 = vec2<f32>(0.0);
            if (j0 < m) {
                x0 = sh[at + j0];
                x1 = sh[at + j0 + m];
                x2 = sh[at + j0 + 2u * m];
                x3 = sh[at + j0 + 3u * m];
            }
            if (j1 < m) {
                y0 = sh[at + j1];
                y1 = sh[at + j1 + m];
                y2 = sh[at + j1 + 2u * m];
                y3 = sh[at + j1 + 3u * m];
            }
            workgroupBarrier();
            if (j0 < m) {
                radix4(at, j0, ns, step, tw, inv, rot, x0, x1, x2, x3);
            }
            if (j1 < m) {
                radix4(at, j1, ns, step, tw, inv, rot, y0, y1, y2, y3);
            }
        } else if (r == 2u) {
            var v: array<vec2<f32>, 16>;
            for (var t = 0u; t < 8u; t++) {
                let j = lt + t * lanes;
                if (j < m) {
                    v[2u * t] = sh[at + j];
                    v[2u * t + 1u] = sh[at + j + m];
                }
            }
            workgroupBarrier();
            for (var t = 0u; t < 8u; t++) {
                let j = lt + t * lanes;
                if (j < m) {
                    let jn = j / ns;
                    let k = j - jn * ns;
                    let a0 = v[2u * t];
                    let a1 = cmul(v[2u * t + 1u], twiddle(tw, k * step, inv));
                    let dst = at + jn * ns * 2u + k;
                    sh[dst] = a0 + a1;
                    sh[dst + ns] = a0 - a1;
                }
            }
        } else {
            var v: array<vec2<f32>, 16>;
            var cnt = 0u;
            for (var j = lt; j < m; j += lanes) {
                for (var q = 0u; q < r; q++) {
                    v[cnt * r + q] = sh[at + j + q * m];
                }
                cnt++;
            }
            workgroupBarrier();
            cnt = 0u;
            for (var j = lt; j < m; j += lanes) {
                let k = j % ns;
                var a: array<vec2<f32>, 16>;
                for (var q = 0u; q < r; q++) {
                    a[q] = cmul(v[cnt * r + q], twiddle(tw, k * q * step, inv));
                }
                let dst = at + (j / ns) * ns * r + k;
                for (var qo = 0u; qo < r; qo++) {
                    var s = a[0];
                    for (var q = 1u; q < r; q++) {
                        s += cmul(a[q], twiddle(tw, ((q * qo) % r) * m, inv));
                    }
                    sh[dst + qo * ns] = s;
                }
                cnt++;
            }
        }
        workgroupBarrier();
        ns *= r;
    }
}

// Rows of pair q = wg.y (frames a = 2q, b = 2q + 1 of the batch): forward
// from the windowed planes (a real, b imaginary; b zero past the batch), or
// inverse into the planes (real part to a, imaginary part to b);
// 256 / lanes(n0) rows per workgroup.
@compute @workgroup_size(256, 1, 1)
fn rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let n = p.n0;
    let ln = lanes(n);
    let per = 256u / ln;
    let q = p.base + wg.y;
    let a = 2u * q;
    let b = a + 1u;
    let has_b = b < p.base + p.count;
    let inv = p.inverse == 1u;
    let ma = res[p.means + a].x;
    var mb = 0.0;
    if (has_b) { mb = res[p.means + b].x; }
    let plane_len = n * p.n1;
    for (var i = li; i < per * n; i += 256u) {
        let y = wg.x * per + i / n;
        let x = i % n;
        var v = vec2<f32>(0.0);
        if (y < p.n1) {
            let o = y * n + x;
            if (inv) {
                v = spec[q * plane_len + o];
            } else {
                let win = consts[p.wx + x] * consts[p.wy + y];
                v.x = (plane[a * plane_len + o] - ma) * win;
                if (has_b) { v.y = (plane[b * plane_len + o] - mb) * win; }
            }
        }
        sh[i] = v;
    }
    workgroupBarrier();
    fft_line(li % ln, ln, (li / ln) * n, n, p.tw0, inv);
    for (var i = li; i < per * n; i += 256u) {
        let y = wg.x * per + i / n;
        if (y < p.n1) {
            let o = y * n + i % n;
            if (inv) {
                plane[a * plane_len + o] = sh[i].x;
                if (has_b) { plane[b * plane_len + o] = sh[i].y; }
            } else {
                spec[q * plane_len + o] = sh[i];
            }
        }
    }
}

// Columns, 256 / lanes(n1) neighbouring columns per workgroup (so that
// neighbouring invocations read neighbouring samples of a row).
@compute @workgroup_size(256, 1, 1)
fn cols(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let n = p.n1;
    let ln = lanes(n);
    let per = 256u / ln;
    let b = p.base + wg.y;
    let x0 = wg.x * per;
    for (var i = li; i < per * n; i += 256u) {
        let c = i % per;
        let y = i / per;
        var v = vec2<f32>(0.0);
        if (x0 + c < p.n0) {
            v = spec[(b * n + y) * p.n0 + x0 + c];
        }
        sh[c * n + y] = v;
    }
    workgroupBarrier();
    fft_line(li % ln, ln, (li / ln) * n, n, p.tw1, p.inverse == 1u);
    for (var i = li; i < per * n; i += 256u) {
        let c = i % per;
        let y = i / per;
        if (x0 + c < p.n0) {
            spec[(b * n + y) * p.n0 + x0 + c] = sh[c * n + y];
        }
    }
}

// The cross-power of one frame's spectrum value `x` at sample j (low-pass
// factor lp) with the reference, partially whitened.
fn cross_one(x: vec2<f32>, j: u32, lp: f32) -> vec2<f32> {
    let r = refspec[j];
    let s = cmul(x, vec2<f32>(r.x, -r.y));
    let m2 = dot(s, s);
    var w = 0.0;
    if (m2 > 1e-30 && lp > 1e-7) {
        w = lp * pow(max(m2, 1e-30), -0.5 * p.whiten);
    }
    return s * w;
}

fn lowpass(x: u32, y: u32) -> f32 {
    return consts[p.gx + min(x, p.n0 - x)] * consts[p.gy + min(y, p.n1 - y)];
}

// Cross-power spectra of the pairs' frames, whitened and low-passed. Pair
// spectrum Z = A + iB of real planes a, b: A(k) = (Z(k) + conj Z(-k)) / 2,
// B(k) = (Z(k) - conj Z(-k)) / 2i; the result is C_a + i C_b (both
// Hermitian, so the inverse transform gives the two correlation surfaces as
// its real and imaginary parts). One invocation per mirrored pair of samples.
@compute @workgroup_size(256, 1, 1)
fn cross(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (p.count == 0xffffffffu) { touch(); }
    let plane_len = p.n0 * p.n1;
    let i = flat_index(gid, 256u);
    let pairs = (p.count + 1u) / 2u;
    if (i >= pairs * plane_len) { return; }
    let q = p.base + i / plane_len;
    let j = i % plane_len;
    let x = j % p.n0;
    let y = j / p.n0;
    let xm = (p.n0 - x) % p.n0;
    let ym = (p.n1 - y) % p.n1;
    let jm = ym * p.n0 + xm;
    if (jm < j) { return; }
    let has_b = 2u * q + 1u < p.base + p.count;
    let z = spec[q * plane_len + j];
    let zm = spec[q * plane_len + jm];
    let za = 0.5 * (z + vec2<f32>(zm.x, -zm.y));
    let d = z - vec2<f32>(zm.x, -zm.y);
    let zb = vec2<f32>(0.5 * d.y, -0.5 * d.x);
    let lp = lowpass(x, y);
    let lpm = lowpass(xm, ym);
    let ca = cross_one(za, j, lp);
    let cam = cross_one(vec2<f32>(za.x, -za.y), jm, lpm);
    var cb = vec2<f32>(0.0);
    var cbm = vec2<f32>(0.0);
    if (has_b) {
        cb = cross_one(zb, j, lp);
        cbm = cross_one(vec2<f32>(zb.x, -zb.y), jm, lpm);
    }
    // c_a + i c_b
    spec[q * plane_len + j] = vec2<f32>(ca.x - cb.y, ca.y + cb.x);
    if (jm != j) {
        spec[q * plane_len + jm] = vec2<f32>(cam.x - cbm.y, cam.y + cbm.x);
    }
}

// The spectrum of batch frame `base` becomes the reference.
@compute @workgroup_size(256, 1, 1)
fn save_ref(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (p.count == 0xffffffffu) { touch(); }
    let plane_len = p.n0 * p.n1;
    let i = flat_index(gid, 256u);
    if (i >= plane_len) { return; }
    refspec[i] = spec[p.base * plane_len + i];
}

fn surface(b: u32, x: i32, y: i32) -> f32 {
    let xx = u32((x + i32(p.n0)) % i32(p.n0));
    let yy = u32((y + i32(p.n1)) % i32(p.n1));
    return plane[(b * p.n1 + yy) * p.n0 + xx];
}

@compute @workgroup_size(256, 1, 1)
fn peak_part(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    if (p.count == 0xffffffffu) { touch(); }
    let b = p.base + wg.y;
    let n = p.n0 * p.n1;
    var bv = -3.4e38;
    var bi = 0u;
    for (var i = wg.x * 256u + li; i < n; i += PARTS * 256u) {
        let v = plane[b * n + i];
        if (v > bv) { bv = v; bi = i; }
    }
    argmax256(li, bv, bi);
    if (li == 0u) {
        res[p.part + b * PARTS + wg.x] = vec4<f32>(0.0, best_v[0], bitcast<f32>(best_i[0]), 0.0);
    }
}

// Arg-max of each frame's correlation surface (first index on ties) from
// the partial results, the sub-pixel fit, and the combination with a first
// estimate (`mode`): 0 this measurement alone; 1 prev · prev_scale + this
// (peak of this); 2 prev alone when it is under 0.05 px on both axes, else
// prev + this (the larger peak) — the refinement rules of
// PhaseCorrelator::shift_of. One invocation per frame.
@compute @workgroup_size(64, 1, 1)
fn peak(@builtin(global_invocation_id) gid: vec3<u32>) {
    if (p.count == 0xffffffffu) { touch(); }
    if (gid.x >= p.count) { return; }
    let b = p.base + gid.x;
    var best = -3.4e38;
    var bi = 0u;
    for (var g = 0u; g < PARTS; g++) {
        let r = res[p.part + b * PARTS + g];
        let i = bitcast<u32>(r.z);
        if (r.y > best || (r.y == best && i < bi)) {
            best = r.y;
            bi = i;
        }
    }
    let px = bi % p.n0;
    let py = bi / p.n0;
    let xi = i32(px);
    let yi = i32(py);
    let ox = peak_offset(surface(b, xi - 1, yi), best, surface(b, xi + 1, yi));
    let oy = peak_offset(surface(b, xi, yi - 1), best, surface(b, xi, yi + 1));
    let here = vec4<f32>(wrap(px, p.n0) + ox, wrap(py, p.n1) + oy, max(best / p.self_peak, 0.0), 0.0);
    var r = here;
    if (p.mode == 1u) {
        let first = res[p.prev + b].xy * p.prev_scale;
        r = vec4<f32>(first + here.xy, here.z, 0.0);
    } else if (p.mode == 2u) {
        let first = res[p.prev + b];
        if (abs(first.x) < 0.05 && abs(first.y) < 0.05) {
            r = first;
        } else {
            r = vec4<f32>(first.xy + here.xy, max(here.z, first.z), 0.0);
        }
    }
    res[p.out + b] = r;
}
