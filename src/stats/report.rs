//! The report derived on the host from the raw counters (docs/contract.md §5): channel moments,
//! kurtosis, outlier channels by three published rules, median |x| from the log2 histogram, and
//! per-head sink scores with the sink rate of Gu et al. (arXiv 2410.10781).

#[cfg(feature = "files")]
use serde::Serialize;

use crate::abi::{QA_LOG2_BIN_OFFSET, QaChannelStats, QaHeadStats, QaTensorStats};
use crate::stats::{ActivationStats, OutlierStats, TENSOR_NAMES};

/// ε of the sink rate `Sink_1^ε`: a head is a sink head when its sink score exceeds it.
pub const SINK_EPSILON: f64 = 0.3;
/// LLM.int8() (Dettmers et al.): a channel is an outlier when some |x| reaches 6.
pub const INT8_THRESHOLD: f64 = 6.0;
/// A channel is an outlier when its absmax exceeds this many standard deviations of the tensor.
pub const SIGMA_MULTIPLE: f64 = 6.0;
/// Massive activations (Sun et al., arXiv 2402.17762): |x| of at least 100 ...
pub const MASSIVE_ABS: f64 = 100.0;
/// ... and at least this many times the median |x| of the tensor.
pub const MASSIVE_RATIO: f64 = 1000.0;

/// Moments of one channel derived from its raw sums (population statistics).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "files", derive(Serialize))]
pub struct ChannelMoments {
    /// Finite elements seen.
    pub count: u64,
    /// Mean (`None` without elements).
    pub mean: Option<f64>,
    /// Population variance.
    pub variance: Option<f64>,
    /// Non-excess kurtosis `μ4/σ⁴` (a Gaussian gives 3); `None` when it cannot be resolved.
    pub kurtosis: Option<f64>,
    /// Largest finite |x|.
    pub absmax: f64,
    /// True when a power sum is ±inf although every counted element was finite: the kernels
    /// add partial sums in f32, so `Σx²` overflows for |x| ≳ 1.8e19 and `Σx⁴` for |x| ≳ 1.4e9.
    /// The moments that need an overflowed sum are `None` rather than a made-up number (a
    /// variance bounded to zero by `absmax` and the mean is still exact: see
    /// [`ChannelMoments::from_sums`]).
    pub overflowed: bool,
}

/// Relative size below which a cancelled moment is treated as rounding noise: the kernels sum
/// in f32 before merging into f64, so raw sums carry relative errors around 1e-7..1e-6.
const RESOLUTION: f64 = 1e-5;

impl ChannelMoments {
    /// Derives the moments of `count` elements from their power sums `sums = [Σx, Σx², Σx³, Σx⁴]`.
    ///
    /// The central moments come from the raw ones `m_k = Σx^k / n` (all in f64):
    /// `σ² = m2 − μ²` and `μ4 = m4 − 4μ·m3 + 6μ²·m2 − 3μ⁴`. Both cancel when the spread is small
    /// against the mean, so a moment counts as resolved only when it exceeds 1e-5 times the
    /// terms it was cancelled from (the f32 partial sums of the kernels are good to ~1e-6);
    /// otherwise there is no kurtosis.
    ///
    /// Non-finite elements are never summed, so a non-finite sum is an f32 overflow of the
    /// kernel's partial sums and the kurtosis is `None`. When `Σx²` itself overflowed the
    /// variance is known only through the bound `σ² ≤ absmax² − μ²` (every |x| ≤ absmax): when
    /// that bound is below the resolution the variance is 0 (e.g. a constant tensor of 1e30),
    /// else `None`.
    pub fn from_sums(count: u64, sums: [f64; 4], absmax: f64) -> Self {
        let overflowed = sums.iter().any(|s| !s.is_finite());
        if count == 0 {
            return ChannelMoments {
                count,
                mean: None,
                variance: None,
                kurtosis: None,
                absmax,
                overflowed,
            };
        }
        let n = count as f64;
        let [mean, m2, m3, m4] = sums.map(|s| s / n);
        if overflowed {
            return Self::overflowed(count, mean, m2, absmax);
        }
        let mean2 = mean * mean;
        let variance = (m2 - mean2).max(0.0);
        // Horner form of m4 − 4μ·m3 + 6μ²·m2 − 3μ⁴.
        let mu4 = m4 + mean * (-4.0 * m3 + mean * (6.0 * m2 - 3.0 * mean2));
        let mu4_terms = m4 + 4.0 * (mean * m3).abs() + 6.0 * mean2 * m2 + 3.0 * mean2 * mean2;
        let resolved = variance > RESOLUTION * m2 && mu4 > RESOLUTION * mu4_terms;
        // Any distribution has μ4 ≥ σ⁴; the clamp only removes residual rounding.
        let kurtosis = resolved.then(|| (mu4 / (variance * variance)).max(1.0));
        ChannelMoments {
            count,
            mean: Some(mean),
            variance: Some(variance),
            kurtosis,
            absmax,
            overflowed,
        }
    }

    /// The moments left when a power sum overflowed (see [`Self::from_sums`]).
    fn overflowed(count: u64, mean: f64, m2: f64, absmax: f64) -> Self {
        let mean = mean.is_finite().then_some(mean);
        // (absmax − |μ|)(absmax + |μ|) avoids squaring values near f32::MAX twice.
        let bound = mean.map(|m| (absmax - m.abs()).max(0.0) * (absmax + m.abs()));
        let variance = match mean {
            // Only Σx³ or Σx⁴ overflowed: the variance is as good as ever.
            Some(m) if m2.is_finite() => Some((m2 - m * m).max(0.0)),
            _ => bound
                .filter(|&b| b <= RESOLUTION * absmax * absmax)
                .map(|_| 0.0),
        };
        ChannelMoments {
            count,
            mean,
            variance,
            kurtosis: None,
            absmax,
            overflowed: true,
        }
    }

    /// The moments of one channel's raw counters.
    pub fn of(c: &QaChannelStats) -> Self {
        ChannelMoments::from_sums(
            c.count,
            [c.sum, c.sum_sq, c.sum_3rd, c.sum_4th],
            f64::from(c.absmax),
        )
    }
}

/// The channels flagged by each outlier rule, side by side (channel indices, ascending).
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(feature = "files", derive(Serialize))]
pub struct OutlierChannels {
    /// `absmax ≥ 6` (LLM.int8()).
    pub llm_int8: Vec<usize>,
    /// `absmax > 6σ`, σ of all finite elements of the tensor.
    pub six_sigma: Vec<usize>,
    /// `absmax ≥ 100` and `≥ 1000 × median |x|` (massive activations).
    pub massive: Vec<usize>,
}

/// The derived report of one tensor's channel and histogram counters.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "files", derive(Serialize))]
pub struct TensorReport {
    /// Finite elements (the sum of the channel counts).
    pub finite: u64,
    /// Exact zeros among them.
    pub zeros: u64,
    /// NaN and ±inf elements (in no other counter).
    pub non_finite: u64,
    /// The moments of all finite elements pooled.
    pub pooled: ChannelMoments,
    /// Standard deviation of all finite elements (the σ of the 6σ rule).
    pub sigma: Option<f64>,
    /// Pearson kurtosis `μ4/σ⁴` (non-excess) of all finite elements of the tensor taken as one
    /// population, as Bondarenko et al. (2023) report it for a layer's output. It follows
    /// exactly from the channels' pooled `Σx, Σx², Σx³, Σx⁴` and counts (`pooled.kurtosis`);
    /// unlike the per-channel kurtosis it grows with a few channels that sit far from the rest.
    pub tensor_kurtosis: Option<f64>,
    /// Median |x| read from the log2 histogram: the geometric mid-point `2^(b-24+0.5)` of the bin
    /// holding the median element (0 when the median element is a zero). Accurate to a factor √2.
    pub median_abs: Option<f64>,
    /// Largest |x| of the tensor, i.e. the largest inf-norm of any token.
    pub max_inf_norm: f64,
    /// The channel with the largest resolved kurtosis and that kurtosis.
    pub max_kurtosis: Option<(usize, f64)>,
    /// Per-channel moments.
    pub channels: Vec<ChannelMoments>,
    /// Outlier channels under each rule.
    pub outliers: OutlierChannels,
}

/// Median |x| from a log2 histogram (see [`TensorReport::median_abs`]); zeros sort below bin 0.
/// The median element is the lower median, rank `⌈n/2⌉` of `n` finite elements.
pub fn median_abs_from_hist(hist: &[u64], zeros: u64) -> Option<f64> {
    let total = zeros + hist.iter().sum::<u64>();
    if total == 0 {
        return None;
    }
    let rank = total.div_ceil(2);
    if rank <= zeros {
        return Some(0.0);
    }
    let mut seen = zeros;
    for (b, &n) in hist.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some((b as f64 - f64::from(QA_LOG2_BIN_OFFSET) + 0.5).exp2());
        }
    }
    None
}

/// The bin holding the median element (`None` when it is a zero or there are no elements).
fn median_bin(hist: &[u64], zeros: u64) -> Option<usize> {
    let rank = (zeros + hist.iter().sum::<u64>()).div_ceil(2);
    let mut seen = zeros;
    if rank <= zeros {
        return None;
    }
    hist.iter().position(|&n| {
        seen += n;
        seen >= rank
    })
}

/// [`median_abs_from_hist`] kept inside what is known of the values: never above `absmax`,
/// inside the median bin's range (the first bin reaches down to 0, the last is open up to
/// `absmax`). When every element sits in that one bin and the bin is open or the variance is
/// 0, the estimate is the root mean square `√(Σx²/n)`, which lies in the bin and equals every
/// |x| of a constant tensor.
pub fn median_abs_bounded(hist: &[u64], zeros: u64, pooled: &ChannelMoments) -> Option<f64> {
    let estimate = median_abs_from_hist(hist, zeros)?;
    let Some(b) = median_bin(hist, zeros) else {
        return Some(estimate);
    };
    let absmax = pooled.absmax;
    let edge = |b: usize| (b as f64 - f64::from(QA_LOG2_BIN_OFFSET)).exp2();
    let lo = if b == 0 { 0.0 } else { edge(b) };
    let hi = if b + 1 == hist.len() {
        absmax
    } else {
        edge(b + 1).min(absmax)
    };
    let alone = zeros == 0 && hist[b] == hist.iter().sum::<u64>();
    let rms = pooled
        .mean
        .zip(pooled.variance)
        .map(|(m, v)| (v + m * m).sqrt())
        .filter(|r| r.is_finite());
    let open = b == 0 || b + 1 == hist.len();
    let constant = pooled.variance == Some(0.0);
    let estimate = match rms {
        Some(r) if alone && (constant || open) => r,
        // An open bin's mid-point means nothing: take the geometric middle of what is known.
        _ if open && lo > 0.0 => (lo * hi).sqrt(),
        _ => estimate,
    };
    Some(estimate.clamp(lo.min(hi), hi))
}

impl TensorReport {
    /// Derives the report of one tensor.
    pub fn new(channels: &[QaChannelStats], tensor: &QaTensorStats) -> Self {
        let moments: Vec<ChannelMoments> = channels.iter().map(ChannelMoments::of).collect();
        let (mut n, mut sums, mut absmax) = (0u64, [0.0f64; 4], 0.0f64);
        for c in channels {
            n += c.count;
            for (acc, s) in sums.iter_mut().zip([c.sum, c.sum_sq, c.sum_3rd, c.sum_4th]) {
                *acc += s;
            }
            absmax = absmax.max(f64::from(c.absmax));
        }
        let pooled = ChannelMoments::from_sums(n, sums, absmax);
        let sigma = pooled.variance.map(f64::sqrt);
        let median_abs = median_abs_bounded(&tensor.log2_hist, tensor.zeros, &pooled);
        let max_kurtosis = moments
            .iter()
            .enumerate()
            .filter_map(|(c, m)| m.kurtosis.map(|k| (c, k)))
            .fold(None, |best: Option<(usize, f64)>, (c, k)| match best {
                Some((_, bk)) if bk >= k => best,
                _ => Some((c, k)),
            });
        let outliers = outlier_channels(&moments, sigma, median_abs);
        TensorReport {
            finite: n,
            zeros: tensor.zeros,
            non_finite: tensor.non_finite,
            pooled,
            sigma,
            tensor_kurtosis: pooled.kurtosis,
            median_abs,
            max_inf_norm: absmax,
            max_kurtosis,
            channels: moments,
            outliers,
        }
    }
}

/// Applies the three outlier rules to every channel with elements.
fn outlier_channels(
    moments: &[ChannelMoments],
    sigma: Option<f64>,
    median_abs: Option<f64>,
) -> OutlierChannels {
    let mut out = OutlierChannels::default();
    for (c, m) in moments.iter().enumerate().filter(|(_, m)| m.count > 0) {
        if m.absmax >= INT8_THRESHOLD {
            out.llm_int8.push(c);
        }
        if sigma.is_some_and(|s| m.absmax > SIGMA_MULTIPLE * s) {
            out.six_sigma.push(c);
        }
        if m.absmax >= MASSIVE_ABS && median_abs.is_some_and(|med| m.absmax >= MASSIVE_RATIO * med)
        {
            out.massive.push(c);
        }
    }
    out
}

/// The per-head row statistics, derived.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "files", derive(Serialize))]
pub struct HeadReport {
    /// Query head.
    pub head: usize,
    /// Rows with at least one visible key.
    pub rows: u64,
    /// `first_key_mass / rows`: mean attention paid to the first key.
    pub sink_score: Option<f64>,
    /// True when the sink score exceeds [`SINK_EPSILON`].
    pub sink_head: bool,
    /// `virtual_sink_mass / rows` (0 for normalisers without a virtual sink).
    pub virtual_sink_per_row: Option<f64>,
    /// Mean of `max_j p_ij`, from the histogram's bin centres (approximate to ±1/32).
    pub mean_max_prob: Option<f64>,
    /// Mean normalised entropy, from the histogram's bin centres (approximate to ±1/32).
    pub mean_entropy: Option<f64>,
}

/// Mean of a 16-bin histogram over [0, 1] taken at the bin centres.
fn unit_hist_mean(hist: &[u64]) -> Option<f64> {
    let n: u64 = hist.iter().sum();
    let weighted: f64 = hist
        .iter()
        .enumerate()
        .map(|(b, &c)| c as f64 * (b as f64 + 0.5) / hist.len() as f64)
        .sum();
    (n > 0).then(|| weighted / n as f64)
}

impl HeadReport {
    /// Derives the report of head `head`.
    pub fn new(head: usize, h: &QaHeadStats) -> Self {
        let per_row = |x: f64| (h.rows > 0).then(|| x / h.rows as f64);
        let sink_score = per_row(h.first_key_mass);
        HeadReport {
            head,
            rows: h.rows,
            sink_score,
            sink_head: sink_score.is_some_and(|s| s > SINK_EPSILON),
            virtual_sink_per_row: per_row(h.virtual_sink_mass),
            mean_max_prob: unit_hist_mean(&h.max_prob_hist),
            mean_entropy: unit_hist_mean(&h.entropy_hist),
        }
    }
}

/// The derived report of an attention call's [`OutlierStats`].
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "files", derive(Serialize))]
pub struct AttentionReport {
    /// The ε of the sink rate.
    pub sink_epsilon: f64,
    /// `Sink_1^ε`: the fraction of heads (with rows) whose sink score exceeds ε.
    pub sink_rate: Option<f64>,
    /// Mean sink score over the heads with rows.
    pub mean_sink_score: Option<f64>,
    /// Mean of the heads' mean normalised entropies.
    pub mean_entropy: Option<f64>,
    /// Per head.
    pub heads: Vec<HeadReport>,
    /// Q, K, V and O, in that order (a JSON object keyed `q`, `k`, `v`, `o`).
    #[cfg_attr(feature = "files", serde(serialize_with = "serialize_named"))]
    pub tensors: [TensorReport; 4],
}

/// Writes the four tensor reports as an object keyed by [`TENSOR_NAMES`].
#[cfg(feature = "files")]
fn serialize_named<S: serde::Serializer>(
    tensors: &[TensorReport; 4],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(4))?;
    for (name, t) in TENSOR_NAMES.iter().zip(tensors) {
        map.serialize_entry(name, t)?;
    }
    map.end()
}

/// Mean of the `Some` values.
fn mean_of(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let (n, s) = values
        .flatten()
        .fold((0usize, 0.0), |(n, s), x| (n + 1, s + x));
    (n > 0).then(|| s / n as f64)
}

impl AttentionReport {
    /// Derives the report.
    pub fn new(stats: &OutlierStats) -> Self {
        let heads: Vec<HeadReport> = stats
            .heads
            .iter()
            .enumerate()
            .map(|(i, h)| HeadReport::new(i, h))
            .collect();
        let with_rows = || heads.iter().filter(|h| h.rows > 0);
        let sink_rate = mean_of(with_rows().map(|h| Some(if h.sink_head { 1.0 } else { 0.0 })));
        AttentionReport {
            sink_epsilon: SINK_EPSILON,
            sink_rate,
            mean_sink_score: mean_of(with_rows().map(|h| h.sink_score)),
            mean_entropy: mean_of(with_rows().map(|h| h.mean_entropy)),
            tensors: std::array::from_fn(|t| {
                TensorReport::new(&stats.channels[t], &stats.tensors[t])
            }),
            heads,
        }
    }

    /// The report of tensor `name` (`q`, `k`, `v` or `o`).
    pub fn tensor(&self, name: &str) -> Option<&TensorReport> {
        TENSOR_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| &self.tensors[i])
    }
}

/// The derived report of a standalone activation tensor.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "files", derive(Serialize))]
pub struct ActivationReport {
    /// Tokens (rows).
    pub tokens: usize,
    /// The channel and histogram report.
    pub tensor: TensorReport,
    /// The tokens with the largest inf-norm, largest first (at most [`TOP_TOKENS`]).
    pub top_tokens: Vec<(usize, f64)>,
}

/// How many tokens [`ActivationReport::top_tokens`] lists.
pub const TOP_TOKENS: usize = 8;

impl ActivationReport {
    /// Derives the report.
    pub fn new(stats: &ActivationStats) -> Self {
        let mut order: Vec<(usize, f64)> = stats
            .token_absmax
            .iter()
            .map(|&a| f64::from(a))
            .enumerate()
            .collect();
        order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        order.truncate(TOP_TOKENS);
        ActivationReport {
            tokens: stats.token_absmax.len(),
            tensor: TensorReport::new(&stats.channels, &stats.tensor),
            top_tokens: order,
        }
    }
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
