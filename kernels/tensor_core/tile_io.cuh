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
template <class T, class E>
__device__ __forceinline__ bool rows_aligned(const qa::attn::RowPtr<T, E>& r) {
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

// The copies of one full K or V tile (every row valid, 16-byte-aligned rows), planned once per
// thread: thread t copies chunk c = t % kChunks of rows r0 + k·kRowStep (r0 = t / kChunks). The
// swizzle depends on row & 7 alone, so with kRowStep a multiple of 8 every copy's shared offset is
// the first one's plus a compile-time step (kRowStep = 4 alternates between two offsets), and
// the global addresses are one pointer plus multiples of kRowStep rows. A tile then costs one
// cp.async and one 64-bit add per chunk, against ~30 instructions per chunk in load_tile.
// Head dims whose row is not a divisor of the block's threads (d96, d192) have no plan
// (kPlanned false) and keep load_tile.
template <class Tr>
struct TileCopy {
  static constexpr bool kPlanned = Tr::kThreads % Tr::kChunks == 0 && (Tr::kThreads / Tr::kChunks) % 4 == 0;
  static constexpr int kRowStep = kPlanned ? Tr::kThreads / Tr::kChunks : 1;
  static constexpr int kCopies = Tr::kBlockN * Tr::kChunks / Tr::kThreads;
  static constexpr int kPeriod = kRowStep % 8 == 0 ? 1 : 2;  // distinct swizzled offsets
  static_assert(!kPlanned || Tr::kBlockN % kRowStep == 0, "whole copy rounds per tile");

  int dst[kPeriod];  // chunk offsets of copies 0 (and 1) in a stage
  int64_t src;       // element offset of copy 0 from the tile's row 0
  int64_t step;      // elements between copy k and copy k + 1

  // From an opaque thread index: the plan is rebuilt where it is used (a few integer
  // instructions) instead of being hoisted into registers held through the key loop.
  __device__ __forceinline__ explicit TileCopy(int64_t row_stride) {
    const int tid = int(qa::ptx::opaque(threadIdx.x));
    const int r0 = tid / Tr::kChunks, c = tid % Tr::kChunks;
QA_UNROLL
    for (int k = 0; k < kPeriod; ++k) dst[k] = Tr::chunk(r0 + k * kRowStep, c) - k * kRowStep * Tr::kStride;
    src = int64_t(r0) * row_stride + 8 * c;
    step = int64_t(kRowStep) * row_stride;
  }

  // Issues a tile into `stage`; `first` is this thread's first chunk (the tile's row 0 + src).
  template <class T>
  __device__ __forceinline__ void issue(Chunk* stage, const T* first) const {
    const T* s = first;
QA_UNROLL
    for (int k = 0; k < kCopies; ++k, s += step)
      qa::ptx::cp_async_16(stage + dst[k % kPeriod] + k * kRowStep * Tr::kStride, s, 16u);
  }
};

// Element (r, c) of a swizzled tile as f32.
template <class Tr, class T>
__device__ __forceinline__ float tile_at(const Chunk* tile, int r, int c) {
  const uint32_t w = tile[Tr::chunk(r, c / 8)].w[(c % 8) / 2];
  return qa::to_float(T{uint16_t(c % 2 ? w >> 16 : w & 0xffffu)});
}

// Counts rows [first, valid) and channels [0, d) of a staged tile into this thread's channels
// and the block's histogram, then merges the channels into the block scratch (one shared atomic
// each). `first` > 0 skips rows of a decode sweep's first tile that belong to another chunk; `d`
// is below the tile's width when a smaller head dim runs zero-padded (decode).
template <class Tr, class T>
__device__ __forceinline__ void count_tile(const Chunk* tile, int first, int valid, int tensor,
                                           qa::attn::ChannelScratch<Tr::kHeadDim>& scratch,
                                           unsigned* hist, int d = Tr::kHeadDim) {
  const int c0 = int(threadIdx.x) % Tr::kThreadsPerRow;
QA_UNROLL
  for (int k = 0; k < Tr::kDimsPerThread; ++k) {
    qa::attn::ChannelAcc ch;
    const int c = c0 + k * Tr::kThreadsPerRow;
    if (c >= d) break;
    for (int r = first + int(threadIdx.x) / Tr::kThreadsPerRow; r < valid; r += Tr::kRowsPerPass)
      qa::attn::count_element(tile_at<Tr, T>(tile, r, c), ch, hist);
    qa::attn::merge_channel(scratch, tensor, c, ch);
  }
}

}  // namespace qa::tc
