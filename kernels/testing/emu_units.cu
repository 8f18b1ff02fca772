// Unit kernels for the SIMT emulator's built-ins (tests/emulator_units.rs). On a GPU they run
// too, so the hardware checks the same expectations.
#include "testing.cuh"

// out[k * T + t], T = threads, for k = idx, up, down, xor (u32) and xor on a 64-bit value.
// n[0] = width, n[1] = delta / lane mask / source-lane multiplier.
QA_KERNEL(qa_test_shfl, QaTestArgs, p) {
  const unsigned t = threadIdx.x;
  const unsigned T = blockDim.x;
  const int width = int(p.n[0]);
  const int d = int(p.n[1]);
  unsigned* out = qa::ptr<unsigned>(p.buf[0]);
  const unsigned v = t * 7u + 1u;
  const unsigned lane = t % 32u;
  out[0 * T + t] = __shfl_sync(qa::FULL_MASK, v, int(lane) * d + 1, width);
  out[1 * T + t] = __shfl_up_sync(qa::FULL_MASK, v, unsigned(d), width);
  out[2 * T + t] = __shfl_down_sync(qa::FULL_MASK, v, unsigned(d), width);
  out[3 * T + t] = __shfl_xor_sync(qa::FULL_MASK, v, d, width);
  const double w = double(v) * 1e12;
  const double r = __shfl_xor_sync(qa::FULL_MASK, w, d, width);
  out[4 * T + t] = unsigned(r / 1e12);
}
