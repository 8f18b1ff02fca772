//! The CUDA-core family (`kernels/cuda_core/`): any sm_75+, f32/f16/bf16, head dims a multiple
//! of 8 up to 256 (its registry row, `src/registry/table.rs`). Rows per block mirror
//! `kernels/cuda_core/traits.cuh` (`Traits<MAX_D>::kBlockM`); the emulator tests with sequences
//! longer than one tile would catch a drift.

use super::{KernelFamily, Launch, THREADS, kernel_ref, query_tile_grid, serves};
use crate::abi::QaAttnParams;
use crate::error::{Error, Result};
use crate::launch::LaunchGeometry;
use crate::registry::{self, FamilyRow};

/// Head dimensions must be a multiple of this.
pub const HEAD_DIM_MULTIPLE: usize = 8;

fn row() -> &'static FamilyRow {
    registry::family("cuda_core")
}

/// Largest head dimension the CUDA-core kernels (the widest family) support.
pub fn max_head_dim() -> usize {
    row().dims.last().copied().unwrap_or(0) as usize
}

/// The CUDA-core kernel family.
pub struct CudaCore;

/// Query rows per block of the instantiation at head-dim bound `max_d`.
fn block_m(max_d: u32) -> u32 {
    match max_d {
        64 => 32,
        128 => 16,
        _ => 8,
    }
}

/// Checks that the CUDA-core kernels (the widest family) support `head_dim`.
pub fn check_head_dim(head_dim: usize) -> Result<()> {
    let max = max_head_dim();
    if head_dim == 0 || head_dim % HEAD_DIM_MULTIPLE != 0 || head_dim > max {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim}: the attention kernels need a multiple of {HEAD_DIM_MULTIPLE} \
             up to {max}"
        )));
    }
    Ok(())
}

impl KernelFamily for CudaCore {
    fn name(&self) -> &'static str {
        "cuda-core"
    }

    fn supports(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<()> {
        check_head_dim(params.head_dim as usize)?;
        serves(row(), "cuda-core", params.q.dtype, params.head_dim, cc).map(drop)
    }

    fn plan(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<Launch> {
        let max_d = serves(row(), "cuda-core", params.q.dtype, params.head_dim, cc)?;
        Ok(Launch {
            kernel: kernel_ref(row(), params, max_d)?,
            geometry: LaunchGeometry {
                grid: query_tile_grid(params, block_m(max_d)),
                block: [THREADS, 1, 1],
                dynamic_smem: 0,
            },
        })
    }
}
