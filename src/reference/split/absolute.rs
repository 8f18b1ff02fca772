//! The absolute partial: weights known per key without any row-wide quantity (sigmoid), or
//! once the row's `lse` is known (pass 2 of clipped softmax).

use super::chunk::{Chunk, LogitRange, axpy, rescaled_sum};

/// What one chunk keeps when its weights are absolute numbers: `acc = Σ w·v`, `w_sum = Σ w`,
/// `w_log_w = Σ w ln w` (entropy of the weights renormalised to sum 1), the largest weight and
/// the weight of the sequence's first key when the chunk holds it.
///
/// Contract (docs/contract.md §7): no rescaling; the merge sums `acc`, `w_sum`, `w_log_w`, takes
/// the max of the largest weights and the first-key weight from the chunk holding key 0. Sigmoid
/// uses it directly; clipped softmax uses it in pass 2, after pass 1 merged the row's `lse`.
///
/// ```
/// use quietattn::reference::split::{AbsolutePartial, Chunk};
///
/// # fn main() -> quietattn::Result<()> {
/// let a = Chunk::new(&[0], &[0.0], &[2.0], 1)?;
/// let b = Chunk::new(&[1], &[0.0], &[4.0], 1)?;
/// let half = |_: f64| 0.5; // any per-key weight rule
/// let row = AbsolutePartial::merge(&[AbsolutePartial::of(&a, half), AbsolutePartial::of(&b, half)], 1);
/// assert_eq!(row.acc, vec![3.0]);
/// assert_eq!(row.w_sum, 1.0);
/// assert_eq!(row.first, Some(0.5));
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct AbsolutePartial {
    /// `Σ w·v`.
    pub acc: Vec<f64>,
    /// `Σ w`.
    pub w_sum: f64,
    /// `Σ w ln w` (with `0 ln 0 = 0`).
    pub w_log_w: f64,
    /// `max w` (0 for no key).
    pub max_w: f64,
    /// The first key's weight when the chunk holds it.
    pub first: Option<f64>,
    /// Logit-range pieces.
    pub range: LogitRange,
}

impl AbsolutePartial {
    /// The partial of one chunk whose key weights are `weight(s)` of their logits.
    pub fn of(chunk: &Chunk<'_>, weight: impl Fn(f64) -> f64) -> Self {
        let weights: Vec<f64> = chunk.logits().iter().map(|&s| weight(s)).collect();
        let mut acc = vec![0.0; chunk.dim()];
        for (j, &w) in weights.iter().enumerate() {
            axpy(&mut acc, w, chunk.value(j));
        }
        AbsolutePartial {
            acc,
            w_sum: weights.iter().sum(),
            w_log_w: weights.iter().map(|&w| plogp(w)).sum(),
            max_w: weights.iter().copied().fold(0.0, f64::max),
            first: chunk.first_key().map(|j| weights[j]),
            range: LogitRange::of(chunk.logits()),
        }
    }

    /// Merges chunks (in any order) by plain sums; `dim` is the head dimension.
    pub fn merge(parts: &[AbsolutePartial], dim: usize) -> Self {
        AbsolutePartial {
            acc: rescaled_sum(dim, parts.iter().map(|p| (1.0, &p.acc[..]))),
            w_sum: parts.iter().map(|p| p.w_sum).sum(),
            w_log_w: parts.iter().map(|p| p.w_log_w).sum(),
            max_w: parts.iter().map(|p| p.max_w).fold(0.0, f64::max),
            first: parts.iter().find_map(|p| p.first),
            range: LogitRange::merge(parts.iter().map(|p| p.range)),
        }
    }
}

/// `x ln x` with the limit 0 at `x = 0`.
pub(super) fn plogp(x: f64) -> f64 {
    if x == 0.0 { 0.0 } else { x * x.ln() }
}
