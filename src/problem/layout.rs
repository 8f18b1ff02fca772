//! The one validator of an attention call's geometry. It sees element types, shapes, strides
//! and sequence lengths only, never data, so host tensors ([`AttentionInputs`]) and
//! caller-owned device memory (`ops::attention::DeviceAttentionArgs`) are checked by the same
//! code and mean the same thing.
//!
//! [`AttentionInputs`]: super::AttentionInputs

use super::{MAX_LEN, Sequence};
use crate::dtype::DType;
use crate::error::{Error, Result, shape_err};
use crate::tensor::TensorView;
use crate::variant::{AttentionOptions, Gate, Normaliser};

/// Element type, shape and strides (in elements) of a tensor, without its data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorLayout {
    /// Element type.
    pub dtype: DType,
    /// Extent of each axis.
    pub shape: Vec<usize>,
    /// Elements between neighbours along each axis.
    pub strides: Vec<usize>,
}

impl TensorLayout {
    /// The layout of a host view.
    pub fn of_view(view: &TensorView<'_>) -> Self {
        TensorLayout {
            dtype: view.dtype(),
            shape: view.shape.clone(),
            strides: view.strides.clone(),
        }
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// True when the last axis is contiguous (or has at most one element).
    pub(crate) fn last_contiguous(&self) -> bool {
        match (self.shape.last(), self.strides.last()) {
            (Some(&n), Some(&s)) => s == 1 || n <= 1,
            _ => true,
        }
    }
}

/// How the sequences of the batch are delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeqLens<'a> {
    /// Fixed lengths: `q` `[b, sq, h, d]`, `k`/`v` `[b, sk, hkv, d]`.
    Batched,
    /// Varlen with host-visible cumulative offsets (`batch + 1` each); fully validated.
    Varlen {
        /// Query offsets.
        cu_q: &'a [i32],
        /// Key offsets.
        cu_k: &'a [i32],
    },
    /// Varlen whose offsets live in device memory (FlashAttention's convention): only the
    /// batch size and the longest sequences are known on the host. The kernels check that each
    /// sequence's offsets never decrease, stay within the tensors and respect these maxima, and
    /// record a violation in the error record (`ops::ErrorRecord`).
    VarlenMax {
        /// Sequences.
        batch: usize,
        /// Longest query sequence.
        max_seqlen_q: usize,
        /// Longest key sequence.
        max_seqlen_k: usize,
    },
}

/// Everything the validator looks at: the layouts of q, k, v (and gate), the number of sink
/// logits, and the sequence delimitation.
#[derive(Clone, Debug)]
pub struct AttentionLayout<'a> {
    /// Queries.
    pub q: TensorLayout,
    /// Keys.
    pub k: TensorLayout,
    /// Values.
    pub v: TensorLayout,
    /// Number of per-head sink logits, when given.
    pub sinks: Option<usize>,
    /// Gate logits, when given.
    pub gate: Option<TensorLayout>,
    /// Batched or varlen.
    pub seqlens: SeqLens<'a>,
}

/// The resolved dimensions of an attention call: all the kernel parameters need.
#[derive(Clone, Debug, PartialEq)]
pub struct AttentionGeometry {
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
    /// Longest query sequence.
    pub max_seqlen_q: usize,
    /// Longest key sequence.
    pub max_seqlen_k: usize,
    /// Query rows in all (`b * sq` batched).
    pub total_q: usize,
    /// Key rows in all (`b * sk` batched).
    pub total_k: usize,
}

impl AttentionGeometry {
    /// Validates a layout with its options; the same checks [`super::AttentionProblem::new`]
    /// applies to host tensors.
    pub fn new(layout: &AttentionLayout<'_>, options: &AttentionOptions) -> Result<Self> {
        resolve(layout, options).map(|(g, _)| g)
    }

    /// Shape of the output `o`: `[b, sq, h, d]`, or `[total_q, h, d]` when varlen.
    pub fn o_shape(&self) -> Vec<usize> {
        if self.varlen {
            vec![self.total_q, self.heads, self.head_dim]
        } else {
            vec![self.batch, self.max_seqlen_q, self.heads, self.head_dim]
        }
    }

    /// Shape of `lse`: `[b, h, sq]`, or `[h, total_q]` when varlen.
    pub fn lse_shape(&self) -> Vec<usize> {
        if self.varlen {
            vec![self.heads, self.total_q]
        } else {
            vec![self.batch, self.heads, self.max_seqlen_q]
        }
    }

    /// Shape the gate logits must have under `gate`.
    pub fn gate_shape(&self, gate: Gate) -> Vec<usize> {
        let mut s = if self.varlen {
            vec![self.total_q, self.heads]
        } else {
            vec![self.batch, self.max_seqlen_q, self.heads]
        };
        if gate.is_elementwise() {
            s.push(self.head_dim);
        }
        s
    }
}

/// Validates `layout` with `options`: the geometry, and the per-sequence extents when the
/// offsets are on the host (empty for [`SeqLens::VarlenMax`]).
pub(crate) fn resolve(
    layout: &AttentionLayout<'_>,
    options: &AttentionOptions,
) -> Result<(AttentionGeometry, Vec<Sequence>)> {
    options.validate()?;
    let (q, k, v) = (&layout.q, &layout.k, &layout.v);
    if q.dtype != k.dtype || q.dtype != v.dtype {
        return Err(Error::Unsupported(format!(
            "q, k and v must share one dtype, got {}, {}, {}",
            q.dtype, k.dtype, v.dtype
        )));
    }
    let varlen = !matches!(layout.seqlens, SeqLens::Batched);
    let rank = if varlen { 3 } else { 4 };
    for (name, t) in [("q", q), ("k", k), ("v", v)] {
        if t.rank() != rank || t.strides.len() != rank {
            return Err(shape_err!(
                "{name} must have rank {rank} ({}), got shape {:?} strides {:?}",
                if varlen {
                    "[total, heads, dim]"
                } else {
                    "[batch, seq, heads, dim]"
                },
                t.shape,
                t.strides
            ));
        }
        // Extents beyond the kernels' 32-bit indices are refused even when another axis is 0.
        if let Some(&n) = t.shape.iter().find(|&&n| n > MAX_LEN) {
            return Err(Error::Overflow(format!(
                "{name} has an extent of {n} in shape {:?} (at most {MAX_LEN})",
                t.shape
            )));
        }
        if !t.last_contiguous() {
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

    let (batch, seqs, max_seqlen_q, max_seqlen_k) = sequences(layout.seqlens, q, k)?;
    let total_q = if varlen {
        q.shape[0]
    } else {
        batch * max_seqlen_q
    };
    let total_k = if varlen {
        k.shape[0]
    } else {
        batch * max_seqlen_k
    };
    for (what, n) in [
        ("query length", max_seqlen_q),
        ("key length", max_seqlen_k),
        ("batch", batch),
    ] {
        if n > MAX_LEN {
            return Err(Error::Overflow(format!("{what} {n} exceeds {MAX_LEN}")));
        }
    }

    match (options.normaliser, layout.sinks) {
        (Normaliser::Sink, None) => {
            return Err(Error::InvalidOption(
                "the sink normaliser needs per-head sink logits (`sinks`, f32 [heads])".into(),
            ));
        }
        (Normaliser::Sink, Some(n)) if n != heads => {
            return Err(shape_err!(
                "sinks has {n} entries, expected {heads} (one per query head)"
            ));
        }
        _ => {}
    }

    let scale = options
        .scale
        .map_or(1.0 / (head_dim as f64).sqrt(), f64::from);
    let geometry = AttentionGeometry {
        batch,
        heads,
        kv_heads,
        head_dim,
        dtype: q.dtype,
        scale,
        varlen,
        max_seqlen_q,
        max_seqlen_k,
        total_q,
        total_k,
    };
    check_gate(&geometry, options, layout.gate.as_ref())?;
    Ok((geometry, seqs))
}

/// Batch size, per-sequence extents (when known) and the longest query and key sequences.
fn sequences(
    seqlens: SeqLens<'_>,
    q: &TensorLayout,
    k: &TensorLayout,
) -> Result<(usize, Vec<Sequence>, usize, usize)> {
    let longest = |seqs: &[Sequence]| {
        (
            seqs.iter().map(|s| s.q_len).max().unwrap_or(0),
            seqs.iter().map(|s| s.k_len).max().unwrap_or(0),
        )
    };
    match seqlens {
        SeqLens::Batched => {
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
            let seqs = vec![seq; b];
            let (mq, mk) = longest(&seqs);
            Ok((b, seqs, mq, mk))
        }
        SeqLens::Varlen { cu_q, cu_k } => {
            if cu_q.len() != cu_k.len() || cu_q.len() < 2 {
                return Err(shape_err!(
                    "cu_seqlens_q ({}) and cu_seqlens_k ({}) need the same length >= 2 (batch + 1)",
                    cu_q.len(),
                    cu_k.len()
                ));
            }
            let qs = offsets("cu_seqlens_q", cu_q, q.shape[0])?;
            let ks = offsets("cu_seqlens_k", cu_k, k.shape[0])?;
            let seqs: Vec<Sequence> = qs
                .iter()
                .zip(&ks)
                .map(|(&(q_start, q_len), &(k_start, k_len))| Sequence {
                    q_start,
                    q_len,
                    k_start,
                    k_len,
                })
                .collect();
            let (mq, mk) = longest(&seqs);
            Ok((cu_q.len() - 1, seqs, mq, mk))
        }
        SeqLens::VarlenMax {
            batch,
            max_seqlen_q,
            max_seqlen_k,
        } => {
            if batch == 0 {
                return Err(shape_err!("varlen needs at least one sequence"));
            }
            // A sequence never holds more rows than the packed tensor.
            if max_seqlen_q > q.shape[0] || max_seqlen_k > k.shape[0] {
                return Err(shape_err!(
                    "max_seqlen_q {max_seqlen_q} / max_seqlen_k {max_seqlen_k} exceed the {} \
                     query / {} key rows",
                    q.shape[0],
                    k.shape[0]
                ));
            }
            Ok((batch, Vec::new(), max_seqlen_q, max_seqlen_k))
        }
    }
}

fn check_gate(
    g: &AttentionGeometry,
    options: &AttentionOptions,
    gate: Option<&TensorLayout>,
) -> Result<()> {
    let want = g.gate_shape(options.gate);
    match (options.gate, gate) {
        (Gate::None, _) => Ok(()),
        (kind, None) => Err(Error::InvalidOption(format!(
            "gate `{}` needs gate logits of shape {want:?}",
            kind.name()
        ))),
        (kind, Some(t)) => {
            if t.shape != want || t.strides.len() != want.len() {
                return Err(shape_err!(
                    "gate logits have shape {:?}, expected {want:?}",
                    t.shape
                ));
            }
            if kind.is_elementwise() && !t.last_contiguous() {
                return Err(shape_err!(
                    "elementwise gate logits need a contiguous last dimension"
                ));
            }
            Ok(())
        }
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
    // Rows past the last offset would be silently skipped (o = 0) or, for keys, ignored: every
    // row must belong to a sequence, so the offsets end exactly at the row count.
    let last = *cu.last().unwrap_or(&0) as usize;
    if last != total {
        return Err(shape_err!(
            "{name} ends at {last} but the tensor has {total} rows (the last offset must equal \
             the row count)"
        ));
    }
    Ok(out)
}
