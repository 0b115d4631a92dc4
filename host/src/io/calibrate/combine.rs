//! Combining the frames of a dark or flat capture into a master, pixel by
//! pixel: the median (the default: robust to a cosmic ray or a hot frame
//! with no parameter) or a sigma-clipped mean (less noise than the median
//! for the same frames, still rejecting outliers).

/// How the frames of a master capture are combined.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Combine {
    /// The per-pixel median.
    #[default]
    Median,
    /// The mean of the values within [`KAPPA`] robust standard deviations
    /// of the median.
    SigmaClip,
}

impl Combine {
    /// The name as `--combine` and the pipeline's `combine` key spell it.
    pub fn name(self) -> &'static str {
        match self {
            Combine::Median => "median",
            Combine::SigmaClip => "sigma-clip",
        }
    }

    /// Combines `values` (one per frame, reordered in place).
    pub fn apply(self, values: &mut [f32]) -> f32 {
        match self {
            Combine::Median => median(values),
            Combine::SigmaClip => sigma_clipped_mean(values),
        }
    }
}

/// Values further than this many robust standard deviations (1.4826 × the
/// median absolute deviation) from the median are left out of a sigma-clipped mean.
pub const KAPPA: f32 = 3.0;

/// The smallest robust deviation used: a quantised master whose values are
/// mostly equal (MAD 0) still keeps the values equal to its median.
const MIN_SIGMA: f32 = 1e-6;

/// The median of `v` (the mean of the two middle values for an even
/// count), reordering `v`; 0 for none.
pub fn median(v: &mut [f32]) -> f32 {
    let n = v.len();
    if n == 0 {
        return 0.0;
    }
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f32::total_cmp);
    if n % 2 == 1 {
        return hi;
    }
    let lo = v[..n / 2].iter().copied().fold(f32::MIN, f32::max);
    0.5 * (lo + hi)
}

/// The mean of the values of `v` within [`KAPPA`] robust standard
/// deviations of its median (reordering `v`).
pub fn sigma_clipped_mean(v: &mut [f32]) -> f32 {
    let m = median(v);
    let mut dev: Vec<f32> = v.iter().map(|x| (x - m).abs()).collect();
    let sigma = (1.4826 * median(&mut dev)).max(MIN_SIGMA);
    let (sum, n) = v
        .iter()
        .filter(|x| (*x - m).abs() <= KAPPA * sigma)
        .fold((0.0f64, 0usize), |(s, n), &x| (s + x as f64, n + 1));
    if n == 0 {
        m
    } else {
        (sum / n as f64) as f32
    }
}
