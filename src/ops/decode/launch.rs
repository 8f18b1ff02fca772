//! The raw decode entry: a finished [`QaDecodeParams`] (device addresses), a [`SplitPlan`] and a
//! workspace the caller sized once ([`crate::problem::workspace_bytes`]) → the chunk and combine
//! launches of `kernels/decode/`. Nothing is allocated or copied here.

use super::family::choose;
use crate::abi::{self, QaDecodeParams};
use crate::error::{Error, Result};
use crate::launch::{Buffer, Executor, KernelRef, LaunchGeometry};
use crate::ops::attention::family::{check_common, wants_stats};
use crate::problem::{ERROR_RECORD_BYTES, SplitPlan};
use crate::registry;
use crate::variant::KernelChoice;

/// Threads per block of the chunk and combine kernels; the combine takes one row per warp.
const THREADS: u32 = 128;
const COMBINE_ROWS_PER_BLOCK: u32 = THREADS / 32;

/// One kernel launch of a decode call: the kernel, its parameter block, its geometry.
#[derive(Clone, Debug)]
pub struct DecodeLaunch {
    /// The kernel.
    pub kernel: KernelRef,
    /// Its parameters (pass `crate::abi::as_bytes(&params)`).
    pub params: QaDecodeParams,
    /// Grid and block.
    pub geometry: LaunchGeometry,
}

/// The launches of one decode call, in order, without running them: the chunk kernel of the
/// family `choice` resolves to on a device of compute capability `cc` ([`super::choose`]: `Auto`
/// takes the tensor-core chunk where it serves the call) over grid `(splits, kv heads, batch)`,
/// then (when `plan.splits > 1`) the combine over `batch · heads · seqlen_q` rows (varlen:
/// `seqlen_q` is the longest q_len, a sequence's rows past its own are skipped); clipped with a
/// split
/// is chunk, combine, chunk, combine. An engine queues them on its own stream (e.g.
/// [`crate::cuda::CudaDevice::launch_async`]): no allocation, no copy, no synchronisation.
/// `workspace` (`workspace_addr`, `workspace_len` bytes) holds the error record (first
/// [`ERROR_RECORD_BYTES`]) and the partials; the launches' `attn.errors`, `partials`, `splits`,
/// `chunk` and `pass` fields are filled here. Empty when there is no query row.
///
/// With statistics (any pointer in `params.attn.stats`, zeroed by the caller) the `_stats`
/// kernels run and the partials hold 6 more scalars per row (`partial_bytes(.., true)`). They
/// count every key of each sequence, as prefill does, so `plan` must cover `max_seqlen_k` keys even
/// under a window (`super::visible_span` with statistics on).
pub fn decode_launches(
    params: &QaDecodeParams,
    plan: &SplitPlan,
    choice: KernelChoice,
    cc: (u32, u32),
    workspace_addr: u64,
    workspace_len: usize,
) -> Result<Vec<DecodeLaunch>> {
    check_common(&params.attn)?;
    let p = &params.attn;
    check_supported(params)?;
    let kernels = choose(choice, params, cc)?.kernels(params, cc)?;
    // batched: [splits, batch, heads, q_len] partial rows; varlen: [splits, total_q, heads]
    let (seqs, q_rows) = if p.cu_seqlens_q != 0 {
        (p.total_q as usize, 1)
    } else {
        (p.batch as usize, p.seqlen_q as usize)
    };
    let need = plan
        .partial_bytes(
            seqs,
            p.heads as usize,
            q_rows,
            p.head_dim as usize,
            wants_stats(p),
        )
        .saturating_add(ERROR_RECORD_BYTES);
    if workspace_len < need {
        return Err(Error::InvalidOption(format!(
            "decode workspace of {workspace_len} bytes, this call's plan ({} splits) needs {need}",
            plan.splits
        )));
    }
    let splits = u32::try_from(plan.splits.max(1))
        .map_err(|_| Error::Overflow(format!("{} splits", plan.splits)))?;
    let chunk_len = u32::try_from(plan.chunk)
        .map_err(|_| Error::Overflow(format!("chunk of {} keys", plan.chunk)))?;
    if p.batch == 0 || p.heads == 0 || p.seqlen_q == 0 {
        return Ok(Vec::new());
    }
    let mut dp = *params;
    dp.attn.errors = workspace_addr;
    dp.partials = workspace_addr + ERROR_RECORD_BYTES as u64;
    dp.splits = splits;
    dp.chunk = chunk_len;
    let rows = u64::from(p.batch) * u64::from(p.heads) * u64::from(p.seqlen_q);
    let combine_blocks = u32::try_from(rows.div_ceil(u64::from(COMBINE_ROWS_PER_BLOCK)))
        .map_err(|_| Error::Overflow(format!("{rows} query rows")))?;
    // A two-pass normaliser's chunks need the row's lse over every chunk: one launch of the
    // chunks and combine finds it, a second weighs with it. One chunk knows it already.
    let passes = if splits > 1 {
        registry::normaliser(p.normaliser)?.passes
    } else {
        1
    };
    let mut launches = Vec::new();
    for pass in 0..passes {
        dp.pass = pass;
        launches.push(DecodeLaunch {
            kernel: kernels.chunk.clone(),
            params: dp,
            geometry: geometry([splits, p.kv_heads, p.batch], kernels.chunk_smem),
        });
        if splits > 1 {
            launches.push(DecodeLaunch {
                kernel: kernels.combine.clone(),
                params: dp,
                geometry: geometry([combine_blocks, 1, 1], 0),
            });
        }
    }
    Ok(launches)
}

/// Runs the [`decode_launches`] of a call on `executor` (its compute capability picks the
/// family with `choice`), each launch waited for (the host path; engines queue the launches
/// themselves).
///
/// The error record is sticky: kernels only set it. Read it with
/// [`crate::ops::ErrorRecord::read`] when the stream is synchronised anyway, and zero it again
/// with [`crate::ops::ErrorRecord::reset`] after an error.
pub fn decode_raw(
    executor: &dyn Executor,
    params: &QaDecodeParams,
    plan: &SplitPlan,
    choice: KernelChoice,
    workspace: &Buffer,
) -> Result<()> {
    let cc = executor.compute_capability();
    for l in decode_launches(params, plan, choice, cc, workspace.addr(), workspace.len())? {
        executor.launch(&l.kernel, abi::as_bytes(&l.params), &l.geometry)?;
    }
    Ok(())
}

/// What the decode kernels do not serve.
fn check_supported(params: &QaDecodeParams) -> Result<()> {
    let p = &params.attn;
    if p.cu_seqlens_k != 0 {
        return Err(Error::Unsupported(
            "decode takes the key lengths from seq_lens_k, not cu_seqlens_k".into(),
        ));
    }
    if p.kv_heads > 65_535 {
        return Err(Error::Unsupported(format!(
            "{} kv heads: the grid holds at most 65535",
            p.kv_heads
        )));
    }
    Ok(())
}

fn geometry(grid: [u32; 3], dynamic_smem: u32) -> LaunchGeometry {
    LaunchGeometry {
        grid,
        block: [THREADS, 1, 1],
        dynamic_smem,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_params::decode_params;
    use super::*;

    /// The CUDA-core family pinned, on an sm_90.
    const CC: KernelChoice = KernelChoice::CudaCore;
    const SM90: (u32, u32) = (9, 0);

    fn params(normaliser: u32, head_dim: u32) -> QaDecodeParams {
        decode_params((3, 8, 2), head_dim, abi::QaDtype_QA_DTYPE_BF16, normaliser)
    }

    #[test]
    fn launches_name_the_instantiation_and_cover_every_row() {
        let p = params(abi::QaNormaliser_QA_NORM_SINK, 96);
        let plan = SplitPlan {
            splits: 5,
            chunk: 64,
        };
        let need = plan.partial_bytes(3, 8, 4, 96, false) + ERROR_RECORD_BYTES;
        let l = decode_launches(&p, &plan, CC, SM90, 4096, need).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].kernel.module, "decode_sink");
        assert_eq!(l[0].kernel.name, "qa_decode_sink_bf16_d128");
        assert_eq!(l[0].geometry.grid, [5, 2, 3]);
        assert_eq!(l[1].kernel.name, "qa_decode_sink_bf16_d128_combine");
        assert_eq!(l[1].geometry.grid, [24, 1, 1]); // 3 · 8 · 4 rows, 4 per block
        assert_eq!(l[0].params.partials, 4096 + ERROR_RECORD_BYTES as u64);
        assert_eq!((l[0].params.splits, l[0].params.chunk), (5, 64));
    }

    #[test]
    fn clipped_with_a_split_is_four_launches_and_one_split_is_one() {
        let p = params(abi::QaNormaliser_QA_NORM_CLIPPED, 64);
        let split = SplitPlan {
            splits: 2,
            chunk: 64,
        };
        let l = decode_launches(&p, &split, CC, SM90, 0, 1 << 20).unwrap();
        let passes: Vec<u32> = l.iter().map(|l| l.params.pass).collect();
        assert_eq!(passes, [0, 0, 1, 1]);
        let whole = SplitPlan {
            splits: 1,
            chunk: 100,
        };
        let l = decode_launches(&p, &whole, CC, SM90, 0, ERROR_RECORD_BYTES).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].kernel.name, "qa_decode_clipped_bf16_d64");
    }

    #[test]
    fn a_small_workspace_and_bad_head_dims_are_refused_statistics_take_the_stats_pair() {
        let p = params(abi::QaNormaliser_QA_NORM_SOFTMAX, 128);
        let plan = SplitPlan {
            splits: 4,
            chunk: 64,
        };
        let small = decode_launches(&p, &plan, CC, SM90, 0, 1024);
        assert!(matches!(small, Err(Error::InvalidOption(m)) if m.contains("workspace")));
        let mut stats = p;
        stats.attn.stats.tensors = 8;
        // the partials grow by 6 scalars a row: the plain size is too small now
        let plain = plan.partial_bytes(3, 8, 4, 128, false) + ERROR_RECORD_BYTES;
        let short = decode_launches(&stats, &plan, CC, SM90, 0, plain);
        assert!(matches!(short, Err(Error::InvalidOption(m)) if m.contains("workspace")));
        let need = plan.partial_bytes(3, 8, 4, 128, true) + ERROR_RECORD_BYTES;
        let l = decode_launches(&stats, &plan, CC, SM90, 0, need).unwrap();
        assert_eq!(l[0].kernel.name, "qa_decode_softmax_bf16_d128_stats");
        assert_eq!(
            l[1].kernel.name,
            "qa_decode_softmax_bf16_d128_stats_combine"
        );
        assert!(decode_launches(&params(0, 12), &plan, CC, SM90, 0, 1 << 20).is_err());
    }

    #[test]
    fn the_tensor_core_chunk_takes_its_shared_memory_and_the_shared_combine() {
        let p = params(abi::QaNormaliser_QA_NORM_SOFTPICK, 128);
        let plan = SplitPlan {
            splits: 2,
            chunk: 64,
        };
        let tc = KernelChoice::TensorCore;
        let l = decode_launches(&p, &plan, tc, SM90, 0, 1 << 20).unwrap();
        assert_eq!(l[0].kernel.module, "decode_tc_softpick");
        assert_eq!(l[0].kernel.name, "qa_decode_tc_softpick_bf16_d128");
        assert_eq!(
            l[0].geometry.dynamic_smem,
            super::super::tensor_core_smem(128, false)
        );
        assert_eq!(l[0].geometry.grid, [2, 2, 3]);
        assert_eq!(l[1].kernel.name, "qa_decode_softpick_bf16_d128_combine");
        assert_eq!(l[1].geometry.dynamic_smem, 0);
        // Auto on an sm_75 takes the CUDA-core chunk; pinning tensor cores there is refused
        let auto = decode_launches(&p, &plan, KernelChoice::Auto, (7, 5), 0, 1 << 20).unwrap();
        assert_eq!(auto[0].kernel.name, "qa_decode_softpick_bf16_d128");
        assert!(decode_launches(&p, &plan, tc, (7, 5), 0, 1 << 20).is_err());
    }
}
