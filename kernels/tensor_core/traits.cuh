// Tile geometry of the tensor-core attention kernel (sm_80+, f16/bf16): every constant per head
// dim in one place, checked.
//
// One block = 4 warps owns BLOCK_M query rows of one (sequence, head); warp w owns kRowsPerWarp
// consecutive rows, one or two M tiles of mma.m16n8k16. Keys come in tiles of BLOCK_N through two K
// stages and one or two V stages (pipeline.cuh: KvPrefill). Shared memory holds 16-byte chunks (8 elements); a row of the Q/K/V tiles
// is kStride chunks, and chunk c of row r sits at an XOR-swizzled position (chunk()), so the 8
// row addresses of one ldmatrix matrix fall in 8 distinct 16-byte bank groups.
#pragma once

#include "../attention/stats.cuh"
#include "../attention/unroll.cuh"
#include "../qa/types.cuh"

namespace qa::tc {

// 16 bytes of shared memory: the unit of cp.async and of one ldmatrix row.
struct __align__(16) Chunk {
  uint32_t w[4];
};

template <int D, bool STATS>
struct Traits {
  static constexpr int kHeadDim = D;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * WARP_SIZE;
  // Up to d128 a warp owns 32 rows (two mma M tiles, FlashAttention-2's split): every K and V
  // fragment read from shared memory then feeds two mma, halving ldmatrix traffic and barriers
  // per FLOP against 16 rows. Larger heads keep 16 rows: their accumulator alone (D/2 floats per
  // lane and M tile) leaves no registers for a second tile.
  static constexpr int kRowsPerWarp = D <= 128 ? 32 : 16;
  static constexpr int kMTiles = kRowsPerWarp / 16;
  static constexpr int kBlockM = kWarps * kRowsPerWarp;
  // Key tile: 64 up to d128 (S and P take BLOCK_N/2 floats per lane and M tile beside the
  // accumulator); 32 above, where the accumulator takes D/2 floats: with 32 keys d192 and d256
  // use at most 233 registers without spills (ptxas sm_80/90), and Q (re-read every tile) and
  // the O rescale are paid per 32 keys instead of 16. 64 keys would not fit the 99 KB blocks of
  // sm_86/89 at d256.
  static constexpr int kBlockN = D <= 128 ? 64 : 32;
  // Q fragments (kMTiles · D/4 registers per lane) stay in registers while that is at most 32;
  // otherwise they are re-read from shared memory every key tile, as FlashAttention-2 does.
  static constexpr bool kQInRegs = kMTiles * D / 4 <= 32;

  static constexpr int kChunks = D / 8;  // 16-byte chunks of one row
  // The XOR swizzle permutes chunks within aligned groups of 8 (4 at d32, two rows per 128 B);
  // d96 rows are padded to 16 chunks so every group is whole.
  static constexpr int kStride = kChunks < 8 ? kChunks : (kChunks + 7) / 8 * 8;

  static constexpr int kQChunks = kBlockM * kStride;
  static constexpr int kKvChunks = kBlockN * kStride;  // one K or V stage
  // V stages (pipeline.cuh: KvPrefill): two, except in the SASS of the GPUs whose blocks get at
  // most 99 KB of shared memory (sm_86, sm_89, sm_120, sm_121), where two would not fit beside
  // Q, two K stages and the row state at d96 and d128. The host mirrors this rule
  // (family/tensor_core.rs, v_stages).
#if defined(__CUDA_ARCH__) && (__CUDA_ARCH__ == 860 || __CUDA_ARCH__ == 890 || __CUDA_ARCH__ == 1200 || \
                               __CUDA_ARCH__ == 1210)
  static constexpr int kVStages = 1;
#else
  static constexpr int kVStages = 2;
#endif
  static constexpr int kTileBytes = (kQChunks + (2 + kVStages) * kKvChunks) * 16;  // Q, K, V stages
  static constexpr int kOTileBytes = kBlockM * D * 4;  // the f32 O tile of the epilogue, over Q, K, V
  static constexpr int kScratchBytes = int(sizeof(qa::attn::ChannelScratch<D>));
  // Dynamic shared memory: Q, K and V, or the O tile where it is larger (d256), and with
  // statistics the channel scratch after the O tile (Q's and O's counts; the K/V sweep keeps its
  // scratch over the Q tile, which is loaded after it).
  static constexpr int smem_bytes(bool stats) {
    const int o = kOTileBytes + (stats ? kScratchBytes : 0);
    return o > kTileBytes ? o : kTileBytes;
  }

  // Statistics sweep: thread t owns channels t % kThreadsPerRow + k·kThreadsPerRow (< D) of
  // rows t / kThreadsPerRow + n·kRowsPerPass (d96, d192: some threads own fewer channels).
  static constexpr int kThreadsPerRow = D < kThreads && kThreads % D == 0 ? D : kThreads;
  static constexpr int kRowsPerPass = kThreads / kThreadsPerRow;
  static constexpr int kDimsPerThread = (D + kThreadsPerRow - 1) / kThreadsPerRow;

  // Position of chunk c of row r, in chunks from the tile's start.
  __device__ __forceinline__ static int chunk(int r, int c) {
    if constexpr (kChunks < 8) return r * kStride + (c ^ ((r >> 1) & 3));
    else return r * kStride + (c ^ (r & 7));
  }

  static_assert(D == 32 || D == 64 || D == 96 || D == 128 || D == 192 || D == 256, "head dims");
  static_assert(kChunks % 2 == 0, "ldmatrix.x4.trans loads two 8-channel tiles of V at once");
  static_assert(kBlockN % 16 == 0, "P·V takes 16 keys per mma k-step, Q·Kᵀ two 8-key tiles per x4");
  static_assert(kChunks >= 4 && (kChunks < 8 || kStride % 8 == 0), "swizzle groups are whole");
  static_assert(kScratchBytes <= kQChunks * 16, "the K/V sweep's scratch fits over the Q tile");
  static_assert(kOTileBytes >= kQChunks * 16, "Q's and O's scratch (after the O tile) misses Q");
  static_assert(kThreads % kThreadsPerRow == 0, "statistics sweep");
};

}  // namespace qa::tc
