// Shared by the test-only kernels (kernels/testing/*.cu): one generic parameter block, so the
// Rust tests can pass any kernel its arguments as eight 64-bit words.
#pragma once

#include "../qa/ptx.cuh"
#include "../qa/types.cuh"

// buf: device addresses; n: integer arguments (meaning per kernel).
struct QaTestArgs {
  uint64_t buf[4];
  int64_t n[4];
};
