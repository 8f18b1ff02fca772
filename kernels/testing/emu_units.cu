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

// Votes with two disjoint half-warp masks at once. out[k * T + t] for k = ballot, any, all
// over pred = (t % n[0] == 0), and any/all over pred2 = (t % 16 != 5).
QA_KERNEL(qa_test_vote, QaTestArgs, p) {
  const unsigned t = threadIdx.x, T = blockDim.x, lane = t & 31u;
  const unsigned mask = lane < 16 ? 0x0000ffffu : 0xffff0000u;
  const int pred = t % unsigned(p.n[0]) == 0;
  const int pred2 = t % 16u != 5u;
  unsigned* out = qa::ptr<unsigned>(p.buf[0]);
  out[0 * T + t] = __ballot_sync(mask, pred);
  out[1 * T + t] = unsigned(__any_sync(mask, pred));
  out[2 * T + t] = unsigned(__all_sync(mask, pred));
  out[3 * T + t] = unsigned(__all_sync(mask, pred2));
  __syncwarp(mask);
  out[4 * T + t] = __reduce_add_sync(qa::FULL_MASK, t);
  out[5 * T + t] = __reduce_max_sync(qa::FULL_MASK, (t * 37u) % 101u);
}

// Every thread of every block: f32/f64/u32/u64 adds of (g + 1) (g = global thread index),
// max/min of (g * 37) % 1001 on int/u32/u64, a CAS-loop increment (u32 and u64), exch.
// buf = {float[1], double[1], unsigned[8], unsigned long long[4]}.
QA_KERNEL(qa_test_atomics, QaTestArgs, p) {
  const unsigned g = blockIdx.x * blockDim.x + threadIdx.x;
  float* f = qa::ptr<float>(p.buf[0]);
  double* d = qa::ptr<double>(p.buf[1]);
  unsigned* u = qa::ptr<unsigned>(p.buf[2]);
  unsigned long long* ull = qa::ptr<unsigned long long>(p.buf[3]);
  const unsigned v = (g * 37u) % 1001u;
  atomicAdd(f, float(g + 1));
  atomicAdd(d, double(g + 1) * 0.5);
  atomicAdd(&u[0], g + 1);
  atomicMax(&u[1], v);
  atomicMin(&u[2], v);
  atomicMax(reinterpret_cast<int*>(&u[3]), int(v) - 500);
  atomicMin(reinterpret_cast<int*>(&u[4]), int(v) - 500);
  unsigned old = u[5], seen;
  do {
    seen = old;
    old = atomicCAS(&u[5], seen, seen + 1);
  } while (old != seen);
  atomicExch(&u[6], 7u);
  atomicAdd(&ull[0], (unsigned long long)(g + 1) << 33);
  atomicMax(&ull[1], (unsigned long long)v << 33);
  atomicMin(&ull[2], (unsigned long long)v << 33);
  unsigned long long o = ull[3], s;
  do {
    s = o;
    o = atomicCAS(&ull[3], s, s + 3);
  } while (o != s);
}

// One warp. Shared memory holds 4 matrices of 8x8 16-bit values M_m[r][c] = in[m*64 + r*8 + c]
// at permuted rows of stride 24 elements: (m, r) lives at row ((8m + r) * 5) % 32. Lane l
// points at row l % 8 of matrix l / 8. out[(v * 32 + l) * 4 + reg] for the variants
// v = x1, x2, x4, x1.trans, x2.trans, x4.trans (unused registers stay 0).
QA_KERNEL(qa_test_ldmatrix, QaTestArgs, p) {
  __shared__ __align__(16) uint16_t tile[32 * 24];
  const unsigned lane = threadIdx.x;
  const uint16_t* in = qa::ptr<const uint16_t>(p.buf[0]);
  unsigned* out = qa::ptr<unsigned>(p.buf[1]);
  for (unsigned i = lane; i < 256; i += 32) {
    const unsigned m = i / 64, r = i / 8 % 8, c = i % 8;
    tile[((8 * m + r) * 5 % 32) * 24 + c] = in[i];
  }
  __syncwarp();
  const uint16_t* row = &tile[(lane * 5 % 32) * 24];
  uint32_t r[6][4] = {};
  qa::ptx::ldmatrix_x1(r[0], row);
  qa::ptx::ldmatrix_x2(r[1], row);
  qa::ptx::ldmatrix_x4(r[2], row);
  qa::ptx::ldmatrix_x1_trans(r[3], row);
  qa::ptx::ldmatrix_x2_trans(r[4], row);
  qa::ptx::ldmatrix_x4_trans(r[5], row);
  for (int v = 0; v < 6; ++v)
    for (int k = 0; k < 4; ++k) out[(v * 32 + lane) * 4 + k] = r[v][k];
}

// One warp, one mma.m16n8k16 from hand-built fragments: A (16x16 row-major), B (16x8
// row-major) as 16-bit bits, C (16x8 f32). buf = {A, B, C, D}; n[0] = 1 for bf16, else f16.
QA_KERNEL(qa_test_mma_fragment, QaTestArgs, p) {
  const uint16_t* A = qa::ptr<const uint16_t>(p.buf[0]);
  const uint16_t* B = qa::ptr<const uint16_t>(p.buf[1]);
  const float* C = qa::ptr<const float>(p.buf[2]);
  float* D = qa::ptr<float>(p.buf[3]);
  const unsigned lane = threadIdx.x, g = lane >> 2, t = lane & 3u;
  auto pair = [](uint16_t lo, uint16_t hi) { return uint32_t(lo) | uint32_t(hi) << 16; };
  const uint32_t a[4] = {pair(A[g * 16 + 2 * t], A[g * 16 + 2 * t + 1]),
                         pair(A[(g + 8) * 16 + 2 * t], A[(g + 8) * 16 + 2 * t + 1]),
                         pair(A[g * 16 + 2 * t + 8], A[g * 16 + 2 * t + 9]),
                         pair(A[(g + 8) * 16 + 2 * t + 8], A[(g + 8) * 16 + 2 * t + 9])};
  const uint32_t b[2] = {pair(B[(2 * t) * 8 + g], B[(2 * t + 1) * 8 + g]),
                         pair(B[(2 * t + 8) * 8 + g], B[(2 * t + 9) * 8 + g])};
  const float c[4] = {C[g * 8 + 2 * t], C[g * 8 + 2 * t + 1], C[(g + 8) * 8 + 2 * t], C[(g + 8) * 8 + 2 * t + 1]};
  float d[4];
  if (p.n[0] == 1) qa::ptx::mma_m16n8k16_bf16f32(d, a, b, c);
  else qa::ptx::mma_m16n8k16_f16f32(d, a, b, c);
  D[g * 8 + 2 * t] = d[0];
  D[g * 8 + 2 * t + 1] = d[1];
  D[(g + 8) * 8 + 2 * t] = d[2];
  D[(g + 8) * 8 + 2 * t + 1] = d[3];
}

// What a block sees in shared memory before writing it, and cp.async zero-fill.
// out[block * 4 + k]: k = 0 a static __shared__ word, 1 a dynamic shared word (both read before
// any write; every block writes them afterwards), 2/3 the bytes 4..7 / 12..15 of a cp.async of
// n[0] source bytes from buf[1] (0x0102..10).
QA_KERNEL(qa_test_poison, QaTestArgs, p) {
  __shared__ unsigned stat[32];
  __shared__ __align__(16) unsigned char staged[16];
  QA_DYNAMIC_SMEM(unsigned, dyn);
  unsigned* out = qa::ptr<unsigned>(p.buf[0]);
  const unsigned t = threadIdx.x;
  if (t == 0) {
    out[blockIdx.x * 4 + 0] = stat[5];
    out[blockIdx.x * 4 + 1] = dyn[3];
    qa::ptx::cp_async_16(staged, qa::ptr<const unsigned char>(p.buf[1]), uint32_t(p.n[0]));
    qa::ptx::cp_async_commit();
    qa::ptx::cp_async_wait<0>();
    uint32_t w1, w3;
    memcpy(&w1, staged + 4, 4);
    memcpy(&w3, staged + 12, 4);
    out[blockIdx.x * 4 + 2] = w1;
    out[blockIdx.x * 4 + 3] = w3;
  }
  __syncthreads();
  stat[t] = 1;
  dyn[t] = 2;
}

// Speed probes: n[0] rounds of a full-warp xor shuffle (swapping neighbours' values and
// adding 1), or of __syncthreads counted by thread 0.
QA_KERNEL(qa_test_shfl_loop, QaTestArgs, p) {
  float v = float(threadIdx.x);
  for (int64_t i = 0; i < p.n[0]; ++i) v = __shfl_xor_sync(qa::FULL_MASK, v, 1) + 1.0f;
  if (threadIdx.x == 0) qa::ptr<float>(p.buf[0])[blockIdx.x] = v;
}
QA_KERNEL(qa_test_barrier_loop, QaTestArgs, p) {
  __shared__ unsigned counter;
  if (threadIdx.x == 0) counter = 0;
  for (int64_t i = 0; i < p.n[0]; ++i) {
    __syncthreads();
    if (threadIdx.x == 0) ++counter;
  }
  __syncthreads();
  if (threadIdx.x == 0) qa::ptr<unsigned>(p.buf[0])[blockIdx.x] = counter;
}

// Thread 0 spins until thread 1 sets a flag: fine on a GPU, a hang for a cooperative
// scheduler, which the emulator must report (tests/emulator_timeout.rs).
QA_KERNEL(qa_test_spin, QaTestArgs, p) {
  volatile unsigned* flag = qa::ptr<volatile unsigned>(p.buf[0]);
  if (threadIdx.x == 0) {
    while (*flag == 0) {
    }
  } else {
    *flag = 1;
  }
}
