// Tile geometry of the tensor-core decode chunk kernel (sm_80+, f16/bf16), on top of the
// prefill family's (tensor_core/traits.cuh: 16-byte chunks, XOR swizzle, statistics sweep).
//
// One block = 4 warps sweeps its chunk for one row group of 16 query rows (the G·q_len rows of
// its kv head, zero-padded to the M of one mma.m16n8k16; more rows sweep the chunk again). Keys
// come in tiles of 64 through a kStages-deep cp.async pipeline; warp w takes keys 16w..16w+15
// of each tile (one P·V k-step), and the warps share one running max per row, so their l, O
// and statistics partials add up at the end without a per-normaliser merge.
#pragma once

#include "../tensor_core/traits.cuh"

namespace qa::decode_tc {

template <int D, bool STATS>
struct Traits : qa::tc::Traits<D, STATS> {
  using Base = qa::tc::Traits<D, STATS>;
  static constexpr int kRows = 16;  // one row group
  static constexpr int kBlockN = 64;
  static constexpr int kKeysPerWarp = kBlockN / Base::kWarps;
  static constexpr int kStages = 2;
  static constexpr int kQChunks = kRows * Base::kStride;
  static constexpr int kKvChunks = kBlockN * Base::kStride;  // one K (or V) stage
  static constexpr int kTileBytes = (kQChunks + 2 * kStages * kKvChunks) * 16;
  static constexpr int kScratchBytes = int(sizeof(qa::attn::ChannelScratch<D>));
  // Dynamic shared memory: Q, the K and V stages, then (statistics) the channel scratch.
  static constexpr int smem_bytes(bool stats) { return kTileBytes + (stats ? kScratchBytes : 0); }
  // The epilogue stages every warp's f32 O (16 rows × D) over the dead tiles.
  static constexpr int kOTileFloats = kRows * D;

  static_assert(kKeysPerWarp == 16, "a warp's keys are one P·V k-step");
  // Q fragments (D/4 registers per lane) and O (D/2) stay in registers through the key loop:
  // at d256 that spilled (kernel.cuh), so the family stops at 128.
  static_assert(D == 64 || D == 128, "head dims of the tensor-core decode chunk");
  static_assert(Base::kWarps * kOTileFloats * 4 <= kTileBytes, "the warps' O tiles fit over the tiles");
  static_assert(kStages >= 2, "the pipeline overlaps one load with one tile's math");
};

}  // namespace qa::decode_tc
