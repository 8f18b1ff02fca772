//! The CUDA-core family (`kernels/cuda_core/`): any sm_75+, f32/f16/bf16, head dims a multiple
//! of 8 up to 256. Its tile constants mirror `kernels/cuda_core/traits.cuh`
//! (`Traits<MAX_D>::kBlockM`); the emulator tests with sequences longer than one tile would
//! catch a drift.

use super::{KernelFamily, Launch, THREADS, kernel_ref, query_tile_grid};
use crate::abi::QaAttnParams;
use crate::error::{Error, Result};
use crate::launch::LaunchGeometry;

/// Largest head dimension the CUDA-core kernels support.
pub const MAX_HEAD_DIM: usize = 256;
/// Head dimensions must be a multiple of this.
pub const HEAD_DIM_MULTIPLE: usize = 8;

/// Modules by normaliser ABI value.
const MODULES: [&str; 6] = [
    "attn_softmax",
    "attn_off_by_one",
    "attn_sink",
    "attn_clipped",
    "attn_softpick",
    "attn_sigmoid",
];

/// The CUDA-core kernel family.
pub struct CudaCore;

/// The head-dim bound of the instantiation serving `head_dim`, and its query rows per block.
fn tile(head_dim: usize) -> (u32, u32) {
    match head_dim {
        0..=64 => (64, 32),
        65..=128 => (128, 16),
        _ => (256, 8),
    }
}

/// Checks that the CUDA-core kernels (the widest family) support `head_dim`.
pub fn check_head_dim(head_dim: usize) -> Result<()> {
    if head_dim == 0 || head_dim % HEAD_DIM_MULTIPLE != 0 || head_dim > MAX_HEAD_DIM {
        return Err(Error::Unsupported(format!(
            "head dim {head_dim}: the attention kernels need a multiple of {HEAD_DIM_MULTIPLE} \
             up to {MAX_HEAD_DIM}"
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
        if cc < (7, 5) {
            return Err(Error::Unsupported(format!(
                "the cuda-core kernels need compute capability 7.5 or newer, the device has {}.{}",
                cc.0, cc.1
            )));
        }
        Ok(())
    }

    fn plan(&self, params: &QaAttnParams, _cc: (u32, u32)) -> Result<Launch> {
        let (max_d, block_m) = tile(params.head_dim as usize);
        Ok(Launch {
            kernel: kernel_ref(&MODULES, "qa_attn", params, max_d)?,
            geometry: LaunchGeometry {
                grid: query_tile_grid(params, block_m),
                block: [THREADS, 1, 1],
                dynamic_smem: 0,
            },
        })
    }
}
