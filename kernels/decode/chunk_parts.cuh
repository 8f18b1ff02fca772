// What both decode chunk kernels (CUDA cores: chunk.cuh, tensor cores: decode_tc/) share, so a
// sequence's keys, a chunk's policy and a finished row's outputs are written once:
//  - the checked key range of a sequence and this block's chunk of it;
//  - the policy a chunk runs (the sink policies run as softmax inside a split: the virtual
//    outcome belongs to the merged row, the combine adds it once);
//  - the end of a row: lse (splits = 1) or the partial's (m, l) and statistics scalars
//    (splits > 1), the row statistics recorded, then each channel into o or the partial.
#pragma once

#include "../attention/output.cuh"
#include "../attention/variant.cuh"
#include "paged.cuh"
#include "stats.cuh"

namespace qa::decode {

using namespace qa::attn;

// The policy one chunk runs.
template <class Norm, bool kSplit>
struct ChunkPolicy {
  using type = Norm;
};
template <>
struct ChunkPolicy<OffByOne, true> {
  using type = Softmax;
};
template <>
struct ChunkPolicy<Sink, true> {
  using type = Softmax;
};

// The visible keys of sequence q.b's rows after the index checks: [lo, hi); empty for a bad
// sequence. Statistics count every key (rows or not), so a STATS block takes [0, len).
template <bool STATS>
__device__ __forceinline__ KeyRange checked_keys(const QaDecodeParams& dp, const QueryRows& q, int threads,
                                                 int* len) {
  const int b = q.b, n = checked_seq_len(dp, b);
  KeyRange keys = visible_keys(Mask(dp.attn, Sequence{0, q.len, 0, n < 0 ? 0 : n}), q.len);
  if (STATS) keys = KeyRange{0, n < 0 ? 0 : n};
  const bool ok = pages_valid(dp, b, keys.lo, keys.hi, threads);  // every thread: it has barriers
  *len = n >= 0 && ok ? n : 0;
  return *len > 0 ? keys : KeyRange{0, 0};
}

// This block's chunk [lo, hi) of the visible keys: all of them when not split.
template <bool kSplit>
__device__ __forceinline__ KeyRange chunk_of(const QaDecodeParams& dp, const KeyRange& keys) {
  if (!kSplit) return keys;
  const long long c_lo = keys.lo + (long long)blockIdx.x * dp.chunk;
  const int lo = int(c_lo < keys.hi ? c_lo : keys.hi);
  const int hi = int(c_lo + dp.chunk < keys.hi ? c_lo + dp.chunk : keys.hi);
  return KeyRange{lo, hi};
}

// The end of one row (with its totals m, l, statistics `t`) apart from its channels, on the
// lane that stores (`lead`): lse when not split, else the slot's (m, l) and, in the weighing
// pass, its statistics scalars; the row statistics recorded when not split. `lse2` is the
// row's lse from pass 0 (clipped). Returns the scale every channel of the row takes.
template <class N, bool kSplit, bool STATS>
__device__ __forceinline__ float finish_row(const QaDecodeParams& dp, const QueryRows& q, const GroupRow& at,
                                            const NormCtx& ctx,
                                            float m, float l, float lse2, const RowTotals& t, int pass,
                                            float* slot, bool lead) {
  const QaAttnParams& p = dp.attn;
  const int d = int(p.head_dim);
  const bool two = N::kPasses == 2;
  const float row_lse2 = two ? lse2 : N::lse2(m, l, ctx);
  float scale = 1.f;
  if constexpr (kSplit) {
    if (lead) {
      slot[d] = two && pass == 1 ? lse2 : m;  // clipped pass 1 carries the row's lse
      slot[d + 1] = two && pass == 1 ? 0.f : l;
    }
  } else {
    scale = two ? 1.f : N::out_scale(m, l, ctx);
    if (lead) store_lse(p, q.b, at.head, q.start + at.i, row_lse2);
  }
  if constexpr (STATS) {
    if (!lead) return scale;
    if constexpr (kSplit) {
      if (pass != N::kPasses - 1) return scale;  // clipped pass 0: only (m, l)
      slot[d + 2] = t.ent_a, slot[d + 3] = t.ent_b, slot[d + 4] = float(t.n);
      slot[d + 5] = t.range_sum, slot[d + 6] = t.x0, slot[d + 7] = t.xmax;
    } else if (t.n > 0) {
      record_row_global<N>(p.stats, at.head, ctx, t, two ? lse2 : N::shift(m), scale, row_lse2);
    }
  }
  return scale;
}

// The o row of (sequence q.b, row `at`).
template <class T>
__device__ __forceinline__ T* o_row(const QaAttnParams& p, const QueryRows& q, const GroupRow& at) {
  return qa::ptr<T>(p.o.ptr) + q.offset(p.o, at.i, at.head);
}

// Channel c of a finished row, v already scaled: into the partial (split), or counted (O
// statistics, before the gate), gated and stored into `o`.
template <class T, bool kSplit, bool STATS>
__device__ __forceinline__ void store_channel(const QaAttnParams& p, T* o, float* slot, const QueryRows& q,
                                              const GroupRow& at,
                                              int c, float v, BlockStats* bs) {
  if constexpr (kSplit) {
    slot[c] = v;
  } else {
    if constexpr (STATS)
      count_to_global(v, p.stats.channels[QA_STAT_O], at.head * int(p.head_dim) + c, bs->hist[QA_STAT_O]);
    o[c] = qa::from_float<T>(v * gate_factor(p, q.packed, q.b, q.start + at.i, at.head, c));
  }
}

}  // namespace qa::decode
