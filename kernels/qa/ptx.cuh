// Every piece of inline PTX the kernels use, each with its emulated twin (kernels/emu/).
//
// Shared-memory operands are passed as generic pointers; the device branch converts them with
// cvta (__cvta_generic_to_shared) so callers never handle 32-bit shared addresses.
// Fragment layouts (PTX ISA, g = lane>>2, t = lane&3, low half of a .b32 = lower index):
//   mma.m16n8k16 A: a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..]
//                B: b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g]
//                C/D (f32): c0,c1 = C[g][2t], C[g][2t+1]; c2,c3 = C[g+8][2t], C[g+8][2t+1]
//   ldmatrix .m8n8 .b16: lanes 8m..8m+7 give the row addresses of matrix m; register m of lane l
//                holds row l/4, elements 2(l%4), 2(l%4)+1 (.trans: M[2(l%4)][l/4], M[2(l%4)+1][l/4]).
#pragma once

#include "runtime.cuh"

namespace qa::ptx {

#if defined(QA_EMULATED)
#define QA_PTX_SITE , ::qa_emu::Site site = ::qa_emu::Site::current()
#define QA_PTX_SITE_ONLY ::qa_emu::Site site = ::qa_emu::Site::current()
#else
#define QA_PTX_SITE
#define QA_PTX_SITE_ONLY
__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}
#endif

// mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32: D = A*B + C, f16 inputs, f32 accumulate.
__device__ __forceinline__ void mma_m16n8k16_f16f32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                    const float c[4] QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::mma_m16n8k16(::qa_emu::MMA_F16, d, a, b, c, site);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
}

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: D = A*B + C, bf16 inputs, f32 accumulate.
__device__ __forceinline__ void mma_m16n8k16_bf16f32(float d[4], const uint32_t a[4], const uint32_t b[2],
                                                     const float c[4] QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::mma_m16n8k16(::qa_emu::MMA_BF16, d, a, b, c, site);
#else
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%10,%11,%12,%13};\n"
      : "=f"(d[0]), "=f"(d[1]), "=f"(d[2]), "=f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]), "f"(c[0]), "f"(c[1]), "f"(c[2]),
        "f"(c[3]));
#endif
}

// ldmatrix.sync.aligned.m8n8.x1.shared.b16: one 8x8 matrix, rows from lanes 0..7.
__device__ __forceinline__ void ldmatrix_x1(uint32_t* r, const void* smem_row QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::ldmatrix(1, false, r, smem_row, site);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r[0]) : "r"(smem_addr(smem_row)));
#endif
}

// ldmatrix.sync.aligned.m8n8.x2.shared.b16: two 8x8 matrices, rows from lanes 0..15.
__device__ __forceinline__ void ldmatrix_x2(uint32_t* r, const void* smem_row QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::ldmatrix(2, false, r, smem_row, site);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(smem_row)));
#endif
}

// ldmatrix.sync.aligned.m8n8.x4.shared.b16: four 8x8 matrices, rows from lanes 0..31.
__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const void* smem_row QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::ldmatrix(4, false, r, smem_row, site);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
#endif
}

// ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16
__device__ __forceinline__ void ldmatrix_x1_trans(uint32_t* r, const void* smem_row QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::ldmatrix(1, true, r, smem_row, site);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.trans.shared.b16 {%0}, [%1];\n"
               : "=r"(r[0])
               : "r"(smem_addr(smem_row)));
#endif
}

// ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t* r, const void* smem_row QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::ldmatrix(2, true, r, smem_row, site);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(smem_addr(smem_row)));
#endif
}

// ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const void* smem_row QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::ldmatrix(4, true, r, smem_row, site);
#else
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_addr(smem_row)));
#endif
}

// cp.async.cg.shared.global [dst], [src], 16, src_bytes: copies src_bytes (0..16) bytes and
// zero-fills the rest of the 16; with src_bytes = 0 nothing is read (src may be out of range).
// Both addresses 16-byte aligned. Complete only after cp_async_commit + cp_async_wait.
__device__ __forceinline__ void cp_async_16(void* smem_dst, const void* gmem_src, uint32_t src_bytes QA_PTX_SITE) {
#if defined(QA_EMULATED)
  ::qa_emu::cp_async(smem_dst, gmem_src, src_bytes, site);
#else
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(gmem_src),
               "r"(src_bytes)
               : "memory");
#endif
}

// cp.async.commit_group: closes the group of this thread's copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit() {
#if defined(QA_EMULATED)
  ::qa_emu::cp_async_commit();
#else
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

// cp.async.wait_group N: waits until at most the newest N committed groups are pending. Other
// threads' copies become visible only after a barrier (__syncthreads) as well.
template <int N>
__device__ __forceinline__ void cp_async_wait(QA_PTX_SITE_ONLY) {
#if defined(QA_EMULATED)
  ::qa_emu::cp_async_wait(N, site);
#else
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
#endif
}

// ex2.approx.ftz.f32: 2^x. Hardware: ~2 ulp, flushes subnormals; emulated: exp2f (accurate).
__device__ __forceinline__ float ex2_approx(float x) {
#if defined(QA_EMULATED)
  return exp2f(x);
#else
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

// lg2.approx.ftz.f32: log2(x). Emulated: log2f.
__device__ __forceinline__ float lg2_approx(float x) {
#if defined(QA_EMULATED)
  return log2f(x);
#else
  float y;
  asm("lg2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

// rcp.approx.ftz.f32: 1/x. Emulated: exact division.
__device__ __forceinline__ float rcp_approx(float x) {
#if defined(QA_EMULATED)
  return 1.0f / x;
#else
  float y;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
#endif
}

// cvt.rn.bf16x2.f32 / cvt.rn.f16x2.f32 (sm_80+): two f32 rounded to nearest even and packed,
// `lo` in the low half (the lower index of an mma fragment pair). One F2FP per pair where the
// software rounding of qa/types.cuh takes ~7 instructions per element. The emulated twin is that
// software rounding, so a kernel rounds identically on both branches; tests/emulator_half.rs
// checks it against the `half` crate bit for bit, on a GPU against the hardware too.
__device__ __forceinline__ uint32_t cvt_pack_bf16x2(float lo, float hi) {
#if defined(QA_EMULATED)
  return uint32_t(::qa_emu::float_to_bf16_rn(lo)) | (uint32_t(::qa_emu::float_to_bf16_rn(hi)) << 16);
#else
  uint32_t d;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
#endif
}

__device__ __forceinline__ uint32_t cvt_pack_f16x2(float lo, float hi) {
#if defined(QA_EMULATED)
  return uint32_t(::qa_emu::float_to_half_rn(lo)) | (uint32_t(::qa_emu::float_to_half_rn(hi)) << 16);
#else
  uint32_t d;
  asm("cvt.rn.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
#endif
}

// cvt.rn.relu.bf16x2.f32 / cvt.rn.relu.f16x2.f32 (sm_80+): the same, with negative values
// clamped to +0 in the same instruction (NaN stays NaN). The emulated twin clamps, then rounds.
__device__ __forceinline__ float relu_keep_nan(float x) { return x < 0.f ? 0.f : x; }

__device__ __forceinline__ uint32_t cvt_pack_relu_bf16x2(float lo, float hi) {
#if defined(QA_EMULATED)
  return cvt_pack_bf16x2(relu_keep_nan(lo), relu_keep_nan(hi));
#else
  uint32_t d;
  asm("cvt.rn.relu.bf16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
#endif
}

__device__ __forceinline__ uint32_t cvt_pack_relu_f16x2(float lo, float hi) {
#if defined(QA_EMULATED)
  return cvt_pack_f16x2(relu_keep_nan(lo), relu_keep_nan(hi));
#else
  uint32_t d;
  asm("cvt.rn.relu.f16x2.f32 %0, %1, %2;" : "=r"(d) : "f"(hi), "f"(lo));
  return d;
#endif
}

// The value unchanged, but opaque to the compiler: computing from it inside a loop keeps an
// address computation there, instead of hoisting its results into registers held across the
// loop (one LOP3 per use against a register per result for the whole loop).
__device__ __forceinline__ uint32_t opaque(uint32_t x) {
#if defined(QA_EMULATED)
  return x;
#else
  asm volatile("mov.b32 %0, %0;" : "+r"(x));
  return x;
#endif
}

#undef QA_PTX_SITE
#undef QA_PTX_SITE_ONLY

}  // namespace qa::ptx
