// The online (flash) state of one query row and the warp reductions the epilogue needs.
//
// Per key tile: m' = max(m, rowmax x), α = 2^(m - shift(m')), l ← α·l + Σ den(x),
// acc ← α·acc + Σ w(x)·v. The max m is uniform over the warp (every lane reads the whole tile
// row from shared memory); l and the statistics partials are per lane (each lane adds its own
// keys) and are summed across the warp once, in the epilogue, like FA2's row sum.
#pragma once

#include "variant.cuh"

namespace qa::attn {

template <class V>
__device__ __forceinline__ V warp_sum(V v) {
  for (int o = WARP_SIZE / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
  return v;
}

struct OnlineRow {
  float m;  // running max of the row's logits (log2 units), or the start state
  float l;  // this lane's share of the denominator, in units of 2^shift(m)

  // Moves the max to include a tile whose largest logit is tile_max; returns α, the factor
  // every quantity accumulated against the old shift must be multiplied by.
  template <class Norm>
  __device__ __forceinline__ float advance(float tile_max) {
    const float m_new = fmaxf(m, tile_max);
    const float alpha = qa::ptx::ex2_approx(m - Norm::shift(m_new));  // m = -inf (softmax, nothing yet) -> 0
    m = m_new;
    l *= alpha;
    return alpha;
  }
};

// Entropy partials of a row's weights w (this lane's keys): A = Σ w, B = Σ w ln w, so that
// H = ln A - B/A. When the shift moves, w ← α w gives A ← αA, B ← α(B + A ln α).
struct EntropyAcc {
  float a = 0.f, b = 0.f;
  __device__ __forceinline__ void rescale(float alpha, float ln_alpha) {
    b = alpha * (b + (a > 0.f ? a * ln_alpha : 0.f));
    a *= alpha;
  }
  __device__ __forceinline__ void add(float w) {
    a += w;
    b += w > 0.f ? w * logf(w) : 0.f;
  }
};

// Logit-range partials: visible keys n and Σ (x - xmax) against the warp-uniform running
// max xmax (kept small, so ±1e4 logits lose no precision); re-anchored when xmax grows.
struct RangeAcc {
  int n = 0;
  float sum = 0.f;
  __device__ __forceinline__ void reanchor(float xmax_old, float xmax_new) {
    if (n > 0) sum += float(n) * (xmax_old - xmax_new);
  }
};

}  // namespace qa::attn
