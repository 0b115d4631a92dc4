// select_hist.wgsl — one pass of an exact radix selection (k-th smallest) over
// a strided set of values, 8 bits at a time from the top; the host reads the
// 256 counts, picks the bin holding the k-th value and narrows the prefix.
// Used for the wavelet noise estimate (median |detail|) and stretch percentiles.
// Bindings (group 0): 0 a: array<f32> (read); 1 b: array<f32> (read);
//   2 hist: array<atomic<u32>, 256> (read_write); 3 uniforms P.
// Workgroup: 256×1×1 over values i (gid.y extends past 65535 groups).
// mode 0: value = a[j] (signed, order-preserving key); mode 1: value = |a[j] - b[j]|.
// j = i * stride + offset. Values whose key matches `prefix` under `mask` are counted
// in bin (key >> shift) & 255. NaNs are skipped.

struct P { count: u32, stride: u32, offset: u32, mode: u32, shift: u32, prefix: u32, mask: u32, _pad: u32 };

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> hist: array<atomic<u32>, 256>;
@group(0) @binding(3) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn histogram(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.count) { return; }
    let j = i * p.stride + p.offset;
    var v = a[j];
    if (p.mode == 1u) {
        v = abs(v - b[j]);
    }
    if (v != v) { return; }
    let k = key(v);
    if ((k & p.mask) == p.prefix) {
        atomicAdd(&hist[(k >> p.shift) & 255u], 1u);
    }
}
