// Statistics of the decode kernels (docs/contract.md §5), counted as the prefill kernels count the
// same (gathered, contiguous) problem:
//  - K and V by the chunk block that reads them (each K/V element of a sequence is read by
//    exactly one block: its chunk, its kv head), aggregated per block like prefill;
//  - Q by the split-0 chunk block, O by whoever writes o (the combine, or the chunk kernel when
//    splits = 1), row statistics from the merged row only (so a split row counts once).
// A decode block spans the G query heads of its kv head (the chunk kernel) or rows of several
// heads (the combine), and with q_len = 1 it holds one element per (head, channel): Q/O channel
// moments and row statistics therefore go straight to the global counters, per element and per
// row; the log2 histograms (per tensor, not per head) are aggregated per block.
#pragma once

#include "../attention/row_stats.cuh"
#include "../attention/stats.cuh"

namespace qa::decode {

using namespace qa::attn;

// Row-statistics scalars a split partial keeps after (m, l): A = Σw, B = Σw ln w (entropy),
// n visible keys, Σ(x − xmax), the first key's logit x0 (−∞ unless the chunk holds key 0)
// and the largest logit xmax (log2 units).
constexpr int kStatScalars = 6;

// One element's moments (f32, as a prefill thread sums them) added to channel `index`.
__device__ __forceinline__ void add_channel_element(uint64_t global, int index, float x) {
  if (global == 0) return;
  ChannelAcc a;
  a.add(x);
  QaChannelStats& c = qa::ptr<QaChannelStats>(global)[index];
  atomicAdd(&c.sum, double(a.sum));
  atomicAdd(&c.sum_sq, double(a.sq));
  atomicAdd(&c.sum_3rd, double(a.cube));
  atomicAdd(&c.sum_4th, double(a.q4));
  atomicMax(reinterpret_cast<unsigned*>(&c.absmax), __float_as_uint(a.absmax));
  atomicAdd(reinterpret_cast<unsigned long long*>(&c.count), 1ull);
}

// Counts x once: the block's shared histogram `hist`, and (finite) channel `index` globally.
__device__ __forceinline__ void count_to_global(float x, uint64_t global, int index, unsigned* hist) {
  if (!isfinite(x)) {
    atomicAdd(&hist[kNonFiniteBin], 1u);
    return;
  }
  atomicAdd(&hist[x == 0.f ? kZeroBin : log2_bin(x)], 1u);
  add_channel_element(global, index, x);
}

// A merged row (at least one visible key) added to its head's global counters, with the
// arithmetic of record_row.
template <class Norm>
__device__ __forceinline__ void record_row_global(const QaAttnStatsPtrs& g, int head, const NormCtx& ctx,
                                                  const RowTotals& r, float m_use, float scale, float lse2) {
  if (g.heads == 0) return;
  const RowBins rb = row_bins<Norm>(ctx, r, m_use, scale, lse2);
  QaHeadStats& h = qa::ptr<QaHeadStats>(g.heads)[head];
  atomicAdd(reinterpret_cast<unsigned long long*>(&h.rows), 1ull);
  atomicAdd(&h.first_key_mass, double(rb.first_mass));
  if (Norm::kVirtualSink) atomicAdd(&h.virtual_sink_mass, double(rb.sink_mass));
  atomicAdd(reinterpret_cast<unsigned long long*>(&h.max_prob_hist[rb.max_prob]), 1ull);
  atomicAdd(reinterpret_cast<unsigned long long*>(&h.entropy_hist[rb.entropy]), 1ull);
  atomicAdd(reinterpret_cast<unsigned long long*>(&h.logit_range_hist[rb.logit_range]), 1ull);
}

}  // namespace qa::decode
