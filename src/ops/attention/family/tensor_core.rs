//! The tensor-core family (`kernels/tensor_core/`): sm_80+, f16/bf16, head dims 32, 64, 96,
//! 128, 192 and 256, one instantiation each (its registry row, `src/registry/table.rs`). The
//! tile constants mirror `kernels/tensor_core/traits.cuh` (`Traits<D>`); the kernel's own
//! static_asserts pin them there and the emulator tests (sequences longer than one tile, shared
//! memory poisoned past the declared size) would catch a drift here.

use super::{KernelFamily, Launch, THREADS, kernel_ref, query_tile_grid, serves, wants_stats};
use crate::abi::QaAttnParams;
use crate::error::Result;
use crate::launch::LaunchGeometry;
use crate::registry::{self, FamilyRow};

fn row() -> &'static FamilyRow {
    registry::family("tensor_core")
}

/// The head dims the tensor-core kernels are instantiated for.
pub fn head_dims() -> &'static [u32] {
    row().dims
}

/// Statistics tensors (q, k, v, o) in the channel scratch.
const STAT_TENSORS: u32 = 4;

/// The tensor-core kernel family.
pub struct TensorCore;

/// Query rows per block (`Traits<D>::kBlockM`): 4 warps × 32 rows up to d128, × 16 above.
fn block_m(d: u32) -> u32 {
    if d <= 128 { 128 } else { 64 }
}

/// Key tile rows for head dim `d` (`Traits<D, STATS>::kBlockN`).
fn block_n(d: u32, _stats: bool) -> u32 {
    if d <= 128 { 64 } else { 32 }
}

/// V stages of the K/V pipeline (`Traits::kVStages`): one in the SASS of sm_86, sm_89 and
/// sm_120/121, whose blocks get at most 99 KB of shared memory, two elsewhere. A build that ships
/// no SASS for those architectures runs another architecture's there, which asks for more
/// shared memory than they have (the launch fails with the driver's error): the default build
/// ships all of them.
pub fn v_stages(cc: (u32, u32)) -> u32 {
    if matches!(cc, (8, 6) | (8, 9) | (12, 0) | (12, 1)) {
        1
    } else {
        2
    }
}

/// Dynamic shared memory of the `d` instantiation on a device of compute capability `cc`
/// (`Traits<D, STATS>::smem_bytes`): Q, two K stages and the V stages in 16-byte chunks (rows
/// padded to whole swizzle groups), or the f32 O tile plus (statistics) the channel scratch
/// after it, whichever is larger.
pub fn smem_bytes(d: u32, stats: bool, cc: (u32, u32)) -> u32 {
    let chunks = d / 8;
    let stride = if chunks < 8 {
        chunks
    } else {
        chunks.div_ceil(8) * 8
    };
    let tiles = (block_m(d) + (2 + v_stages(cc)) * block_n(d, stats)) * stride * 16;
    // ChannelScratch<D>: sum, sq, cube, q4, absmax, count per tensor and channel, 4 bytes each.
    let scratch = 6 * STAT_TENSORS * d * 4;
    let o_tile = block_m(d) * d * 4 + if stats { scratch } else { 0 };
    tiles.max(o_tile)
}

impl KernelFamily for TensorCore {
    fn name(&self) -> &'static str {
        "tensor-core"
    }

    fn supports(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<()> {
        serves(row(), "tensor-core", params.q.dtype, params.head_dim, cc).map(drop)
    }

    fn plan(&self, params: &QaAttnParams, cc: (u32, u32)) -> Result<Launch> {
        let d = serves(row(), "tensor-core", params.q.dtype, params.head_dim, cc)?;
        Ok(Launch {
            kernel: kernel_ref(row(), params, d)?,
            geometry: LaunchGeometry {
                grid: query_tile_grid(params, block_m(d)),
                block: [THREADS, 1, 1],
                dynamic_smem: smem_bytes(d, wants_stats(params), cc),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Traits<D, STATS>::smem_bytes` worked by hand: Q (block_m rows), two K stages and the V
    /// stages of block_n rows, 16-byte chunks; or the f32 O tile (+ the channel scratch).
    #[test]
    fn shared_memory_per_head_dim_and_architecture() {
        let h100 = (9, 0);
        let rtx4090 = (8, 9);
        // d128: 128 rows × 256 B of Q, 4 stages × 64 keys × 256 B.
        assert_eq!(smem_bytes(128, false, h100), 32_768 + 4 * 16_384);
        // One V stage where blocks get 99 KB.
        assert_eq!(smem_bytes(128, false, rtx4090), 32_768 + 3 * 16_384);
        // Statistics: the O tile (64 KB) and its scratch (12 KB) fit in the tiles.
        assert_eq!(smem_bytes(128, true, h100), 98_304);
        // d96 rows pad to 16 chunks.
        assert_eq!(smem_bytes(96, false, h100), (128 + 4 * 64) * 16 * 16);
        // d256: 64 rows of Q and 32-key stages (96 KB) hold the O tile (64 KB) and its scratch
        // (24 KB); with one V stage (80 KB) the O tile and scratch are the larger.
        assert_eq!(smem_bytes(256, false, h100), (64 + 4 * 32) * 512);
        assert_eq!(smem_bytes(256, true, h100), (64 + 4 * 32) * 512);
        assert_eq!(smem_bytes(256, false, rtx4090), (64 + 3 * 32) * 512);
        assert_eq!(
            smem_bytes(256, true, rtx4090),
            64 * 256 * 4 + 6 * 4 * 256 * 4
        );
        // d192 rows are 24 chunks.
        assert_eq!(smem_bytes(192, true, h100), (64 + 4 * 32) * 384);
        // d96 and d128 are why one V stage exists: with it they leave the 99 KB of sm_86/89
        // room for the static shared memory (row state, statistics: under 16 KB).
        for d in [96, 128] {
            for stats in [false, true] {
                assert!(
                    smem_bytes(d, stats, rtx4090) + 16_384 <= 99 * 1024,
                    "d{d} {stats}"
                );
                assert!(
                    smem_bytes(d, stats, h100) + 16_384 > 99 * 1024,
                    "d{d} {stats}"
                );
            }
        }
    }

    /// d192 and d256 (16 rows per warp, 64 per block: under 11 KB of static shared memory with
    /// statistics) fit the 99 KB of sm_86/89 with their 32-key tiles.
    #[test]
    fn large_heads_fit_the_smallest_block_limit() {
        for d in [192, 256] {
            for stats in [false, true] {
                assert!(
                    smem_bytes(d, stats, (8, 9)) + 11 * 1024 <= 99 * 1024,
                    "d{d} {stats}"
                );
            }
        }
    }

    #[test]
    fn v_stages_follow_the_block_shared_memory_limit() {
        for cc in [(8, 6), (8, 9), (12, 0), (12, 1)] {
            assert_eq!(v_stages(cc), 1, "{cc:?}");
        }
        for cc in [(8, 0), (8, 7), (9, 0), (10, 0), (11, 0)] {
            assert_eq!(v_stages(cc), 2, "{cc:?}");
        }
    }
}
