// The output transforms every kernel family applies in its epilogue (docs/contract.md §3-§4): the
// logit map (scale, softcap) into log2 units, the gate factor of one output element, the lse store.
#pragma once

#include "rows.cuh"
#include "variant.cuh"

namespace qa::attn {

// x = s·log2(e) with s = scale·(q·k), or s = c·tanh(scale·(q·k)/c) under a softcap.
struct LogitMap {
  bool softcap;
  float qk_scale;  // multiplies q·k before the (optional) tanh
  float cap2;      // c·log2(e)
  __device__ __forceinline__ explicit LogitMap(const QaAttnParams& p)
      : softcap(p.softcap > 0.f), qk_scale(p.softcap > 0.f ? p.scale / p.softcap : p.scale * kLog2e),
        cap2(p.softcap * kLog2e) {}
  __device__ __forceinline__ float operator()(float dot) const {
    return softcap ? cap2 * tanhf(dot * qk_scale) : dot * qk_scale;
  }
};

// The per-head / per-sequence constants of the normaliser policies.
template <class Norm>
__device__ __forceinline__ NormCtx norm_ctx(const QaAttnParams& p, int k_len, int head) {
  NormCtx c;
  c.sink2 = (Norm::kAbi == QA_NORM_SINK ? qa::ptr<const float>(p.sinks)[head] : 0.f) * kLog2e;
  c.bias2 = (p.sigmoid_bias_default ? (k_len > 0 ? -logf(float(k_len)) : 0.f) : p.sigmoid_bias) * kLog2e;
  c.gamma = p.clip_gamma;
  c.zeta = p.clip_zeta;
  return c;
}

__device__ __forceinline__ float gate_sigmoid(float g) { return 1.f / (1.f + exp2f(-g * kLog2e)); }

// The gate factor of output element (row `q_row` of the q/o tensors, head, channel c).
__device__ __forceinline__ float gate_factor(const QaAttnParams& p, bool varlen, int b, int q_row,
                                             int head, int c) {
  if (p.gate_kind == QA_GATE_NONE) return 1.f;
  const QaTensorDesc& gd = p.gate;
  int64_t gi = (varlen ? 0 : int64_t(b) * gd.stride_batch) + int64_t(q_row) * gd.stride_seq +
               int64_t(head) * gd.stride_head;
  if (p.gate_kind == QA_GATE_SIGMOID_ELEMENTWISE) gi += c;
  const float f = gate_sigmoid(load_any(gd.ptr, gd.dtype, gi));
  return p.gate_kind == QA_GATE_CONTEXT_SCALE ? 2.f * f : f;
}

// Stores the natural-log lse of row `q_row` (of the q tensor) from its log2 value.
__device__ __forceinline__ void store_lse(const QaAttnParams& p, int b, int head, int q_row, float lse2) {
  if (p.lse == 0) return;
  const int64_t li = int64_t(b) * p.lse_stride_batch + int64_t(head) * p.lse_stride_head + q_row;
  qa::ptr<float>(p.lse)[li] = lse2 * kLn2;
}

}  // namespace qa::attn
