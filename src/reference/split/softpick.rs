//! The softpick partial: a rectified numerator and an absolute-value denominator, both shifted.

use super::absolute::plogp;
use super::chunk::{Chunk, LogitRange, axpy, rescaled_sum};
use crate::reference::normaliser::softpick_numerator;

/// What one chunk of softpick keeps, in units shifted by its own `m = max(0, max s)`: with
/// `N_j = (e^{s_j} − 1)·e^{−m}`, `l = Σ |N_j|`, `acc = Σ relu(N_j)·v_j`, `pos = Σ relu(N_j)` and
/// `pos_log_pos = Σ relu(N_j) ln relu(N_j)` (entropy of the renormalised weights), the largest
/// `relu(N_j)` and the first key's `relu(N_0)` when the chunk holds key 0.
///
/// Contract (docs/contract.md §7): merged like softmax with `M = max_c m_c` (so `M ≥ 0` and
/// `e^{−M}` never overflows): every sum is scaled by `α_c = e^{m_c−M}`, except `pos_log_pos`, which
/// becomes `α_c·(pos_log_pos_c + ln α_c·pos_c)`. The row's weights are `relu(N)/(l + ε·e^{−M})`.
///
/// ```
/// use quietattn::reference::split::{Chunk, SoftpickPartial};
///
/// # fn main() -> quietattn::Result<()> {
/// // Keys with e^s − 1 = 1 and −1/2 (value 1 and 7): p = (1, 0) / (1.5 + ε).
/// let a = SoftpickPartial::of(&Chunk::new(&[0], &[2f64.ln()], &[1.0], 1)?);
/// let b = SoftpickPartial::of(&Chunk::new(&[1], &[0.5f64.ln()], &[7.0], 1)?);
/// let row = SoftpickPartial::merge(&[a, b], 1);
/// let denom = row.l + 1e-6 * (-row.m).exp();
/// assert!((row.acc[0] / denom - 1.0 / (1.5 + 1e-6)).abs() < 1e-15);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SoftpickPartial {
    /// The shift `max(0, max s)` (0 for an empty chunk).
    pub m: f64,
    /// `Σ |N|`.
    pub l: f64,
    /// `Σ relu(N)·v`.
    pub acc: Vec<f64>,
    /// `Σ relu(N)`.
    pub pos: f64,
    /// `Σ relu(N) ln relu(N)`.
    pub pos_log_pos: f64,
    /// `max relu(N)`.
    pub max_pos: f64,
    /// `relu(N₀)` when the chunk holds the sequence's first key.
    pub first: Option<f64>,
    /// Logit-range pieces.
    pub range: LogitRange,
}

impl SoftpickPartial {
    /// The partial of one chunk.
    pub fn of(chunk: &Chunk<'_>) -> Self {
        let range = LogitRange::of(chunk.logits());
        let m = range.max.max(0.0);
        let shift = (-m).exp();
        let n: Vec<f64> = chunk
            .logits()
            .iter()
            .map(|&s| softpick_numerator(s, m, shift))
            .collect();
        let mut acc = vec![0.0; chunk.dim()];
        for (j, &x) in n.iter().enumerate() {
            axpy(&mut acc, x.max(0.0), chunk.value(j));
        }
        SoftpickPartial {
            m,
            l: n.iter().map(|x| x.abs()).sum(),
            acc,
            pos: n.iter().map(|x| x.max(0.0)).sum(),
            pos_log_pos: n.iter().map(|x| plogp(x.max(0.0))).sum(),
            max_pos: n.iter().fold(0.0, |a, &x| a.max(x)),
            first: chunk.first_key().map(|j| n[j].max(0.0)),
            range,
        }
    }

    /// Merges chunks (in any order) into the partial of their union; `dim` is the head dimension.
    pub fn merge(parts: &[SoftpickPartial], dim: usize) -> Self {
        let m = parts.iter().map(|p| p.m).fold(0.0, f64::max);
        let alpha = |p: &SoftpickPartial| (p.m - m).exp();
        // r' = α·r ⇒ r' ln r' = α·(r ln r) + α·ln α·r.
        let pos_log_pos = parts
            .iter()
            .map(|p| alpha(p) * (p.pos_log_pos + (p.m - m) * p.pos))
            .sum();
        SoftpickPartial {
            m,
            l: parts.iter().map(|p| alpha(p) * p.l).sum(),
            acc: rescaled_sum(dim, parts.iter().map(|p| (alpha(p), &p.acc[..]))),
            pos: parts.iter().map(|p| alpha(p) * p.pos).sum(),
            pos_log_pos,
            max_pos: parts
                .iter()
                .map(|p| alpha(p) * p.max_pos)
                .fold(0.0, f64::max),
            first: parts.iter().find_map(|p| p.first.map(|f| alpha(p) * f)),
            range: LogitRange::merge(parts.iter().map(|p| p.range)),
        }
    }
}
