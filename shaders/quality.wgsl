// quality.wgsl — frame sharpness on the device, as the `quality` plugin's CPU
// path: luminance (mean of the channels), gaussian prefilter (separable,
// edges replicated, taps in kernel order), then per interior pixel the
// 4-neighbour Laplacian or the squared Sobel gradient; per tile the sum
// and sum of squares of that value and the sum of the unfiltered luminance.
// Bindings (group 0): 0 frames: array<f32> (read), decoded frames
//   (width×height×channels, interleaved); 1 list: array<u32> (read), word
//   offset in `frames` of each frame of the batch (this dispatch's frames
//   are batch frames out_base ..); 2 partial: array<f32>
//   (read_write), 3 sums per (frame, tile), and from word `totals` 3 per
//   frame after `reduce`;
//   3 taps: array<f32> (read), the gaussian (2·radius+1 taps); 4 uniforms P.
// `cells` 1 and 2: a frame is scored on its 2×2 cells (`width`×`height`
//   are the cells, `stride` the frame's width in pixels), summed
//   ((a + b) + c + d) / 4 as the CPU path's `cells_of` sums them: 1, the
//   frames are demosaiced RGB of a raw colour mosaic and a cell's pixels
//   give their own colours (`pattern`: the colour of each pixel of a cell,
//   bits 2·(x + 2y)); 2, their luminance.
// Workgroup: tiles: 256×1×1 over a tile of `tile` (16, or 32 for radius
//   ≤ 7) pixels a side, z = frame of the dispatch; reduce: 256×1×1, one
//   workgroup per frame.

struct P {
    width: u32, height: u32, channels: u32, radius: u32,
    metric: u32, tiles_x: u32, tiles_y: u32, count: u32,
    out_base: u32, totals: u32, tile: u32, cells: u32,
    pattern: u32, stride: u32, _a: u32, _b: u32,
};

@group(0) @binding(0) var<storage, read> frames: array<f32>;
@group(0) @binding(1) var<storage, read> list: array<u32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;
@group(0) @binding(3) var<storage, read> taps: array<f32>;
@group(0) @binding(4) var<uniform> p: P;

// Tiles of T = p.tile (16 or 32) pixels a side, T²/256 pixels per
// invocation. Shared memory (15.7 KB): the luminance block (T + 2 + 2r)²
// (≤ 48²: r ≤ 15 for T = 16, r ≤ 7 for T = 32), reused for the blurred
// (T + 2)² block once the x pass is done; the x pass (T + 2) × (T + 2 + 2r)
// (≤ 1632), reused for the sums.
var<workgroup> lum: array<f32, 2304>;
var<workgroup> hx: array<f32, 1632>;

// The luminance of pixel (x, y) of a frame `width` pixels wide.
fn pixel_luma(base: u32, x: u32, y: u32, width: u32) -> f32 {
    let o = base + (y * width + x) * p.channels;
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

// The value scored at (x, y): a pixel's luminance, or a cell's.
fn luma(base: u32, x: u32, y: u32) -> f32 {
    if (p.cells == 1u) {
        let o = base + (2u * y * p.stride + 2u * x) * 3u;
        let d = p.stride * 3u;
        let a = frames[o + (p.pattern & 3u)];
        let b = frames[o + 3u + ((p.pattern >> 2u) & 3u)];
        let c = frames[o + d + ((p.pattern >> 4u) & 3u)];
        let e = frames[o + d + 3u + ((p.pattern >> 6u) & 3u)];
        return (a + b + c + e) * 0.25;
    }
    if (p.cells == 2u) {
        let a = pixel_luma(base, 2u * x, 2u * y, p.stride);
        let b = pixel_luma(base, 2u * x + 1u, 2u * y, p.stride);
        let c = pixel_luma(base, 2u * x, 2u * y + 1u, p.stride);
        let e = pixel_luma(base, 2u * x + 1u, 2u * y + 1u, p.stride);
        return (a + b + c + e) * 0.25;
    }
    return pixel_luma(base, x, y, p.width);
}

@compute @workgroup_size(256, 1, 1)
fn tiles(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let k = wg.z;
    let base = list[p.out_base + k];
    let t = p.tile;
    let r = p.radius;
    let lw = t + 2u + 2u * r;
    let bw = t + 2u;
    let x0 = i32(wg.x * t) - 1 - i32(r);
    let y0 = i32(wg.y * t) - 1 - i32(r);
    let wmax = i32(p.width) - 1;
    let hmax = i32(p.height) - 1;
    for (var i = li; i < lw * lw; i += 256u) {
        let x = u32(clamp(x0 + i32(i % lw), 0, wmax));
        let y = u32(clamp(y0 + i32(i / lw), 0, hmax));
        lum[i] = luma(base, x, y);
    }
    workgroupBarrier();
    // x pass: T + 2 output columns for every luminance row.
    for (var i = li; i < bw * lw; i += 256u) {
        let col = i % bw;
        let row = i / bw;
        var s = 0.0;
        for (var q = 0u; q <= 2u * r; q++) {
            s += taps[q] * lum[row * lw + col + q];
        }
        hx[row * bw + col] = s;
    }
    // This invocation's pixels (i = li + 256 j of the tile) and the sum of
    // their unfiltered luminance, read before `lum` is overwritten.
    let per = t * t / 256u;
    var own = 0.0;
    for (var j = 0u; j < per; j++) {
        let i = li + 256u * j;
        let x = wg.x * t + i % t;
        let y = wg.y * t + i / t;
        if (x < p.width && y < p.height) {
            own += lum[(i / t + 1u + r) * lw + i % t + 1u + r];
        }
    }
    workgroupBarrier();
    for (var i = li; i < bw * bw; i += 256u) {
        let col = i % bw;
        let row = i / bw;
        var s = 0.0;
        for (var q = 0u; q <= 2u * r; q++) {
            s += taps[q] * hx[(row + q) * bw + col];
        }
        lum[i] = s;
    }
    workgroupBarrier();
    var sv = 0.0;
    var sv2 = 0.0;
    for (var j = 0u; j < per; j++) {
        let i = li + 256u * j;
        let x = wg.x * t + i % t;
        let y = wg.y * t + i / t;
        if (x >= 1u && y >= 1u && x + 1u < p.width && y + 1u < p.height) {
            let c = (i / t + 1u) * bw + i % t + 1u;
            let up = c - bw;
            let dn = c + bw;
            var v = 0.0;
            if (p.metric == 0u) {
                v = lum[c - 1u] + lum[c + 1u] + lum[up] + lum[dn] - 4.0 * lum[c];
            } else {
                let gx = (lum[up + 1u] + 2.0 * lum[c + 1u] + lum[dn + 1u]) - (lum[up - 1u] + 2.0 * lum[c - 1u] + lum[dn - 1u]);
                let gy = (lum[dn - 1u] + 2.0 * lum[dn] + lum[dn + 1u]) - (lum[up - 1u] + 2.0 * lum[up] + lum[up + 1u]);
                v = gx * gx + gy * gy;
            }
            sv += v;
            sv2 += v * v;
        }
    }
    hx[li] = sv;
    hx[256u + li] = sv2;
    hx[512u + li] = own;
    workgroupBarrier();
    for (var st = 128u; st > 0u; st >>= 1u) {
        if (li < st) {
            hx[li] += hx[li + st];
            hx[256u + li] += hx[256u + li + st];
            hx[512u + li] += hx[512u + li + st];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        let o = ((p.out_base + k) * p.tiles_x * p.tiles_y + wg.y * p.tiles_x + wg.x) * 3u;
        partial[o] = hx[0];
        partial[o + 1u] = hx[256];
        partial[o + 2u] = hx[512];
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
