// Register fragments of the tensor-core kernel (PTX ISA layouts, see qa/ptx.cuh):
//  - Q·Kᵀ: A = 16 query rows × 16 channels (ldmatrix.x4), B = 16 channels × 8 keys read from
//    K rows without transposing (ldmatrix.x4 gives two key tiles);
//  - P·V: A = the f32 score accumulators of two 8-key tiles rounded to f16/bf16 in registers
//    (the C layout of one mma is the A layout of the next), B = 16 keys × 8 channels of V rows
//    through ldmatrix.x4.trans (two channel tiles).
// Lane (g, t) = (lane / 4, lane % 4) holds rows g and g + 8 of every 16 × 8 accumulator tile.
#pragma once

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

// Two f32 values as one .b32 of T (the lower index in the low half).
template <class T>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
  return uint32_t(qa::from_float<T>(lo).bits) | (uint32_t(qa::from_float<T>(hi).bits) << 16);
}

// A fragment of rows r0..r0+15, channels 16kk..16kk+15 of a swizzled tile.
template <class Tr>
__device__ __forceinline__ void load_a(uint32_t a[4], const Chunk* tile, int r0, int kk, int lane) {
  qa::ptx::ldmatrix_x4(a, tile + Tr::chunk(r0 + (lane & 15), 2 * kk + (lane >> 4)));
}

// B fragments of key tiles j, j+1 (keys 8j..8j+15) for channels 16kk..: {b[0], b[1]} for tile
// j and {b[2], b[3]} for tile j+1.
template <class Tr>
__device__ __forceinline__ void load_k(uint32_t b[4], const Chunk* k_tile, int j, int kk, int lane) {
  qa::ptx::ldmatrix_x4(b, k_tile + Tr::chunk(8 * j + ((lane >> 4) << 3) + (lane & 7), 2 * kk + ((lane >> 3) & 1)));
}

// B fragments of channel tiles j, j+1 for keys 16kk..16kk+15 of a V tile (transposed).
template <class Tr>
__device__ __forceinline__ void load_v(uint32_t b[4], const Chunk* v_tile, int j, int kk, int lane) {
  qa::ptx::ldmatrix_x4_trans(b, v_tile + Tr::chunk(16 * kk + (lane & 7) + (((lane >> 3) & 1) << 3), j + (lane >> 4)));
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
