//! The exponential partial: softmax, off_by_one, sink, and pass 1 of clipped softmax.

use super::chunk::{Chunk, LogitRange, axpy, rescaled_sum};

/// What one chunk of the softmax family keeps, all in units shifted by its own max `m`:
/// `l = Σ e^{s−m}`, `acc = Σ e^{s−m}·v`, `t = Σ e^{s−m}·s` (entropy) and the shifted weight
/// `e^{s₀−m}` of the sequence's first key when the chunk holds it.
///
/// Contract (docs/contract.md §7): every chunk starts at `(m, l, acc, t) = (−∞, 0, 0, 0)` — the
/// virtual sink of off_by_one / sink is *not* part of any chunk; [`ExpPartial::merge`] rescales all
/// chunks to `M = max_c m_c` and the normaliser adds the sink term once when it finishes the row.
/// An empty chunk has `m = −∞` and contributes exactly 0.
///
/// ```
/// use quietattn::reference::split::{Chunk, ExpPartial};
///
/// # fn main() -> quietattn::Result<()> {
/// // Two chunks of one key each, logits ln 1 and ln 3, values 1 and 0 (dim 1).
/// let a = ExpPartial::of(&Chunk::new(&[0], &[0.0], &[1.0], 1)?);
/// let b = ExpPartial::of(&Chunk::new(&[1], &[3f64.ln()], &[0.0], 1)?);
/// let row = ExpPartial::merge(&[a, b], 1);
/// assert!((row.m - 3f64.ln()).abs() < 1e-15);
/// assert!((row.acc[0] / row.l - 0.25).abs() < 1e-15); // softmax weight of key 0
/// assert!((row.lse() - 4f64.ln()).abs() < 1e-15);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ExpPartial {
    /// The shift: the chunk's largest logit, −∞ for an empty chunk.
    pub m: f64,
    /// `Σ e^{s−m}`.
    pub l: f64,
    /// `Σ e^{s−m}·v`, head-dimension long.
    pub acc: Vec<f64>,
    /// `Σ e^{s−m}·s`.
    pub t: f64,
    /// `e^{s₀−m}` when the chunk holds the sequence's first key.
    pub first: Option<f64>,
    /// Logit-range pieces.
    pub range: LogitRange,
}

impl ExpPartial {
    /// The partial of one chunk.
    pub fn of(chunk: &Chunk<'_>) -> Self {
        let range = LogitRange::of(chunk.logits());
        let m = range.max;
        // All logits −∞ happens only for non-finite inputs: shift by 0 as the kernels do, so
        // the weights are e^{−∞} = 0 rather than NaN from −∞ − (−∞).
        let shift = if m == f64::NEG_INFINITY { 0.0 } else { m };
        let mut acc = vec![0.0; chunk.dim()];
        let (mut l, mut t) = (0.0, 0.0);
        for (j, &s) in chunk.logits().iter().enumerate() {
            let e = (s - shift).exp();
            l += e;
            t += e * s;
            axpy(&mut acc, e, chunk.value(j));
        }
        let first = chunk.first_key().map(|j| (chunk.logits()[j] - shift).exp());
        ExpPartial {
            m,
            l,
            acc,
            t,
            first,
            range,
        }
    }

    /// Merges chunks (in any order) into the partial of their union: each is rescaled by
    /// `e^{m_c − M}` with `M = max_c m_c`; the first-key weight comes from the chunk that holds
    /// key 0. `dim` is the head dimension (needed when there are no parts).
    pub fn merge(parts: &[ExpPartial], dim: usize) -> Self {
        let m = parts.iter().map(|p| p.m).fold(f64::NEG_INFINITY, f64::max);
        let shift = if m == f64::NEG_INFINITY { 0.0 } else { m };
        // e^{−∞ − M} = 0: empty chunks drop out without a branch.
        let scale = |p: &ExpPartial| (p.m - shift).exp();
        ExpPartial {
            m,
            l: parts.iter().map(|p| scale(p) * p.l).sum(),
            acc: rescaled_sum(dim, parts.iter().map(|p| (scale(p), &p.acc[..]))),
            t: parts.iter().map(|p| scale(p) * p.t).sum(),
            first: parts.iter().find_map(|p| p.first.map(|f| scale(p) * f)),
            range: LogitRange::merge(parts.iter().map(|p| p.range)),
        }
    }

    /// `ln Σ e^s` of the keys alone (−∞ without keys).
    pub fn lse(&self) -> f64 {
        let shift = if self.m == f64::NEG_INFINITY {
            0.0
        } else {
            self.m
        };
        shift + self.l.ln()
    }
}
