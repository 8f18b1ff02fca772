//! Split-KV in f64 (docs/contract.md §7): a row's visible keys are cut into chunks, each chunk
//! keeps a per-normaliser partial, and a merge gives exactly the unsplit row — output, `lse` and
//! the row statistics of docs/contract.md §5. This is the contract the decode combine kernel
//! implements:
//!
//! | normaliser | partial | merge | finish |
//! |---|---|---|---|
//! | softmax | [`ExpPartial`] `(m, l, acc, t)` | rescale to `M = max m_c` | `o = acc/l`, `lse = M + ln l` |
//! | off_by_one, sink | [`ExpPartial`], no sink in any chunk | as softmax | sink term `e^{σ−M'}` added once, `M' = max(M, σ)` |
//! | clipped | pass 1 [`ExpPartial`], pass 2 [`AbsolutePartial`] | pass 1 as softmax → `lse`; pass 2 sums | `o = acc` |
//! | softpick | [`SoftpickPartial`] `(m ≥ 0, l = Σ|N|, acc = Σ relu(N)·v)` | rescale to `M = max m_c` | `o = acc/(l + ε e^{−M})` |
//! | sigmoid | [`AbsolutePartial`] | sums | `o = acc`, `lse = 0` |
//!
//! Row statistics ride along: entropy from `t` (softmax family, `H = lse − t/l` with the sink
//! as one more outcome) or from `Σ w ln w` (the others, weights renormalised to sum 1), the
//! first-key weight from the chunk that holds key 0, the largest weight (`e^{M−lse}` for the
//! softmax family), and the logit range from `(count, Σ s, max s)`. The reference works in
//! natural units; kernels that fold `log2 e` into the scale use the same rules with `2^{…}`.

mod absolute;
mod chunk;
mod exp;
mod softpick;

pub use absolute::AbsolutePartial;
pub use chunk::{Chunk, LogitRange};
pub use exp::ExpPartial;
pub use softpick::SoftpickPartial;

use super::normaliser::{RowParams, masked_lse, sigmoid};
use crate::abi::QaHeadStats;
use crate::stats::{logit_range_bin, unit_bin};
use crate::variant::{Normaliser, SOFTPICK_EPS};

/// One row after the merge.
#[derive(Clone, Debug, PartialEq)]
pub struct MergedRow {
    /// The (ungated) output row.
    pub o: Vec<f64>,
    /// The row's `lse` as docs/contract.md §3 defines it for the normaliser.
    pub lse: f64,
    /// The row statistics; `None` for a row without visible keys (docs/contract.md §5 skips it).
    pub stats: Option<RowStats>,
}

/// The per-row quantities docs/contract.md §5 bins, computed from merged partials.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RowStats {
    /// Visible keys.
    pub keys: usize,
    /// Weight of the sequence's first key (0 when it is not visible).
    pub first_key_weight: f64,
    /// Largest weight (at least 0).
    pub max_weight: f64,
    /// Entropy over `ln(#outcomes)`, 0 with a single outcome.
    pub entropy: f64,
    /// `max s − mean s`.
    pub logit_range: f64,
    /// Mass of the virtual outcome (off_by_one, sink).
    pub virtual_sink: Option<f64>,
}

impl RowStats {
    /// Adds the row to a head's counters exactly as the unsplit kernel does.
    pub fn add_to(&self, head: &mut QaHeadStats) {
        head.rows += 1;
        head.first_key_mass += self.first_key_weight;
        if let Some(p) = self.virtual_sink {
            head.virtual_sink_mass += p;
        }
        head.max_prob_hist[unit_bin(self.max_weight)] += 1;
        head.entropy_hist[unit_bin(self.entropy)] += 1;
        head.logit_range_hist[logit_range_bin(self.logit_range)] += 1;
    }
}

/// Runs the whole split-KV protocol for one row: a partial per chunk, the merge, and (clipped)
/// the second pass with the merged `lse`. `dim` is the head dimension. One chunk holding every
/// key is the unsplit row; chunks may be empty.
///
/// ```
/// use quietattn::Normaliser;
/// use quietattn::reference::RowParams;
/// use quietattn::reference::split::{Chunk, split_row};
///
/// # fn main() -> quietattn::Result<()> {
/// // softmax1 over two keys with logit 0, one per chunk: each key and the virtual sink get 1/3.
/// let params = RowParams { sink: 0.0, bias: 0.0 };
/// let a = Chunk::new(&[0], &[0.0], &[3.0], 1)?;
/// let b = Chunk::new(&[1], &[0.0], &[6.0], 1)?;
/// let row = split_row(&Normaliser::OffByOne, params, &[a, b], 1);
/// assert!((row.o[0] - 3.0).abs() < 1e-15);
/// assert!((row.lse - 3f64.ln()).abs() < 1e-15);
/// let stats = row.stats.expect("two visible keys");
/// assert!((stats.virtual_sink.unwrap() - 1.0 / 3.0).abs() < 1e-15);
/// # Ok(())
/// # }
/// ```
pub fn split_row(
    norm: &Normaliser,
    params: RowParams,
    chunks: &[Chunk<'_>],
    dim: usize,
) -> MergedRow {
    if chunks.iter().all(Chunk::is_empty) {
        return MergedRow {
            o: vec![0.0; dim],
            lse: masked_lse(norm, params),
            stats: None,
        };
    }
    match *norm {
        Normaliser::Softmax => finish_exp(ExpPartial::merge(&exp_parts(chunks), dim), None),
        Normaliser::OffByOne | Normaliser::Sink => finish_exp(
            ExpPartial::merge(&exp_parts(chunks), dim),
            Some(params.sink),
        ),
        Normaliser::Clipped { gamma, zeta } => {
            let lse = ExpPartial::merge(&exp_parts(chunks), dim).lse();
            let (gamma, zeta) = (f64::from(gamma), f64::from(zeta));
            let weight = |s: f64| ((zeta - gamma) * (s - lse).exp() + gamma).clamp(0.0, 1.0);
            let parts: Vec<_> = chunks
                .iter()
                .map(|c| AbsolutePartial::of(c, weight))
                .collect();
            finish_absolute(AbsolutePartial::merge(&parts, dim), lse)
        }
        Normaliser::Softpick => {
            let parts: Vec<_> = chunks.iter().map(SoftpickPartial::of).collect();
            finish_softpick(SoftpickPartial::merge(&parts, dim))
        }
        Normaliser::Sigmoid { .. } => {
            let weight = |s: f64| sigmoid(s + params.bias);
            let parts: Vec<_> = chunks
                .iter()
                .map(|c| AbsolutePartial::of(c, weight))
                .collect();
            finish_absolute(AbsolutePartial::merge(&parts, dim), 0.0)
        }
    }
}

fn exp_parts(chunks: &[Chunk<'_>]) -> Vec<ExpPartial> {
    chunks.iter().map(ExpPartial::of).collect()
}

/// The softmax family's row: the virtual outcome (logit `sink`) enters the denominator and the
/// entropy sum here, once.
fn finish_exp(p: ExpPartial, sink: Option<f64>) -> MergedRow {
    let shift = sink.map_or(p.m, |s| p.m.max(s));
    let keys = (p.m - shift).exp();
    let sink_e = sink.map_or(0.0, |s| (s - shift).exp());
    let l = keys * p.l + sink_e;
    let t = keys * p.t + sink.map_or(0.0, |s| sink_e * s);
    let lse = shift + l.ln();
    let outcomes = p.range.keys + usize::from(sink.is_some());
    let entropy = if outcomes > 1 {
        (lse - t / l) / (outcomes as f64).ln()
    } else {
        0.0
    };
    MergedRow {
        o: p.acc.iter().map(|a| keys * a / l).collect(),
        lse,
        stats: Some(RowStats {
            keys: p.range.keys,
            first_key_weight: p.first.map_or(0.0, |f| keys * f / l),
            max_weight: (p.m - lse).exp(),
            entropy,
            logit_range: p.range.range(),
            virtual_sink: sink.map(|s| (s - lse).exp()),
        }),
    }
}

/// Rows whose merged sums are the output itself (sigmoid; clipped pass 2).
fn finish_absolute(p: AbsolutePartial, lse: f64) -> MergedRow {
    MergedRow {
        o: p.acc,
        lse,
        stats: Some(RowStats {
            keys: p.range.keys,
            first_key_weight: p.first.unwrap_or(0.0),
            max_weight: p.max_w,
            entropy: renormalised_entropy(p.range.keys, p.w_sum, p.w_log_w),
            logit_range: p.range.range(),
            virtual_sink: None,
        }),
    }
}

/// softpick's row: `p = relu(N)/(l + ε·e^{−M})`, `lse = M + ln l` (−∞ when `l = 0`).
fn finish_softpick(p: SoftpickPartial) -> MergedRow {
    let denom = p.l + SOFTPICK_EPS * (-p.m).exp();
    MergedRow {
        o: p.acc.iter().map(|a| a / denom).collect(),
        lse: if p.l == 0.0 {
            f64::NEG_INFINITY
        } else {
            p.m + p.l.ln()
        },
        stats: Some(RowStats {
            keys: p.range.keys,
            first_key_weight: p.first.map_or(0.0, |f| f / denom),
            max_weight: p.max_pos / denom,
            entropy: renormalised_entropy(p.range.keys, p.pos, p.pos_log_pos),
            logit_range: p.range.range(),
            virtual_sink: None,
        }),
    }
}

/// `H/ln n` of weights renormalised to sum 1, from `W = Σ w` and `U = Σ w ln w`:
/// `H = ln W − U/W` (any common scale of the weights cancels). 0 for one key or no mass.
fn renormalised_entropy(keys: usize, w_sum: f64, w_log_w: f64) -> f64 {
    if keys <= 1 || w_sum == 0.0 {
        return 0.0;
    }
    (w_sum.ln() - w_log_w / w_sum) / (keys as f64).ln()
}
