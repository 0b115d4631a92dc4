// deconvolve.wgsl — one Richardson–Lucy step's elementwise part on the
// device (the blurs are conv_separable.wgsl's, the update combine.wgsl's
// `multiply`), the arithmetic of the `deconvolve` CPU path.
// Bindings (group 0): 0 data: array<f32> (read), the lifted image; 1 est:
//   array<f32> (read), the re-blurred estimate; 2 inv_var: array<f32>
//   (read), each sample's inverse noise variance; 3 ratio: array<f32>
//   (read_write); 4 parts: array<f32> (read_write), one partial sum per
//   workgroup; 5 uniforms P.
// Workgroup: 256×1×1 over samples (gid.y extends past 65535 groups).
// ratio_residual: ratio[i] = data[i] / max(est[i], floor) (floor = a), and
//   parts[workgroup] = Σ (data − est)² · inv_var over its 256 samples (tree
//   sum in shared memory; the host adds the parts in f64).

struct P { n: u32, _pad: u32, a: f32, b: f32 };

@group(0) @binding(0) var<storage, read> data: array<f32>;
@group(0) @binding(1) var<storage, read> est: array<f32>;
@group(0) @binding(2) var<storage, read> inv_var: array<f32>;
@group(0) @binding(3) var<storage, read_write> ratio: array<f32>;
@group(0) @binding(4) var<storage, read_write> parts: array<f32>;
@group(0) @binding(5) var<uniform> p: P;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256, 1, 1)
fn ratio_residual(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
) {
    let i = flat_index(gid, 256u);
    var s = 0.0;
    if (i < p.n) {
        let d = data[i];
        let e = est[i];
        ratio[i] = d / max(e, p.a);
        s = (d - e) * (d - e) * inv_var[i];
    }
    sums[li] = s;
    workgroupBarrier();
    for (var k = 128u; k > 0u; k = k >> 1u) {
        if (li < k) {
            sums[li] += sums[li + k];
        }
        workgroupBarrier();
    }
    if (li == 0u) {
        parts[wid.x + wid.y * 65535u] = sums[0];
    }
}
