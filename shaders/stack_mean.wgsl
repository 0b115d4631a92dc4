// stack_mean.wgsl — weighted mean stacking.
// Bindings (group 0): 0 aligned: array<f32> (read) one aligned frame (n samples);
//   1 acc: array<f32> (read_write) running sum (n samples); 2 uniforms P.
// Workgroup: 256×1×1 over samples.
// accumulate: acc[i] += weight * aligned[i] (the scale field is unused here:
// the final division by the total weight is scale.wgsl).

struct P { n: u32, _a: u32, weight: f32, scale: f32 };

@group(0) @binding(0) var<storage, read> aligned: array<f32>;
@group(0) @binding(1) var<storage, read_write> acc: array<f32>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    acc[i] += p.weight * aligned[i];
}
