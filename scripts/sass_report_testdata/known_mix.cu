// A kernel with a known instruction mix, for the self-test of scripts/sass_loop_report.py, which
// compiles it with the pinned nvcc for sm_80 and sm_90 (it is not under kernels/: build.rs compiles
// everything there into the crate). Every counted instruction is an inline-PTX statement whose
// result is used (ptxas drops a dead ldmatrix even from volatile asm), so ptxas keeps exactly
// these; every loop runs a runtime trip count under `#pragma unroll 1`, so each stays one loop.
//
// Geometry of the steady loop: one warp (threads 32), rows_per_warp 16, block_n 16, d 32, kind full:
//   HMMA   = 16/16 · (16/8 · 32/16 + 32/8 · 16/16) = 8 mma.m16n8k16
//   LDGSTS = 2 · (16 · 32 / 8) / 32 = 4 cp.async of 16 B
// plus ldmatrix x4 ×4, x2.trans ×2, x1 ×1 (7 LDSM, 2688 bytes per warp) and one __syncthreads.
// The decoys the report must not pick for that geometry:
//   qk_loop    4 mma, 2 cp.async: the qk_only geometry of the same tile (half of everything)
//   thin_load  8 mma, 2 cp.async: the right HMMA count, too few copies
//   fat_twin   the steady loop's counts plus 16 ex2: also matches; the report takes the loop
//              with fewer issued instructions, the steady one
#include <cstdint>

#define MMA(c, a, b0, b1)                                                                        \
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}," \
               " {%8,%9}, {%0,%1,%2,%3};"                                                        \
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])                                  \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1))
#define CP_ASYNC(saddr, gptr) asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(saddr), "l"(gptr))
#define COMMIT_AND_WAIT() asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;" ::: "memory")
#define LDSM_X4(r, addr)                                                                         \
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"                  \
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])                                  \
               : "r"(addr))
#define LDSM_X2_T(r, addr) \
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];" : "=r"(r[0]), "=r"(r[1]) : "r"(addr))
#define LDSM_X1(r, addr) asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];" : "=r"(r[0]) : "r"(addr))
#define EX2(x) asm volatile("ex2.approx.f32 %0, %0;" : "+f"(x))

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return uint32_t(__cvta_generic_to_shared(p));
}

extern "C" __global__ void __launch_bounds__(32)
    known_mix(const uint4* __restrict__ src, float* __restrict__ out, int n) {
  __shared__ uint4 tile[256];
  const int lane = int(threadIdx.x);
  const uint32_t s0 = smem_addr(&tile[lane]);
  float c[4] = {0.f, 0.f, 0.f, 0.f};
  uint32_t a[4] = {uint32_t(lane), 1u, 2u, 3u}, b[4] = {4u, 5u, 6u, 7u}, t[2], sink = 0u;

  // Decoy: the qk_only geometry (4 mma, 2 copies).
#pragma unroll 1
  for (int i = 0; i < n; ++i) {
    CP_ASYNC(s0, src + i * 64 + lane);
    CP_ASYNC(s0 + 512, src + i * 64 + 32 + lane);
    COMMIT_AND_WAIT();
    __syncthreads();
    LDSM_X4(b, s0);
    MMA(c, a, b[0], b[1]);
    MMA(c, a, b[2], b[3]);
    MMA(c, b, a[0], a[1]);
    MMA(c, b, a[2], a[3]);
  }

  // Decoy: the steady loop's mma count with too few copies.
#pragma unroll 1
  for (int i = 0; i < n; ++i) {
    CP_ASYNC(s0, src + i * 64 + lane);
    CP_ASYNC(s0 + 512, src + i * 64 + 32 + lane);
    COMMIT_AND_WAIT();
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      MMA(c, a, b[0], b[1]);
      MMA(c, b, a[2], a[3]);
    }
  }

  // The steady loop: 8 mma, 4 copies, 7 ldmatrix, one barrier.
#pragma unroll 1
  for (int i = 0; i < n; ++i) {
    const uint4* g = src + i * 128 + lane;
#pragma unroll
    for (int k = 0; k < 4; ++k) CP_ASYNC(s0 + 512 * k, g + 32 * k);
    COMMIT_AND_WAIT();
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      LDSM_X4(b, s0 + 512 * k);
      MMA(c, a, b[0], b[1]);
      MMA(c, a, b[2], b[3]);
    }
    LDSM_X2_T(t, s0 + 16);
    sink ^= t[0] ^ t[1];
    LDSM_X2_T(t, s0 + 528);
    sink ^= t[0] ^ t[1];
    LDSM_X1(t, s0 + 1040);
    sink ^= t[0];
  }

  // Decoy: the steady loop's counts plus 16 ex2, i.e. more issued instructions.
#pragma unroll 1
  for (int i = 0; i < n; ++i) {
    const uint4* g = src + i * 128 + lane;
#pragma unroll
    for (int k = 0; k < 4; ++k) CP_ASYNC(s0 + 512 * k, g + 32 * k);
    COMMIT_AND_WAIT();
    __syncthreads();
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      LDSM_X4(b, s0 + 512 * k);
      MMA(c, a, b[0], b[1]);
      MMA(c, a, b[2], b[3]);
    }
    LDSM_X2_T(t, s0 + 16);
    sink ^= t[0] ^ t[1];
    LDSM_X2_T(t, s0 + 528);
    sink ^= t[0] ^ t[1];
    LDSM_X1(t, s0 + 1040);
    sink ^= t[0];
#pragma unroll
    for (int k = 0; k < 16; ++k) EX2(c[k & 3]);
  }

  out[lane] = c[0] + c[1] + c[2] + c[3] + float(sink);
}
