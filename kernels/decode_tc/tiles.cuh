// Global -> shared staging of the tensor-core decode chunk kernel: page-addressed K/V rows by
// cp.async into the prefill family's swizzled tiles (tensor_core/tile_io.cuh) when every row of
// the cache is 16-byte aligned and whole chunks of channels (d % 8 == 0), else plain loads; the
// row group's query rows (G heads × q_len of one kv head, strided) by plain loads. Channels
// d..D-1 and rows outside the valid ones are zeros, so a head dim below the tile's D runs padded.
//
// Key tiles sit on multiples of kBlockN keys of the sequence (KeyTiles), so a tile is whole
// pages (P <= 64) or one piece of a page (P >= 64): a full tile then needs 64 / P page entries
// (one when P >= 64), and its copies are TileCopy's plan, one per 16-byte chunk (PagedCopy).
// The general loader (load_key_tile) serves the tiles at the range's ends and unaligned caches.
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

// The key tiles of one sweep over keys [lo, hi) of a sequence: tile i holds keys
// [key0(i), key0(i) + kBlockN) with key0(0) = lo rounded down to a multiple of kBlockN, so only
// the first tile (keys below lo) and the last (keys from hi on) can be partial, and every tile
// starts on a page boundary or, when a page holds more than a tile, a tile boundary in it.
template <class Tr>
struct KeyTiles {
  static constexpr int BN = Tr::kBlockN;
  int lo, hi, base, n;

  __device__ __forceinline__ KeyTiles(int lo_, int hi_)
      : lo(lo_), hi(hi_), base(lo_ / BN * BN), n(hi_ > lo_ ? (hi_ - lo_ / BN * BN + BN - 1) / BN : 0) {}

  __device__ __forceinline__ int key0(int i) const { return base + i * BN; }
  // Rows [first(i), valid(i)) of tile i are keys of the range.
  __device__ __forceinline__ int first(int i) const { return lo > key0(i) ? lo - key0(i) : 0; }
  __device__ __forceinline__ int valid(int i) const { return hi - key0(i) < BN ? hi - key0(i) : BN; }
  __device__ __forceinline__ bool full(int i) const { return key0(i) >= lo && key0(i) + BN <= hi; }
};

// The page entries of a full tile, 64 / P (one when P >= 64), as a compile-time NP:
// dispatch(f) calls f(Pages<NP>{}). Chosen once per call. Two flags rather than one count: a
// three-way branch on one count becomes an indirect jump (BRX) in sm_80 SASS, whose targets
// the SASS loop report cannot follow.
template <int NP>
struct Pages {
  static constexpr int value = NP;
};
struct TilePages {
  bool one, two;  // NP == 1, NP == 2; else NP == 4 (P = 16)
  __device__ __forceinline__ explicit TilePages(const QaDecodeParams& dp)
      : one(dp.log2_page >= 6), two(dp.log2_page == 5) {}
  template <class F>
  __device__ __forceinline__ void dispatch(const F& f) const {
    if (one) f(Pages<1>{});
    else if (two) f(Pages<2>{});
    else f(Pages<4>{});
  }
};

// The copies of one full key tile of a page-addressed cache with NP = 64 / P page entries per
// tile (NP = 1: P >= 64). TileCopy's plan (tensor_core/tile_io.cuh): thread t copies chunk
// c = t % kChunks of rows r0 + k·kRowStep, r0 = t / kChunks, so its kPerPage copies in page j
// are consecutive rows of that page: per tile NP table entries, per page one 64-bit product,
// per copy one cp.async and one 64-bit add. The shared offsets are the first copy's plus
// compile-time steps (the swizzle depends on row & 7 and kRowStep is a multiple of 8).
template <class Tr, int NP>
struct PagedCopy {
  using Plan = qa::tc::TileCopy<Tr>;
  static constexpr int kPerPage = Plan::kCopies / NP;
  static_assert(Tr::kBlockN == 64 && (NP == 1 || NP == 2 || NP == 4), "64-key tiles, pages of >= 16 keys");
  static_assert(Plan::kPlanned && Plan::kPeriod == 1 && kPerPage * Plan::kRowStep == Tr::kBlockN / NP,
                "a thread's copies in one page are whole rounds of the plan");

  int page[NP];  // the tile's page entries
  int slot;      // slot of the tile's first key in page[0]: 0 unless NP == 1

  // The entries of the tile at key kv0 (a multiple of 64; the caller checked them).
  __device__ __forceinline__ PagedCopy(const QaDecodeParams& dp, const int* table, int kv0) {
    const int* e = table + (kv0 >> dp.log2_page);
QA_UNROLL
    for (int j = 0; j < NP; ++j) page[j] = e[j];
    slot = NP == 1 ? kv0 & ((1 << dp.log2_page) - 1) : 0;
  }

  // Issues the tile into `stage` from `rows` (slot 0 of page 0 of the kv head's rows; cache
  // strides `t`; 16-byte-aligned rows, d == D). The thread's plan comes from an opaque index,
  // rebuilt here each tile rather than held in registers through the key loop.
  template <class T>
  __device__ __forceinline__ void issue(Chunk* stage, const T* rows, const QaTensorDesc& t) const {
    const uint32_t tid = qa::ptx::opaque(threadIdx.x);
    const uint32_t r0 = tid / Tr::kChunks, c = tid % Tr::kChunks;
    Chunk* dst = stage + Tr::chunk(int(r0), int(c));
    // Unsigned 32 × 64-bit products: slots and entries are >= 0, so no sign extension.
    const T* first = rows + int64_t(uint64_t(uint32_t(slot) + r0) * uint64_t(t.stride_seq) + 8u * c);
    const int64_t step = int64_t(Plan::kRowStep) * t.stride_seq;
QA_UNROLL
    for (int j = 0; j < NP; ++j) {
      const T* s = first + int64_t(uint64_t(uint32_t(page[j])) * uint64_t(t.stride_batch));
QA_UNROLL
      for (int m = 0; m < kPerPage; ++m, s += step) {
        const int k = j * kPerPage + m;
        qa::ptx::cp_async_16(dst + k * Plan::kRowStep * Tr::kStride, s, 16u);
      }
    }
  }
};

// Issues the copies of tile rows [first, valid), keys kv0 + first .. kv0 + valid - 1, of kv
// head `kvh` from cache `t` into a tile of kBlockN rows (zeros in the other rows and past d);
// the caller checked the pages of these keys. Any tile, any alignment: the ends of a sweep and
// unaligned caches.
template <class Tr, class T>
__device__ __forceinline__ void load_key_tile(Chunk* dst, const QaDecodeParams& dp, const QaTensorDesc& t,
                                              const int* table, int kv0, int first, int valid, int kvh, int d,
                                              bool aligned) {
  const T* base = qa::ptr<const T>(t.ptr);
  // Not unrolled, like tensor_core/tile_io.cuh: unrolled, the addresses stay live in registers.
QA_UNROLL_N(1)
  for (int i = int(threadIdx.x); i < Tr::kBlockN * Tr::kChunks; i += Tr::kThreads) {
    const int r = i / Tr::kChunks, c = i % Tr::kChunks;
    Chunk* out = dst + Tr::chunk(r, c);
    const bool here = r >= first && r < valid && 8 * c < d;
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
