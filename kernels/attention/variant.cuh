// Normaliser policies of docs/contract.md §3 (compile-time), in the FlashInfer spirit of small
// hooks: start state, per-key weights, and the epilogue's finalisation. Shared by every attention
// kernel (the CUDA-core one here, tensor-core ones later).
//
// Units: logits are carried in log2 units, x = s·log2(e), so every exponential is one exp2.
// A masked key has x = -inf and must get weight exactly 0 from every policy.
//
// Hooks of a policy P:
//   P::kPasses        1, or 2 when the weights need the final lse (clipped: pass 0 finds it)
//   P::kRescales      true when a running max m shifts the exponentials (acc, l rescaled by
//                     2^(m - m') when it moves); false when the weights are absolute
//   P::kVirtualSink   the denominator holds one more outcome e^σ (off_by_one, sink)
//   P::kExpWeights    the last pass's weights are 2^(x - shift) and also its denominator terms,
//                     so log2 w = x - shift and Σ w = l (the entropy needs no logarithm)
//   P::start_max(c)   m before any key;   P::kStartMass  l before any key (one lane holds it)
//   P::shift(m)       the shift used for exponentials given the running max m (guards -inf)
//   P::weight(pass, x, m, c) -> {acc, den}: x's weight in acc, and its term of l. In the last
//                     pass of a two-pass policy, m is the row's final lse (log2 units).
//   P::out_scale(m, l, c)  o = acc · out_scale      P::lse2(m, l, c)  lse in log2 units
//   P::kMaskedX       the logit a masked key is weighed as: -inf (weight 0) for every policy but
//                     SoftpickFast, whose weight() has no -inf test and gives 0 at x = 0
//   P::kPackClamps    weight()'s acc may be negative: the caller clamps it at 0 where it rounds P
//                     to 16 bits (cvt .relu, no extra instruction); only SoftpickFast, only the
//                     tensor-core family
#pragma once

#include "../qa/ptx.cuh"
#include "../qa/types.cuh"

namespace qa::attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr float kSoftpickEps = 1e-6f;

// Per-head / per-sequence constants the policies read.
struct NormCtx {
  float sink2;  // virtual sink logit σ (log2 units): 0 for off_by_one
  float bias2;  // sigmoid bias b (log2 units)
  float gamma;  // clipped softmax γ ≤ 0
  float zeta;   // clipped softmax ζ ≥ 1
};

struct Weight {
  float acc;  // multiplies v_j in the accumulator
  float den;  // added to the running denominator l
};

__device__ __forceinline__ float guard_shift(float m) { return m == -INFINITY ? 0.f : m; }

// softmax: p = 2^(x-m) / l.
struct Softmax {
  static constexpr uint32_t kAbi = QA_NORM_SOFTMAX;
  static constexpr int kPasses = 1;
  static constexpr bool kRescales = true;
  static constexpr bool kVirtualSink = false;
  static constexpr bool kExpWeights = true;
  static constexpr float kStartMass = 0.f;
  static constexpr float kMaskedX = -INFINITY;
  static constexpr bool kPackClamps = false;
  __device__ static float start_max(const NormCtx&) { return -INFINITY; }
  __device__ static float shift(float m) { return guard_shift(m); }
  __device__ static Weight weight(int, float x, float m, const NormCtx&) {
    const float e = qa::ptx::ex2_approx(x - m);
    return {e, e};
  }
  // An empty row (l = 0) outputs 0 with lse -inf; a NaN l (non-finite inputs) stays NaN.
  __device__ static float out_scale(float, float l, const NormCtx&) { return l == 0.f ? 0.f : 1.f / l; }
  __device__ static float lse2(float m, float l, const NormCtx&) {
    return l == 0.f ? -INFINITY : m + log2f(l);
  }
};

// off_by_one and sink: softmax whose denominator starts with the virtual outcome 2^σ, i.e. the
// online state starts at (m, l) = (σ, 1). It never empties, so no guard is needed.
template <uint32_t ABI>
struct SinkSoftmax {
  static constexpr uint32_t kAbi = ABI;
  static constexpr int kPasses = 1;
  static constexpr bool kRescales = true;
  static constexpr bool kVirtualSink = true;
  static constexpr bool kExpWeights = true;
  static constexpr float kStartMass = 1.f;
  static constexpr float kMaskedX = -INFINITY;
  static constexpr bool kPackClamps = false;
  __device__ static float start_max(const NormCtx& c) { return c.sink2; }
  __device__ static float shift(float m) { return m; }
  __device__ static Weight weight(int, float x, float m, const NormCtx&) {
    const float e = qa::ptx::ex2_approx(x - m);
    return {e, e};
  }
  __device__ static float out_scale(float, float l, const NormCtx&) { return 1.f / l; }
  __device__ static float lse2(float m, float l, const NormCtx&) { return m + log2f(l); }
};
using OffByOne = SinkSoftmax<QA_NORM_OFF_BY_ONE>;
using Sink = SinkSoftmax<QA_NORM_SINK>;

// clipped softmax: pass 0 is softmax's denominator only; pass 1 weighs each key absolutely,
// p = clip((ζ-γ)·2^(x - lse) + γ, 0, 1), so masked keys (2^-inf = 0, γ ≤ 0) give exactly 0.
struct Clipped {
  static constexpr uint32_t kAbi = QA_NORM_CLIPPED;
  static constexpr int kPasses = 2;
  static constexpr bool kRescales = true;
  static constexpr bool kVirtualSink = false;
  static constexpr bool kExpWeights = false;
  static constexpr float kStartMass = 0.f;
  static constexpr float kMaskedX = -INFINITY;
  static constexpr bool kPackClamps = false;
  __device__ static float start_max(const NormCtx&) { return -INFINITY; }
  __device__ static float shift(float m) { return guard_shift(m); }
  // A masked key (x = -inf) gives 2^-inf = 0 and γ ≤ 0, clipped to 0. A row with no visible
  // key (x = lse = -inf) gives NaN, which fmaxf also turns into 0: no test per key.
  __device__ static Weight weight(int pass, float x, float m, const NormCtx& c) {
    if (pass == 0) return {0.f, qa::ptx::ex2_approx(x - m)};
    const float p = fminf(fmaxf((c.zeta - c.gamma) * qa::ptx::ex2_approx(x - m) + c.gamma, 0.f), 1.f);
    return {p, 0.f};
  }
  __device__ static float out_scale(float, float, const NormCtx&) { return 1.f; }
  __device__ static float lse2(float m, float l, const NormCtx& c) { return Softmax::lse2(m, l, c); }
};

// e^s - 1 without cancellation near s = 0 (no expm1f among the built-ins): 2t / (1 - t), t = tanh(s/2).
__device__ __forceinline__ float expm1_small(float s) {
  const float t = tanhf(0.5f * s);
  return 2.f * t / (1.f - t);
}

// softpick: N = 2^-m (e^s - 1) with m ≥ 0, so 2^-m never overflows; acc += relu(N)·v, l += |N|,
// o = acc / (l + ε·2^-m).
//
// The exact form (kFast = false; the CUDA-core and decode families, f32 outputs) computes e^s - 1
// through tanh near s = 0 and gives a masked key (x = -inf, where e^-inf - 1 would give -1)
// exactly 0 — so does a visible logit of exactly -inf, which only non-finite inputs produce.
//
// The fast form (kFast = true; the tensor-core prefill, 16-bit P) is the direct difference
// 2^(x-m) - 2^-m: near s = 0 it loses e^s - 1's relative precision, by at most 2^-24 of the row's
// scale 2^-m per key, invisible in f16/bf16 outputs (2^-11 / 2^-8) unless every logit of a row is
// within ~1e-3 of 0. It has no -inf test: a masked key is weighed at x = 0 (N = 0 exactly, the same
// exponent on both sides), a visible -inf gets |N| = 2^-m as the formula says, and its acc is not
// clamped (the caller's cvt .relu does it): three instructions per weight beyond softmax's
// exponential where the exact form takes ~30.
template <bool kFast>
struct SoftpickT {
  static constexpr uint32_t kAbi = QA_NORM_SOFTPICK;
  static constexpr int kPasses = 1;
  static constexpr bool kRescales = true;
  static constexpr bool kVirtualSink = false;
  static constexpr bool kExpWeights = false;
  static constexpr float kStartMass = 0.f;
  static constexpr float kMaskedX = kFast ? 0.f : -INFINITY;
  static constexpr bool kPackClamps = kFast;
  __device__ static float start_max(const NormCtx&) { return 0.f; }
  __device__ static float shift(float m) { return m; }
  __device__ static Weight weight(int, float x, float m, const NormCtx&) {
    if constexpr (kFast) {
      const float n = qa::ptx::ex2_approx(x - m) - qa::ptx::ex2_approx(-m);
      return {n, fabsf(n)};
    } else {
      if (x == -INFINITY) return {0.f, 0.f};
      const float s = x * kLn2;
      const float n = fabsf(s) < 1.f ? qa::ptx::ex2_approx(-m) * expm1_small(s)
                                     : qa::ptx::ex2_approx(x - m) - qa::ptx::ex2_approx(-m);
      return {fmaxf(n, 0.f), fabsf(n)};
    }
  }
  __device__ static float out_scale(float m, float l, const NormCtx&) {
    return 1.f / (l + kSoftpickEps * qa::ptx::ex2_approx(-m));
  }
  __device__ static float lse2(float m, float l, const NormCtx&) {
    return l == 0.f ? -INFINITY : m + log2f(l);
  }
};
using Softpick = SoftpickT<false>;
using SoftpickFast = SoftpickT<true>;

// A weight's acc as the output sees it: a kPackClamps policy's negative acc weighs 0, as the
// cvt that packs P clamps it (clamped_acc). The weight a key of logit x has in the output
// (before the output scale), for statistics: a masked key (x = -inf) weighs 0 under every
// policy (output_weight).
template <class Norm>
__device__ __forceinline__ float clamped_acc(float acc) {
  if constexpr (Norm::kPackClamps) return fmaxf(acc, 0.f);
  else return acc;
}
template <class Norm>
__device__ __forceinline__ float output_weight(int pass, float x, float m, const NormCtx& c) {
  if constexpr (Norm::kPackClamps) return x == -INFINITY ? 0.f : clamped_acc<Norm>(Norm::weight(pass, x, m, c).acc);
  else return Norm::weight(pass, x, m, c).acc;
}

// sigmoid attention: p = 1 / (1 + 2^-(x + b)); absolute weights, no denominator. lse is written
// as 0 (docs/contract.md §3: NaN is not allowed and there is no denominator).
struct Sigmoid {
  static constexpr uint32_t kAbi = QA_NORM_SIGMOID;
  static constexpr int kPasses = 1;
  static constexpr bool kRescales = false;
  static constexpr bool kVirtualSink = false;
  static constexpr bool kExpWeights = false;
  static constexpr float kStartMass = 0.f;
  static constexpr float kMaskedX = -INFINITY;
  static constexpr bool kPackClamps = false;
  __device__ static float start_max(const NormCtx&) { return 0.f; }
  __device__ static float shift(float m) { return m; }
  // A masked key (x = -inf) gives 1 / (1 + 2^inf) = 0 exactly: no test per key.
  __device__ static Weight weight(int, float x, float, const NormCtx& c) {
    return {qa::ptx::rcp_approx(1.f + qa::ptx::ex2_approx(-(x + c.bias2))), 0.f};
  }
  __device__ static float out_scale(float, float, const NormCtx&) { return 1.f; }
  __device__ static float lse2(float, float, const NormCtx&) { return 0.f; }
};

}  // namespace qa::attn
