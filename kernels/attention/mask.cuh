// Masks of docs/contract.md §1 for one sequence: causal (bottom-right aligned), sliding window,
// lengths.
#pragma once

#include "../qa/types.cuh"

namespace qa::attn {

// Keys [lo, hi); {0, 0} when no row sees a key.
struct KeyRange {
  int lo, hi;
};

// Extents of one sequence of the batch (fixed lengths, or cu_seqlens when varlen: extents.cuh).
struct Sequence {
  int q_start, q_len;  // first query row in the q/o/lse tensors (0 when batched), rows
  int k_start, k_len;
};

// Query i "is" key i + (k_len - q_len); causal and window bounds hang off that diagonal.
// 64-bit arithmetic: i + offset - left must not wrap for lengths near 2^31.
struct Mask {
  long long offset;  // k_len - q_len
  int k_len;
  bool causal;
  int left, right;  // -1 = unbounded

  Mask() = default;
  __device__ __forceinline__ Mask(const QaAttnParams& p, const Sequence& s)
      : offset((long long)s.k_len - s.q_len), k_len(s.k_len), causal(p.causal != 0),
        left(p.window_left), right(p.window_right) {}

  // Largest key row i may see, before clamping to the sequence.
  __device__ __forceinline__ long long hi(int i) const {
    long long h = (long long)k_len - 1;
    const long long diag = i + offset;
    if (causal && diag < h) h = diag;
    if (right >= 0 && diag + right < h) h = diag + right;
    return h;
  }
  // Smallest key row i may see.
  __device__ __forceinline__ long long lo(int i) const {
    return left >= 0 && i + offset - left > 0 ? i + offset - left : 0;
  }
  __device__ __forceinline__ bool visible(int i, int j) const { return j >= lo(i) && j <= hi(i); }

  // Keys any row of [i0, i1] may see: [kv_begin, kv_end); empty when no row sees a key.
  // Both bounds grow with i, so the first row gives the start and the last row the end.
  __device__ __forceinline__ int kv_begin(int i0) const { return int(lo(i0)); }
  __device__ __forceinline__ int kv_end(int i1) const {
    const long long h = hi(i1);
    return h < 0 ? 0 : int(h + 1);
  }
};

}  // namespace qa::attn
