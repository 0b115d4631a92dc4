// unsharp.wgsl — unsharp-mask combine (C2/C4): out = v + amount * (v - blur)
// where |v - blur| > threshold, else v; blur comes from conv_separable.wgsl.
// Bindings (group 0): 0 blur: array<f32> (read); 1 data: array<f32> (read_write, in place);
//   2 uniforms P. Workgroup: 256×1×1 over samples (gid.y extends past 65535 groups).

struct P { n: u32, _pad: u32, amount: f32, threshold: f32 };

@group(0) @binding(0) var<storage, read> blur: array<f32>;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;
@group(0) @binding(2) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn unsharp(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    let v = data[i];
    let d = v - blur[i];
    if (abs(d) > p.threshold) {
        data[i] = v + p.amount * d;
    }
}
