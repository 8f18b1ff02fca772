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
