// Global -> shared tiles of the tensor-core kernel: cp.async 16-byte copies into the swizzled
// layout when the rows are 16-byte aligned, else plain loads (any strides, packed QKV with odd
// offsets); rows past the valid ones are zero-filled without reading them.
#pragma once

#include "../attention/rows.cuh"
#include "../attention/stats.cuh"
#include "../qa/ptx.cuh"
#include "traits.cuh"

namespace qa::tc {

// True when every row of `r` starts on a 16-byte boundary (cp.async's requirement).
template <class T>
__device__ __forceinline__ bool rows_aligned(const qa::attn::RowPtr<T>& r) {
  return ((reinterpret_cast<uintptr_t>(r.base) | uintptr_t(r.stride * int64_t(sizeof(T)))) & 15u) == 0;
}

// Issues the copies of rows [0, rows) of `src` (rows >= valid are zeros) into `dst`.
template <class Tr, class T>
__device__ __forceinline__ void load_tile(Chunk* dst, qa::attn::RowPtr<T> src, int rows, int valid,
                                          bool aligned) {
  // Not unrolled: unrolled, the compiler keeps every iteration's addresses live across the
  // key loop (they do not depend on the tile).
QA_UNROLL_N(1)
  for (int i = int(threadIdx.x); i < rows * Tr::kChunks; i += Tr::kThreads) {
    const int r = i / Tr::kChunks, c = i % Tr::kChunks;
    Chunk* d = dst + Tr::chunk(r, c);
    const T* s = src.base + int64_t(r) * src.stride + 8 * c;
    if (aligned) {
      qa::ptx::cp_async_16(d, r < valid ? s : src.base, r < valid ? 16u : 0u);
      continue;
    }
    Chunk v{{0u, 0u, 0u, 0u}};
    if (r < valid) {
QA_UNROLL
      for (int e = 0; e < 4; ++e) v.w[e] = uint32_t(s[2 * e].bits) | (uint32_t(s[2 * e + 1].bits) << 16);
    }
    *d = v;
  }
}

// Element (r, c) of a swizzled tile as f32.
template <class Tr, class T>
__device__ __forceinline__ float tile_at(const Chunk* tile, int r, int c) {
  const uint32_t w = tile[Tr::chunk(r, c / 8)].w[(c % 8) / 2];
  return qa::to_float(T{uint16_t(c % 2 ? w >> 16 : w & 0xffffu)});
}

// Counts rows [0, valid) and channels [0, d) of a staged tile into this thread's channels and
// the block's histogram, then merges the channels into the block scratch (one shared atomic
// each). `d` is below the tile's width when a smaller head dim runs zero-padded (decode).
template <class Tr, class T>
__device__ __forceinline__ void count_tile(const Chunk* tile, int valid, int tensor,
                                           qa::attn::ChannelScratch<Tr::kHeadDim>& scratch,
                                           unsigned* hist, int d = Tr::kHeadDim) {
  const int c0 = int(threadIdx.x) % Tr::kThreadsPerRow;
QA_UNROLL
  for (int k = 0; k < Tr::kDimsPerThread; ++k) {
    qa::attn::ChannelAcc ch;
    const int c = c0 + k * Tr::kThreadsPerRow;
    if (c >= d) break;
    for (int r = int(threadIdx.x) / Tr::kThreadsPerRow; r < valid; r += Tr::kRowsPerPass)
      qa::attn::count_element(tile_at<Tr, T>(tile, r, c), ch, hist);
    qa::attn::merge_channel(scratch, tensor, c, ch);
  }
}

}  // namespace qa::tc
