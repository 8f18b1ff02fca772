// Outlier statistics of docs/contract.md §5, gathered inside the attention kernels: per-element
// classification (channel moments, log2 histogram, zeros, non-finite), per-row statistics, and
// the block-level merge that issues ONE global atomic per block and counter.
//
// Aggregation levels: a thread sums its own elements in registers (ChannelAcc, f32), a block
// merges them in shared memory (f32 sums, u32 counts, shared atomics), then one thread per
// counter adds the block's total into the f64 / u64 globals of kernels/abi.h.
#pragma once

#include "../qa/types.cuh"

namespace qa::attn {

constexpr int kHistBins = QA_LOG2_BINS + 2;  // 40 log2 bins, then zeros, then non-finite
constexpr int kZeroBin = QA_LOG2_BINS;
constexpr int kNonFiniteBin = QA_LOG2_BINS + 1;

// Moments of the finite elements of one channel seen by one thread.
struct ChannelAcc {
  float sum = 0.f, sq = 0.f, cube = 0.f, q4 = 0.f, absmax = 0.f;
  unsigned count = 0;
  __device__ __forceinline__ void add(float x) {
    const float x2 = x * x;
    sum += x;
    sq += x2;
    cube += x2 * x;
    q4 += x2 * x2;
    absmax = fmaxf(absmax, fabsf(x));
    ++count;
  }
};

// floor(log2|x|) + 24 read off the exponent bits (exact, no log2f rounding); subnormals
// (exponent field 0) land in bin 0 like every |x| < 2^-24.
__device__ __forceinline__ int log2_bin(float x) {
  const int e = int((__float_as_uint(x) >> 23) & 0xffu) - 127 + QA_LOG2_BIN_OFFSET;
  return e < 0 ? 0 : (e > QA_LOG2_BINS - 1 ? QA_LOG2_BINS - 1 : e);
}

// Counts x once: non-finite only in the non-finite bin; finite in the channel moments and in
// either the zeros counter or its log2 bin. `hist` is the block's shared histogram.
__device__ __forceinline__ void count_element(float x, ChannelAcc& ch, unsigned* hist) {
  if (!isfinite(x)) {
    atomicAdd(&hist[kNonFiniteBin], 1u);
    return;
  }
  ch.add(x);
  atomicAdd(&hist[x == 0.f ? kZeroBin : log2_bin(x)], 1u);
}

// The bin of v among 16 equal bins over [0, 1] (1 in the last; NaN in bin 0, like the reference).
__device__ __forceinline__ int unit_bin(float v) {
  if (!(v > 0.f)) return 0;
  const float b = floorf(v * QA_ROW_HIST_BINS);
  return b >= QA_ROW_HIST_BINS - 1 ? QA_ROW_HIST_BINS - 1 : int(b);
}

// Logit-range bin: width 2 over [0, 32), the last bin open.
__device__ __forceinline__ int range_bin(float r) {
  if (!(r > 0.f)) return 0;
  const float b = floorf(r / QA_LOGIT_RANGE_BIN_WIDTH);
  return b >= QA_ROW_HIST_BINS - 1 ? QA_ROW_HIST_BINS - 1 : int(b);
}

// Shared-memory counters of one block that live for the whole kernel.
struct BlockStats {
  unsigned hist[QA_STAT_TENSORS][kHistBins];
  unsigned rows;
  float first_key_mass;
  float virtual_sink_mass;
  unsigned max_prob[QA_ROW_HIST_BINS];
  unsigned entropy[QA_ROW_HIST_BINS];
  unsigned logit_range[QA_ROW_HIST_BINS];
};

// Per-channel block totals, overlaid on the tile buffers once the tiles are dead.
template <int MAX_D>
struct ChannelScratch {
  float sum[QA_STAT_TENSORS][MAX_D];
  float sq[QA_STAT_TENSORS][MAX_D];
  float cube[QA_STAT_TENSORS][MAX_D];
  float q4[QA_STAT_TENSORS][MAX_D];
  unsigned absmax[QA_STAT_TENSORS][MAX_D];  // bit pattern of a non-negative float: ordered as u32
  unsigned count[QA_STAT_TENSORS][MAX_D];
};

template <int THREADS>
__device__ __forceinline__ void zero_block_stats(BlockStats& s) {
  unsigned* w = reinterpret_cast<unsigned*>(&s);
  for (int i = threadIdx.x; i < int(sizeof(BlockStats) / 4); i += THREADS) w[i] = 0u;
}

template <int MAX_D, int THREADS>
__device__ __forceinline__ void zero_channels(ChannelScratch<MAX_D>& c) {
  unsigned* w = reinterpret_cast<unsigned*>(&c);
  for (int i = threadIdx.x; i < int(sizeof(ChannelScratch<MAX_D>) / 4); i += THREADS) w[i] = 0u;
}

// Adds one thread's channel moments into the block's shared totals.
template <int MAX_D>
__device__ __forceinline__ void merge_channel(ChannelScratch<MAX_D>& c, int tensor, int d,
                                              const ChannelAcc& a) {
  if (a.count == 0) return;
  atomicAdd(&c.sum[tensor][d], a.sum);
  atomicAdd(&c.sq[tensor][d], a.sq);
  atomicAdd(&c.cube[tensor][d], a.cube);
  atomicAdd(&c.q4[tensor][d], a.q4);
  atomicMax(&c.absmax[tensor][d], __float_as_uint(a.absmax));
  atomicAdd(&c.count[tensor][d], a.count);
}

// One global atomic per block and counter: channels [0, dims) of `tensor` start at channel
// `first` of the global array.
template <int MAX_D, int THREADS>
__device__ __forceinline__ void flush_channels(const ChannelScratch<MAX_D>& c, int tensor,
                                               uint64_t global, int first, int dims) {
  if (global == 0) return;
  QaChannelStats* out = qa::ptr<QaChannelStats>(global) + first;
  for (int d = threadIdx.x; d < dims; d += THREADS) {
    if (c.count[tensor][d] == 0) continue;
    atomicAdd(&out[d].sum, double(c.sum[tensor][d]));
    atomicAdd(&out[d].sum_sq, double(c.sq[tensor][d]));
    atomicAdd(&out[d].sum_3rd, double(c.cube[tensor][d]));
    atomicAdd(&out[d].sum_4th, double(c.q4[tensor][d]));
    atomicMax(reinterpret_cast<unsigned*>(&out[d].absmax), c.absmax[tensor][d]);
    atomicAdd(reinterpret_cast<unsigned long long*>(&out[d].count),
              (unsigned long long)c.count[tensor][d]);
  }
}

__device__ __forceinline__ void add_nonzero(uint64_t* dst, unsigned v) {
  if (v != 0u) atomicAdd(reinterpret_cast<unsigned long long*>(dst), (unsigned long long)v);
}

// Histograms of the four tensors and the head's row statistics, one atomic per non-zero counter.
template <int THREADS>
__device__ __forceinline__ void flush_block_stats(const BlockStats& s, const QaAttnStatsPtrs& g,
                                                  int head) {
  const int t = threadIdx.x;
  if (g.tensors != 0) {
    QaTensorStats* ts = qa::ptr<QaTensorStats>(g.tensors);
    for (int i = t; i < QA_STAT_TENSORS * kHistBins; i += THREADS) {
      const int tensor = i / kHistBins, bin = i % kHistBins;
      uint64_t* dst = bin < QA_LOG2_BINS ? &ts[tensor].log2_hist[bin]
                      : bin == kZeroBin  ? &ts[tensor].zeros
                                         : &ts[tensor].non_finite;
      add_nonzero(dst, s.hist[tensor][bin]);
    }
  }
  if (g.heads != 0 && s.rows != 0u) {
    QaHeadStats& h = qa::ptr<QaHeadStats>(g.heads)[head];
    for (int i = t; i < 3 * QA_ROW_HIST_BINS + 3; i += THREADS) {
      const int bin = i % QA_ROW_HIST_BINS;
      if (i < QA_ROW_HIST_BINS) add_nonzero(&h.max_prob_hist[bin], s.max_prob[bin]);
      else if (i < 2 * QA_ROW_HIST_BINS) add_nonzero(&h.entropy_hist[bin], s.entropy[bin]);
      else if (i < 3 * QA_ROW_HIST_BINS) add_nonzero(&h.logit_range_hist[bin], s.logit_range[bin]);
      else if (i == 3 * QA_ROW_HIST_BINS) add_nonzero(&h.rows, s.rows);
      else if (i == 3 * QA_ROW_HIST_BINS + 1) atomicAdd(&h.first_key_mass, double(s.first_key_mass));
      else if (s.virtual_sink_mass != 0.f) atomicAdd(&h.virtual_sink_mass, double(s.virtual_sink_mass));
    }
  }
}

}  // namespace qa::attn
