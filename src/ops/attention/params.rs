//! Kernel parameters from a validated geometry and the addresses of the tensors: the one place
//! both the host-tensor path and the device-memory path turn a call into a [`QaAttnParams`].

use crate::abi::{self, QaAttnParams, QaAttnStatsPtrs, QaTensorDesc};
use crate::dtype::DType;
use crate::error::{Error, Result};
use crate::problem::AttentionGeometry;
use crate::variant::{AttentionOptions, Normaliser};

/// Where each operand lives, as the kernel will see it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Operands {
    pub q: QaTensorDesc,
    pub k: QaTensorDesc,
    pub v: QaTensorDesc,
    pub o: QaTensorDesc,
    /// Only used when the options name a gate.
    pub gate: Option<QaTensorDesc>,
    pub lse: u64,
    /// Element strides of `lse` between sequences (0 when varlen) and between heads; rows are
    /// contiguous.
    pub lse_strides: (i64, i64),
    /// Device addresses of `cu_seqlens_q` / `cu_seqlens_k` when varlen.
    pub cu_seqlens: Option<(u64, u64)>,
    pub sinks: u64,
    pub stats: QaAttnStatsPtrs,
}

/// A tensor descriptor from element strides of a `[b, s, h, ...]` (or varlen `[t, h, ...]`)
/// layout; the head dimension is contiguous (checked by the validator).
pub(crate) fn desc(
    addr: u64,
    dtype: DType,
    strides: &[usize],
    varlen: bool,
) -> Result<QaTensorDesc> {
    let lead = usize::from(!varlen);
    let stride = |axis: usize| strides.get(axis).copied().map_or(Ok(0), to_i64);
    Ok(QaTensorDesc {
        ptr: addr,
        stride_batch: if varlen { 0 } else { stride(0)? },
        stride_seq: stride(lead)?,
        stride_head: stride(lead + 1)?,
        dtype: dtype.abi(),
        reserved: 0,
    })
}

/// The kernel parameters of one launch.
pub(crate) fn build(
    g: &AttentionGeometry,
    options: &AttentionOptions,
    ops: &Operands,
) -> Result<QaAttnParams> {
    let (bias, bias_default) = match options.normaliser {
        Normaliser::Sigmoid { bias: Some(b) } => (b, 0),
        Normaliser::Sigmoid { bias: None } => (0.0, 1),
        _ => (0.0, 0),
    };
    let (gamma, zeta) = match options.normaliser {
        Normaliser::Clipped { gamma, zeta } => (gamma, zeta),
        _ => (0.0, 1.0),
    };
    let gate = ops
        .gate
        .filter(|_| options.gate.abi() != abi::QaGate_QA_GATE_NONE);
    let sinks = if options.normaliser == Normaliser::Sink {
        ops.sinks
    } else {
        0
    };
    let (left, right) = options.window.unwrap_or((-1, -1));
    let (cu_q, cu_k) = ops.cu_seqlens.unwrap_or((0, 0));
    // The rows the kernels keep device-side offsets within (0 where there are none).
    let rows = |cu: u64, n: usize, what: &str| if cu == 0 { Ok(0) } else { to_u32(what, n) };
    Ok(QaAttnParams {
        q: ops.q,
        k: ops.k,
        v: ops.v,
        o: ops.o,
        gate: gate.unwrap_or_default(),
        lse: ops.lse,
        lse_stride_batch: ops.lse_strides.0,
        lse_stride_head: ops.lse_strides.1,
        cu_seqlens_q: cu_q,
        cu_seqlens_k: cu_k,
        sinks,
        // The caller's record, or one the launching call owns (`attention_raw`).
        errors: 0,
        batch: to_u32("batch", g.batch)?,
        heads: to_u32("heads", g.heads)?,
        kv_heads: to_u32("kv heads", g.kv_heads)?,
        head_dim: to_u32("head dim", g.head_dim)?,
        seqlen_q: to_u32("query length", g.max_seqlen_q)?,
        seqlen_k: to_u32("key length", g.max_seqlen_k)?,
        total_q: rows(cu_q, g.total_q, "query rows")?,
        total_k: rows(cu_k, g.total_k, "key rows")?,
        normaliser: options.normaliser.abi(),
        gate_kind: if gate.is_some() {
            options.gate.abi()
        } else {
            abi::QaGate_QA_GATE_NONE
        },
        causal: u32::from(options.causal),
        window_left: left,
        window_right: right,
        scale: g.scale as f32,
        softcap: options.softcap.unwrap_or(0.0),
        clip_gamma: gamma,
        clip_zeta: zeta,
        sigmoid_bias: bias,
        sigmoid_bias_default: bias_default,
        reserved: 0,
        stats: ops.stats,
    })
}

fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Overflow(format!("{what} {n} exceeds u32")))
}

fn to_i64(n: usize) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Overflow(format!("stride {n} exceeds i64")))
}

/// `(batch, head)` element strides of an `lse` laid out as [`AttentionGeometry::lse_shape`]
/// with contiguous rows.
pub(crate) fn lse_strides(varlen: bool, strides: &[usize]) -> Result<(i64, i64)> {
    let at = |i: usize| strides.get(i).copied().map_or(Ok(0), to_i64);
    if varlen {
        Ok((0, at(0)?))
    } else {
        Ok((at(0)?, at(1)?))
    }
}
