//! Validated attention geometry, shared by every device: one place decides what a call means.

mod layout;
pub mod numerics;
mod paged;
mod split_plan;

pub use layout::{AttentionGeometry, AttentionLayout, SeqLens, TensorLayout};
pub use numerics::{InputNumerics, NonFiniteCounts, NumericsReport};
pub use paged::{BlockTable, MIN_PAGE_SIZE, PagedAttentionInputs, PagedCache, PagedProblem};
pub use split_plan::{
    BLOCKS_PER_SM, DecodeBounds, ERROR_RECORD_BYTES, KEY_TILE, MIN_CHUNK_KEYS, PARTIAL_SCALARS,
    PARTIAL_SCALARS_NO_STATS, SplitPlan, max_splits, workspace_bytes,
};

use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::tensor::TensorView;
use crate::variant::{AttentionOptions, Normaliser};

/// The tensors of one attention call, in FlashAttention's layout.
///
/// Batched: `q` `[b, sq, h, d]`, `k`/`v` `[b, sk, hkv, d]`. Varlen (both `cu_seqlens_*` given):
/// `q` `[total_q, h, d]`, `k`/`v` `[total_k, hkv, d]`. Any strides; the head dimension must be
/// contiguous. Views may share storage (packed QKV).
#[derive(Clone, Debug)]
pub struct AttentionInputs<'a> {
    /// Queries.
    pub q: TensorView<'a>,
    /// Keys.
    pub k: TensorView<'a>,
    /// Values.
    pub v: TensorView<'a>,
    /// Per-head sink logits `σ_h`, f32 `[h]`; required by [`Normaliser::Sink`].
    pub sinks: Option<&'a [f32]>,
    /// Gate logits `[b, sq, h]` (headwise) or `[b, sq, h, d]` (elementwise); varlen drops `b, sq`
    /// for `total_q`.
    pub gate: Option<TensorView<'a>>,
    /// Varlen query offsets, `batch + 1` entries.
    pub cu_seqlens_q: Option<&'a [i32]>,
    /// Varlen key offsets, `batch + 1` entries.
    pub cu_seqlens_k: Option<&'a [i32]>,
}

impl<'a> AttentionInputs<'a> {
    /// Batched inputs without sinks or gate.
    pub fn new(q: TensorView<'a>, k: TensorView<'a>, v: TensorView<'a>) -> Self {
        AttentionInputs {
            q,
            k,
            v,
            sinks: None,
            gate: None,
            cu_seqlens_q: None,
            cu_seqlens_k: None,
        }
    }
}

/// One sequence of the batch: where its rows start in q/k and how many there are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sequence {
    /// First query row (index into `total_q` when varlen, else 0).
    pub q_start: usize,
    /// Query rows.
    pub q_len: usize,
    /// First key row.
    pub k_start: usize,
    /// Keys.
    pub k_len: usize,
}

/// The resolved geometry of an attention call.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionProblem {
    /// Sequences.
    pub batch: usize,
    /// Query heads.
    pub heads: usize,
    /// Key/value heads (`heads % kv_heads == 0`).
    pub kv_heads: usize,
    /// Head dimension.
    pub head_dim: usize,
    /// Element type of q, k, v (and o).
    pub dtype: DType,
    /// The logit scale actually used.
    pub scale: f64,
    /// True when the inputs are varlen.
    pub varlen: bool,
    /// Per-sequence extents.
    pub seqs: Vec<Sequence>,
    /// Longest query sequence.
    pub max_seqlen_q: usize,
    /// Longest key sequence.
    pub max_seqlen_k: usize,
    /// Query rows in all (`b * sq` batched).
    pub total_q: usize,
    /// Key rows in all (`b * sk` batched).
    pub total_k: usize,
}

/// The sink logits' values (the shared validator sees only their count).
fn check_sink_values(options: &AttentionOptions, sinks: Option<&[f32]>) -> Result<()> {
    if let (Normaliser::Sink, Some(s)) = (options.normaliser, sinks)
        && let Some(bad) = s.iter().find(|x| !x.is_finite())
    {
        return Err(Error::InvalidOption(format!(
            "sink logits must be finite, got {bad}"
        )));
    }
    Ok(())
}

/// Largest sequence length or token count the kernels index with 32-bit integers.
pub const MAX_LEN: usize = i32::MAX as usize;

impl AttentionProblem {
    /// Validates inputs and options together and resolves the geometry (through the same
    /// [`AttentionGeometry::new`] checks device-memory callers get, plus the sink values).
    pub fn new(inputs: &AttentionInputs<'_>, options: &AttentionOptions) -> Result<Self> {
        let seqlens = match (inputs.cu_seqlens_q, inputs.cu_seqlens_k) {
            (Some(cu_q), Some(cu_k)) => SeqLens::Varlen { cu_q, cu_k },
            (None, None) => SeqLens::Batched,
            _ => {
                return Err(shape_err!(
                    "cu_seqlens_q and cu_seqlens_k must be given together"
                ));
            }
        };
        let layout = AttentionLayout {
            q: TensorLayout::of_view(&inputs.q),
            k: TensorLayout::of_view(&inputs.k),
            v: TensorLayout::of_view(&inputs.v),
            sinks: inputs.sinks.map(<[f32]>::len),
            gate: inputs.gate.as_ref().map(TensorLayout::of_view),
            seqlens,
        };
        let (g, seqs) = layout::resolve(&layout, options)?;
        check_sink_values(options, inputs.sinks)?;
        Ok(AttentionProblem {
            batch: g.batch,
            heads: g.heads,
            kv_heads: g.kv_heads,
            head_dim: g.head_dim,
            dtype: g.dtype,
            scale: g.scale,
            varlen: g.varlen,
            seqs,
            max_seqlen_q: g.max_seqlen_q,
            max_seqlen_k: g.max_seqlen_k,
            total_q: g.total_q,
            total_k: g.total_k,
        })
    }

    /// The dimensions alone (what the kernel parameters are built from).
    pub fn geometry(&self) -> AttentionGeometry {
        AttentionGeometry {
            batch: self.batch,
            heads: self.heads,
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            dtype: self.dtype,
            scale: self.scale,
            varlen: self.varlen,
            max_seqlen_q: self.max_seqlen_q,
            max_seqlen_k: self.max_seqlen_k,
            total_q: self.total_q,
            total_k: self.total_k,
        }
    }

    /// Query heads per kv head.
    pub fn group_size(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Shape of the output `o`: `[b, sq, h, d]`, or `[total_q, h, d]` when varlen.
    pub fn o_shape(&self) -> Vec<usize> {
        self.geometry().o_shape()
    }

    /// Shape of `lse`: `[b, h, sq]`, or `[h, total_q]` when varlen.
    pub fn lse_shape(&self) -> Vec<usize> {
        self.geometry().lse_shape()
    }

    /// Index of row `i` of sequence `b` in `lse` (row-major in [`Self::lse_shape`]).
    pub fn lse_index(&self, b: usize, h: usize, i: usize) -> usize {
        if self.varlen {
            h * self.total_q + self.seqs[b].q_start + i
        } else {
            (b * self.heads + h) * self.max_seqlen_q + i
        }
    }

    /// Multi-index of element `c` of token `pos` (of sequence `b`), head `h` in a
    /// q/k/v/o/gate-shaped tensor. `start` is the sequence's `q_start` or `k_start`.
    pub fn token_index(&self, b: usize, start: usize, pos: usize, h: usize) -> Vec<usize> {
        if self.varlen {
            vec![start + pos, h]
        } else {
            vec![b, pos, h]
        }
    }

    /// Whether query `i` of a sequence sees key `j` under the mask of `options`
    /// (docs/contract.md §1).
    pub fn visible(options: &AttentionOptions, seq: &Sequence, i: usize, j: usize) -> bool {
        // Both masks are anchored at the bottom-right diagonal: query i "is" key i + (sk - sq).
        let diag = i as i64 + seq.k_len as i64 - seq.q_len as i64;
        let j = j as i64;
        if options.causal && j > diag {
            return false;
        }
        if let Some((left, right)) = options.window {
            if left >= 0 && j < diag - left as i64 {
                return false;
            }
            if right >= 0 && j > diag + right as i64 {
                return false;
            }
        }
        true
    }
}
