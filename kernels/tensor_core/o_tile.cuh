// The tensor-core kernel's output tile: O (normalised, before the gate) staged in f32 over the
// dead Q and K/V tiles, then written to global memory in 16-byte chunks of 8 consecutive
// channels, one row's chunks on consecutive threads (coalesced like the loads). Written straight
// from the mma accumulators, a lane would store 2-byte elements of 8 different rows per
// instruction. The statistics' O sweep reads the same staged tile.
//
// Layout: row r holds channels 0..D-1 with 8-channel groups XOR-permuted by r & 3 (D / 8 is a
// multiple of 4 for every head dim), so the accumulator stores of one half-warp (rows g..g+3,
// float2 each) hit distinct banks, and a row read along its channels stays conflict-free.
#pragma once

#include "../attention/output.cuh"
#include "../attention/rows.cuh"
#include "../attention/unroll.cuh"
#include "tile_io.cuh"
#include "traits.cuh"

namespace qa::tc {

// Two and four f32 of the staged tile, moved as one 8- / 16-byte shared access.
struct __align__(8) F32x2 {
  float v[2];
};
struct __align__(16) F32x4 {
  float v[4];
};

template <int D>
struct OTile {
  static_assert((D / 8) % 4 == 0, "the XOR permutes 8-channel groups within aligned groups of 4");
  // Offset of (row r, channel c) in floats.
  __device__ __forceinline__ static int at(int r, int c) { return r * D + (c ^ ((r & 3) << 3)); }
};

// Lane (g, t)'s accumulators o[j][e] (rows `rows[e / 2]` of the block, channels 8j + 2t + e % 2)
// times the row's scale into the tile; rows the block does not own are skipped.
template <int D>
__device__ __forceinline__ void stage_o(float* tile, const float (&o)[D / 8][4], const int (&rows)[2],
                                        const bool (&row_ok)[2], const float (&scale)[2], int t) {
QA_UNROLL
  for (int j = 0; j < D / 8; ++j)
QA_UNROLL
    for (int h = 0; h < 2; ++h) {
      if (!row_ok[h]) continue;
      const F32x2 v{{o[j][2 * h] * scale[h], o[j][2 * h + 1] * scale[h]}};
      *reinterpret_cast<F32x2*>(tile + OTile<D>::at(rows[h], 8 * j + 2 * t)) = v;
    }
}

// Rows [0, n) of the staged tile, gated and rounded to T, into `dst` (row r of the block at
// dst.base + r·dst.stride; `q_row0` is its first row in the q/o tensors, for the gate).
template <class Tr, class T>
__device__ __forceinline__ void store_o(const float* tile, qa::attn::OutRowPtr<T> dst, int n, const QaAttnParams& p,
                                        bool varlen, int b, int q_row0, int head) {
  constexpr int D = Tr::kHeadDim;
  T* const base = dst.base;
  const bool aligned = rows_aligned(dst);
QA_UNROLL_N(1)
  for (int i = int(threadIdx.x); i < n * Tr::kChunks; i += Tr::kThreads) {
    const int r = i / Tr::kChunks, c0 = 8 * (i % Tr::kChunks);
    const F32x4* src = reinterpret_cast<const F32x4*>(tile + OTile<D>::at(r, c0));
    const F32x4 v[2] = {src[0], src[1]};
    T out[8];
QA_UNROLL
    for (int e = 0; e < 8; ++e)
      out[e] = qa::from_float<T>(v[e / 4].v[e % 4] * qa::attn::gate_factor(p, varlen, b, q_row0 + r, head, c0 + e));
    T* d = base + int64_t(r) * dst.stride + c0;
    if (aligned) {
      Chunk w;
QA_UNROLL
      for (int e = 0; e < 4; ++e) w.w[e] = uint32_t(out[2 * e].bits) | (uint32_t(out[2 * e + 1].bits) << 16);
      *reinterpret_cast<Chunk*>(d) = w;
    } else {
QA_UNROLL
      for (int e = 0; e < 8; ++e) d[e] = out[e];
    }
  }
}

}  // namespace qa::tc
