//! Per-head row statistics of docs/contract.md §5, from one materialised row.
//!
//! NaN weights or logits (non-finite inputs) land in bin 0 of the affected histograms: the bin
//! helpers map NaN to 0, and no statistic panics.

use crate::abi::QaHeadStats;
use crate::stats::{logit_range_bin, unit_bin};
use crate::variant::Normaliser;

/// One row with at least one visible key, as the output used it.
#[derive(Clone, Copy, Debug)]
pub struct Row<'a> {
    /// Visible key positions within the sequence (ascending).
    pub keys: &'a [usize],
    /// The visible logits after scale and softcap, aligned with `keys`.
    pub logits: &'a [f64],
    /// The actual weights the output used, aligned with `keys`.
    pub weights: &'a [f64],
    /// The row's `lse`.
    pub lse: f64,
    /// The virtual sink logit (0 for `off_by_one`, `σ_h` for `sink`).
    pub sink: f64,
}

/// Adds one row to a head's counters. Rows without visible keys must not be passed.
pub fn add_row(head: &mut QaHeadStats, norm: &Normaliser, row: &Row<'_>) {
    debug_assert!(!row.keys.is_empty());
    head.rows += 1;
    if row.keys.first() == Some(&0) {
        head.first_key_mass += row.weights[0];
    }
    let max_p = row.weights.iter().copied().fold(0.0, f64::max);
    head.max_prob_hist[unit_bin(max_p)] += 1;

    let sink_p = norm.has_virtual_sink().then(|| (row.sink - row.lse).exp());
    if let Some(p) = sink_p {
        head.virtual_sink_mass += p;
    }
    head.entropy_hist[unit_bin(normalised_entropy(norm, row.weights, sink_p))] += 1;

    let n = row.logits.len() as f64;
    let max_s = row.logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mean_s = row.logits.iter().sum::<f64>() / n;
    head.logit_range_hist[logit_range_bin(max_s - mean_s)] += 1;
}

/// `H / ln(#outcomes)` of the row's outcome distribution (docs/contract.md §5): the softmax family
/// uses the probabilities as they are (plus the virtual sink outcome when there is one); the
/// other normalisers use their weights renormalised to sum 1, and 0 when they sum to 0.
pub fn normalised_entropy(norm: &Normaliser, weights: &[f64], sink_p: Option<f64>) -> f64 {
    let renormalise = !matches!(
        norm,
        Normaliser::Softmax | Normaliser::OffByOne | Normaliser::Sink
    );
    let total: f64 = if renormalise {
        weights.iter().sum()
    } else {
        1.0
    };
    let outcomes = weights.len() + usize::from(sink_p.is_some());
    if outcomes <= 1 || total == 0.0 {
        return 0.0;
    }
    let h: f64 = weights
        .iter()
        .chain(sink_p.iter())
        .map(|&w| plogp(w / total))
        .sum();
    -h / (outcomes as f64).ln()
}

/// `p ln p` with the limit 0 at `p = 0`.
fn plogp(p: f64) -> f64 {
    if p == 0.0 { 0.0 } else { p * p.ln() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_row_has_entropy_one_and_one_hot_zero() {
        let n = Normaliser::Softmax;
        let h = normalised_entropy(&n, &[0.25; 4], None);
        assert!((h - 1.0).abs() < 1e-15);
        assert_eq!(normalised_entropy(&n, &[1.0, 0.0, 0.0], None), 0.0);
        assert_eq!(normalised_entropy(&n, &[1.0], None), 0.0);
    }

    #[test]
    fn renormalised_entropy_ignores_total_mass() {
        let n = Normaliser::Sigmoid { bias: None };
        let h = normalised_entropy(&n, &[0.1, 0.1], None);
        assert!((h - 1.0).abs() < 1e-15);
        assert_eq!(normalised_entropy(&n, &[0.0, 0.0], None), 0.0);
    }

    #[test]
    fn virtual_sink_is_an_extra_outcome() {
        // One key with p = 1/2 and the sink with 1/2: two equally likely outcomes.
        let h = normalised_entropy(&Normaliser::OffByOne, &[0.5], Some(0.5));
        assert!((h - 1.0).abs() < 1e-15);
    }
}
