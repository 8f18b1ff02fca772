//! The tensor-core family (`kernels/tensor_core/`): sm_80+, f16/bf16, head dims 32, 64, 96,
//! 128, 192 and 256, one instantiation each. The tile constants mirror
//! `kernels/tensor_core/traits.cuh` (`Traits<D>`); the kernel's own static_asserts pin them there
//! and the emulator tests (sequences longer than one tile, shared memory poisoned past the
//! declared size) would catch a drift here.

use super::{KernelFamily, Launch, THREADS, kernel_ref, query_tile_grid, wants_stats};
use crate::abi::{self, QaAttnParams};
use crate::error::{Error, Result};
use crate::launch::LaunchGeometry;

/// The head dims the tensor-core kernels are instantiated for.
pub const HEAD_DIMS: [u32; 6] = [32, 64, 96, 128, 192, 256];

/// Modules by normaliser ABI value.
const MODULES: [&str; 6] = [
    "tc_softmax",
    "tc_off_by_one",
    "tc_sink",
    "tc_clipped",
    "tc_softpick",
    "tc_sigmoid",
];

/// Query rows per block (4 warps × 16).
const BLOCK_M: u32 = 64;
/// cp.async pipeline depth.
const STAGES: u32 = 2;
/// Statistics tensors (q, k, v, o) in the channel scratch.
const STAT_TENSORS: u32 = 4;

/// The tensor-core kernel family.
pub struct TensorCore;

/// Key tile rows for head dim `d` (`Traits<D, STATS>::kBlockN`).
fn block_n(d: u32, stats: bool) -> u32 {
    match (d, stats) {
        (32 | 64, _) | (128, false) => 64,
        (0..=128, _) | (192, false) => 32,
        _ => 16,
    }
}

/// Dynamic shared memory of the `d` instantiation (`Traits<D, STATS>::smem_bytes`): Q, the K and V
/// stages in 16-byte chunks (rows padded to whole swizzle groups), then the channel scratch.
pub fn smem_bytes(d: u32, stats: bool) -> u32 {
    let chunks = d / 8;
    let stride = if chunks < 8 {
        chunks
    } else {
        chunks.div_ceil(8) * 8
    };
    let tiles = (BLOCK_M + 2 * STAGES * block_n(d, stats)) * stride * 16;
    // ChannelScratch<D>: sum, sq, cube, q4, absmax, count per tensor and channel, 4 bytes each.
    let scratch = 6 * STAT_TENSORS * d * 4;
    tiles + if stats { scratch } else { 0 }
}

impl KernelFamily for TensorCore {
    fn name(&self) -> &'static str {
        "tensor-core"
    }

    fn supports(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<()> {
        let unsupported = |why: String| Err(Error::Unsupported(format!("tensor-core: {why}")));
        if cc < (8, 0) {
            return unsupported(format!(
                "needs compute capability 8.0 or newer, the device has {}.{}",
                cc.0, cc.1
            ));
        }
        if params.q.dtype == abi::QaDtype_QA_DTYPE_F32 {
            return unsupported("f16 or bf16 inputs only, not f32".into());
        }
        if !HEAD_DIMS.contains(&params.head_dim) {
            return unsupported(format!(
                "head dim {} is not one of {HEAD_DIMS:?}",
                params.head_dim
            ));
        }
        Ok(())
    }

    fn plan(&self, params: &QaAttnParams) -> Result<Launch> {
        let d = params.head_dim;
        Ok(Launch {
            kernel: kernel_ref(&MODULES, "qa_tc", params, d)?,
            geometry: LaunchGeometry {
                grid: query_tile_grid(params, BLOCK_M),
                block: [THREADS, 1, 1],
                dynamic_smem: smem_bytes(d, wants_stats(params)),
            },
        })
    }
}
