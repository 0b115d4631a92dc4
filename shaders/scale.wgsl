// scale.wgsl — in-place scaling of a buffer (finishes the mean stack).
// Bindings (group 0): 0 data: array<f32> (read_write); 1 uniforms P.
// Workgroup: 256×1×1 over samples (gid.y extends past 65535 groups).

struct P { n: u32, _a: u32, scale: f32, _b: f32 };

@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@group(0) @binding(1) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn scale(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    data[i] *= p.scale;
}
