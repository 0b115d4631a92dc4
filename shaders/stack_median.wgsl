// stack_median.wgsl — exact per-pixel median over n aligned frames.
// Bindings (group 0): 0 samples: array<f32> (read), frame-major tile:
//   samples[f * npix + i] is sample i of frame f; 1 out: array<f32> (read_write),
//   out[out_offset + i]; 2 uniforms P.
// Workgroup: 64×1×1 over samples i (gid.y extends past 65535 groups).
// median_sort: n ≤ 64, insertion sort in a private array.
// median_select: any n, exact radix selection on order-preserving u32 keys:
//   8 counting passes (4-bit digits) over the pixel's n samples find the k-th smallest;
//   for even n the (k+1)-th follows from one count and one min pass.
// Even n: mean of the two middle values (as the CPU path).

struct P { npix: u32, n: u32, out_offset: u32, _pad: u32 };

@group(0) @binding(0) var<storage, read> samples: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(64, 1, 1)
fn median_sort(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 64u);
    if (i >= p.npix) { return; }
    var v: array<f32, 64>;
    let n = min(p.n, 64u);
    for (var f = 0u; f < n; f++) {
        let x = samples[f * p.npix + i];
        var j = f;
        while (j > 0u && v[j - 1u] > x) {
            v[j] = v[j - 1u];
            j--;
        }
        v[j] = x;
    }
    var m: f32;
    if (n % 2u == 1u) {
        m = v[n / 2u];
    } else {
        m = 0.5 * (v[n / 2u - 1u] + v[n / 2u]);
    }
    out[p.out_offset + i] = m;
}

// The k-th smallest key (0-based) among the pixel's samples: radix selection
// with 4-bit digits from the top, 8 counting passes over the n samples.
fn select_key(i: u32, k_in: u32) -> u32 {
    var k = k_in;
    var prefix = 0u;
    var mask = 0u;
    for (var round = 0u; round < 8u; round++) {
        let shift = 28u - 4u * round;
        var counts: array<u32, 16>;
        for (var b = 0u; b < 16u; b++) {
            counts[b] = 0u;
        }
        for (var f = 0u; f < p.n; f++) {
            let kk = key(samples[f * p.npix + i]);
            if ((kk & mask) == prefix) {
                counts[(kk >> shift) & 15u] += 1u;
            }
        }
        var digit = 15u;
        for (var b = 0u; b < 16u; b++) {
            if (k < counts[b]) {
                digit = b;
                break;
            }
            k -= counts[b];
        }
        prefix |= digit << shift;
        mask |= 15u << shift;
    }
    return prefix;
}

@compute @workgroup_size(64, 1, 1)
fn median_select(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 64u);
    if (i >= p.npix) { return; }
    let k = (p.n - 1u) / 2u;
    let a = select_key(i, k);
    var m = unkey(a);
    if (p.n % 2u == 0u) {
        // The next order statistic: a itself if it repeats, else the smallest key above it.
        var le = 0u;
        var above = 0xffffffffu;
        for (var f = 0u; f < p.n; f++) {
            let kk = key(samples[f * p.npix + i]);
            if (kk <= a) {
                le++;
            } else {
                above = min(above, kk);
            }
        }
        var b = a;
        if (le < k + 2u) {
            b = above;
        }
        m = 0.5 * (m + unkey(b));
    }
    out[p.out_offset + i] = m;
}
