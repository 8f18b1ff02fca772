//! The raw entry point for callers that own the device memory: plan with the kernel families
//! (`family.rs`), launch.

use super::family;
use crate::abi::{self, QaAttnParams};
use crate::error::Result;
use crate::launch::Executor;
use crate::ops::ErrorRecord;
use crate::problem::ERROR_RECORD_BYTES;
use crate::variant::KernelChoice;

/// Runs attention on memory the caller owns (an engine's device buffers).
///
/// `params` holds device addresses valid for `executor` (for CUDA: `CudaSlice` device pointers
/// of the executor's context; the launch goes to its stream and is waited for), the dims, mask
/// and variant fields, and `stats` addresses of zeroed (or accumulating) counters, or 0.
/// `seqlen_q` must be the longest query sequence when varlen. Nothing is uploaded or checked
/// beyond the geometry: the caller vouches for the addresses. `choice` picks the kernel family
/// for the executor's compute capability.
///
/// Varlen offsets are checked by the kernel against `seqlen_q`/`seqlen_k` and
/// `total_q`/`total_k` (the rows of the packed tensors). `params.errors` set: a bad entry is
/// recorded there (sticky, [`ErrorRecord`]); 0: the call records into memory of its own and
/// returns the [`crate::Error::Index`] naming the entry.
pub fn attention_raw(
    executor: &dyn Executor,
    params: &QaAttnParams,
    choice: KernelChoice,
) -> Result<()> {
    let launch = family::plan(params, choice, executor.compute_capability())?;
    if params.batch == 0 {
        return Ok(());
    }
    if params.errors != 0 || params.cu_seqlens_q == 0 {
        return executor.launch(&launch.kernel, abi::as_bytes(params), &launch.geometry);
    }
    let record = executor.alloc_zeroed(ERROR_RECORD_BYTES)?;
    let p = QaAttnParams {
        errors: record.addr(),
        ..*params
    };
    executor.launch(&launch.kernel, abi::as_bytes(&p), &launch.geometry)?;
    ErrorRecord::read(executor, &record)?.check()
}

#[cfg(test)]
mod tests {
    use super::family::{check_head_dim, plan};
    use super::*;
    use crate::error::Error;

    fn params(head_dim: u32, dtype: u32) -> QaAttnParams {
        let mut p = QaAttnParams {
            heads: 8,
            kv_heads: 2,
            head_dim,
            seqlen_q: 33,
            batch: 3,
            normaliser: abi::QaNormaliser_QA_NORM_OFF_BY_ONE,
            ..Default::default()
        };
        for d in [&mut p.q, &mut p.k, &mut p.v, &mut p.o] {
            d.dtype = dtype;
        }
        p
    }

    #[test]
    fn head_dims_outside_the_kernels_are_refused() {
        for d in [0, 4, 12, 264, 512] {
            assert!(check_head_dim(d).is_err(), "d = {d}");
        }
        for d in [8, 64, 72, 128, 200, 256] {
            assert!(check_head_dim(d).is_ok(), "d = {d}");
        }
    }

    #[test]
    fn cuda_core_plan_names_the_instantiation_and_covers_every_row() {
        let mut p = params(96, abi::QaDtype_QA_DTYPE_BF16);
        let l = plan(&p, KernelChoice::CudaCore, (8, 0)).unwrap();
        assert_eq!(l.kernel.module, "attn_off_by_one");
        assert_eq!(l.kernel.name, "qa_attn_off_by_one_bf16_d128");
        assert_eq!(l.geometry.grid, [3, 8, 3]); // 33 rows in tiles of 16
        p.stats.tensors = 64;
        p.seqlen_q = 0;
        let l = plan(&p, KernelChoice::CudaCore, (7, 5)).unwrap();
        assert_eq!(l.kernel.name, "qa_attn_off_by_one_bf16_d128_stats");
        assert_eq!(l.geometry.grid[0], 1);
    }

    #[test]
    fn auto_takes_tensor_cores_where_they_apply() {
        let p = params(96, abi::QaDtype_QA_DTYPE_BF16);
        let l = plan(&p, KernelChoice::Auto, (8, 0)).unwrap();
        assert_eq!(l.kernel.module, "tc_off_by_one");
        assert_eq!(l.kernel.name, "qa_tc_off_by_one_bf16_d96");
        assert_eq!(l.geometry.grid, [1, 8, 3]); // 33 rows in one tile of 128
        // Q 128 rows + 2 stages of K and V × 64 keys, rows padded to 16 chunks of 16 bytes.
        assert_eq!(l.geometry.dynamic_smem, (128 + 2 * 2 * 64) * 16 * 16);
        // One V stage on sm_89 (99 KB per block).
        let l = plan(&p, KernelChoice::Auto, (8, 9)).unwrap();
        assert_eq!(l.geometry.dynamic_smem, (128 + 3 * 64) * 16 * 16);
        // sm_75, f32 and d72 fall back to the CUDA-core family.
        let cases = [
            (params(96, abi::QaDtype_QA_DTYPE_BF16), (7, 5)),
            (params(96, abi::QaDtype_QA_DTYPE_F32), (9, 0)),
            (params(72, abi::QaDtype_QA_DTYPE_F16), (9, 0)),
        ];
        for (p, cc) in cases {
            let l = plan(&p, KernelChoice::Auto, cc).unwrap();
            assert!(
                l.kernel.name.starts_with("qa_attn_"),
                "{cc:?}: {}",
                l.kernel.name
            );
        }
    }

    #[test]
    fn pinning_a_family_that_cannot_serve_says_why() {
        let why = |p: &QaAttnParams, cc| match plan(p, KernelChoice::TensorCore, cc) {
            Err(Error::Unsupported(m)) => m,
            other => panic!("expected Unsupported, got {other:?}"),
        };
        assert!(why(&params(64, abi::QaDtype_QA_DTYPE_F16), (7, 5)).contains("8.0"));
        assert!(why(&params(64, abi::QaDtype_QA_DTYPE_F32), (9, 0)).contains("f32"));
        assert!(why(&params(72, abi::QaDtype_QA_DTYPE_F16), (9, 0)).contains("head dim 72"));
        let err = plan(
            &params(64, abi::QaDtype_QA_DTYPE_F16),
            KernelChoice::CudaCore,
            (7, 0),
        );
        assert!(matches!(err, Err(Error::Unsupported(m)) if m.contains("7.5")));
    }
}
