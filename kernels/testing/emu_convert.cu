// Element conversions of qa/types.cuh, elementwise over n[0] values (tests/emulator_half.rs).
#include "testing.cuh"

QA_KERNEL(qa_test_f16_to_f32, QaTestArgs, p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.n[0]) qa::ptr<float>(p.buf[1])[i] = qa::to_float(qa::ptr<const qa::f16>(p.buf[0])[i]);
}

QA_KERNEL(qa_test_f32_to_f16, QaTestArgs, p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < p.n[0]) qa::ptr<qa::f16>(p.buf[1])[i] = qa::from_float<qa::f16>(qa::ptr<const float>(p.buf[0])[i]);
}

// Pairs (x[2i], x[2i+1]) packed by the hardware cvt of qa/ptx.cuh (buf[1]) and by the software
// rounding of qa/types.cuh (buf[2]), as bf16x2 (n[1] = 1) or f16x2 (n[1] = 0); n[0] pairs. With
// n[2] = 1 the .relu cvt, against the software rounding of max(x, 0) (NaN kept).
QA_KERNEL(qa_test_pack2, QaTestArgs, p) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= p.n[0]) return;
  float lo = qa::ptr<const float>(p.buf[0])[2 * i], hi = qa::ptr<const float>(p.buf[0])[2 * i + 1];
  uint32_t hw;
  if (p.n[1]) hw = p.n[2] ? qa::ptx::cvt_pack_relu_bf16x2(lo, hi) : qa::ptx::cvt_pack_bf16x2(lo, hi);
  else hw = p.n[2] ? qa::ptx::cvt_pack_relu_f16x2(lo, hi) : qa::ptx::cvt_pack_f16x2(lo, hi);
  if (p.n[2]) lo = lo < 0.f ? 0.f : lo, hi = hi < 0.f ? 0.f : hi;
  uint32_t sw;
  if (p.n[1]) {
    sw = uint32_t(qa::from_float<qa::bf16>(lo).bits) | (uint32_t(qa::from_float<qa::bf16>(hi).bits) << 16);
  } else {
    sw = uint32_t(qa::from_float<qa::f16>(lo).bits) | (uint32_t(qa::from_float<qa::f16>(hi).bits) << 16);
  }
  qa::ptr<uint32_t>(p.buf[1])[i] = hw;
  qa::ptr<uint32_t>(p.buf[2])[i] = sw;
}
