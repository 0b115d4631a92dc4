//! Wider vectors where the CPU has them, in a portable build.
//!
//! The workspace builds for baseline x86-64 (SSE2: four `f32` lanes), so
//! that every plugin loads on every 64-bit PC. The hot loops (resampling,
//! filters, spectra) vectorise; compiled for AVX2 they run on eight lanes.
//! [`wide`] runs a closure through a copy compiled with AVX2 enabled when
//! the CPU reports it (one cached check per call), else as it is. Without
//! FMA contraction (Rust never fuses `a * b + c` on its own) the results
//! are the same bit for bit on both paths; the tests in this module and
//! the stages' own tests check outputs, and `cmp` of whole runs did.

/// Runs `f`, compiled with AVX2 when the CPU has it. Put it around a hot
/// loop whose callees are `#[inline]` (or small): they are inlined into the
/// AVX2 copy and vectorised with it; a call to an out-of-line function runs
/// that function's own (baseline) code.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU was just found to support AVX2.
            return unsafe { avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// Eight-lane sums of `v` and of its squares over its whole chunks of
/// eight (lane `l` adds `v[8k + l]` for k = 0, 1, … in order; the rest is
/// left to the caller). The portable loop vectorises only in part; with
/// AVX2 it is two vector additions and a multiply per chunk, the same
/// operations in the same order (bit for bit).
pub fn lane_sums(v: &[f32]) -> ([f32; 8], [f32; 8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
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
    fn both_paths_give_the_same_bits() {
        let a: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.11).cos()).collect();
        let sum = || {
            let mut lanes = [0.0f32; 8];
            for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
                for l in 0..8 {
                    lanes[l] += ca[l] * cb[l] + ca[l] / (1.0 + cb[l] * cb[l]);
                }
            }
            lanes
        };
        assert_eq!(
            wide(
                #[inline(always)]
                || sum()
            ),
            sum()
        );
    }

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
