//! Which kernel instantiation and launch geometry serve a [`QaAttnParams`], and the raw entry
//! point for callers that own the device memory.
//!
//! The tile constants mirror `kernels/attention/traits.cuh` (`Traits<MAX_D>::kBlockM`); the
//! emulator tests with sequences longer than one tile would catch a drift.

use crate::abi::{self, QaAttnParams};
use crate::error::{Error, Result};
use crate::launch::{Executor, KernelRef, LaunchGeometry};

/// Threads per block of every attention kernel (4 warps).
pub const THREADS: u32 = 128;
/// Largest head dimension the CUDA-core kernels support.
pub const MAX_HEAD_DIM: usize = 256;
/// Head dimensions must be a multiple of this.
pub const HEAD_DIM_MULTIPLE: usize = 8;

/// The head-dim bound of the instantiation serving `head_dim`, and its query rows per block.
fn tile(head_dim: usize) -> (u32, u32) {
    match head_dim {
        0..=64 => (64, 32),
        65..=128 => (128, 16),
        _ => (256, 8),
    }
}

/// Checks that the kernels support `head_dim`.
pub fn check_head_dim(head_dim: usize) -> Result<()> {
    if head_dim == 0 || head_dim % HEAD_DIM_MULTIPLE != 0 || head_dim > MAX_HEAD_DIM {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim}: the attention kernels need a multiple of {HEAD_DIM_MULTIPLE} \
             up to {MAX_HEAD_DIM}"
        )));
    }
    Ok(())
}

/// The `kernels/attn_<norm>.cu` module of a normaliser ABI value.
fn module(normaliser: u32) -> Result<&'static str> {
    Ok(match normaliser {
        abi::QaNormaliser_QA_NORM_SOFTMAX => "attn_softmax",
        abi::QaNormaliser_QA_NORM_OFF_BY_ONE => "attn_off_by_one",
        abi::QaNormaliser_QA_NORM_SINK => "attn_sink",
        abi::QaNormaliser_QA_NORM_CLIPPED => "attn_clipped",
        abi::QaNormaliser_QA_NORM_SOFTPICK => "attn_softpick",
        abi::QaNormaliser_QA_NORM_SIGMOID => "attn_sigmoid",
        other => {
            return Err(Error::InvalidOption(format!(
                "normaliser ABI value {other}"
            )));
        }
    })
}

fn dtype_name(dtype: u32) -> Result<&'static str> {
    Ok(match dtype {
        abi::QaDtype_QA_DTYPE_F32 => "f32",
        abi::QaDtype_QA_DTYPE_F16 => "f16",
        abi::QaDtype_QA_DTYPE_BF16 => "bf16",
        other => return Err(Error::Unsupported(format!("dtype ABI value {other}"))),
    })
}

/// True when `params` asks for any statistics (the `_stats` instantiation).
pub fn wants_stats(params: &QaAttnParams) -> bool {
    let s = &params.stats;
    s.heads != 0 || s.tensors != 0 || s.channels.iter().any(|&c| c != 0)
}

/// The kernel and geometry for `params`, computed once per call. Launches nothing.
pub fn plan(params: &QaAttnParams) -> Result<(KernelRef, LaunchGeometry)> {
    let head_dim = params.head_dim as usize;
    check_head_dim(head_dim)?;
    if params.kv_heads == 0 || params.heads % params.kv_heads != 0 {
        return Err(Error::Shape(format!(
            "query heads ({}) must be a positive multiple of kv heads ({})",
            params.heads, params.kv_heads
        )));
    }
    for (name, d) in [("k", &params.k), ("v", &params.v), ("o", &params.o)] {
        if d.dtype != params.q.dtype {
            return Err(Error::Unsupported(format!(
                "{name} dtype {} differs from q dtype {}",
                d.dtype, params.q.dtype
            )));
        }
    }
    if params.normaliser == abi::QaNormaliser_QA_NORM_SINK && params.sinks == 0 {
        return Err(Error::InvalidOption(
            "the sink normaliser needs sinks".into(),
        ));
    }
    if params.heads > 65_535 || params.batch > 65_535 {
        return Err(Error::Unsupported(format!(
            "{} heads x {} sequences: the grid holds at most 65535 of each",
            params.heads, params.batch
        )));
    }
    let (max_d, block_m) = tile(head_dim);
    let name = format!(
        "qa_attn_{}_{}_d{max_d}{}",
        module(params.normaliser)?.trim_start_matches("attn_"),
        dtype_name(params.q.dtype)?,
        if wants_stats(params) { "_stats" } else { "" }
    );
    // At least one query tile: block 0 of each (sequence, kv head) counts K and V.
    let m_tiles = params.seqlen_q.div_ceil(block_m).max(1);
    let geometry = LaunchGeometry {
        grid: [m_tiles, params.heads, params.batch],
        block: [THREADS, 1, 1],
        dynamic_smem: 0,
    };
    let kernel = KernelRef {
        module: module(params.normaliser)?,
        name,
    };
    Ok((kernel, geometry))
}

/// Runs attention on memory the caller owns (an engine's device buffers).
///
/// `params` holds device addresses valid for `executor` (for CUDA: `CudaSlice` device pointers
/// of the executor's context; the launch goes to its stream and is waited for), the dims, mask
/// and variant fields, and `stats` addresses of zeroed (or accumulating) counters, or 0.
/// `seqlen_q` must be the longest query sequence when varlen. Nothing is uploaded or checked
/// beyond the geometry: the caller vouches for the addresses and extents.
pub fn attention_raw(executor: &dyn Executor, params: &QaAttnParams) -> Result<()> {
    let (kernel, geometry) = plan(params)?;
    if params.batch == 0 {
        return Ok(());
    }
    executor.launch(&kernel, abi::as_bytes(params), &geometry)
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn plan_names_the_instantiation_and_covers_every_row() {
        let mut p = QaAttnParams {
            heads: 8,
            kv_heads: 2,
            head_dim: 96,
            seqlen_q: 33,
            batch: 3,
            normaliser: abi::QaNormaliser_QA_NORM_OFF_BY_ONE,
            ..Default::default()
        };
        p.q.dtype = abi::QaDtype_QA_DTYPE_BF16;
        p.k.dtype = p.q.dtype;
        p.v.dtype = p.q.dtype;
        p.o.dtype = p.q.dtype;
        let (k, g) = plan(&p).unwrap();
        assert_eq!(k.module, "attn_off_by_one");
        assert_eq!(k.name, "qa_attn_off_by_one_bf16_d128");
        assert_eq!(g.grid, [3, 8, 3]); // 33 rows in tiles of 16
        p.stats.tensors = 64;
        p.seqlen_q = 0;
        let (k, g) = plan(&p).unwrap();
        assert_eq!(k.name, "qa_attn_off_by_one_bf16_d128_stats");
        assert_eq!(g.grid[0], 1);
    }
}
