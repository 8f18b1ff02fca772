// Shared-memory tile storage of the CUDA-core attention kernel: how a tile of rows (found with
// attention/rows.cuh) is staged in shared memory as f32.
#pragma once

#include "../attention/rows.cuh"
#include "../attention/stats.cuh"
#include "../attention/variant.cuh"
#include "traits.cuh"

namespace qa::attn {

template <int MAX_D, bool STATS>
struct SharedStorage {
  using Tr = Traits<MAX_D>;
  struct Tiles {
    f32x4 q[Tr::kBlockM][Tr::kMaxD4];
    f32x4 k[Tr::kBlockN][Tr::kKStride4];
    f32x4 v[Tr::kBlockN][Tr::kMaxD4];
  };
  union {
    Tiles tiles;
    ChannelScratch<MAX_D> channels;  // statistics epilogue, after the last tile
  };
  f32x4 s[Tr::kWarps][Tr::kRowsPerWarp][Tr::kBlockN / 4];  // the tile's logits (log2 units)
  f32x4 p[Tr::kWarps][Tr::kRowsPerWarp][Tr::kBlockN / 4];  // the tile's weights
};

template <int MAX_D>
struct SharedStats {
  BlockStats block;
};

static_assert(sizeof(SharedStorage<64, true>) + sizeof(BlockStats) <= 48 * 1024, "d64 smem");
static_assert(sizeof(SharedStorage<128, true>) + sizeof(BlockStats) <= 48 * 1024, "d128 smem");
static_assert(sizeof(SharedStorage<256, true>) + sizeof(BlockStats) <= 48 * 1024, "d256 smem");

// Stages rows [0, valid) of `src` (zeros beyond, and in channels >= d) into a shared tile of
// f32x4 rows; counts each element read when COUNT. Thread t always handles the same channels,
// so its ChannelAcc registers stay per channel.
template <class Tr, bool COUNT, class T, int ROWS>
__device__ __forceinline__ void load_rows(f32x4 (*dst)[ROWS], int tile_rows, RowPtr<T> src,
                                          int valid, int d, ChannelAcc* ch, unsigned* hist) {
  const int c0 = threadIdx.x % Tr::kThreadsPerRow;
  for (int r = threadIdx.x / Tr::kThreadsPerRow; r < tile_rows; r += Tr::kRowsPerPass) {
QA_UNROLL
    for (int k = 0; k < Tr::kDimsPerThread; ++k) {
      const int c = c0 + k * Tr::kThreadsPerRow;
      float x = 0.f;
      if (r < valid && c < d) {
        x = qa::to_float(src.base[int64_t(r) * src.stride + c]);
        if constexpr (COUNT) count_element(x, ch[k], hist);
      }
      dst[r][c / 4].v[c % 4] = x;
    }
  }
}

}  // namespace qa::attn
