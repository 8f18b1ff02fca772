// Register fragments of the tensor-core kernel (PTX ISA layouts, see qa/ptx.cuh):
//  - Q·Kᵀ: A = 16 query rows × 16 channels (ldmatrix.x4), B = 16 channels × 8 keys read from
//    K rows without transposing (ldmatrix.x4 gives two key tiles);
//  - P·V: A = the f32 score accumulators of two 8-key tiles rounded to f16/bf16 in registers
//    (the C layout of one mma is the A layout of the next), B = 16 keys × 8 channels of V rows
//    through ldmatrix.x4.trans (two channel tiles).
// Lane (g, t) = (lane / 4, lane % 4) holds rows g and g + 8 of every 16 × 8 accumulator tile.
#pragma once

#include "../attention/unroll.cuh"
#include "../qa/ptx.cuh"
#include "../qa/types.cuh"
#include "traits.cuh"

namespace qa::tc {

template <class T>
__device__ __forceinline__ void mma(float d[4], const uint32_t a[4], const uint32_t b0, const uint32_t b1) {
  const uint32_t b[2] = {b0, b1};
  if constexpr (qa::dtype_of<T>::value == QA_DTYPE_BF16) qa::ptx::mma_m16n8k16_bf16f32(d, a, b, d);
  else qa::ptx::mma_m16n8k16_f16f32(d, a, b, d);
}

// Two f32 values as one .b32 of T (the lower index in the low half): one hardware cvt per pair.
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  if constexpr (qa::dtype_of<T>::value == QA_DTYPE_BF16) return qa::ptx::cvt_pack_bf16x2(lo, hi);
  else return qa::ptx::cvt_pack_f16x2(lo, hi);
}

// pack2 with negative values clamped to +0 by the same cvt (.relu).
template <class T>
__device__ __forceinline__ uint32_t pack2_relu(float lo, float hi) {
  if constexpr (qa::dtype_of<T>::value == QA_DTYPE_BF16) return qa::ptx::cvt_pack_relu_bf16x2(lo, hi);
  else return qa::ptx::cvt_pack_relu_f16x2(lo, hi);
}

// The chunk offsets one lane addresses in a swizzled tile for one ldmatrix pattern. The lane's
// row is `row` plus multiples of 8 and its chunk `8g + 2m + low` (m < 4, g, m compile-time): the
// swizzle only permutes chunks inside a group of 8 by a function of row & 7, so
//   chunk(row + 8R, 8g + 2m + low) = off[m] + 8R·kStride + 8g,   off[m] = chunk(row, 2m + low).
// Four registers per pattern instead of one address per (tile, k-step) kept live by the
// compiler across the key loop.
template <class Tr>
struct LaneChunks {
  int off[4];
  __device__ __forceinline__ LaneChunks(int row, int low) {
QA_UNROLL
    for (int m = 0; m < 4; ++m) off[m] = 2 * m + low < Tr::kChunks ? Tr::chunk(row, 2 * m + low) : 0;
  }
  // chunk(row + rows, 2·pair + low); rows a multiple of 8, pair < kChunks / 2.
  __device__ __forceinline__ int at(int rows, int pair) const {
    return off[pair & 3] + rows * Tr::kStride + 8 * (pair >> 2);
  }
};

// The same addresses from ONE register per pattern (the prefill kernel, whose loop is short of
// registers). Writing the lane's chunk as 2m + low + 8G (G, m compile-time) and x = its row's
// swizzle key, 16·chunk(row, 2m + low + 8G) = (16·chunk(row, low)) ^ (32m) + 128G: the swizzle
// moves whole 32-byte pairs by XOR, the rows' own offsets are multiples of 128, and so is every
// tile's start. So one byte offset b = 16·chunk(row, low) serves every pair, with one LOP3 per
// distinct pair and tile instead of a register per pair kept through the loop.
template <class Tr>
struct LaneSwizzle {
  uint32_t b;
  __device__ __forceinline__ LaneSwizzle(int row, int low) : b(16u * uint32_t(Tr::chunk(row, low))) {}
  // The chunk at (row + rows, 2·pair + low) of the tile `tile` bytes from `base` (tile a
  // multiple of 128, rows a multiple of 8, pair < kChunks / 2).
  __device__ __forceinline__ const Chunk* at(const Chunk* base, uint32_t tile, int rows, int pair) const {
    const uint32_t o = ((tile + b) ^ (32u * uint32_t(pair & 3))) + 16u * uint32_t(rows * Tr::kStride + 8 * (pair >> 2));
    return reinterpret_cast<const Chunk*>(reinterpret_cast<const unsigned char*>(base) + o);
  }
  static_assert(Tr::kStride % 8 == 0 || Tr::kChunks == 4, "rows start on 128-byte multiples");
};

// Q·Kᵀ A fragment (rows 16w..16w+15, channels 16kk..16kk+15): lane l addresses row l % 16 of
// the warp's rows and chunk 2kk + l / 16.
template <class Tr>
__device__ __forceinline__ LaneChunks<Tr> a_chunks(int r0, int lane) {
  return LaneChunks<Tr>(r0 + (lane & 15), lane >> 4);
}
template <class Tr>
__device__ __forceinline__ void load_a(uint32_t a[4], const Chunk* tile, const LaneChunks<Tr>& lc, int kk) {
  qa::ptx::ldmatrix_x4(a, tile + lc.at(0, kk));
}

// B fragments of key tiles j, j+1 (keys 8j..8j+15) for channels 16kk..: {b[0], b[1]} for tile
// j and {b[2], b[3]} for tile j+1. Lane l addresses key 8·(l / 16) + l % 8, chunk 2kk + (l / 8) % 2.
template <class Tr>
__device__ __forceinline__ LaneChunks<Tr> k_chunks(int lane) {
  return LaneChunks<Tr>(((lane >> 4) << 3) + (lane & 7), (lane >> 3) & 1);
}
template <class Tr>
__device__ __forceinline__ void load_k(uint32_t b[4], const Chunk* k_tile, const LaneChunks<Tr>& lc, int j, int kk) {
  qa::ptx::ldmatrix_x4(b, k_tile + lc.at(8 * j, kk));
}

// B fragments of channel tiles j, j+1 (j even) for keys 16kk..16kk+15 of a V tile
// (transposed). Lane l addresses key l % 8 + 8·((l / 8) % 2), chunk j + l / 16.
template <class Tr>
__device__ __forceinline__ LaneChunks<Tr> v_chunks(int lane) {
  return LaneChunks<Tr>((lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4);
}
template <class Tr>
__device__ __forceinline__ void load_v(uint32_t b[4], const Chunk* v_tile, const LaneChunks<Tr>& lc, int j, int kk) {
  qa::ptx::ldmatrix_x4_trans(b, v_tile + lc.at(16 * kk, j >> 1));
}

// Max and sum over the 4 lanes of a quad (the lanes holding one accumulator row).
__device__ __forceinline__ float quad_max(float v) {
  v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, 1));
  return fmaxf(v, __shfl_xor_sync(FULL_MASK, v, 2));
}
template <class V>
__device__ __forceinline__ V quad_sum(V v) {
  v += __shfl_xor_sync(FULL_MASK, v, 1);
  return v + __shfl_xor_sync(FULL_MASK, v, 2);
}

}  // namespace qa::tc
