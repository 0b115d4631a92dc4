// quality.wgsl — frame sharpness on the device, as the `quality` plugin's CPU
// path: luminance (mean of the channels), gaussian prefilter (separable,
// edges replicated, taps in kernel order), then per interior pixel the
// 4-neighbour Laplacian or the squared Sobel gradient; per 16×16 tile the sum
// and sum of squares of that value and the sum of the unfiltered luminance.
// Bindings (group 0): 0 frames: array<f32> (read), decoded frames
//   (width×height×channels, interleaved); 1 list: array<u32> (read), word
//   offset in `frames` of each frame of the batch (this dispatch's frames
//   are batch frames out_base ..); 2 partial: array<f32>
//   (read_write), 3 sums per (frame, tile), and from word `totals` 3 per
//   frame after `reduce`;
//   3 taps: array<f32> (read), the gaussian (2·radius+1 taps); 4 uniforms P.
// Workgroup: tiles: 16×16×1 over a 16×16 tile's pixels, z = frame of the
//   dispatch; tiles32 (radius ≤ 7): 256×1×1 over a 32×32 tile, 4 pixels per
//   invocation, z = frame; reduce: 256×1×1, one workgroup per frame.

struct P {
    width: u32, height: u32, channels: u32, radius: u32,
    metric: u32, tiles_x: u32, tiles_y: u32, count: u32,
    out_base: u32, totals: u32, _b: u32, _c: u32,
};

@group(0) @binding(0) var<storage, read> frames: array<f32>;
@group(0) @binding(1) var<storage, read> list: array<u32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<storage, read> taps: array<f32>;
@group(0) @binding(4) var<uniform> p: P;

// Radius up to 15 (sigma 5): luminance tile (16 + 2 + 2r)², then the x pass
// (18 columns), then the blurred 18×18 block; `lum` is reused for the sums.
const T: u32 = 16u;
const MAXL: u32 = 48u;
var<workgroup> lum: array<f32, 2304>;
var<workgroup> hx: array<f32, 864>;
var<workgroup> blur: array<f32, 324>;

fn luma(base: u32, x: u32, y: u32) -> f32 {
    let o = base + (y * p.width + x) * p.channels;
    if (p.channels == 1u) {
        return frames[o];
    }
    if (p.channels == 3u) {
        return (frames[o] + frames[o + 1u] + frames[o + 2u]) / 3.0;
    }
    var s = 0.0;
    for (var c = 0u; c < p.channels; c++) { s += frames[o + c]; }
    return s / f32(p.channels);
}

@compute @workgroup_size(16, 16, 1)
fn tiles(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = wg.z;
    let base = list[p.out_base + k];
    let r = p.radius;
    let lw = T + 2u + 2u * r;
    let x0 = i32(wg.x * T) - 1 - i32(r);
    let y0 = i32(wg.y * T) - 1 - i32(r);
    let wmax = i32(p.width) - 1;
    let hmax = i32(p.height) - 1;
    for (var i = li; i < lw * lw; i += 256u) {
        let x = u32(clamp(x0 + i32(i % lw), 0, wmax));
        let y = u32(clamp(y0 + i32(i / lw), 0, hmax));
        lum[i] = luma(base, x, y);
    }
    workgroupBarrier();
    // x pass: 18 output columns for every luminance row.
    for (var i = li; i < (T + 2u) * lw; i += 256u) {
        let col = i % (T + 2u);
        let row = i / (T + 2u);
        var s = 0.0;
        for (var t = 0u; t <= 2u * r; t++) {
            s += taps[t] * lum[row * lw + col + t];
        }
        hx[row * (T + 2u) + col] = s;
    }
    workgroupBarrier();
    for (var i = li; i < (T + 2u) * (T + 2u); i += 256u) {
        let col = i % (T + 2u);
        let row = i / (T + 2u);
        var s = 0.0;
        for (var t = 0u; t <= 2u * r; t++) {
            s += taps[t] * hx[(row + t) * (T + 2u) + col];
        }
        blur[i] = s;
    }
    workgroupBarrier();
    // This invocation's pixel.
    let lx = li % T;
    let ly = li / T;
    let x = wg.x * T + lx;
    let y = wg.y * T + ly;
    var v = 0.0;
    var inside = 0.0;
    if (x >= 1u && y >= 1u && x + 1u < p.width && y + 1u < p.height) {
        inside = 1.0;
        let c = (ly + 1u) * (T + 2u) + lx + 1u;
        let up = c - (T + 2u);
        let dn = c + (T + 2u);
        if (p.metric == 0u) {
            v = blur[c - 1u] + blur[c + 1u] + blur[up] + blur[dn] - 4.0 * blur[c];
        } else {
            let gx = (blur[up + 1u] + 2.0 * blur[c + 1u] + blur[dn + 1u]) - (blur[up - 1u] + 2.0 * blur[c - 1u] + blur[dn - 1u]);
            let gy = (blur[dn - 1u] + 2.0 * blur[dn] + blur[dn + 1u]) - (blur[up - 1u] + 2.0 * blur[up] + blur[up + 1u]);
            v = gx * gx + gy * gy;
        }
    }
    var own = 0.0;
    if (x < p.width && y < p.height) {
        own = lum[(ly + 1u + r) * lw + lx + 1u + r];
    }
    workgroupBarrier();
    lum[li] = v * inside;
    lum[256u + li] = v * v * inside;
    lum[512u + li] = own;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            lum[li] += lum[li + s];
            lum[256u + li] += lum[256u + li + s];
            lum[512u + li] += lum[512u + li + s];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let o = ((p.out_base + k) * p.tiles_x * p.tiles_y + wg.y * p.tiles_x + wg.x) * 3u;
        partial[o] = lum[0];
        partial[o + 1u] = lum[256];
        partial[o + 2u] = lum[512];
    }
}

// tiles32: 32×32 outputs per workgroup (fewer apron loads and barriers per
// pixel), radius ≤ 7: luminance (34 + 2r)² ≤ 48², reused for the blurred
// 34×34 block once the x pass is done; `hx2` (34 × (34 + 2r)) is reused for
// the sums.
const T2: u32 = 32u;
var<workgroup> lum2: array<f32, 2304>;
var<workgroup> hx2: array<f32, 1632>;

@compute @workgroup_size(256, 1, 1)
fn tiles32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = wg.z;
    let base = list[p.out_base + k];
    let r = p.radius;
    let lw = T2 + 2u + 2u * r;
    let bw = T2 + 2u;
    let x0 = i32(wg.x * T2) - 1 - i32(r);
    let y0 = i32(wg.y * T2) - 1 - i32(r);
    let wmax = i32(p.width) - 1;
    let hmax = i32(p.height) - 1;
    for (var i = li; i < lw * lw; i += 256u) {
        let x = u32(clamp(x0 + i32(i % lw), 0, wmax));
        let y = u32(clamp(y0 + i32(i / lw), 0, hmax));
        lum2[i] = luma(base, x, y);
    }
    workgroupBarrier();
    for (var i = li; i < bw * lw; i += 256u) {
        let col = i % bw;
        let row = i / bw;
        var s = 0.0;
        for (var t = 0u; t <= 2u * r; t++) {
            s += taps[t] * lum2[row * lw + col + t];
        }
        hx2[row * bw + col] = s;
    }
    // This invocation's pixels: column lx, rows ly + 8j.
    let lx = li % T2;
    let ly = li / T2;
    let x = wg.x * T2 + lx;
    var own = 0.0;
    for (var j = 0u; j < 4u; j++) {
        let y = wg.y * T2 + ly + 8u * j;
        if (x < p.width && y < p.height) {
            own += lum2[(ly + 8u * j + 1u + r) * lw + lx + 1u + r];
        }
    }
    workgroupBarrier();
    for (var i = li; i < bw * bw; i += 256u) {
        let col = i % bw;
        let row = i / bw;
        var s = 0.0;
        for (var t = 0u; t <= 2u * r; t++) {
            s += taps[t] * hx2[(row + t) * bw + col];
        }
        lum2[i] = s;
    }
    workgroupBarrier();
    var sv = 0.0;
    var sv2 = 0.0;
    for (var j = 0u; j < 4u; j++) {
        let y = wg.y * T2 + ly + 8u * j;
        if (x >= 1u && y >= 1u && x + 1u < p.width && y + 1u < p.height) {
            let c = (ly + 8u * j + 1u) * bw + lx + 1u;
            let up = c - bw;
            let dn = c + bw;
            var v = 0.0;
            if (p.metric == 0u) {
                v = lum2[c - 1u] + lum2[c + 1u] + lum2[up] + lum2[dn] - 4.0 * lum2[c];
            } else {
                let gx = (lum2[up + 1u] + 2.0 * lum2[c + 1u] + lum2[dn + 1u]) - (lum2[up - 1u] + 2.0 * lum2[c - 1u] + lum2[dn - 1u]);
                let gy = (lum2[dn - 1u] + 2.0 * lum2[dn] + lum2[dn + 1u]) - (lum2[up - 1u] + 2.0 * lum2[up] + lum2[up + 1u]);
                v = gx * gx + gy * gy;
            }
            sv += v;
            sv2 += v * v;
        }
    }
    hx2[li] = sv;
    hx2[256u + li] = sv2;
    hx2[512u + li] = own;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (li < s) {
            hx2[li] += hx2[li + s];
            hx2[256u + li] += hx2[256u + li + s];
            hx2[512u + li] += hx2[512u + li + s];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let o = ((p.out_base + k) * p.tiles_x * p.tiles_y + wg.y * p.tiles_x + wg.x) * 3u;
        partial[o] = hx2[0];
        partial[o + 1u] = hx2[256];
        partial[o + 2u] = hx2[512];
    }
}

var<workgroup> acc: array<vec3<f32>, 256>;

// Sums the tiles of frame wg.x of the dispatch (frame out_base + wg.x of
// the batch) into partial[totals + 3 * (out_base + wg.x) ..], past every
// tile block.
@compute @workgroup_size(256, 1, 1)
fn reduce(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = p.out_base + wg.x;
    let n = p.tiles_x * p.tiles_y;
    var s = vec3<f32>(0.0);
    for (var t = li; t < n; t += 256u) {
        let o = (k * n + t) * 3u;
        s += vec3<f32>(partial[o], partial[o + 1u], partial[o + 2u]);
    }
    acc[li] = s;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (li < st) { acc[li] += acc[li + st]; }
        workgroupBarrier();
    }
    if (li == 0u) {
        let o = p.totals + k * 3u;
        partial[o] = acc[0].x;
        partial[o + 1u] = acc[0].y;
        partial[o + 2u] = acc[0].z;
        _ = list[0];
        _ = taps[0];
        _ = frames[0];
    }
}
