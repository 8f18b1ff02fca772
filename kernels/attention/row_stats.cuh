// The per-row statistics of docs/contract.md §5 once a row's partials are reduced, shared by every
// family: entropy, first-key mass, max probability, logit range, virtual-sink mass.
#pragma once

#include "stats.cuh"
#include "variant.cuh"

namespace qa::attn {

// One row's reduced partials: visible keys n, Σ(x - xmax) (RangeAcc), entropy sums A and B,
// the first key's and the largest logit (log2 units).
struct RowTotals {
  int n;
  float range_sum, ent_a, ent_b, x0, xmax;
};

// What one row (with at least one visible key) adds to its head's counters. `m_use` is the
// shift the last pass weighed with, `scale` the output scale, `lse2` the row's lse (log2 units).
struct RowBins {
  float first_mass, sink_mass;
  int max_prob, entropy, logit_range;
};

template <class Norm>
__device__ __forceinline__ RowBins row_bins(const NormCtx& ctx, const RowTotals& r, float m_use, float scale,
                                            float lse2) {
  constexpr int LAST = Norm::kPasses - 1;
  // p(x) as the output used it: the last pass's weight times the output scale
  const float p_first = output_weight<Norm>(LAST, r.x0, m_use, ctx) * scale;
  const float p_max = output_weight<Norm>(LAST, r.xmax, m_use, ctx) * scale;
  const int outcomes = r.n + (Norm::kVirtualSink ? 1 : 0);
  const float h = r.ent_a > 0.f ? logf(r.ent_a) - r.ent_b / r.ent_a : 0.f;
  const float h_norm = outcomes > 1 ? h / logf(float(outcomes)) : 0.f;
  const float range = -(r.range_sum / float(r.n)) * kLn2;
  return RowBins{p_first, Norm::kVirtualSink ? exp2f(ctx.sink2 - lse2) : 0.f, unit_bin(p_max),
                 unit_bin(h_norm), range_bin(range)};
}

// Adds one row (with at least one visible key) to the block's counters.
template <class Norm>
__device__ __forceinline__ void record_row(BlockStats& bs, const NormCtx& ctx, const RowTotals& r,
                                           float m_use, float scale, float lse2) {
  const RowBins rb = row_bins<Norm>(ctx, r, m_use, scale, lse2);
  atomicAdd(&bs.rows, 1u);
  atomicAdd(&bs.first_key_mass, rb.first_mass);
  if (Norm::kVirtualSink) atomicAdd(&bs.virtual_sink_mass, rb.sink_mass);
  atomicAdd(&bs.max_prob[rb.max_prob], 1u);
  atomicAdd(&bs.entropy[rb.entropy], 1u);
  atomicAdd(&bs.logit_range[rb.logit_range], 1u);
}

}  // namespace qa::attn
