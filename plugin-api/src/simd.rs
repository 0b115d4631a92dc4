//! Wider vectors where the CPU has them, in a portable build: for the
//! host's decoders and, through `jupiter-kit`, the plugins' hot loops.
//!
//! The workspace builds for baseline x86-64 (SSE2: four `f32` lanes), so
//! that every plugin loads on every 64-bit PC. The hot loops (resampling,
//! filters, spectra, demosaic) vectorise; compiled for AVX2 they run on
//! eight lanes. [`wide`] runs a closure through a copy compiled with AVX2
//! enabled when the CPU reports it (one cached check per call), else as it
//! is. Without FMA contraction (Rust never fuses `a * b + c` on its own)
//! the results are the same bit for bit on both paths; the tests here and
//! the callers' own tests check it, and `cmp` of whole runs did.

/// Runs `f`, compiled with AVX2 when the CPU has it. Mark the closure
/// `#[inline(always)]` (else it stays a baseline function the AVX2 copy
/// merely calls) and put it around a hot loop whose callees are
/// `#[inline(always)]` or small: they are inlined into the AVX2 copy and
/// vectorised with it; an out-of-line call runs that function's own
/// baseline code.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            // SAFETY: the CPU was found to support AVX2.
            return unsafe { run_avx2(f) };
        }
    }
    f()
}

/// Whether the AVX2 copies run: the CPU has AVX2 and the environment
/// variable `JUPITER_SIMD` is not `portable` (with it, every path runs
/// its portable code on any CPU; the tests compare the two runs bit for
/// bit). Read once per library.
#[inline]
pub fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ON.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx2")
                && std::env::var("JUPITER_SIMD").map_or(true, |v| v != "portable")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[inline]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
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
}
