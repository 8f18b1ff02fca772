//! Validated attention geometry, shared by every device: one place decides what a call means.

use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::tensor::TensorView;
use crate::variant::{AttentionOptions, Gate, Normaliser};

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
    pub max_q: usize,
    /// Longest key sequence.
    pub max_k: usize,
    /// Query rows in all (`b * sq` batched).
    pub total_q: usize,
}

/// Largest sequence length or token count the kernels index with 32-bit integers.
pub const MAX_LEN: usize = i32::MAX as usize;

impl AttentionProblem {
    /// Validates inputs and options together and resolves the geometry.
    pub fn new(inputs: &AttentionInputs<'_>, options: &AttentionOptions) -> Result<Self> {
        options.validate()?;
        let (q, k, v) = (&inputs.q, &inputs.k, &inputs.v);
        if q.dtype() != k.dtype() || q.dtype() != v.dtype() {
            return Err(Error::Unsupported(format!(
                "q, k and v must share one dtype, got {}, {}, {}",
                q.dtype(),
                k.dtype(),
                v.dtype()
            )));
        }
        let varlen = match (inputs.cu_seqlens_q, inputs.cu_seqlens_k) {
            (Some(_), Some(_)) => true,
            (None, None) => false,
            _ => {
                return Err(shape_err!(
                    "cu_seqlens_q and cu_seqlens_k must be given together"
                ));
            }
        };
        let rank = if varlen { 3 } else { 4 };
        for (name, t) in [("q", q), ("k", k), ("v", v)] {
            if t.rank() != rank {
                return Err(shape_err!(
                    "{name} must have rank {rank} ({}), got shape {:?}",
                    if varlen {
                        "[total, heads, dim]"
                    } else {
                        "[batch, seq, heads, dim]"
                    },
                    t.shape
                ));
            }
            if t.strides[rank - 1] != 1 && t.shape[rank - 1] > 1 {
                return Err(shape_err!(
                    "{name}: the head dimension must be contiguous (stride 1), got strides {:?}",
                    t.strides
                ));
            }
        }
        if k.shape != v.shape {
            return Err(shape_err!(
                "k {:?} and v {:?} must have the same shape",
                k.shape,
                v.shape
            ));
        }
        let (heads, head_dim) = (q.shape[rank - 2], q.shape[rank - 1]);
        let kv_heads = k.shape[rank - 2];
        if k.shape[rank - 1] != head_dim {
            return Err(shape_err!(
                "q head dim {head_dim} differs from k/v head dim {}",
                k.shape[rank - 1]
            ));
        }
        if heads == 0 || kv_heads == 0 || head_dim == 0 {
            return Err(shape_err!(
                "heads ({heads}), kv_heads ({kv_heads}) and head dim ({head_dim}) must be > 0"
            ));
        }
        if heads % kv_heads != 0 {
            return Err(shape_err!(
                "query heads ({heads}) must be a multiple of kv heads ({kv_heads})"
            ));
        }

        let (batch, seqs) = if varlen {
            let cq = inputs.cu_seqlens_q.unwrap_or_default();
            let ck = inputs.cu_seqlens_k.unwrap_or_default();
            if cq.len() != ck.len() || cq.len() < 2 {
                return Err(shape_err!(
                    "cu_seqlens_q ({}) and cu_seqlens_k ({}) need the same length >= 2 (batch + 1)",
                    cq.len(),
                    ck.len()
                ));
            }
            let qs = offsets("cu_seqlens_q", cq, q.shape[0])?;
            let ks = offsets("cu_seqlens_k", ck, k.shape[0])?;
            let seqs = qs
                .iter()
                .zip(&ks)
                .map(|(&(q_start, q_len), &(k_start, k_len))| Sequence {
                    q_start,
                    q_len,
                    k_start,
                    k_len,
                })
                .collect::<Vec<_>>();
            (cq.len() - 1, seqs)
        } else {
            if k.shape[0] != q.shape[0] {
                return Err(shape_err!(
                    "q batch {} differs from k/v batch {}",
                    q.shape[0],
                    k.shape[0]
                ));
            }
            let (b, sq, sk) = (q.shape[0], q.shape[1], k.shape[1]);
            let seq = Sequence {
                q_start: 0,
                q_len: sq,
                k_start: 0,
                k_len: sk,
            };
            (b, vec![seq; b])
        };
        let max_q = seqs.iter().map(|s| s.q_len).max().unwrap_or(0);
        let max_k = seqs.iter().map(|s| s.k_len).max().unwrap_or(0);
        let total_q = if varlen { q.shape[0] } else { batch * max_q };
        for (what, n) in [
            ("query length", max_q),
            ("key length", max_k),
            ("batch", batch),
        ] {
            if n > MAX_LEN {
                return Err(Error::Overflow(format!("{what} {n} exceeds {MAX_LEN}")));
            }
        }

        match (options.normaliser, inputs.sinks) {
            (Normaliser::Sink, None) => {
                return Err(Error::InvalidOption(
                    "the sink normaliser needs per-head sink logits (`sinks`, f32 [heads])".into(),
                ));
            }
            (Normaliser::Sink, Some(s)) => {
                if s.len() != heads {
                    return Err(shape_err!(
                        "sinks has {} entries, expected {heads} (one per query head)",
                        s.len()
                    ));
                }
                if let Some(bad) = s.iter().find(|x| !x.is_finite()) {
                    return Err(Error::InvalidOption(format!(
                        "sink logits must be finite, got {bad}"
                    )));
                }
            }
            _ => {}
        }

        let gate_shape: Vec<usize> = {
            let mut s = if varlen {
                vec![total_q, heads]
            } else {
                vec![batch, max_q, heads]
            };
            if options.gate.is_elementwise() {
                s.push(head_dim);
            }
            s
        };
        match (options.gate, &inputs.gate) {
            (Gate::None, _) => {}
            (g, None) => {
                return Err(Error::InvalidOption(format!(
                    "gate `{}` needs gate logits of shape {gate_shape:?}",
                    g.name()
                )));
            }
            (_, Some(g)) => {
                if g.shape != gate_shape {
                    return Err(shape_err!(
                        "gate logits have shape {:?}, expected {gate_shape:?}",
                        g.shape
                    ));
                }
                if options.gate.is_elementwise() && g.strides[g.rank() - 1] != 1 && head_dim > 1 {
                    return Err(shape_err!(
                        "elementwise gate logits need a contiguous last dimension"
                    ));
                }
            }
        }

        let scale = options
            .scale
            .map_or(1.0 / (head_dim as f64).sqrt(), f64::from);
        Ok(AttentionProblem {
            batch,
            heads,
            kv_heads,
            head_dim,
            dtype: q.dtype(),
            scale,
            varlen,
            seqs,
            max_q,
            max_k,
            total_q,
        })
    }

    /// Query heads per kv head.
    pub fn group_size(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Shape of the output `o`: `[b, sq, h, d]`, or `[total_q, h, d]` when varlen.
    pub fn o_shape(&self) -> Vec<usize> {
        if self.varlen {
            vec![self.total_q, self.heads, self.head_dim]
        } else {
            vec![self.batch, self.max_q, self.heads, self.head_dim]
        }
    }

    /// Shape of `lse`: `[b, h, sq]`, or `[h, total_q]` when varlen.
    pub fn lse_shape(&self) -> Vec<usize> {
        if self.varlen {
            vec![self.heads, self.total_q]
        } else {
            vec![self.batch, self.heads, self.max_q]
        }
    }

    /// Index of row `i` of sequence `b` in `lse` (row-major in [`Self::lse_shape`]).
    pub fn lse_index(&self, b: usize, h: usize, i: usize) -> usize {
        if self.varlen {
            h * self.total_q + self.seqs[b].q_start + i
        } else {
            (b * self.heads + h) * self.max_q + i
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

    /// Whether query `i` of a sequence sees key `j` under the mask of `options` (SPEC §1).
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

/// Validates cumulative offsets and returns `(start, len)` per sequence.
fn offsets(name: &str, cu: &[i32], total: usize) -> Result<Vec<(usize, usize)>> {
    if cu[0] != 0 {
        return Err(shape_err!("{name} must start at 0, got {}", cu[0]));
    }
    let mut out = Vec::with_capacity(cu.len() - 1);
    for w in cu.windows(2) {
        if w[1] < w[0] {
            return Err(shape_err!(
                "{name} must be non-decreasing, got {} then {}",
                w[0],
                w[1]
            ));
        }
        out.push((w[0] as usize, (w[1] - w[0]) as usize));
    }
    let last = *cu.last().unwrap_or(&0) as usize;
    if last > total {
        return Err(shape_err!(
            "{name} ends at {last} but the tensor has {total} rows"
        ));
    }
    Ok(out)
}
