//! Fused attention: validate once, upload the inputs as they are laid out (any strides),
//! compute the kernel parameters and launch geometry once, launch, download.
//!
//! The same path serves every executor (the SIMT emulator and CUDA GPUs). Engines that keep
//! tensors in device memory build a [`QaAttnParams`] themselves and call [`attention_raw`].

mod plan;
mod stats_buffer;

pub use plan::{MAX_HEAD_DIM, attention_raw, check_head_dim, plan, wants_stats};
pub use stats_buffer::StatsLayout;

use crate::abi::{self, QaAttnParams, QaTensorDesc};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor};
use crate::problem::{AttentionInputs, AttentionProblem};
use crate::stats::OutlierStats;
use crate::tensor::{Tensor, TensorData, TensorView};
use crate::variant::{AttentionOptions, Normaliser};

/// The result of [`attention`].
#[derive(Clone, Debug)]
pub struct AttentionOutput {
    /// `[b, sq, h, d]` (or `[total_q, h, d]`), dtype of q.
    pub o: Tensor,
    /// f32 `[b, h, sq]` (or `[h, total_q]`).
    pub lse: Tensor,
    /// The statistics when requested.
    pub stats: Option<OutlierStats>,
}

/// Attention on `device`: the f64 reference, or the kernels through the device's executor.
pub fn attention(
    device: &Device,
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
) -> Result<AttentionOutput> {
    if let Device::Reference = device {
        return crate::reference::attention(inputs, options)?.into_output(options.stats);
    }
    let problem = AttentionProblem::new(inputs, options)?;
    match device.executor() {
        Some(executor) => run(executor, inputs, options, &problem),
        None => Err(Error::Unsupported(format!(
            "attention is not available on the {} device",
            device.name()
        ))),
    }
}

/// Uploads, launches once and downloads.
fn run(
    executor: &dyn Executor,
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    problem: &AttentionProblem,
) -> Result<AttentionOutput> {
    check_head_dim(problem.head_dim)?;
    let varlen = problem.varlen;
    // The buffers live to the end of the function, past the (synchronous) launch.
    let (_q_buf, q) = upload_view(executor, &inputs.q, varlen)?;
    let (_k_buf, k) = upload_view(executor, &inputs.k, varlen)?;
    let (_v_buf, v) = upload_view(executor, &inputs.v, varlen)?;
    let gate = match &inputs.gate {
        Some(g) if options.gate.abi() != abi::QaGate_QA_GATE_NONE => {
            Some(upload_view(executor, g, varlen)?)
        }
        _ => None,
    };
    let sinks = match (options.normaliser, inputs.sinks) {
        (Normaliser::Sink, Some(s)) => Some(upload_slice(executor, bytemuck::cast_slice(s))?),
        _ => None,
    };
    let cu = match (inputs.cu_seqlens_q, inputs.cu_seqlens_k) {
        (Some(cq), Some(ck)) => Some((
            upload_slice(executor, bytemuck::cast_slice(cq))?,
            upload_slice(executor, bytemuck::cast_slice(ck))?,
        )),
        _ => None,
    };

    let o_shape = problem.o_shape();
    let mut o = Tensor::zeros(problem.dtype, &o_shape)?;
    let o_buf = executor.alloc_zeroed(o.data.as_bytes().len().max(16))?;
    let (hd, h) = (problem.head_dim as i64, problem.heads as i64);
    let o_desc = QaTensorDesc {
        ptr: o_buf.addr(),
        stride_batch: if varlen {
            0
        } else {
            problem.max_q as i64 * h * hd
        },
        stride_seq: h * hd,
        stride_head: hd,
        dtype: problem.dtype.abi(),
        reserved: 0,
    };
    // Rows no sequence covers (varlen) are never written: they read like fully masked rows.
    let mut lse = initial_lse(inputs, options, problem);
    let lse_buf = upload_slice(executor, bytemuck::cast_slice(&lse))?;
    let layout = StatsLayout::new(problem.heads, problem.kv_heads, problem.head_dim);
    let stats_buf = if options.stats {
        Some(executor.alloc_zeroed(layout.bytes)?)
    } else {
        None
    };

    let (bias, bias_default) = match options.normaliser {
        Normaliser::Sigmoid { bias: Some(b) } => (b, 0),
        Normaliser::Sigmoid { bias: None } => (0.0, 1),
        _ => (0.0, 0),
    };
    let (gamma, zeta) = match options.normaliser {
        Normaliser::Clipped { gamma, zeta } => (gamma, zeta),
        _ => (0.0, 1.0),
    };
    let (left, right) = options.window.unwrap_or((-1, -1));
    let params = QaAttnParams {
        q,
        k,
        v,
        o: o_desc,
        gate: gate.as_ref().map(|(_, d)| *d).unwrap_or_default(),
        lse: lse_buf.addr(),
        lse_stride_batch: if varlen { 0 } else { h * problem.max_q as i64 },
        lse_stride_head: if varlen {
            problem.total_q
        } else {
            problem.max_q
        } as i64,
        cu_seqlens_q: cu.as_ref().map_or(0, |(a, _)| a.addr()),
        cu_seqlens_k: cu.as_ref().map_or(0, |(_, b)| b.addr()),
        sinks: sinks.as_ref().map_or(0, Buffer::addr),
        batch: to_u32("batch", problem.batch)?,
        heads: to_u32("heads", problem.heads)?,
        kv_heads: to_u32("kv heads", problem.kv_heads)?,
        head_dim: to_u32("head dim", problem.head_dim)?,
        seqlen_q: to_u32("query length", problem.max_q)?,
        seqlen_k: to_u32("key length", problem.max_k)?,
        normaliser: options.normaliser.abi(),
        gate_kind: if gate.is_some() {
            options.gate.abi()
        } else {
            abi::QaGate_QA_GATE_NONE
        },
        causal: u32::from(options.causal),
        window_left: left,
        window_right: right,
        scale: problem.scale as f32,
        softcap: options.softcap.unwrap_or(0.0),
        clip_gamma: gamma,
        clip_zeta: zeta,
        sigmoid_bias: bias,
        sigmoid_bias_default: bias_default,
        reserved: 0,
        stats: stats_buf
            .as_ref()
            .map_or_else(Default::default, |b| layout.pointers(b.addr())),
    };
    attention_raw(executor, &params)?;

    executor.download(&o_buf, o.data.as_bytes_mut())?;
    executor.download(&lse_buf, bytemuck::cast_slice_mut(&mut lse))?;
    let stats = match stats_buf {
        Some(buf) => {
            let mut bytes = vec![0u8; layout.bytes];
            executor.download(&buf, &mut bytes)?;
            Some(layout.parse(&bytes)?)
        }
        None => None,
    };
    Ok(AttentionOutput {
        o,
        lse: Tensor::new(TensorData::F32(lse), &problem.lse_shape())?,
        stats,
    })
}

/// The `lse` of a row without visible keys (SPEC §1), per head, filling the whole output.
fn initial_lse(
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
    problem: &AttentionProblem,
) -> Vec<f32> {
    let per_head = |h: usize| match options.normaliser {
        Normaliser::OffByOne | Normaliser::Sigmoid { .. } => 0.0,
        Normaliser::Sink => inputs.sinks.and_then(|s| s.get(h)).copied().unwrap_or(0.0),
        _ => f32::NEG_INFINITY,
    };
    let rows = if problem.varlen {
        problem.total_q
    } else {
        problem.max_q
    };
    let blocks = if problem.varlen { 1 } else { problem.batch };
    (0..blocks)
        .flat_map(|_| (0..problem.heads).flat_map(move |h| std::iter::repeat_n(h, rows)))
        .map(per_head)
        .collect()
}

fn to_u32(what: &str, n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::Overflow(format!("{what} {n} exceeds u32")))
}

fn to_i64(n: usize) -> Result<i64> {
    i64::try_from(n).map_err(|_| Error::Overflow(format!("stride {n} exceeds i64")))
}

/// Uploads `bytes` (at least 16, so an empty input still has an address).
fn upload_slice(executor: &dyn Executor, bytes: &[u8]) -> Result<Buffer> {
    if bytes.len() < 16 {
        let mut padded = bytes.to_vec();
        padded.resize(16, 0);
        return executor.upload(&padded);
    }
    executor.upload(bytes)
}

/// Uploads the storage span a `[b, s, h, ...]` (or varlen `[t, h, ...]`) view covers and
/// describes it with the view's own strides, so packed and strided layouts reach the kernel
/// unchanged.
fn upload_view(
    executor: &dyn Executor,
    view: &TensorView<'_>,
    varlen: bool,
) -> Result<(Buffer, QaTensorDesc)> {
    let size = view.dtype().size();
    let last = view
        .shape
        .iter()
        .zip(&view.strides)
        .map(|(&n, &s)| n.saturating_sub(1) * s)
        .sum::<usize>();
    let bytes = view.data.as_bytes();
    let span = if view.numel() == 0 {
        &[][..]
    } else {
        &bytes[view.offset * size..(view.offset + last + 1) * size]
    };
    let buf = upload_slice(executor, span)?;
    let lead = usize::from(!varlen);
    let stride = |axis: usize| view.strides.get(axis).copied().map_or(Ok(0), to_i64);
    let desc = QaTensorDesc {
        ptr: buf.addr(),
        stride_batch: if varlen { 0 } else { stride(0)? },
        stride_seq: stride(lead)?,
        stride_head: stride(lead + 1)?,
        dtype: view.dtype().abi(),
        reserved: 0,
    };
    Ok((buf, desc))
}
