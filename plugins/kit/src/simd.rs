//! Wider vectors where the CPU has them, in a portable build: [`wide`]
//! (from the plugin API, which the host shares; its notes say why and
//! how), and kernels the compiler does not vectorise well on its own,
//! written with AVX2 intrinsics in the portable loop's order of operations
//! (bit for bit the same results; tested against it).

pub use jupiter_plugin_api::simd::wide;

/// Eight-lane sums of `v` and of its squares over its whole chunks of
/// eight (lane `l` adds `v[8k + l]` for k = 0, 1, … in order; the rest is
/// left to the caller). The portable loop vectorises only in part; with
/// AVX2 it is two vector additions and a multiply per chunk, the same
/// operations in the same order (bit for bit).
pub fn lane_sums(v: &[f32]) -> ([f32; 8], [f32; 8]) {
    #[cfg(target_arch = "x86_64")]
    if jupiter_plugin_api::simd::has_avx2() {
        // SAFETY: the CPU supports AVX2.
        return unsafe { lane_sums_avx2(v) };
    }
    let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
    for c in v.chunks_exact(8) {
        for i in 0..8 {
            a[i] += c[i];
            b[i] += c[i] * c[i];
        }
    }
    (a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn lane_sums_avx2(v: &[f32]) -> ([f32; 8], [f32; 8]) {
    use std::arch::x86_64::*;
    let (mut a, mut b) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    for c in v.chunks_exact(8) {
        // SAFETY: eight floats.
        let c = unsafe { _mm256_loadu_ps(c.as_ptr()) };
        a = _mm256_add_ps(a, c);
        b = _mm256_add_ps(b, _mm256_mul_ps(c, c));
    }
    let (mut sa, mut sb) = ([0.0f32; 8], [0.0f32; 8]);
    // SAFETY: eight floats each.
    unsafe {
        _mm256_storeu_ps(sa.as_mut_ptr(), a);
        _mm256_storeu_ps(sb.as_mut_ptr(), b);
    }
    (sa, sb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_sums_are_the_portable_loops() {
        let v: Vec<f32> = (0..1003).map(|i| (i as f32 * 0.71).sin() * 3.0).collect();
        let (mut a, mut b) = ([0.0f32; 8], [0.0f32; 8]);
        for c in v.chunks_exact(8) {
            for i in 0..8 {
                a[i] += c[i];
                b[i] += c[i] * c[i];
            }
        }
        assert_eq!(lane_sums(&v), (a, b));
    }
}
