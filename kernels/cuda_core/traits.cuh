// Tile geometry of the CUDA-core attention kernel: every constant in one place, checked.
//
// One block = 4 warps owns BLOCK_M query rows of one (sequence, head); each warp owns
// ROWS_PER_WARP of them. Keys come in tiles of BLOCK_N staged in shared memory as f32.
//  - scores: lane j computes key j's dot products with the warp's rows (when BLOCK_N = 16,
//    two lanes split one dot product and add with one shuffle);
//  - P·V: the accumulator is split over lanes by channel, one float4 group of 4 channels per
//    lane and group; when the head has fewer than 32 groups, the two half-warps take alternate
//    halves of the key tile and add their accumulators once at the end.
// Head dims are a runtime value (multiple of 8) up to MAX_D; the three instantiations are
// MAX_D = 64, 128, 256, sized so the static shared memory stays under 48 KiB on every sm_75+.
#pragma once

#include "../attention/unroll.cuh"
#include "../qa/types.cuh"

namespace qa::attn {

// 4 floats that shared memory stores and loads as one 128-bit access.
struct __align__(16) f32x4 {
  float v[4];
};

template <int MAX_D>
struct Traits {
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * WARP_SIZE;
  static constexpr int kMaxD = MAX_D;
  static constexpr int kMaxD4 = MAX_D / 4;  // float4 channel groups

  // Key tile: one key per lane, except at d = 256 where K and V tiles of 32 keys would not fit.
  static constexpr int kBlockN = MAX_D > 128 ? 16 : 32;
  static constexpr int kLanesPerKey = WARP_SIZE / kBlockN;
  static constexpr int kRowsPerWarp = MAX_D <= 64 ? 8 : (MAX_D <= 128 ? 4 : 2);
  static constexpr int kBlockM = kWarps * kRowsPerWarp;

  // P·V: channel groups per lane, and how many lane sets split the key tile.
  static constexpr int kGroupsPerLane = kMaxD4 > WARP_SIZE ? kMaxD4 / WARP_SIZE : 1;
  static constexpr int kKeySplit = kMaxD4 < WARP_SIZE ? WARP_SIZE / kMaxD4 : 1;
  static constexpr int kKeysPerSplit = kBlockN / kKeySplit;

  // Global -> shared loads: consecutive threads read consecutive channels of one row.
  static constexpr int kThreadsPerRow = MAX_D < kThreads ? MAX_D : kThreads;
  static constexpr int kRowsPerPass = kThreads / kThreadsPerRow;
  static constexpr int kDimsPerThread = MAX_D / kThreadsPerRow;

  // K rows are padded by one float4 so lane j's 128-bit reads of row j hit distinct banks.
  static constexpr int kKStride4 = kMaxD4 + 1;

  static_assert(MAX_D == 64 || MAX_D == 128 || MAX_D == 256, "instantiated head-dim bounds");
  static_assert(kBlockN * kLanesPerKey == WARP_SIZE, "lanes cover the key tile exactly");
  static_assert(kLanesPerKey == 1 || kLanesPerKey == 2, "one shuffle joins a split dot product");
  static_assert(kGroupsPerLane * WARP_SIZE * 4 == MAX_D || kKeySplit * kMaxD4 == WARP_SIZE,
                "channel groups tile the head exactly");
  static_assert(kKeySplit == 1 || kKeySplit == 2, "one shuffle joins split accumulators");
  static_assert(kBlockN % kKeySplit == 0, "key split divides the tile");
  static_assert(kThreads % kThreadsPerRow == 0 && MAX_D % kThreadsPerRow == 0, "loader tiling");
  static_assert(kBlockM % kRowsPerPass == 0 && kBlockN % kRowsPerPass == 0, "loader rows");
};

}  // namespace qa::attn
