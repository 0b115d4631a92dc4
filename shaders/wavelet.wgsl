// wavelet.wgsl — one à-trous detail layer added into the output:
// out[i] += gain * soft(cur[i] - next[i], t[channel]), soft-threshold per channel.
// The smoothing itself is conv_separable.wgsl with the B3 taps and dilation 2^j.
// Bindings (group 0): 0 cur: array<f32> (read); 1 next: array<f32> (read);
//   2 out: array<f32> (read_write); 3 uniforms P. Interleaved channels.
// Workgroup: 256×1×1 over samples (gid.y extends past 65535 groups).

struct P { n: u32, channels: u32, gain: f32, _a: f32, t: vec4<f32> };

@group(0) @binding(0) var<storage, read> cur: array<f32>;
@group(0) @binding(1) var<storage, read> next: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: P;

@compute @workgroup_size(256, 1, 1)
fn detail(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = flat_index(gid, 256u);
    if (i >= p.n) { return; }
    let t = p.t[i % p.channels];
    var d = cur[i] - next[i];
    if (t > 0.0) {
        if (d > t) { d = d - t; } else if (d < -t) { d = d + t; } else { d = 0.0; }
    }
    out[i] += p.gain * d;
}
