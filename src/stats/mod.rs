//! Outlier statistics (docs/contract.md §5): the raw counters the kernels and the reference
//! accumulate, and the report derived from them on the host. What they promise across runs and
//! against the reference (counters exact, float sums within a stated bound, histograms up to the
//! neighbouring bin at an edge) is [`compare`].

pub mod compare;
#[cfg(feature = "files")]
pub mod json;
pub mod report;

use crate::abi::{QaChannelStats, QaHeadStats, QaTensorStats};

/// Names of the four tensors an attention call collects statistics of, in ABI order.
pub const TENSOR_NAMES: [&str; 4] = ["q", "k", "v", "o"];

/// Raw statistics of one or more attention launches: exactly the device buffer's contents.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutlierStats {
    /// Head dimension (channel `c = head * head_dim + dim`).
    pub head_dim: usize,
    /// One per query head.
    pub heads: Vec<QaHeadStats>,
    /// Per-channel moments of Q, K, V, O (query heads for Q/O, kv heads for K/V).
    pub channels: [Vec<QaChannelStats>; 4],
    /// Per-tensor log2 histograms of Q, K, V, O.
    pub tensors: [QaTensorStats; 4],
}

impl OutlierStats {
    /// Zeroed counters for `heads` query heads and `kv_heads` kv heads of dimension `head_dim`.
    pub fn zeroed(heads: usize, kv_heads: usize, head_dim: usize) -> Self {
        let ch = |h: usize| vec![QaChannelStats::default(); h * head_dim];
        OutlierStats {
            head_dim,
            heads: vec![QaHeadStats::default(); heads],
            channels: [ch(heads), ch(kv_heads), ch(kv_heads), ch(heads)],
            tensors: [QaTensorStats::default(); 4],
        }
    }

    /// Adds `other`'s counters (same heads and dims), as one buffer that both launches
    /// accumulated into reads: sums add, absmax is the larger.
    pub fn accumulate(&mut self, other: &OutlierStats) {
        for (a, b) in self.heads.iter_mut().zip(&other.heads) {
            a.rows += b.rows;
            a.first_key_mass += b.first_key_mass;
            a.virtual_sink_mass += b.virtual_sink_mass;
            add_counts(&mut a.max_prob_hist, &b.max_prob_hist);
            add_counts(&mut a.entropy_hist, &b.entropy_hist);
            add_counts(&mut a.logit_range_hist, &b.logit_range_hist);
        }
        for (mine, theirs) in self.channels.iter_mut().zip(&other.channels) {
            for (a, b) in mine.iter_mut().zip(theirs) {
                a.absmax = a.absmax.max(b.absmax);
                a.count += b.count;
                a.sum += b.sum;
                a.sum_sq += b.sum_sq;
                a.sum_3rd += b.sum_3rd;
                a.sum_4th += b.sum_4th;
            }
        }
        for (a, b) in self.tensors.iter_mut().zip(&other.tensors) {
            add_counts(&mut a.log2_hist, &b.log2_hist);
            a.zeros += b.zeros;
            a.non_finite += b.non_finite;
        }
    }
}

fn add_counts(a: &mut [u64], b: &[u64]) {
    for (x, y) in a.iter_mut().zip(b) {
        *x += y;
    }
}

/// Raw statistics of a standalone `[tokens, channels]` activation tensor.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ActivationStats {
    /// One per channel.
    pub channels: Vec<QaChannelStats>,
    /// The whole tensor.
    pub tensor: QaTensorStats,
    /// Per token, the largest finite |x| (0 for a token with none).
    pub token_absmax: Vec<f32>,
}

impl ActivationStats {
    /// Zeroed counters.
    pub fn zeroed(tokens: usize, channels: usize) -> Self {
        ActivationStats {
            channels: vec![QaChannelStats::default(); channels],
            tensor: QaTensorStats::default(),
            token_absmax: vec![0.0; tokens],
        }
    }
}

/// The log2-histogram bin of a finite non-zero `x`: `clamp(floor(log2 |x|) + 24, 0, 39)`.
///
/// `floor(log2 |x|)` is read from the exponent bits: `log2` rounds values just below a power of
/// two up to the integer (e.g. the f64 before 1024 gives exactly 10.0), which would misbin them.
/// Subnormals (exponent field 0) lie far below bin 0 and clamp there.
pub fn log2_bin(x: f64) -> usize {
    let biased = ((x.to_bits() >> 52) & 0x7ff) as i64;
    if biased == 0 {
        return 0;
    }
    let e = biased - 1023 + crate::abi::QA_LOG2_BIN_OFFSET as i64;
    e.clamp(0, crate::abi::QA_LOG2_BINS as i64 - 1) as usize
}

/// The bin of `x` among 16 equal bins over `[0, 1]` (1.0 lands in the last bin).
pub fn unit_bin(x: f64) -> usize {
    ((x * 16.0).floor().max(0.0) as usize).min(15)
}

/// The logit-range bin: width 2 over `[0, 32)`, the last bin open.
pub fn logit_range_bin(range: f64) -> usize {
    ((range / 2.0).floor().max(0.0) as usize).min(15)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_bin_is_exact_just_below_powers_of_two() {
        for k in -20i32..=15 {
            let p = 2f64.powi(k);
            let below = f64::from_bits(p.to_bits() - 1);
            assert_eq!(log2_bin(p), (k + 24) as usize, "2^{k}");
            assert_eq!(log2_bin(-p), (k + 24) as usize, "-2^{k}");
            assert_eq!(log2_bin(below), (k + 23) as usize, "just below 2^{k}");
        }
        assert_eq!(log2_bin(1.0), 24);
        assert_eq!(log2_bin(0.75), 23);
        assert_eq!(log2_bin(1e-30), 0);
        assert_eq!(log2_bin(1e30), 39);
        assert_eq!(log2_bin(f64::MIN_POSITIVE / 4.0), 0);
    }

    #[test]
    fn unit_and_range_bins_cover_their_edges() {
        assert_eq!(unit_bin(0.0), 0);
        assert_eq!(unit_bin(1.0), 15);
        assert_eq!(unit_bin(0.5), 8);
        assert_eq!(logit_range_bin(1.99), 0);
        assert_eq!(logit_range_bin(2.0), 1);
        assert_eq!(logit_range_bin(1e9), 15);
    }
}
