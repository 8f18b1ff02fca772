//! Per-channel moments and per-tensor log2 histograms of docs/contract.md §5.

use crate::abi::{QaChannelStats, QaTensorStats};
use crate::stats::log2_bin;

/// Counts one element `x` of channel `ch` of tensor `t`.
///
/// Non-finite elements go to `t.non_finite` only; finite ones to the channel moments and to
/// either `t.zeros` (exact ±0) or the log2 histogram.
pub fn add_element(ch: &mut QaChannelStats, t: &mut QaTensorStats, x: f64) {
    if !x.is_finite() {
        t.non_finite += 1;
        return;
    }
    ch.count += 1;
    let x2 = x * x;
    ch.sum += x;
    ch.sum_sq += x2;
    ch.sum_3rd += x2 * x;
    ch.sum_4th += x2 * x2;
    // Rounding |x| to f32 is monotonic, so the max of rounded values is the rounded max.
    ch.absmax = ch.absmax.max(x.abs() as f32);
    if x == 0.0 {
        t.zeros += 1;
    } else {
        t.log2_hist[log2_bin(x)] += 1;
    }
}

/// Counts a row of `head_dim` elements of head `head` (channels `head * d ..`).
pub fn add_row(channels: &mut [QaChannelStats], t: &mut QaTensorStats, head: usize, row: &[f64]) {
    let base = head * row.len();
    for (ch, &x) in channels[base..base + row.len()].iter_mut().zip(row) {
        add_element(ch, t, x);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_goes_only_to_its_counter() {
        let (mut ch, mut t) = (QaChannelStats::default(), QaTensorStats::default());
        for x in [f64::NAN, f64::INFINITY, -0.0, 0.0, 2.0, -3.0] {
            add_element(&mut ch, &mut t, x);
        }
        assert_eq!((t.non_finite, t.zeros, ch.count), (2, 2, 4));
        assert_eq!(t.log2_hist.iter().sum::<u64>(), 2);
        // |2| and |-3| both have floor(log2) = 1.
        assert_eq!(t.log2_hist[25], 2);
        // 2 - 3, 4 + 9, 8 - 27, 16 + 81 (the zeros add nothing).
        assert_eq!(
            (ch.sum, ch.sum_sq, ch.sum_3rd, ch.sum_4th),
            (-1.0, 13.0, -19.0, 97.0)
        );
        assert_eq!(ch.absmax, 3.0);
    }
}
