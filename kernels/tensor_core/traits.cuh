// Tile geometry of the tensor-core attention kernel (sm_80+, f16/bf16): every constant per head
// dim in one place, checked.
//
// One block = 4 warps owns BLOCK_M = 64 query rows of one (sequence, head); warp w owns rows
// 16w..16w+15, the M of one mma.m16n8k16. Keys come in tiles of BLOCK_N through a kStages-deep
// cp.async pipeline. Shared memory holds 16-byte chunks (8 elements); a row of the Q/K/V tiles
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
  static constexpr int kRowsPerWarp = 16;
  static constexpr int kBlockM = kWarps * kRowsPerWarp;
  // Larger heads take narrower key tiles: the accumulator (D/2 floats per lane) grows with D,
  // and S, P (BLOCK_N/2 and BLOCK_N/4 per lane) must shrink for zero spills (ptxas sm_80/90).
  // Statistics keep ~12 more values per lane live through the key loop: from d128 on they take
  // the next narrower tile. (Measured with ptxas -v on sm_80 and sm_90, every instantiation;
  // d96 at 64 keys spilled with statistics, d128 without them did not.)
  static constexpr int kBlockN = D == 32 || D == 64 || (D == 128 && !STATS) ? 64
                                 : (D <= 128 || (D == 192 && !STATS)) ? 32
                                                                     : 16;
  static constexpr int kStages = 2;
  // Q fragments stay in registers (D/4 per lane) up to d128; larger heads re-read them from
  // shared memory each k-step (registers go to the accumulator).
  static constexpr bool kQInRegs = D <= 128;

  static constexpr int kChunks = D / 8;  // 16-byte chunks of one row
  // The XOR swizzle permutes chunks within aligned groups of 8 (4 at d32, two rows per 128 B);
  // d96 rows are padded to 16 chunks so every group is whole.
  static constexpr int kStride = kChunks < 8 ? kChunks : (kChunks + 7) / 8 * 8;

  static constexpr int kQChunks = kBlockM * kStride;
  static constexpr int kKvChunks = kBlockN * kStride;  // one K (or V) stage
  static constexpr int kTileBytes = (kQChunks + 2 * kStages * kKvChunks) * 16;
  static constexpr int kScratchBytes = int(sizeof(qa::attn::ChannelScratch<D>));
  // Dynamic shared memory: Q, the K and V stages, then (statistics) the channel scratch.
  static constexpr int smem_bytes(bool stats) { return kTileBytes + (stats ? kScratchBytes : 0); }

  // Loader: thread t copies chunks t, t + kThreads, ... of a tile.
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
  static_assert(kStages >= 2, "the pipeline overlaps one load with one tile's math");
  static_assert(kBlockM * D * 4 <= kTileBytes, "the f32 O tile fits over the dead Q and K/V tiles");
  static_assert(kThreads % kThreadsPerRow == 0, "statistics sweep");
};

}  // namespace qa::tc
