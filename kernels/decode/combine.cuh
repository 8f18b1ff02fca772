// The split-KV combine: one warp per query row (b, head, i) merges the row's partials from all
// splits by the rules of src/reference/split/ (its module docs hold the table), in log2 units:
//  - rescaling policies (softmax, off_by_one, sink, softpick) merge into the unsplit start state
//    of the policy: M = max(start, max m_c), l = mass·2^(start − shift) + Σ l_c·2^(m_c − shift),
//    acc likewise, shift = policy shift of M. The sink policies start at (σ, 1), so the virtual
//    outcome enters once, here; softpick starts at m = 0, so M = max(m_c, 0).
//  - sigmoid sums; clipped pass 0 merges (m, l) into the row lse and leaves it in every split's
//    slot for chunk pass 1, clipped pass 1 sums and writes o with that lse.
// STATS: the row statistics pieces merge by the same factors (entropy B picks up A·ln f, the
// logit range re-anchors to the merged max, x0 comes from the chunk that holds key 0), then the
// merged row is recorded as the unsplit kernel records it; O is counted before the gate.
#pragma once

#include "../attention/output.cuh"
#include "../attention/variant.cuh"
#include "paged.cuh"
#include "stats.cuh"

namespace qa::decode {

using namespace qa::attn;

// The merged state of one row: o = acc·out_scale(m, l), lse from (m, l).
template <int CPL>
struct Merged {
  float m, l;
  float acc[CPL];
  RowTotals t;  // statistics only
};

// Adds chunk weights scaled by f (A f, B f + A f ln f) to the merged entropy sums.
__device__ __forceinline__ void merge_entropy(RowTotals& t, float f, float a, float b) {
  if (!(f > 0.f) || !(a > 0.f)) return;
  t.ent_a += f * a;
  t.ent_b += f * (b + a * logf(f));
}

// One chunk's statistics pieces (after m, l in its slot) merged into t.
__device__ __forceinline__ void merge_stats(RowTotals& t, const float* s, float f) {
  merge_entropy(t, f, s[0], s[1]);
  const int n = int(s[2]);
  if (n == 0) return;
  const float xm = fmaxf(t.xmax, s[5]);
  t.range_sum = (t.n > 0 ? t.range_sum + float(t.n) * (t.xmax - xm) : 0.f) + s[3] + float(n) * (s[5] - xm);
  t.xmax = xm;
  t.n += n;
  t.x0 = fmaxf(t.x0, s[4]);
}

// Merges the splits' partials of row (q.b, head, i); lane owns channels lane + 32k.
template <class Norm, int CPL, bool STATS>
__device__ __forceinline__ Merged<CPL> merge_row(const QaDecodeParams& dp, const NormCtx& ctx,
                                                 const QueryRows& q, int head, int i) {
  const int lane = threadIdx.x % WARP_SIZE, d = int(dp.attn.head_dim), splits = int(dp.splits);
  const bool rescales = Norm::kRescales && Norm::kPasses == 1;
  Merged<CPL> out;
  float start = Norm::start_max(ctx), shift = 0.f;
  out.m = start;
  if (rescales) {
    for (int c = 0; c < splits; ++c) out.m = fmaxf(out.m, partial_slot(dp, c, q, head, i)[d]);
    shift = Norm::shift(out.m);
  }
  out.l = rescales ? Norm::kStartMass * exp2f(start - shift) : 0.f;
  out.t = RowTotals{0, 0.f, 0.f, 0.f, -INFINITY, -INFINITY};
  if (STATS) merge_entropy(out.t, out.l, 1.f, 0.f);  // the virtual sink outcome, once
QA_UNROLL
  for (int k = 0; k < CPL; ++k) out.acc[k] = 0.f;
  for (int c = 0; c < splits; ++c) {
    const float* slot = partial_slot(dp, c, q, head, i);
    const float f = rescales ? exp2f(slot[d] - shift) : 1.f;  // m_c = -inf (empty chunk) -> 0
    out.l += f == 0.f ? 0.f : f * slot[d + 1];
    if (STATS) merge_stats(out.t, slot + d + 2, f);
QA_UNROLL
    for (int k = 0; k < CPL; ++k) {
      const int ch = lane + k * WARP_SIZE;
      if (ch < d && f != 0.f) out.acc[k] = fmaf(f, slot[ch], out.acc[k]);
    }
  }
  return out;
}

// Clipped pass 0: the row's lse from the splits' (m, l), written over every split's m.
template <class Norm>
__device__ __forceinline__ void combine_lse_pass(const QaDecodeParams& dp, const NormCtx& ctx,
                                                 const QueryRows& q, int head, int i) {
  const int d = int(dp.attn.head_dim), splits = int(dp.splits);
  float m = -INFINITY, l = 0.f;
  for (int c = 0; c < splits; ++c) m = fmaxf(m, partial_slot(dp, c, q, head, i)[d]);
  const float shift = guard_shift(m);
  for (int c = 0; c < splits; ++c) {
    const float* slot = partial_slot(dp, c, q, head, i);
    const float f = exp2f(slot[d] - shift);
    l += f == 0.f ? 0.f : f * slot[d + 1];
  }
  __syncwarp();  // every lane has read every m before lane 0 overwrites them
  const float lse2 = Norm::lse2(m, l, ctx);
  if (threadIdx.x % WARP_SIZE == 0)
    for (int c = 0; c < splits; ++c) partial_slot(dp, c, q, head, i)[d] = lse2;
}

// Merges row (q.b, head, i), writes o and lse; STATS: records the row and counts O.
template <class Norm, class T, int MAX_D, bool STATS>
__device__ __forceinline__ void combine_row(const QaDecodeParams& dp, const QueryRows& q, int head, int i,
                                            BlockStats* bs) {
  constexpr int CPL = MAX_D / WARP_SIZE;
  const QaAttnParams& p = dp.attn;
  const int lane = threadIdx.x % WARP_SIZE, d = int(p.head_dim);
  const int len = qa::ptr<const int>(dp.seq_lens_k)[q.b];  // only the sigmoid bias reads it
  const NormCtx ctx = norm_ctx<Norm>(p, len < 0 ? 0 : len, head);
  if (Norm::kPasses == 2 && dp.pass == 0) {
    combine_lse_pass<Norm>(dp, ctx, q, head, i);
    return;
  }
  const Merged<CPL> mr = merge_row<Norm, CPL, STATS>(dp, ctx, q, head, i);
  const bool two = Norm::kPasses == 2;
  const float lse2 = two ? partial_slot(dp, 0, q, head, i)[d] : Norm::lse2(mr.m, mr.l, ctx);
  const float scale = two ? 1.f : Norm::out_scale(mr.m, mr.l, ctx);
  if (lane == 0) store_lse(p, q.b, head, q.start + i, lse2);
  if (STATS && lane == 0 && mr.t.n > 0) {
    const float m_use = two ? lse2 : Norm::shift(mr.m);
    record_row_global<Norm>(p.stats, head, ctx, mr.t, m_use, scale, lse2);
  }
  T* o = qa::ptr<T>(p.o.ptr) + q.offset(p.o, i, head);
QA_UNROLL
  for (int k = 0; k < CPL; ++k) {
    const int ch = lane + k * WARP_SIZE;
    if (ch >= d) continue;
    const float v = mr.acc[k] * scale;
    if constexpr (STATS)
      count_to_global(v, p.stats.channels[QA_STAT_O], head * d + ch, bs->hist[QA_STAT_O]);
    o[ch] = qa::from_float<T>(v * gate_factor(p, q.packed, q.b, q.start + i, head, ch));
  }
}

template <class Norm, class T, int MAX_D, bool STATS>
__device__ __forceinline__ void combine_body(const QaDecodeParams& dp) {
  constexpr int kWarps = 4;
  const QaAttnParams& p = dp.attn;
  const int q_len = int(p.seqlen_q);
  const int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / WARP_SIZE;
  const bool in_grid = row < int64_t(p.batch) * p.heads * q_len;
  const int i = int(row % q_len), head = int(row / q_len % p.heads), b = int(row / q_len / p.heads);
  // varlen: the grid covers the longest q_len; a sequence's rows past its own are not rows
  // (bad cu_seqlens_q entries were recorded by the chunk kernel: such a sequence has none)
  const QueryRows q = in_grid ? query_rows(dp, b, false) : QueryRows{b, 0, 0, false};
  const bool here = in_grid && i < q.len;
  if constexpr (STATS) {
    __shared__ BlockStats bs;
    const bool counts = Norm::kPasses == 1 || dp.pass == 1;  // uniform: barriers are safe
    if (counts) {
      zero_block_stats<kWarps * WARP_SIZE>(bs);
      __syncthreads();
    }
    if (here) combine_row<Norm, T, MAX_D, true>(dp, q, head, i, &bs);
    if (counts) {
      __syncthreads();
      flush_block_stats<kWarps * WARP_SIZE>(bs, p.stats, 0);  // histograms only
    }
  } else if (here) {
    combine_row<Norm, T, MAX_D, false>(dp, q, head, i, nullptr);
  }
}

}  // namespace qa::decode
