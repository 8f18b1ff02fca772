// The K and V rows of one (sequence, kv head), as the tensor-core kernel keeps them in shared
// memory: block-uniform, needed once per key tile, so a register copy would be live through the
// whole key loop for nothing (at d256 with statistics ptxas spilled exactly these values).
#pragma once

#include "../attention/rows.cuh"
#include "tile_io.cuh"

namespace qa::tc {

template <class T>
struct KvRows {
  qa::attn::RowPtr<T> k, v;
  bool k_aligned, v_aligned;  // cp.async's 16-byte alignment (rows_aligned)

  // Rows from key kv0 on.
  __device__ __forceinline__ static qa::attn::RowPtr<T> from(const qa::attn::RowPtr<T>& r, int kv0) {
    return {r.base + int64_t(kv0) * r.stride, r.stride};
  }
};

template <class T>
__device__ __forceinline__ KvRows<T> kv_rows_of(const QaAttnParams& p, bool varlen, int b, int k_start, int kvh) {
  KvRows<T> r;
  r.k = qa::attn::rows_of<T>(p.k, varlen, b, k_start, kvh);
  r.v = qa::attn::rows_of<T>(p.v, varlen, b, k_start, kvh);
  r.k_aligned = rows_aligned(r.k);
  r.v_aligned = rows_aligned(r.v);
  return r;
}

}  // namespace qa::tc
