// Global -> shared staging of the decode chunk kernel: the block's query rows (G query heads ×
// q_len rows of one kv head) and page-addressed K/V tiles, as f32 rows in the CUDA-core
// family's shared layout (cuda_core/tile_io.cuh, included read-only).
#pragma once

#include "../cuda_core/tile_io.cuh"
#include "paged.cuh"
#include "stats.cuh"

namespace qa::decode {

using qa::attn::f32x4;

// Stages keys [kv0, kv0 + valid) of kv head `kvh` from the cache `t` (zeros beyond and in
// channels >= d). Thread t keeps the same channels for every row, like load_rows, so `ch[k]`
// holds channel c0 + k·kThreadsPerRow; each element read is counted there and in `hist` when
// `hist` is not null.
template <class Tr, class T, int STRIDE4>
__device__ __forceinline__ void load_keys(f32x4 (*dst)[STRIDE4], const QaDecodeParams& dp,
                                          const QaTensorDesc& t, const int* row, int kv0, int valid,
                                          int kvh, int d, ChannelAcc* ch, unsigned* hist) {
  const T* base = qa::ptr<const T>(t.ptr);
  const int c0 = threadIdx.x % Tr::kThreadsPerRow;
  for (int r = threadIdx.x / Tr::kThreadsPerRow; r < Tr::kBlockN; r += Tr::kRowsPerPass) {
    const T* src = r < valid ? base + key_offset(dp, t, row, kv0 + r, kvh) : nullptr;
QA_UNROLL
    for (int k = 0; k < Tr::kDimsPerThread; ++k) {
      const int c = c0 + k * Tr::kThreadsPerRow;
      const bool here = src != nullptr && c < d;
      const float x = here ? qa::to_float(src[c]) : 0.f;
      if (hist != nullptr && here) count_element(x, ch[k], hist);
      dst[r][c / 4].v[c % 4] = x;
    }
  }
}

// Stages the block's rows [row0, row0 + kBlockM) of its G·q.len query rows (zeros past `rows`);
// counts each element in `hist` and its head's channel (stats.cuh) when `hist` is not null.
template <class Tr, class T>
__device__ __forceinline__ void load_queries(f32x4 (*dst)[Tr::kMaxD4], const QaAttnParams& p,
                                             const QueryRows& q, int kvh, int row0, int rows, unsigned* hist) {
  const int group = int(p.heads / p.kv_heads), d = int(p.head_dim);
  const T* base = qa::ptr<const T>(p.q.ptr);
  const int c0 = threadIdx.x % Tr::kThreadsPerRow;
  for (int r = threadIdx.x / Tr::kThreadsPerRow; r < Tr::kBlockM; r += Tr::kRowsPerPass) {
    const T* src = nullptr;
    int head = 0;
    if (row0 + r < rows) {
      const GroupRow g = group_row(row0 + r, q.len, kvh, group);
      src = base + q.offset(p.q, g.i, g.head);
      head = g.head;
    }
QA_UNROLL
    for (int k = 0; k < Tr::kDimsPerThread; ++k) {
      const int c = c0 + k * Tr::kThreadsPerRow;
      const bool here = src != nullptr && c < d;
      const float x = here ? qa::to_float(src[c]) : 0.f;
      if (hist != nullptr && here) count_to_global(x, p.stats.channels[QA_STAT_Q], head * d + c, hist);
      dst[r][c / 4].v[c % 4] = x;
    }
  }
}

}  // namespace qa::decode
