//! 2-D real FFT with a process-wide plan cache, and phase correlation with a
//! sub-pixel (gaussian-fit) peak.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use realfft::{ComplexToReal, RealFftPlanner, RealToComplex};
pub use rustfft::num_complex::Complex32;
use rustfft::{Fft, FftPlanner};

use crate::warp::{shift_plane, Interp};

/// Signed frequency (cycles per pixel) of row `k` of an `n`-row spectrum
/// ([`Fft2d`]'s layout): `k / n` up to the middle row, `(k − n) / n` after.
pub fn row_frequency(k: usize, n: usize) -> f32 {
    let signed = if k <= n / 2 {
        k as f32
    } else {
        k as f32 - n as f32
    };
    signed / n as f32
}

/// Plans for a `width × height` real 2-D transform. Layout of spectra:
/// row-major, `height` rows of `width / 2 + 1` complex bins.
pub struct Fft2d {
    pub width: usize,
    pub height: usize,
    r2c: Arc<dyn RealToComplex<f32>>,
    c2r: Arc<dyn ComplexToReal<f32>>,
    col_fwd: Arc<dyn Fft<f32>>,
    col_inv: Arc<dyn Fft<f32>>,
}

type PlanCache = Mutex<HashMap<(usize, usize), Arc<Fft2d>>>;

impl Fft2d {
    /// Plans once per size for the whole process; later calls reuse them.
    pub fn cached(width: usize, height: usize) -> Arc<Fft2d> {
        static CACHE: OnceLock<PlanCache> = OnceLock::new();
        let cache = CACHE.get_or_init(Default::default);
        let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
        map.entry((width, height))
            .or_insert_with(|| Arc::new(Fft2d::planned(width, height)))
            .clone()
    }

    /// Plans from scratch (no cache): what every call paid before the plan
    /// cache; kept public for the benchmarks that compare the two.
    pub fn planned(width: usize, height: usize) -> Fft2d {
        let mut rp = RealFftPlanner::<f32>::new();
        let mut cp = FftPlanner::<f32>::new();
        Fft2d {
            width,
            height,
            r2c: rp.plan_fft_forward(width),
            c2r: rp.plan_fft_inverse(width),
            col_fwd: cp.plan_fft_forward(height),
            col_inv: cp.plan_fft_inverse(height),
        }
    }

    /// Complex bins per spectrum row.
    pub fn bins(&self) -> usize {
        self.width / 2 + 1
    }

    /// Forward transform of `input` (`width * height` samples).
    pub fn forward(&self, input: &[f32]) -> Vec<Complex32> {
        let (w, h, b) = (self.width, self.height, self.bins());
        let mut spec = vec![Complex32::default(); b * h];
        let mut row = self.r2c.make_input_vec();
        let mut scratch = self.r2c.make_scratch_vec();
        for y in 0..h {
            row.copy_from_slice(&input[y * w..(y + 1) * w]);
            self.r2c
                .process_with_scratch(&mut row, &mut spec[y * b..(y + 1) * b], &mut scratch)
                .expect("r2c sizes are planned");
        }
        self.columns(&mut spec, &*self.col_fwd);
        spec
    }

    /// Inverse transform (unnormalised: the result is scaled by `width * height`).
    pub fn inverse(&self, mut spec: Vec<Complex32>) -> Vec<f32> {
        let (w, h, b) = (self.width, self.height, self.bins());
        self.columns(&mut spec, &*self.col_inv);
        let mut out = vec![0.0; w * h];
        let mut scratch = self.c2r.make_scratch_vec();
        for y in 0..h {
            let row = &mut spec[y * b..(y + 1) * b];
            // The DC (and Nyquist) bins of a real signal's spectrum are real.
            row[0].im = 0.0;
            if w % 2 == 0 {
                row[b - 1].im = 0.0;
            }
            self.c2r
                .process_with_scratch(row, &mut out[y * w..(y + 1) * w], &mut scratch)
                .expect("c2r sizes are planned");
        }
        out
    }

    /// Column transforms, `BLOCK` columns at a time: the block is gathered
    /// into contiguous columns (each spectrum row contributes one run of
    /// `BLOCK` neighbouring bins, which keeps the reads cache friendly), all
    /// of its columns are transformed in one call, then scattered back.
    /// The block and the scratch are this thread's, kept between calls
    /// (the aligner transforms thousands of small patches).
    fn columns(&self, spec: &mut [Complex32], fft: &dyn Fft<f32>) {
        const BLOCK: usize = 16;
        let (h, b) = (self.height, self.bins());
        COLUMNS.with_borrow_mut(|(cols, scratch)| {
            cols.resize(h * BLOCK, Complex32::default());
            scratch.resize(fft.get_inplace_scratch_len(), Complex32::default());
            for x0 in (0..b).step_by(BLOCK) {
                let n = BLOCK.min(b - x0);
                let block = &mut cols[..n * h];
                for (y, row) in spec.chunks_exact(b).enumerate() {
                    for (col, v) in block.chunks_exact_mut(h).zip(&row[x0..x0 + n]) {
                        col[y] = *v;
                    }
                }
                fft.process_with_scratch(block, scratch);
                for (y, row) in spec.chunks_exact_mut(b).enumerate() {
                    for (col, v) in block.chunks_exact(h).zip(&mut row[x0..x0 + n]) {
                        *v = col[y];
                    }
                }
            }
        })
    }
}

thread_local! {
    /// Each thread's column block and scratch for [`Fft2d::columns`].
    static COLUMNS: std::cell::RefCell<(Vec<Complex32>, Vec<Complex32>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) };
}

/// The 1-D Hann window of `n` samples (sampled at pixel centres).
pub fn hann(n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * (i as f32 + 0.5) / n as f32).cos())
        .collect()
}

/// A separable Hann window of `width × height`.
pub fn hann_window(width: usize, height: usize) -> Vec<f32> {
    let (wx, wy) = (hann(width), hann(height));
    let mut out = Vec::with_capacity(width * height);
    for vy in &wy {
        out.extend(wx.iter().map(|vx| vx * vy));
    }
    out
}

type WindowCache = Mutex<HashMap<(usize, usize, u32), (Arc<[f32]>, Arc<[f32]>)>>;

/// The Hann window and the gaussian low-pass (sigma in cycles/pixel, over
/// the half spectrum) of a `width × height` correlator, made once per size
/// and sigma for the whole process.
fn window_and_lowpass(width: usize, height: usize, sigma: f32) -> (Arc<[f32]>, Arc<[f32]>) {
    static CACHE: OnceLock<WindowCache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut map = cache.lock().unwrap_or_else(|e| e.into_inner());
    map.entry((width, height, sigma.to_bits()))
        .or_insert_with(|| {
            let b = width / 2 + 1;
            let mut lowpass = vec![0.0; b * height];
            for y in 0..height {
                let fy = row_frequency(y, height);
                for x in 0..b {
                    let fx = x as f32 / width as f32;
                    lowpass[y * b + x] = (-(fx * fx + fy * fy) / (2.0 * sigma * sigma)).exp();
                }
            }
            (hann_window(width, height).into(), lowpass.into())
        })
        .clone()
}

/// A measured displacement: the frame's content sits at `(dx, dy)` relative to
/// the reference, and `peak` is the correlation peak height (0..1, a confidence).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shift {
    pub dx: f32,
    pub dy: f32,
    pub peak: f32,
}

/// Phase correlation against one reference, whose windowed spectrum is
/// computed once. A gaussian low-pass (sigma 0.1 cycles/px) on the partially
/// whitened cross-power spectrum (`c / |c|^0.3`: sharper than plain
/// correlation, far less noise-sensitive than pure phase correlation, see
/// `sweep_noise_accuracy`)
/// keeps noise out and makes the peak gaussian, so a 3-point gaussian fit per
/// axis gives the sub-pixel position.
pub struct PhaseCorrelator {
    fft: Arc<Fft2d>,
    /// The window and the low-pass depend only on the size and sigma:
    /// shared by every correlator of that size (thousands of alignment
    /// points on a large frame).
    window: Arc<[f32]>,
    reference: Vec<Complex32>,
    lowpass: Arc<[f32]>,
    whiten: f32,
    self_peak: f32,
    /// The same correlator on the 2×2-binned reference (frames of at least
    /// [`COARSE_MIN`] pixels on each side): gives the first estimate at a
    /// quarter of the cost.
    coarse: Option<Box<PhaseCorrelator>>,
}

/// Smallest side for which [`PhaseCorrelator`] makes its first estimate on
/// 2×2-binned planes.
pub const COARSE_MIN: usize = 128;

/// The mean of each 2×2 block (a trailing odd row or column is dropped).
pub fn bin2(plane: &[f32], width: usize, height: usize) -> Vec<f32> {
    bin2_strided(plane, width, width, height)
}

/// [`bin2`] of the `width × height` rectangle whose row `y` starts at
/// `data[y · stride]` (a patch read in place in its frame).
pub fn bin2_strided(data: &[f32], stride: usize, width: usize, height: usize) -> Vec<f32> {
    let plane = data;
    let (bw, bh) = (width / 2, height / 2);
    let mut out = vec![0.0f32; bw * bh];
    if bw == 0 {
        return out;
    }
    crate::simd::wide(
        #[inline(always)]
        || {
            for (y, o) in out.chunks_exact_mut(bw).enumerate() {
                let a = &plane[2 * y * stride..][..2 * bw];
                let b = &plane[(2 * y + 1) * stride..][..2 * bw];
                for ((o, a), b) in o.iter_mut().zip(a.chunks_exact(2)).zip(b.chunks_exact(2)) {
                    *o = 0.25 * (a[0] + a[1] + b[0] + b[1]);
                }
            }
        },
    );
    out
}

impl PhaseCorrelator {
    /// Prepares the reference (one plane of `width × height`).
    pub fn new(reference: &[f32], width: usize, height: usize) -> PhaseCorrelator {
        Self::with_params(reference, width, height, 0.1, 0.3)
    }

    /// Like [`new`](Self::new) with an explicit low-pass sigma (cycles/pixel)
    /// and whitening exponent (0 = plain cross-correlation, 1 = pure phase).
    pub fn with_params(
        reference: &[f32],
        width: usize,
        height: usize,
        sigma: f32,
        whiten: f32,
    ) -> PhaseCorrelator {
        Self::build(reference, width, height, sigma, whiten, COARSE_MIN, 2)
    }

    /// [`with_params`](Self::with_params), with `levels` binned
    /// correlators below it (each on the 2×2-binned plane of the one above,
    /// while both sides are at least `coarse_min`; only their
    /// [`raw_shift`](Self::raw_shift) is used).
    fn build(
        reference: &[f32],
        width: usize,
        height: usize,
        sigma: f32,
        whiten: f32,
        coarse_min: usize,
        levels: usize,
    ) -> PhaseCorrelator {
        let fft = Fft2d::cached(width, height);
        let (window, lowpass) = window_and_lowpass(width, height, sigma);
        let coarse = (levels > 0 && width >= coarse_min && height >= coarse_min).then(|| {
            // Frequencies in binned pixels are twice those in full pixels.
            Box::new(Self::build(
                &bin2(reference, width, height),
                width / 2,
                height / 2,
                (2.0 * sigma).min(0.5),
                whiten,
                coarse_min,
                levels - 1,
            ))
        });
        let mut pc = PhaseCorrelator {
            fft,
            window,
            reference: Vec::new(),
            lowpass,
            whiten,
            self_peak: 1.0,
            coarse,
        };
        pc.reference = pc.spectrum(reference);
        pc.self_peak = pc.auto_peak().max(1e-20);
        pc
    }

    /// The correlation surface of the reference with itself at zero shift
    /// (its maximum: every term of the weighted power spectrum is positive),
    /// what [`raw_shift`](Self::raw_shift) of the reference would find as
    /// its peak, without the inverse transform: the inverse at 0 is the sum
    /// over the whole spectrum, each half-spectrum bin counted twice but
    /// the columns 0 and `width / 2` (even widths), which stand for
    /// themselves (the inverse is unnormalised, as in `raw_shift`).
    fn auto_peak(&self) -> f32 {
        let (w, b) = (self.fft.width, self.fft.bins());
        let e = -0.5 * self.whiten;
        let mut sum = 0.0f64;
        for (i, (r, lp)) in self.reference.iter().zip(self.lowpass.iter()).enumerate() {
            // The cross-power bin r·r̄ = |r|², whose own |·|² is |r|⁴.
            let power = r.norm_sqr();
            let x = i % b;
            let twice = x != 0 && !(w % 2 == 0 && x == w / 2);
            let v = (power * cross_weight(power * power, *lp, e)) as f64;
            sum += if twice { 2.0 * v } else { v };
        }
        sum as f32
    }

    fn spectrum(&self, plane: &[f32]) -> Vec<Complex32> {
        crate::simd::wide(
            #[inline(always)]
            || {
                let mean = crate::stats::mean(plane) as f32;
                let windowed: Vec<f32> = plane
                    .iter()
                    .zip(self.window.iter())
                    .map(|(v, w)| (v - mean) * w)
                    .collect();
                self.fft.forward(&windowed)
            },
        )
    }

    /// Measures the displacement of `frame` (same size as the reference).
    ///
    /// The window stays put while the content moves, which biases a single
    /// measurement towards zero by a few percent of the shift; so the frame is
    /// resampled by a first estimate and the small residual measured again at
    /// full resolution. On frames of at least [`COARSE_MIN`] pixels a side the
    /// first estimate comes from the 2×2-binned planes (a quarter of the
    /// cost; its error, well under a pixel, is what the second pass measures).
    pub fn shift_of(&self, frame: &[f32]) -> Shift {
        let (w, h) = (self.fft.width, self.fft.height);
        let first = self.first_estimate(frame);
        if self.coarse.is_none() && first.dx.abs() < 0.05 && first.dy.abs() < 0.05 {
            return first;
        }
        let moved = shift_plane(frame, w, h, 1, first.dx, first.dy, Interp::Bicubic);
        let rest = self.raw_shift(&moved);
        Shift {
            dx: first.dx + rest.dx,
            dy: first.dy + rest.dy,
            peak: if self.coarse.is_some() {
                rest.peak
            } else {
                rest.peak.max(first.peak)
            },
        }
    }

    /// The first estimate of [`shift_of`](Self::shift_of): on the
    /// 2×2-binned planes when the frame is large enough (a quarter of the
    /// cost, within a few tenths of a pixel: enough where something else
    /// measures the rest, as the alignment points do), else
    /// [`raw_shift`](Self::raw_shift).
    pub fn first_estimate(&self, frame: &[f32]) -> Shift {
        let (w, h) = (self.fft.width, self.fft.height);
        match &self.coarse {
            Some(c) => {
                let s = c.raw_shift(&bin2(frame, w, h));
                Shift {
                    dx: 2.0 * s.dx,
                    dy: 2.0 * s.dy,
                    peak: s.peak,
                }
            }
            None => self.raw_shift(frame),
        }
    }

    /// A rougher and cheaper estimate than
    /// [`first_estimate`](Self::first_estimate): on the 4×4-binned planes
    /// (frames of at least twice [`COARSE_MIN`] a side; a sixteenth of the
    /// full correlation's cost, within about 0.4 px plus the few percent of
    /// the shift by which one correlation falls short), else the first
    /// estimate. For where only the integer position matters.
    pub fn rough_shift(&self, frame: &[f32]) -> Shift {
        let (w, h) = (self.fft.width, self.fft.height);
        match self
            .coarse
            .as_ref()
            .and_then(|c| c.coarse.as_ref().map(|r| (c, r)))
        {
            Some((c, r)) => {
                let once = bin2(frame, w, h);
                let s = r.raw_shift(&bin2(&once, c.fft.width, c.fft.height));
                Shift {
                    dx: 4.0 * s.dx,
                    dy: 4.0 * s.dy,
                    peak: s.peak,
                }
            }
            None => self.first_estimate(frame),
        }
    }

    /// One phase-correlation measurement (no refinement).
    pub fn raw_shift(&self, frame: &[f32]) -> Shift {
        crate::simd::wide(
            #[inline(always)]
            || {
                let (w, h) = (self.fft.width, self.fft.height);
                let mut spec = self.spectrum(frame);
                // Cross-power spectrum with partial whitening: c · lp · |c|^-whiten,
                // where |c|^-whiten = (|c|²)^(-whiten/2). In three simple passes so
                // that the middle one (the power, over plain f32 slices) vectorises;
                // bins the low-pass has all but removed are zeroed.
                let mut weight = vec![0.0f32; spec.len()];
                for ((s, r), m2) in spec.iter_mut().zip(&self.reference).zip(weight.iter_mut()) {
                    // `*s *= r.conj()` and `norm_sqr` written out, so that the
                    // loop vectorises (the same operations in the same order).
                    let (a, b, c, d) = (s.re, s.im, r.re, -r.im);
                    *s = Complex32::new(a * c - b * d, a * d + b * c);
                    *m2 = s.re * s.re + s.im * s.im;
                }
                let e = -0.5 * self.whiten;
                for (m2, lp) in weight.iter_mut().zip(self.lowpass.iter()) {
                    *m2 = cross_weight(*m2, *lp, e);
                }
                for (s, w) in spec.iter_mut().zip(&weight) {
                    *s *= *w;
                }
                let surface = self.fft.inverse(spec);
                let (best, bi) = arg_max(&surface);
                let (px, py) = (bi % w, bi / w);
                let at = |x: isize, y: isize| {
                    surface[(y.rem_euclid(h as isize) as usize) * w
                        + x.rem_euclid(w as isize) as usize]
                };
                let (xi, yi) = (px as isize, py as isize);
                let ox = peak_offset(at(xi - 1, yi), best, at(xi + 1, yi));
                let oy = peak_offset(at(xi, yi - 1), best, at(xi, yi + 1));
                let wrap = |p: usize, n: usize| {
                    if p > n / 2 {
                        p as f32 - n as f32
                    } else {
                        p as f32
                    }
                };
                // Peak height relative to a perfect match (the auto-correlation).
                let norm = self.self_peak;
                Shift {
                    dx: wrap(px, w) + ox,
                    dy: wrap(py, h) + oy,
                    peak: (best / norm).max(0.0),
                }
            },
        )
    }
}

/// A correlator's tables over the full `width × height` spectrum (realfft
/// keeps half of it; a device transform of a real plane computes all of
/// it): what a device implementation of
/// [`PhaseCorrelator::raw_shift`] needs to compute the same surface.
impl PhaseCorrelator {
    /// Width and height of the planes it correlates.
    pub fn dims(&self) -> (usize, usize) {
        (self.fft.width, self.fft.height)
    }

    /// The auto-correlation peak [`raw_shift`](Self::raw_shift) divides by.
    pub fn self_peak(&self) -> f32 {
        self.self_peak
    }

    /// The whitening exponent of the cross-power spectrum.
    pub fn whiten(&self) -> f32 {
        self.whiten
    }

    /// The separable Hann window (`width × height`).
    pub fn window(&self) -> &[f32] {
        &self.window
    }

    /// The reference's windowed spectrum as realfft keeps it: `height`
    /// rows of `width / 2 + 1` bins (re, im interleaved); the other bins
    /// are the conjugates of their mirrors ([`full_spectrum`](Self::full_spectrum)).
    pub fn half_spectrum(&self) -> Vec<f32> {
        self.reference.iter().flat_map(|c| [c.re, c.im]).collect()
    }

    /// The reference's windowed spectrum over all `width × height` bins
    /// (re, im interleaved), the missing half mirrored: `X(k) = conj X(−k)`.
    pub fn full_spectrum(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(2 * self.fft.width * self.fft.height);
        self.each_full_bin(|i, conj| {
            let c = self.reference[i];
            out.extend([c.re, if conj { -c.im } else { c.im }]);
        });
        out
    }

    /// The low-pass over all bins, mirrored as [`full_spectrum`](Self::full_spectrum)
    /// (so the weighted cross-power stays Hermitian and its inverse real).
    pub fn full_lowpass(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.fft.width * self.fft.height);
        self.each_full_bin(|i, _| out.push(self.lowpass[i]));
        out
    }

    /// For each bin of the full spectrum in row-major order, the index of
    /// the half-spectrum bin it equals and whether conjugated.
    fn each_full_bin(&self, mut f: impl FnMut(usize, bool)) {
        let (w, h, b) = (self.fft.width, self.fft.height, self.fft.bins());
        for y in 0..h {
            for x in 0..w {
                if x < b {
                    f(y * b + x, false);
                } else {
                    f(((h - y) % h) * b + (w - x), true);
                }
            }
        }
    }
}

/// The largest value above `f32::MIN` and its first index (`(f32::MIN, 0)`
/// when there is none; NaN never wins): what a scan keeping the first
/// strictly larger value finds, in eight lanes and a second look for the
/// index, which vectorises.
pub fn arg_max(v: &[f32]) -> (f32, usize) {
    crate::simd::wide(
        #[inline(always)]
        || {
            let mut lanes = [f32::MIN; 8];
            let chunks = v.chunks_exact(8);
            let mut best = chunks
                .remainder()
                .iter()
                .fold(f32::MIN, |b, &x| if x > b { x } else { b });
            for c in chunks {
                for l in 0..8 {
                    lanes[l] = if c[l] > lanes[l] { c[l] } else { lanes[l] };
                }
            }
            for l in lanes {
                best = if l > best { l } else { best };
            }
            if best > f32::MIN {
                // The value read back: of equal zeros, the first one's sign.
                let i = v.iter().position(|&x| x == best).unwrap_or(0);
                (v[i], i)
            } else {
                (f32::MIN, 0)
            }
        },
    )
}

/// The weight of one cross-power bin whose squared magnitude is `m2`:
/// the low-pass `lp` times the partial whitening `m2^e` (`e = −whiten/2`),
/// or 0 where the low-pass has all but removed the bin or it is empty.
/// Branch-free, so the loop over the spectrum vectorises.
#[inline]
fn cross_weight(m2: f32, lp: f32, e: f32) -> f32 {
    // Plain selects, no `&&` or `f32::max`: those kept the loop scalar.
    let keep = (m2 > 1e-30) & (lp > 1e-7);
    let w = lp * fast_pow(if m2 > 1e-30 { m2 } else { 1e-30 }, e);
    if keep {
        w
    } else {
        0.0
    }
}

/// `x^p` for positive normal `x` (relative error below 2e-5 for the
/// exponents used here): `2^(p·log2 x)` with the exponent read from the bits
/// and short series for the rest. Branch-free, so loops over it vectorise
/// (a libm `powf` call per bin was a third of the correlation's time).
#[inline(always)]
pub fn fast_pow(x: f32, p: f32) -> f32 {
    // log2(x) = e + log2(m), m in [1, 2); log2(m) = 2/ln2 · atanh(t), t = (m-1)/(m+1) <= 1/3.
    // Only float arithmetic, bit moves and selects, so that a loop over it
    // vectorises: the exponent becomes a float by the same trick as the
    // rounding below (2^23 + e read as a float), not by a cast.
    let bits = x.to_bits();
    let e = f32::from_bits(((bits >> 23) & 0xff) | 0x4b00_0000) - (8_388_608.0 + 127.0);
    let m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let atanh = t * (1.0 + t2 * (1.0 / 3.0 + t2 * (1.0 / 5.0 + t2 * (1.0 / 7.0 + t2 / 9.0))));
    let y = p * (e + atanh * (2.0 / std::f32::consts::LN_2));
    // Not `clamp`: written as selects, it keeps the loop vectorised.
    #[allow(clippy::manual_clamp)]
    let y = if y < -126.0 {
        -126.0
    } else if y > 126.0 {
        126.0
    } else {
        y
    };
    // 2^y = 2^i · e^(f·ln2), i = y rounded, |f| <= 1/2. Adding 1.5·2^23
    // rounds y into the sum's last mantissa bits: i is read from the bits,
    // so the loop vectorises (a float-to-int cast kept it scalar).
    const ROUND: f32 = 12_582_912.0;
    let r = y + ROUND;
    let i = r.to_bits().wrapping_sub(ROUND.to_bits());
    let z = (y - (r - ROUND)) * std::f32::consts::LN_2;
    let poly = 1.0
        + z * (1.0
            + z * (0.5 + z * (1.0 / 6.0 + z * (1.0 / 24.0 + z * (1.0 / 120.0 + z / 720.0)))));
    poly * f32::from_bits(i.wrapping_add(127) << 23)
}

/// Sub-sample offset of a peak from three samples: gaussian fit when all are
/// positive, parabola otherwise. Result in `-0.5..=0.5`.
pub fn peak_offset(a: f32, b: f32, c: f32) -> f32 {
    let o = if a > 0.0 && b > 0.0 && c > 0.0 {
        let (la, lb, lc) = (a.ln(), b.ln(), c.ln());
        let d = la - 2.0 * lb + lc;
        if d.abs() < 1e-12 {
            0.0
        } else {
            0.5 * (la - lc) / d
        }
    } else {
        let d = a - 2.0 * b + c;
        if d.abs() < 1e-12 {
            0.0
        } else {
            0.5 * (a - c) / d
        }
    };
    o.clamp(-0.5, 0.5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arg_max_is_the_first_largest() {
        let scan = |v: &[f32]| {
            let (mut best, mut bi) = (f32::MIN, 0);
            for (i, &x) in v.iter().enumerate() {
                if x > best {
                    best = x;
                    bi = i;
                }
            }
            (best, bi)
        };
        for n in [0usize, 1, 7, 8, 9, 40, 1600] {
            let mut v: Vec<f32> = (0..n)
                .map(|i| ((i * 37 % 101) as f32 * 0.3).sin())
                .collect();
            assert_eq!(arg_max(&v), scan(&v), "n {n}");
            if n > 3 {
                // Ties keep the first; NaN and -inf never win.
                v[n - 1] = 2.0;
                v[1] = 2.0;
                v[0] = f32::NAN;
                assert_eq!(arg_max(&v), scan(&v), "n {n}");
                v.iter_mut().for_each(|x| *x = f32::NEG_INFINITY);
                assert_eq!(arg_max(&v), scan(&v), "n {n}");
            }
        }
    }

    #[test]
    fn fast_pow_matches_powf() {
        let mut worst = 0.0f64;
        for &p in &[-0.15f32, -0.5, 0.3, 1.0, -1.0] {
            for k in -300..300 {
                let x = 10f32.powf(k as f32 / 20.0);
                let (a, b) = (fast_pow(x, p) as f64, (x as f64).powf(p as f64));
                worst = worst.max(((a - b) / b).abs());
            }
        }
        assert!(worst < 2e-5, "relative error {worst}");
    }

    /// A smooth test scene (a few gaussian blobs) displaced by `(sx, sy)`.
    fn scene(w: usize, h: usize, sx: f32, sy: f32) -> Vec<f32> {
        let blobs = [
            (30.0, 25.0, 6.0, 1.0),
            (70.0, 40.0, 3.0, 0.7),
            (50.0, 70.0, 9.0, 0.5),
            (20.0, 60.0, 2.0, 0.8),
        ];
        let mut v = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for (bx, by, r, a) in blobs {
                    let (dx, dy) = (x as f32 - bx - sx, y as f32 - by - sy);
                    s += a * (-(dx * dx + dy * dy) / (2.0 * r * r)).exp();
                }
                v[y * w + x] = s;
            }
        }
        v
    }

    /// [`PhaseCorrelator::raw_shift`] over the full spectrum with plain
    /// f64 DFTs from the full tables (what the device path computes):
    /// the same surface, so the same shift and peak.
    #[test]
    fn full_tables_give_the_same_surface() {
        use std::f64::consts::PI;
        let (w, h) = (20, 12);
        let reference = scene(w, h, 0.0, 0.0);
        let frame = scene(w, h, 1.3, -0.6);
        let pc = PhaseCorrelator::with_params(&reference, w, h, 0.2, 0.3);
        let (spec, lp, win) = (pc.full_spectrum(), pc.full_lowpass(), pc.window());
        let mean = frame.iter().sum::<f32>() as f64 / (w * h) as f64;
        let x: Vec<(f64, f64)> = (0..w * h)
            .map(|i| ((frame[i] as f64 - mean) * win[i] as f64, 0.0))
            .collect();
        let dft = |a: &[(f64, f64)], sign: f64| -> Vec<(f64, f64)> {
            let mut out = vec![(0.0, 0.0); w * h];
            for (o, v) in out.iter_mut().enumerate() {
                let (kx, ky) = (o % w, o / w);
                for (i, &(re, im)) in a.iter().enumerate() {
                    let (ix, iy) = (i % w, i / w);
                    let t = sign
                        * 2.0
                        * PI
                        * ((ix * kx) as f64 / w as f64 + (iy * ky) as f64 / h as f64);
                    v.0 += re * t.cos() - im * t.sin();
                    v.1 += re * t.sin() + im * t.cos();
                }
            }
            out
        };
        let f = dft(&x, -1.0);
        let cross: Vec<(f64, f64)> = (0..w * h)
            .map(|i| {
                let (r, q) = (spec[2 * i] as f64, -spec[2 * i + 1] as f64);
                let c = (f[i].0 * r - f[i].1 * q, f[i].0 * q + f[i].1 * r);
                let m2 = c.0 * c.0 + c.1 * c.1;
                let wt = if m2 > 1e-30 && lp[i] > 1e-7 {
                    lp[i] as f64 * m2.powf(-0.5 * pc.whiten() as f64)
                } else {
                    0.0
                };
                (c.0 * wt, c.1 * wt)
            })
            .collect();
        let surface = dft(&cross, 1.0);
        let imag = surface.iter().map(|v| v.1.abs()).fold(0.0, f64::max);
        let real = surface.iter().map(|v| v.0.abs()).fold(0.0, f64::max);
        // Real up to the f32 spectra's rounding: the columns at x = 0 (and
        // the Nyquist column) are Hermitian only to float precision.
        assert!(imag < 1e-7 * real, "inverse not real: {imag} vs {real}");
        let (bi, best) =
            surface.iter().enumerate().fold(
                (0, f64::MIN),
                |a, (i, v)| if v.0 > a.1 { (i, v.0) } else { a },
            );
        let want = pc.raw_shift(&frame);
        let wrap = |p: usize, n: usize| {
            if p > n / 2 {
                p as f32 - n as f32
            } else {
                p as f32
            }
        };
        assert_eq!(
            (wrap(bi % w, w), wrap(bi / w, h)),
            (want.dx.round(), want.dy.round())
        );
        let peak = (best as f32 / pc.self_peak()).max(0.0);
        assert!((peak - want.peak).abs() < 1e-3, "{peak} vs {}", want.peak);
    }

    #[test]
    fn fft_roundtrip() {
        let (w, h) = (17, 12);
        let x: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
        let f = Fft2d::cached(w, h);
        let back = f.inverse(f.forward(&x));
        for (a, b) in x.iter().zip(back) {
            assert!((a - b / (w * h) as f32).abs() < 1e-3);
        }
    }

    #[test]
    fn recovers_fractional_shifts() {
        let (w, h) = (100, 90);
        let reference = scene(w, h, 0.0, 0.0);
        let pc = PhaseCorrelator::new(&reference, w, h);
        for &(sx, sy) in &[
            (0.0, 0.0),
            (3.0, -2.0),
            (1.3, 0.6),
            (-4.7, 2.25),
            (0.5, -0.5),
        ] {
            let s = pc.shift_of(&scene(w, h, sx, sy));
            assert!(
                (s.dx - sx).abs() < 0.05 && (s.dy - sy).abs() < 0.05,
                "wanted ({sx},{sy}) got {s:?}"
            );
            assert!(s.peak > 0.1);
        }
    }

    #[test]
    fn coarse_first_estimate_keeps_the_accuracy() {
        // 192×160 and 202×176 take the binned first pass (odd binned sizes
        // included); shifts up to ~16 px and under noise.
        for (w, h) in [(192usize, 160usize), (202, 176)] {
            let reference = noisy_disc(w, h, 0.0, 0.0, 1, 0.0);
            let pc = PhaseCorrelator::new(&reference, w, h);
            assert!(pc.coarse.is_some());
            for (k, &(sx, sy)) in [
                (0.0, 0.0),
                (0.3, -0.2),
                (7.6, -3.1),
                (-12.4, 9.7),
                (1.5, 0.5),
            ]
            .iter()
            .enumerate()
            {
                let s = pc.shift_of(&noisy_disc(w, h, sx, sy, k as u64 + 7, 0.01));
                assert!(
                    (s.dx - sx).abs() < 0.05 && (s.dy - sy).abs() < 0.05 && s.peak > 0.3,
                    "{w}×{h}: wanted ({sx},{sy}) got {s:?}"
                );
            }
        }
        let b = bin2(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], 3, 3);
        assert_eq!(b, vec![3.0]);
    }

    #[test]
    fn the_self_peak_is_the_surface_at_zero() {
        for (w, h) in [(64usize, 48usize), (45, 37)] {
            let reference = noisy_disc(w, h, 0.0, 0.0, 5, 0.02);
            let pc = PhaseCorrelator::new(&reference, w, h);
            let direct = pc.raw_shift(&reference);
            assert!(
                direct.dx.abs() < 1e-3 && direct.dy.abs() < 1e-3,
                "{direct:?}"
            );
            // raw_shift divides by the self peak: a perfect match reads 1.
            assert!((direct.peak - 1.0).abs() < 1e-4, "{w}×{h}: {}", direct.peak);
        }
    }

    #[test]
    fn rough_and_first_estimates_are_within_their_stated_error() {
        // 320×256 has two binned levels, 160×144 one (rough = first).
        for (w, h, levels) in [(320usize, 256usize, 2), (160, 144, 1)] {
            let reference = noisy_disc(w, h, 0.0, 0.0, 1, 0.0);
            let pc = PhaseCorrelator::new(&reference, w, h);
            let depth = pc
                .coarse
                .as_ref()
                .map_or(0, |c| 1 + c.coarse.is_some() as usize);
            assert_eq!(depth, levels, "{w}×{h}");
            for (k, &(sx, sy)) in [(0.0, 0.0), (2.3, -1.6), (-9.7, 6.2), (14.1, 3.4)]
                .iter()
                .enumerate()
            {
                let frame = noisy_disc(w, h, sx, sy, k as u64 + 3, 0.01);
                let (r, f) = (pc.rough_shift(&frame), pc.first_estimate(&frame));
                // One correlation is biased towards zero by a few percent of
                // the shift (the window stays put), plus the binning's error.
                let ok =
                    |got: f32, want: f32, tol: f32| (got - want).abs() < tol + 0.06 * want.abs();
                assert!(
                    ok(r.dx, sx, 0.4) && ok(r.dy, sy, 0.4),
                    "{w}×{h} rough: wanted ({sx},{sy}) got {r:?}"
                );
                assert!(
                    ok(f.dx, sx, 0.2) && ok(f.dy, sy, 0.2),
                    "{w}×{h} first: wanted ({sx},{sy}) got {f:?}"
                );
            }
        }
    }

    /// A noisy planet-like disc (bands + limb), for accuracy under noise.
    fn noisy_disc(w: usize, h: usize, sx: f32, sy: f32, seed: u64, sigma: f32) -> Vec<f32> {
        let mut rng = jupiter_testkit::Rng::new(seed);
        let mut rnd = move || rng.uniform_f32() - 0.5;
        (0..w * h)
            .map(|i| {
                let (x, y) = (
                    (i % w) as f32 - w as f32 / 2.0 - sx,
                    (i / w) as f32 - h as f32 / 2.0 - sy,
                );
                let r = (x * x + y * y).sqrt() / 40.0;
                let body = 1.0 / (1.0 + ((r - 1.0) * 30.0).exp());
                let v = body * (0.7 + 0.15 * (y * 0.22).cos() + 0.05 * (x * 0.4 + y * 0.1).sin());
                v + sigma * 3.46 * (rnd() + rnd()) / 1.414
            })
            .collect()
    }

    #[test]
    #[ignore = "parameter sweep; run by hand"]
    fn sweep_noise_accuracy() {
        let (w, h) = (160, 128);
        for (sigma, whiten) in [
            (0.08, 0.5),
            (0.06, 0.3),
            (0.1, 0.3),
            (0.12, 0.3),
            (0.06, 0.5),
        ] {
            let reference = noisy_disc(w, h, 0.0, 0.0, 1, 0.01);
            let pc = PhaseCorrelator::with_params(&reference, w, h, sigma, whiten);
            let mut worst = 0.0f32;
            let mut sq = 0.0f32;
            for k in 0..20 {
                let (sx, sy) = ((k as f32 * 0.37) % 5.0 - 2.5, (k as f32 * 0.71) % 5.0 - 2.5);
                let s = pc.shift_of(&noisy_disc(w, h, sx, sy, 100 + k, 0.05));
                let e = (s.dx - sx).abs().max((s.dy - sy).abs());
                worst = worst.max(e);
                sq += e * e;
            }
            eprintln!(
                "sigma {sigma} whiten {whiten}: worst {worst:.3} rms {:.3}",
                (sq / 20.0).sqrt()
            );
        }
    }

    #[test]
    fn plan_cache_reuses_plans() {
        assert!(Arc::ptr_eq(&Fft2d::cached(64, 48), &Fft2d::cached(64, 48)));
    }
}
