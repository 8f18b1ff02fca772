//! The paged reference: gather each sequence's pages into contiguous K/V and run the ordinary
//! f64 reference on the varlen problem they form, so every normaliser, mask, gate, softcap and
//! statistic means exactly what it means without pages.
//!
//! K and V statistics therefore count each key of each sequence once: a page that two
//! sequences share (a common prefix) is counted for both, as if it had been read twice.

use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::problem::{AttentionInputs, NumericsReport, PagedAttentionInputs, PagedProblem};
use crate::stats::OutlierStats;
use crate::tensor::{Tensor, TensorView};
use crate::variant::AttentionOptions;

use crate::ops::AttentionOutput;

/// The f64 result of [`paged_attention`], shaped like an ordinary call with the same queries:
/// `o` `[b, sq, h, d]` (or `[total_q, h, d]`), `lse` `[b, h, sq]` (or `[h, total_q]`).
#[derive(Clone, Debug)]
pub struct PagedReference {
    /// The (gated) output, row-major in `problem.geometry.o_shape()`.
    pub o: Vec<f64>,
    /// The per-row `lse`, row-major in `problem.geometry.lse_shape()`.
    pub lse: Vec<f64>,
    /// Every statistic of docs/contract.md §5.
    pub stats: OutlierStats,
    /// The validated paged problem.
    pub problem: PagedProblem,
}

impl PagedReference {
    /// `o` rounded to the queries' dtype, `lse` to f32, and the statistics when `want_stats`.
    /// Its `numerics` counts the non-finite outputs only: the f64 reference has no f32 range
    /// to check the inputs against (the decode kernels' host path will scan them).
    pub fn into_output(self, want_stats: bool) -> Result<AttentionOutput> {
        let g = &self.problem.geometry;
        let o = Tensor::from_f64(g.dtype, &self.o, &g.o_shape())?;
        let numerics = NumericsReport {
            non_finite_o: o.data.as_ref().count_non_finite(),
            ..NumericsReport::default()
        };
        Ok(AttentionOutput {
            o,
            lse: Tensor::from_f64(DType::F32, &self.lse, &g.lse_shape())?,
            stats: want_stats.then_some(self.stats),
            numerics,
        })
    }
}

/// Attention against a paged KV cache in f64 on the CPU, with statistics.
///
/// ```
/// use quietattn::{AttentionOptions, BlockTable, DType, Normaliser, PagedAttentionInputs, Tensor};
/// use quietattn::reference::paged_attention;
///
/// # fn main() -> quietattn::Result<()> {
/// let values = |n: usize, f: f64| (0..n).map(|i| (i as f64 * f).sin()).collect::<Vec<_>>();
/// // One sequence of 20 keys in pages 1 and 0 (16 keys each), one query token, GQA 2:1.
/// let q = Tensor::from_f64(DType::F32, &values(2 * 8, 0.3), &[1, 1, 2, 8])?;
/// let k = Tensor::from_f64(DType::F32, &values(2 * 16 * 8, 0.7), &[2, 16, 1, 8])?;
/// let v = Tensor::from_f64(DType::F32, &values(2 * 16 * 8, 1.1), &[2, 16, 1, 8])?;
/// let (table, lens) = ([1, 0], [20]);
/// let inputs = PagedAttentionInputs::new(
///     q.view(), k.view(), v.view(), BlockTable::new(&table, 1, 2)?, &lens);
/// let options = AttentionOptions { normaliser: Normaliser::OffByOne, ..Default::default() };
/// let out = paged_attention(&inputs, &options)?;
/// assert_eq!(out.problem.geometry.o_shape(), vec![1, 1, 2, 8]);
/// assert_eq!(out.stats.heads[0].rows, 1);
/// # Ok(())
/// # }
/// ```
pub fn paged_attention(
    inputs: &PagedAttentionInputs<'_>,
    options: &AttentionOptions,
) -> Result<PagedReference> {
    let problem = PagedProblem::new(inputs, options)?;
    let k = gather(&inputs.k_cache, inputs, &problem)?;
    let v = gather(&inputs.v_cache, inputs, &problem)?;
    let rows = QueryRows::new(inputs, &problem)?;
    let cu_k = problem
        .seqs
        .iter()
        .map(|s| index_i32(s.k_start))
        .chain([index_i32(problem.total_k)])
        .collect::<Result<Vec<_>>>()?;
    let contiguous = AttentionInputs {
        q: rows
            .q
            .as_ref()
            .map_or_else(|| inputs.q.clone(), Tensor::view),
        k: k.view(),
        v: v.view(),
        sinks: inputs.sinks,
        gate: match &rows.gate {
            Some(t) => Some(t.view()),
            None => inputs.gate.clone(),
        },
        cu_seqlens_q: Some(&rows.cu_q),
        cu_seqlens_k: Some(&cu_k),
    };
    let out = super::attention(&contiguous, options)?;
    let g = &problem.geometry;
    let lse = if g.varlen {
        out.lse
    } else {
        heads_first(&out.lse, g.batch, g.heads, g.max_seqlen_q)
    };
    Ok(PagedReference {
        o: out.o,
        lse,
        stats: out.stats,
        problem,
    })
}

/// The queries (and gate logits) as varlen rows with their offsets. Batched `[b, sq, ...]` and
/// varlen `[b·sq, ...]` are the same row-major order, so the copy is exact (same dtype);
/// varlen inputs are used as they are (`None`).
struct QueryRows {
    q: Option<Tensor>,
    gate: Option<Tensor>,
    cu_q: Vec<i32>,
}

impl QueryRows {
    fn new(inputs: &PagedAttentionInputs<'_>, problem: &PagedProblem) -> Result<Self> {
        let g = &problem.geometry;
        if let Some(cu) = inputs.cu_seqlens_q {
            return Ok(QueryRows {
                q: None,
                gate: None,
                cu_q: cu.to_vec(),
            });
        }
        let rows = |view: &TensorView<'_>| {
            let mut shape = view.shape[1..].to_vec();
            shape[0] = g.total_q;
            Tensor::from_f64(view.dtype(), &view.to_f64(), &shape)
        };
        Ok(QueryRows {
            q: Some(rows(&inputs.q)?),
            gate: inputs.gate.as_ref().map(rows).transpose()?,
            cu_q: (0..=g.batch)
                .map(|b| index_i32(b * g.max_seqlen_q))
                .collect::<Result<_>>()?,
        })
    }
}

/// The keys (or values) of every sequence, gathered from the pages in sequence order into one
/// contiguous `[total_k, hkv, d]` tensor of the cache's dtype.
fn gather(
    cache: &TensorView<'_>,
    inputs: &PagedAttentionInputs<'_>,
    problem: &PagedProblem,
) -> Result<Tensor> {
    let (hkv, d) = (problem.cache.kv_heads, problem.cache.head_dim);
    let mut out = Vec::with_capacity(problem.total_k * hkv * d);
    for (b, seq) in problem.seqs.iter().enumerate() {
        for j in 0..seq.k_len {
            let (page, slot) = problem
                .locate(&inputs.block_table, b, j)
                .ok_or_else(|| Error::Index(format!("key {j} of sequence {b} has no page")))?;
            for h in 0..hkv {
                out.extend((0..d).map(|c| cache.at(&[page, slot, h, c])));
            }
        }
    }
    Tensor::from_f64(cache.dtype(), &out, &[problem.total_k, hkv, d])
}

/// Varlen `lse` `[h, b·sq]` reordered to the batched `[b, h, sq]`.
fn heads_first(lse: &[f64], batch: usize, heads: usize, sq: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(lse.len());
    for b in 0..batch {
        for h in 0..heads {
            let row = h * batch * sq + b * sq;
            out.extend_from_slice(&lse[row..row + sq]);
        }
    }
    out
}

fn index_i32(n: usize) -> Result<i32> {
    i32::try_from(n).map_err(|_| Error::Overflow(format!("{n} rows do not fit i32 offsets")))
}
