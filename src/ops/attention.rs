//! Fused attention: validate once, upload the inputs as they are laid out (any strides),
//! compute the kernel parameters and launch geometry once, launch, download.
//!
//! The same path serves every executor (the SIMT emulator and CUDA GPUs). Engines that keep
//! tensors in device memory describe them with [`DeviceTensor`]s and call [`attention_device`]
//! (validated, asynchronous, no copies); [`attention_raw`] takes a finished
//! [`crate::abi::QaAttnParams`].

mod device;
mod device_stats;
mod device_tensor;
pub mod family;
pub(crate) mod host_outputs;
pub(crate) mod params;
mod plan;
mod stats_buffer;

pub(crate) use device::compute_capability;
pub use device::{DeviceAttentionArgs, DeviceVarlen, attention_device};
pub(crate) use device::{check_memory, check_operands, enqueue};
pub use device_stats::{DeviceStats, StatsTarget, read_stats_at};
pub use device_tensor::{DeviceIndex, DeviceTensor, Element};
pub(crate) use device_tensor::{Origin, buffer_origin};
pub use family::{KernelFamily, Launch, check_head_dim, max_head_dim, plan, wants_stats};
pub use plan::attention_raw;
pub use stats_buffer::StatsLayout;

use crate::abi::{self, QaTensorDesc};
use crate::device::Device;
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor};
use crate::problem::{AttentionInputs, AttentionProblem, InputNumerics, NumericsReport};
use crate::stats::OutlierStats;
use crate::tensor::{Tensor, TensorView, contiguous_strides};
use crate::variant::{AttentionOptions, Normaliser};
use host_outputs::HostOutputs;
use params::Operands;

/// The result of [`attention`].
#[derive(Clone, Debug)]
pub struct AttentionOutput {
    /// `[b, sq, h, d]` (or `[total_q, h, d]`), dtype of q.
    pub o: Tensor,
    /// f32 `[b, h, sq]` (or `[h, total_q]`).
    pub lse: Tensor,
    /// The statistics when requested.
    pub stats: Option<OutlierStats>,
    /// Non-finite inputs, the f32 range bounds of the inputs and non-finite outputs (see
    /// [`crate::problem::numerics`]); nothing here stops a call, callers decide.
    pub numerics: NumericsReport,
}

/// Attention on `device`: the f64 reference, or the kernels through the device's executor.
///
/// The inputs are scanned on the host first (non-finite elements, the f32 range); the result's
/// [`AttentionOutput::numerics`] reports what the scan found and how many outputs are
/// non-finite.
pub fn attention(
    device: &Device,
    inputs: &AttentionInputs<'_>,
    options: &AttentionOptions,
) -> Result<AttentionOutput> {
    let problem = AttentionProblem::new(inputs, options)?;
    let scan = InputNumerics::scan(inputs, &problem);
    let mut out = if let Device::Reference = device {
        crate::reference::attention(inputs, options)?.into_output(options.stats)?
    } else {
        match device.executor() {
            Some(executor) => run(executor, inputs, options, &problem)?,
            None => {
                return Err(Error::Unsupported(format!(
                    "attention is not available on the {} device",
                    device.name()
                )));
            }
        }
    };
    out.numerics = NumericsReport {
        inputs: scan,
        non_finite_o: out.o.data.as_ref().count_non_finite(),
    };
    Ok(out)
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

    let geometry = problem.geometry();
    let o_shape = geometry.o_shape();
    // lse pre-filled with the fully masked value: rows without a visible key keep it.
    let outputs = HostOutputs::new(
        executor,
        Tensor::zeros(problem.dtype, &o_shape)?,
        initial_lse(inputs, options, problem),
        StatsLayout::new(problem.heads, problem.kv_heads, problem.head_dim),
        options,
    )?;
    let operands = Operands {
        q,
        k,
        v,
        o: params::desc(
            outputs.o_buf.addr(),
            problem.dtype,
            &contiguous_strides(&o_shape),
            varlen,
        )?,
        gate: gate.as_ref().map(|(_, d)| *d),
        lse: outputs.lse_buf.addr(),
        lse_strides: params::lse_strides(varlen, &contiguous_strides(&geometry.lse_shape()))?,
        cu_seqlens: cu.as_ref().map(|(a, b)| (a.addr(), b.addr())),
        sinks: sinks.as_ref().map_or(0, Buffer::addr),
        stats: outputs.stats_pointers(),
    };
    let params = params::build(&geometry, options, &operands)?;
    attention_raw(executor, &params, options.kernel)?;

    outputs.download(executor, &problem.lse_shape())
}

/// The `lse` of a row without visible keys (docs/contract.md §1), per head, filling the whole
/// output.
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
        problem.max_seqlen_q
    };
    let blocks = if problem.varlen { 1 } else { problem.batch };
    (0..blocks)
        .flat_map(|_| (0..problem.heads).flat_map(move |h| std::iter::repeat_n(h, rows)))
        .map(per_head)
        .collect()
}

/// Uploads `bytes` (at least 16, so an empty input still has an address).
pub(crate) fn upload_slice(executor: &dyn Executor, bytes: &[u8]) -> Result<Buffer> {
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
pub(crate) fn upload_view(
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
    let desc = params::desc(buf.addr(), view.dtype(), &view.strides, varlen)?;
    Ok((buf, desc))
}
