// Global -> shared staging of the tensor-core decode chunk kernel: page-addressed K/V rows by
// cp.async into the prefill family's swizzled tiles (tensor_core/tile_io.cuh) when every row of
// the cache is 16-byte aligned and whole chunks of channels (d % 8 == 0), else plain loads; the
// row group's query rows (G heads × q_len of one kv head, strided) by plain loads. Channels
// d..D-1 and rows past the valid ones are zeros, so a head dim below the tile's D runs padded.
#pragma once

#include "../decode/paged.cuh"
#include "../decode/stats.cuh"
#include "../tensor_core/tile_io.cuh"

namespace qa::decode_tc {

using qa::tc::Chunk;

// True when cp.async may copy the rows of cache `t`: base and page, slot and head strides on
// 16-byte boundaries, and rows of whole 8-element chunks.
template <class T>
__device__ __forceinline__ bool cache_aligned(const QaTensorDesc& t, int d) {
  const uint64_t sz = sizeof(T);
  const uint64_t bits = t.ptr | uint64_t(t.stride_batch) * sz | uint64_t(t.stride_seq) * sz |
                        uint64_t(t.stride_head) * sz;
  return d % 8 == 0 && (bits & 15u) == 0;
}

// Elements [0, n) of src (n <= 8 used) packed into a chunk, zeros after.
template <class T>
__device__ __forceinline__ Chunk pack_chunk(const T* src, int n) {
  Chunk v{{0u, 0u, 0u, 0u}};
QA_UNROLL
  for (int e = 0; e < 4; ++e) {
    const uint32_t lo = 2 * e < n ? uint32_t(src[2 * e].bits) : 0u;
    const uint32_t hi = 2 * e + 1 < n ? uint32_t(src[2 * e + 1].bits) : 0u;
    v.w[e] = lo | (hi << 16);
  }
  return v;
}

// Issues the copies of keys [kv0, kv0 + valid) of kv head `kvh` from cache `t` into a tile of
// kBlockN rows (zeros beyond); the caller checked the pages of these keys.
template <class Tr, class T>
__device__ __forceinline__ void load_key_tile(Chunk* dst, const QaDecodeParams& dp, const QaTensorDesc& t,
                                              const int* table, int kv0, int valid, int kvh, int d, bool aligned) {
  const T* base = qa::ptr<const T>(t.ptr);
  // Not unrolled, like tensor_core/tile_io.cuh: unrolled, the addresses stay live in registers.
QA_UNROLL_N(1)
  for (int i = int(threadIdx.x); i < Tr::kBlockN * Tr::kChunks; i += Tr::kThreads) {
    const int r = i / Tr::kChunks, c = i % Tr::kChunks;
    Chunk* out = dst + Tr::chunk(r, c);
    const bool here = r < valid && 8 * c < d;
    const T* src = here ? base + qa::decode::key_offset(dp, t, table, kv0 + r, kvh) + 8 * c : base;
    if (aligned) qa::ptx::cp_async_16(out, src, here ? 16u : 0u);
    else *out = pack_chunk<T>(src, here ? d - 8 * c : 0);
  }
}

// Stages rows [row0, row0 + kRows) of the block's G·q_len query rows (zeros past `rows`);
// counts each element in `hist` and its head's channel when `hist` is not null.
template <class Tr, class T>
__device__ __forceinline__ void load_query_rows(Chunk* dst, const QaAttnParams& p, const qa::decode::QueryRows& q,
                                                int kvh, int row0, int rows, unsigned* hist) {
  const int group = int(p.heads / p.kv_heads), d = int(p.head_dim);
  const T* base = qa::ptr<const T>(p.q.ptr);
  for (int i = int(threadIdx.x); i < Tr::kRows * Tr::kChunks; i += Tr::kThreads) {
    const int r = i / Tr::kChunks, c = i % Tr::kChunks;
    Chunk v{{0u, 0u, 0u, 0u}};
    if (row0 + r < rows && 8 * c < d) {
      const qa::decode::GroupRow g = qa::decode::group_row(row0 + r, q.len, kvh, group);
      const T* src = base + q.offset(p.q, g.i, g.head) + 8 * c;
      const int n = d - 8 * c < 8 ? d - 8 * c : 8;
      v = pack_chunk<T>(src, n);
      for (int e = 0; hist != nullptr && e < n; ++e)
        qa::decode::count_to_global(qa::to_float(src[e]), p.stats.channels[QA_STAT_Q], g.head * d + 8 * c + e,
                                    hist);
    }
    dst[Tr::chunk(r, c)] = v;
  }
}

}  // namespace qa::decode_tc
