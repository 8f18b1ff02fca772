//! Decode on host tensors: validate the paged problem, upload, plan the split, run the
//! [`super::decode_launches`] of the family `options.kernel` picks, download, and report bad
//! kernel-side indices as errors. The path of `quietattn run` and of the tests; engines keep their tensors on the device and call
//! [`super::paged_decode_device`] with a workspace they sized once.

use super::paged_params::paged_params;
use super::{DecodeLaunch, decode_launches};
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor, KernelRef};
use crate::ops::attention::host_outputs::HostOutputs;
use crate::ops::attention::params::{self, Operands};
use crate::ops::attention::{StatsLayout, upload_slice, upload_view};
use crate::ops::{AttentionOutput, ErrorRecord};
use crate::problem::{
    AttentionGeometry, ERROR_RECORD_BYTES, PagedAttentionInputs, PagedProblem, SplitPlan,
};
use crate::tensor::{Tensor, contiguous_strides};
use crate::variant::AttentionOptions;

/// How a host-path decode call splits its keys and which indices its kernels read.
#[derive(Clone, Debug, Default)]
pub struct DecodeCall<'a> {
    /// The split; `None`: [`SplitPlan::new`] for a GPU of `sm_count` SMs.
    pub plan: Option<SplitPlan>,
    /// SMs the automatic plan aims at (132 when 0: an H100/H200).
    pub sm_count: usize,
    /// The block table and `seq_lens_k` the kernels read instead of the validated ones: what an
    /// engine's device-memory indices are, which no host check has seen (tests plant bad ones).
    pub kernel_indices: Option<(&'a [i32], &'a [i32])>,
    /// Likewise the `cu_seqlens_q` the kernels read (varlen queries only).
    pub kernel_cu_seqlens_q: Option<&'a [i32]>,
    /// A chunk kernel to launch instead of the chosen family's, with the same ABI, geometry
    /// and combine: the seeded-bug tests run a deliberately broken twin through this path.
    pub chunk_kernel: Option<KernelRef>,
}

/// Paged attention through the decode kernels on `executor` (emulator or CUDA): batched
/// queries `[b, q_len, h, d]` or varlen queries `[total_q, h, d]` with `cu_seqlens_q` (each
/// sequence's rows are the last positions of its keys under causal), with the statistics of
/// docs/contract.md §5 when `options.stats` (counted as the prefill kernels count the gathered,
/// contiguous problem). `o` and `lse` take the shapes of an ordinary call with those queries.
///
/// ```
/// use quietattn::{AttentionOptions, BlockTable, DType, Device, PagedAttentionInputs, Tensor};
/// use quietattn::ops::decode::{DecodeCall, paged_decode};
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?;
/// let executor = device.executor().expect("the emulator runs kernels");
/// let values = |n: usize| (0..n).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>();
/// let q = Tensor::from_f64(DType::F32, &values(4 * 64), &[1, 1, 4, 64])?;
/// let cache = Tensor::from_f64(DType::F32, &values(2 * 16 * 2 * 64), &[2, 16, 2, 64])?;
/// let (table, lens) = ([1, 0], [20]); // 20 keys: page 1, then 4 keys of page 0
/// let inputs = PagedAttentionInputs::new(
///     q.view(), cache.view(), cache.view(), BlockTable::new(&table, 1, 2)?, &lens);
/// let out = paged_decode(executor, &inputs, &AttentionOptions::default(), &DecodeCall::default())?;
/// assert_eq!(out.o.shape, vec![1, 1, 4, 64]);
/// # Ok(())
/// # }
/// ```
pub fn paged_decode(
    executor: &dyn Executor,
    inputs: &PagedAttentionInputs<'_>,
    options: &AttentionOptions,
    call: &DecodeCall<'_>,
) -> Result<AttentionOutput> {
    Ok(decode_on(executor, inputs, options, call, false)?.0)
}

/// The split partials the final combine of the call would merge, as the chunk kernel wrote
/// them (the call's launches up to its last chunk launch: the first launch, or for clipped
/// with a split chunk pass 1, combine pass 1 and chunk pass 2), for tests that tell a chunk bug
/// from a combine bug: f32 `[splits, batch, heads, q_len, d + s]` rows of `d` accumulators,
/// then `m, l` (log2 units) and, with statistics, `A = Σw`, `B = Σw ln w`, `n`, `Σ(x − xmax)`,
/// `x0`, `xmax` (`s` = 2 or 8). Weighs absolutely (sigmoid, clipped pass 2): `m` is 0
/// (sigmoid) or the row's lse (clipped), `l` is 0. Empty without a split.
///
/// ```
/// use quietattn::{AttentionOptions, BlockTable, DType, Device, PagedAttentionInputs, Tensor};
/// use quietattn::ops::decode::{DecodeCall, chunk_partials};
/// use quietattn::problem::SplitPlan;
///
/// # fn main() -> quietattn::Result<()> {
/// let device = Device::emulator()?;
/// let executor = device.executor().expect("the emulator runs kernels");
/// let values = |n: usize| (0..n).map(|i| (i as f64 * 0.37).sin()).collect::<Vec<_>>();
/// let q = Tensor::from_f64(DType::F32, &values(4 * 64), &[1, 1, 4, 64])?;
/// let cache = Tensor::from_f64(DType::F32, &values(2 * 16 * 2 * 64), &[2, 16, 2, 64])?;
/// let (table, lens) = ([1, 0], [20]);
/// let inputs = PagedAttentionInputs::new(
///     q.view(), cache.view(), cache.view(), BlockTable::new(&table, 1, 2)?, &lens);
/// // Two chunks of 16 keys: the second holds keys 16..20.
/// let call = DecodeCall { plan: Some(SplitPlan { splits: 2, chunk: 16 }), ..DecodeCall::default() };
/// let p = chunk_partials(executor, &inputs, &AttentionOptions::default(), &call)?;
/// assert_eq!(p.len(), 2 * 4 * (64 + 2)); // [splits, batch, heads, q_len, d + 2]
/// let l = p[4 * 66 + 65]; // split 1, head 0: l = Σ 2^(x − m) over its 4 keys
/// assert!(l >= 1.0 && l <= 4.0);
/// # Ok(())
/// # }
/// ```
pub fn chunk_partials(
    executor: &dyn Executor,
    inputs: &PagedAttentionInputs<'_>,
    options: &AttentionOptions,
    call: &DecodeCall<'_>,
) -> Result<Vec<f32>> {
    Ok(decode_on(executor, inputs, options, call, true)?.1)
}

/// A host-path call: all launches, or (`chunk_only`) those up to the last chunk launch, with
/// the partials they left.
fn decode_on(
    executor: &dyn Executor,
    inputs: &PagedAttentionInputs<'_>,
    options: &AttentionOptions,
    call: &DecodeCall<'_>,
    chunk_only: bool,
) -> Result<(AttentionOutput, Vec<f32>)> {
    let problem = PagedProblem::new(inputs, options)?;
    let g = &problem.geometry;
    let plan = choose_plan(
        call.plan,
        call.sm_count,
        g,
        options,
        problem.cache.page_size,
    )?;
    let (table, lens) = call
        .kernel_indices
        .unwrap_or((inputs.block_table.entries(), inputs.seq_lens_k));
    same_len(table, inputs.block_table.entries().len())?;
    same_len(lens, inputs.seq_lens_k.len())?;
    let cu_q = match (inputs.cu_seqlens_q, call.kernel_cu_seqlens_q) {
        (Some(valid), planted) => Some(same_len(planted.unwrap_or(valid), valid.len())?),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Error::Shape(
                "kernel cu_seqlens_q without varlen queries".into(),
            ));
        }
    };
    let buffers = Uploads::new(executor, inputs, options, (table, lens, cu_q))?;
    let o_shape = g.o_shape();
    let outputs = HostOutputs::new(
        executor,
        Tensor::zeros(g.dtype, &o_shape)?,
        vec![0f32; g.lse_shape().iter().product()],
        StatsLayout::new(g.heads, g.kv_heads, g.head_dim),
        options,
    )?;
    let operands = Operands {
        q: buffers.q.1,
        k: buffers.k.1,
        v: buffers.v.1,
        o: params::desc(
            outputs.o_buf.addr(),
            g.dtype,
            &contiguous_strides(&o_shape),
            g.varlen,
        )?,
        gate: buffers.gate.as_ref().map(|(_, d)| *d),
        lse: outputs.lse_buf.addr(),
        lse_strides: params::lse_strides(g.varlen, &contiguous_strides(&g.lse_shape()))?,
        cu_seqlens: buffers.cu_q.as_ref().map(|c| (c.addr(), 0)),
        sinks: buffers.sinks.as_ref().map_or(0, Buffer::addr),
        stats: outputs.stats_pointers(),
    };
    let dp = paged_params(
        params::build(g, options, &operands)?,
        &problem.cache,
        problem.max_pages,
        buffers.table.addr(),
        buffers.lens.addr(),
    )?;
    // the partial rows decode_launches asks for: [batch, q_len] batched, total_q varlen
    let (seqs, q_rows) = if g.varlen {
        (g.total_q, 1)
    } else {
        (g.batch, g.max_seqlen_q)
    };
    let workspace = executor.alloc_zeroed(
        plan.partial_bytes(seqs, g.heads, q_rows, g.head_dim, options.stats) + ERROR_RECORD_BYTES,
    )?;
    let launches = decode_launches(
        &dp,
        &plan,
        options.kernel,
        executor.compute_capability(),
        workspace.addr(),
        workspace.len(),
    )?;
    run_launches(executor, launches, call.chunk_kernel.as_ref(), chunk_only)?;
    let partials = if chunk_only {
        read_partials(executor, &workspace)?
    } else {
        Vec::new()
    };
    ErrorRecord::read(executor, &workspace)?.check()?;
    let mut out = outputs.download(executor, &g.lse_shape())?;
    out.numerics.non_finite_o = out.o.data.as_ref().count_non_finite();
    Ok((out, partials))
}

/// Runs `launches` in order, each waited for, with `chunk_kernel` in place of the family's
/// chunk kernel when given. `chunk_only`: only up to the last chunk launch (the first; clipped
/// with a split: chunk, combine, chunk), so the workspace holds the partials the final combine
/// would merge.
fn run_launches(
    executor: &dyn Executor,
    mut launches: Vec<DecodeLaunch>,
    chunk_kernel: Option<&KernelRef>,
    chunk_only: bool,
) -> Result<()> {
    let chunk = launches.first().map(|l| l.kernel.clone());
    if let (Some(twin), Some(chunk)) = (chunk_kernel, &chunk) {
        for l in launches.iter_mut().filter(|l| &l.kernel == chunk) {
            l.kernel = twin.clone();
        }
    }
    let n = if chunk_only {
        launches
            .iter()
            .rposition(|l| !l.kernel.name.ends_with("_combine"))
            .map_or(0, |last| last + 1)
    } else {
        launches.len()
    };
    for l in launches.iter().take(n) {
        executor.launch(&l.kernel, crate::abi::as_bytes(&l.params), &l.geometry)?;
    }
    Ok(())
}

/// The partials the workspace holds (f32 after the error record): what the chunk kernel left.
/// All zeros when nothing ran (no query row).
fn read_partials(executor: &dyn Executor, workspace: &Buffer) -> Result<Vec<f32>> {
    let mut bytes = vec![0u8; workspace.len()];
    executor.download(workspace, &mut bytes)?;
    let floats = bytes.get(ERROR_RECORD_BYTES..).unwrap_or_default();
    Ok(floats
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The most keys any query row block of one sequence can see: all of them, or under a window
/// `left + right + q_len` (causal caps `right` at 0). The split plan cuts this range. With
/// statistics every key is read (K/V are counted like prefill counts them): `max_seqlen_k`.
pub fn visible_span(g: &AttentionGeometry, options: &AttentionOptions) -> usize {
    let Some((left, right)) = options.window.filter(|_| !options.stats) else {
        return g.max_seqlen_k;
    };
    if left < 0 {
        return g.max_seqlen_k;
    }
    let right = match (right, options.causal) {
        (_, true) => 0,
        (r, false) if r < 0 => return g.max_seqlen_k,
        (r, false) => r as usize,
    };
    g.max_seqlen_k.min(
        (left as usize)
            .saturating_add(right)
            .saturating_add(g.max_seqlen_q),
    )
}

/// The caller's plan (checked by [`check_plan`]) or, without one, [`SplitPlan::new`] over the
/// [`visible_span`] for a GPU of `sm_count` SMs (132 when 0: an H100/H200).
pub(super) fn choose_plan(
    plan: Option<SplitPlan>,
    sm_count: usize,
    g: &AttentionGeometry,
    options: &AttentionOptions,
    page_size: usize,
) -> Result<SplitPlan> {
    if let Some(plan) = plan {
        return check_plan(plan, g, options);
    }
    let sms = if sm_count == 0 { 132 } else { sm_count };
    let span = visible_span(g, options);
    SplitPlan::new(g.batch.max(1), g.kv_heads, span, page_size, sms)
}

/// A caller's plan must cover every visible key: `splits · chunk ≥` [`visible_span`].
fn check_plan(
    plan: SplitPlan,
    g: &AttentionGeometry,
    options: &AttentionOptions,
) -> Result<SplitPlan> {
    let span = visible_span(g, options);
    if plan.splits == 0 || (plan.splits > 1 && plan.splits.saturating_mul(plan.chunk) < span) {
        return Err(Error::InvalidOption(format!(
            "split plan of {} chunks of {} keys does not cover {span} visible keys",
            plan.splits, plan.chunk
        )));
    }
    Ok(plan)
}

/// `indices` when it holds `len` entries (the shape host validation saw).
fn same_len(indices: &[i32], len: usize) -> Result<&[i32]> {
    if indices.len() != len {
        return Err(Error::Shape(format!(
            "kernel indices of {} entries, the validated ones have {len}",
            indices.len()
        )));
    }
    Ok(indices)
}

/// The indices the kernels read: block table, `seq_lens_k`, `cu_seqlens_q` (varlen).
type KernelIndices<'a> = (&'a [i32], &'a [i32], Option<&'a [i32]>);

/// The inputs in executor memory; alive until the launches are done.
struct Uploads {
    q: (Buffer, crate::abi::QaTensorDesc),
    k: (Buffer, crate::abi::QaTensorDesc),
    v: (Buffer, crate::abi::QaTensorDesc),
    gate: Option<(Buffer, crate::abi::QaTensorDesc)>,
    sinks: Option<Buffer>,
    table: Buffer,
    lens: Buffer,
    cu_q: Option<Buffer>,
}

impl Uploads {
    fn new(
        executor: &dyn Executor,
        inputs: &PagedAttentionInputs<'_>,
        options: &AttentionOptions,
        (table, lens, cu_q): KernelIndices<'_>,
    ) -> Result<Self> {
        let varlen = cu_q.is_some();
        // A cache's [page, slot, head] strides land in the descriptor's batch, seq and head
        // strides: the kernels read stride_batch as the page stride.
        let gate = match &inputs.gate {
            Some(g) if options.gate.abi() != crate::abi::QaGate_QA_GATE_NONE => {
                Some(upload_view(executor, g, varlen)?)
            }
            _ => None,
        };
        let sinks = match inputs.sinks {
            Some(s) => Some(upload_slice(executor, bytemuck::cast_slice(s))?),
            None => None,
        };
        Ok(Uploads {
            q: upload_view(executor, &inputs.q, varlen)?,
            k: upload_view(executor, &inputs.k_cache, false)?,
            v: upload_view(executor, &inputs.v_cache, false)?,
            gate,
            sinks,
            table: upload_slice(executor, bytemuck::cast_slice(table))?,
            lens: upload_slice(executor, bytemuck::cast_slice(lens))?,
            cu_q: cu_q
                .map(|c| upload_slice(executor, bytemuck::cast_slice(c)))
                .transpose()?,
        })
    }
}
