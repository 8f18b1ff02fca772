// Shared-memory tile storage of the CUDA-core attention kernel and its global-memory row access:
// where a sequence's rows of q/k/v/o live (any strides, batched or varlen) and how a tile of them
// is staged in shared memory as f32.
#pragma once

#include "stats.cuh"
#include "traits.cuh"
#include "variant.cuh"

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

// The element strides of one tensor and the address of row 0 of (sequence, head).
template <class T>
struct RowPtr {
  const T* base;
  int64_t stride;
};

template <class T>
__device__ __forceinline__ RowPtr<T> rows_of(const QaTensorDesc& t, bool varlen, int b, int start,
                                              int head) {
  const int64_t off = (varlen ? 0 : int64_t(b) * t.stride_batch) + int64_t(start) * t.stride_seq +
                      int64_t(head) * t.stride_head;
  return {qa::ptr<const T>(t.ptr) + off, t.stride_seq};
}

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

// A gate logit of any dtype (the gate tensor's own, not necessarily q's).
__device__ __forceinline__ float load_any(uint64_t addr, uint32_t dtype, int64_t i) {
  if (dtype == QA_DTYPE_F16) return qa::to_float(qa::ptr<const qa::f16>(addr)[i]);
  if (dtype == QA_DTYPE_BF16) return qa::to_float(qa::ptr<const qa::bf16>(addr)[i]);
  return qa::ptr<const float>(addr)[i];
}

__device__ __forceinline__ float gate_sigmoid(float g) { return 1.f / (1.f + exp2f(-g * kLog2e)); }

}  // namespace qa::attn
