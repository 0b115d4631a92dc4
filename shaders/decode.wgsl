// decode.wgsl — SER samples to f32 on the device, as the host's CPU decoder
// (`host/src/io/ser.rs` + `debayer.rs`) does: value = min(sample * inv_scale, 1),
// BGR swapped to RGB, Bayer mosaics by the method `p.method` names:
// 0 the bilinear rule of `debayer::pixel` (nearest samples of each colour in
// the 3×3 neighbourhood, edges by the neighbours that exist), 1 the
// Malvar–He–Cutler kernels of `debayer::mhc_px` (5×5, samples beyond the
// frame mirrored as `debayer::mirror` does, clamped to [0, 1]).
// The whole frame is on the device, so no row margin is involved here.
// A calibrated capture (p.calibrated = 1) is calibrated here, before the
// demosaic, as `calibrate::Applied::apply` does on the CPU: every sample
// read is (sample − offset) · gain, and a sample of the defect mask is the
// median of its calibrated same-colour neighbours that are not defects
// (`calibrate::repair`). The tables: `Applied::device_tables`.
// Bindings (group 0): 0 raw: array<u32> (read), the stored bytes of `count`
//   consecutive frames (`frame_bytes` each, packed little-endian into words);
//   1 out: array<f32> (read_write), frame k of the chunk decoded from word
//   out_base + k * width * height * channels, channels interleaved;
//   2 cal: array<f32> (read), offset, gain and defect mask, `samples` values
//   each (one word, unused, when p.calibrated = 0); 3 uniforms P.
// Workgroup: 16×16×1 over (x, y); z = frame of the chunk.

struct P {
    width: u32, height: u32, planes: u32, channels: u32,
    bytes: u32, little: u32, kind: u32, pattern: u32,
    count: u32, frame_bytes: u32, out_base: u32, inv_scale: f32,
    method: u32, calibrated: u32, samples: u32, pad0: u32,
};

@group(0) @binding(0) var<storage, read> raw: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> cal: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

fn byte_at(o: u32) -> u32 {
    return (raw[o >> 2u] >> ((o & 3u) * 8u)) & 255u;
}

// Sample `i` (in stored order) of frame `k` of the chunk, scaled to [0, 1].
fn sample(k: u32, i: u32) -> f32 {
    let base = k * p.frame_bytes;
    var v: u32;
    if (p.bytes == 1u) {
        v = byte_at(base + i);
    } else {
        let a = byte_at(base + 2u * i);
        let b = byte_at(base + 2u * i + 1u);
        if (p.little == 1u) { v = a | (b << 8u); } else { v = b | (a << 8u); }
    }
    return min(f32(v) * p.inv_scale, 1.0);
}

// Colour (0 R, 1 G, 2 B) of the filter over (x, y): 2 bits per cell of the
// 2×2 layout, cell (y % 2) * 2 + x % 2.
fn color_at(x: u32, y: u32) -> u32 {
    return (p.pattern >> (((y % 2u) * 2u + (x % 2u)) * 2u)) & 3u;
}

@compute @workgroup_size(16, 16, 1)
fn decode(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    let k = gid.z;
    if (x >= p.width || y >= p.height || k >= p.count) {
        return;
    }
    let o = p.out_base + ((k * p.height + y) * p.width + x) * p.channels;
    if (p.kind < 2u) {
        for (var c = 0u; c < p.channels; c++) {
            out[o + c] = value(k, x, y, c);
        }
        return;
    }
    if (p.method == 1u) {
        mhc(k, x, y, o);
        return;
    }
    // Bayer: the general rule of debayer::pixel, in its summing order.
    let own = color_at(x, y);
    var sum = vec3<f32>(0.0);
    var cnt = vec3<f32>(0.0);
    for (var dy = -1; dy <= 1; dy++) {
        let yy = i32(y) + dy;
        if (yy < 0 || yy >= i32(p.height)) { continue; }
        for (var dx = -1; dx <= 1; dx++) {
            let xx = i32(x) + dx;
            if (xx < 0 || xx >= i32(p.width)) { continue; }
            let c = color_at(u32(xx), u32(yy));
            if (dx == 0 && dy == 0) {
                sum[c] += value(k, u32(xx), u32(yy), 0u);
                cnt[c] += 1.0;
            } else if (c != own) {
                if (c == 1u && dx != 0 && dy != 0) { continue; }
                sum[c] += value(k, u32(xx), u32(yy), 0u);
                cnt[c] += 1.0;
            }
        }
    }
    for (var c = 0u; c < 3u; c++) {
        var v = 0.0;
        if (c == own) {
            v = value(k, x, y, 0u);
        } else if (cnt[c] > 0.0) {
            v = sum[c] / cnt[c];
        }
        out[o + c] = v;
    }
}

// `i` reflected into 0 .. n about the edge samples (-1 → 1, n → n - 2),
// which keeps the Bayer colour; clamped for frames under 3 a side.
fn mirror(i: i32, n: u32) -> u32 {
    let last = i32(n) - 1;
    var j = abs(i);
    if (j > last) { j = 2 * last - j; }
    return u32(clamp(j, 0, max(last, 0)));
}

// Mosaic sample at (x + dx, y + dy) of frame `k`, mirrored at the edges.
fn at(k: u32, x: u32, y: u32, dx: i32, dy: i32) -> f32 {
    let xx = mirror(i32(x) + dx, p.width);
    let yy = mirror(i32(y) + dy, p.height);
    return value(k, xx, yy, 0u);
}

// Malvar–He–Cutler at (x, y): the kernels (coefficients /8) and sums of
// `debayer::mhc_px`, in its order.
fn mhc(k: u32, x: u32, y: u32, o: u32) {
    let own = color_at(x, y);
    let right = color_at(x + 1u, y);
    let ctr = at(k, x, y, 0, 0);
    let h1 = at(k, x, y, -1, 0) + at(k, x, y, 1, 0);
    let v1 = at(k, x, y, 0, -1) + at(k, x, y, 0, 1);
    let h2 = at(k, x, y, -2, 0) + at(k, x, y, 2, 0);
    let v2 = at(k, x, y, 0, -2) + at(k, x, y, 0, 2);
    let diag = at(k, x, y, -1, -1) + at(k, x, y, 1, -1) + at(k, x, y, -1, 1) + at(k, x, y, 1, 1);
    var px = vec3<f32>(0.0);
    px[own] = ctr;
    if (own == 1u) {
        px[right] = (5.0 * ctr + 4.0 * h1 - diag - h2 + 0.5 * v2) / 8.0;
        px[2u - right] = (5.0 * ctr + 4.0 * v1 - diag - v2 + 0.5 * h2) / 8.0;
    } else {
        px[1] = (4.0 * ctr + 2.0 * (h1 + v1) - (h2 + v2)) / 8.0;
        px[2u - own] = (6.0 * ctr + 2.0 * diag - 1.5 * (h2 + v2)) / 8.0;
    }
    for (var c = 0u; c < 3u; c++) {
        out[o + c] = clamp(px[c], 0.0, 1.0);
    }
}

// Channel `c` (RGB order) of pixel (x, y) of frame `k` as stored.
fn stored(k: u32, x: u32, y: u32, c: u32) -> f32 {
    var src = c;
    if (p.kind == 1u) { src = 2u - c; }
    return sample(k, (y * p.width + x) * p.planes + src);
}

// The sample with offset and gain applied (index `i` in the tables).
fn corrected(k: u32, x: u32, y: u32, c: u32) -> f32 {
    let i = (y * p.width + x) * p.planes + c;
    return (stored(k, x, y, c) - cal[i]) * cal[p.samples + i];
}

// Whether a sample is a defect (repaired).
fn defect(x: u32, y: u32, c: u32) -> bool {
    return cal[2u * p.samples + (y * p.width + x) * p.planes + c] != 0.0;
}

// What the demosaic reads: the stored sample, calibrated when asked.
fn value(k: u32, x: u32, y: u32, c: u32) -> f32 {
    if (p.calibrated == 0u) { return stored(k, x, y, c); }
    if (!defect(x, y, c)) { return corrected(k, x, y, c); }
    return repaired(k, x, y, c);
}

// A defect: the median of its same-colour neighbours that are not defects
// (the 8 around it, or in a mosaic those of the 5×5 window), as
// `Layout::neighbours` and `combine::median`; itself when there are none.
fn repaired(k: u32, x: u32, y: u32, c: u32) -> f32 {
    var near: array<f32, 24>;
    var n = 0u;
    var r = 1;
    if (p.kind == 2u) { r = 2; }
    for (var dy = -r; dy <= r; dy++) {
        let ny = i32(y) + dy;
        if (ny < 0 || ny >= i32(p.height)) { continue; }
        for (var dx = -r; dx <= r; dx++) {
            let nx = i32(x) + dx;
            if ((dx == 0 && dy == 0) || nx < 0 || nx >= i32(p.width)) { continue; }
            if (p.kind == 2u && color_at(u32(nx), u32(ny)) != color_at(x, y)) { continue; }
            if (defect(u32(nx), u32(ny), c)) { continue; }
            // Insertion into the sorted list.
            let v = corrected(k, u32(nx), u32(ny), c);
            var j = n;
            while (j > 0u && near[j - 1u] > v) {
                near[j] = near[j - 1u];
                j--;
            }
            near[j] = v;
            n++;
        }
    }
    if (n == 0u) { return corrected(k, x, y, c); }
    if (n % 2u == 1u) { return near[n / 2u]; }
    return 0.5 * (near[n / 2u - 1u] + near[n / 2u]);
}
