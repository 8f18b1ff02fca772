// Test-only tensor-core GEMM tile: C[M][N] (f32) = A[M][K] * B[K][N], A and B row-major f16 or
// bf16, through the same pipeline the attention kernels use: cp.async double buffering (with
// zero-filled edges), ldmatrix (.trans for B), mma.sync.m16n8k16 with f32 accumulate.
// `Bug` seeds one mistake (kernels/testing/seeded_bugs.cu) so the tests can show the emulator
// catches it. Args: buf = {A, B, C}, n = {M, N, K}; K and N multiples of 8.
// Grid (ceil(N/64), ceil(M/64)), 128 threads, GEMM_SMEM_BYTES of dynamic shared memory.
#pragma once

#include "testing.cuh"

namespace gemm {

constexpr int BM = 64, BN = 64, BK = 32, THREADS = 128;
constexpr unsigned SMEM_BYTES = 2 * BM * BK * 2;  // the A double buffer; B is static shared

__device__ __forceinline__ int min8(int x) { return x < 8 ? x : 8; }
__device__ __forceinline__ int max0(int x) { return x > 0 ? x : 0; }

enum Bug { NONE = 0, NO_TRAILING_SYNC = 1, LOOSE_WAIT = 2, WRONG_FRAGMENT = 3 };

__device__ __forceinline__ void mma(const qa::f16*, float d[4], const uint32_t a[4], const uint32_t b[2]) {
  qa::ptx::mma_m16n8k16_f16f32(d, a, b, d);
}
__device__ __forceinline__ void mma(const qa::bf16*, float d[4], const uint32_t a[4], const uint32_t b[2]) {
  qa::ptx::mma_m16n8k16_bf16f32(d, a, b, d);
}

template <class T, int Bug>
__device__ __forceinline__ void gemm_tile(const QaTestArgs& p) {
  const T* A = qa::ptr<const T>(p.buf[0]);
  const T* B = qa::ptr<const T>(p.buf[1]);
  float* C = qa::ptr<float>(p.buf[2]);
  const int M = int(p.n[0]), N = int(p.n[1]), K = int(p.n[2]);
  const int m0 = int(blockIdx.y) * BM, n0 = int(blockIdx.x) * BN;
  const int tid = int(threadIdx.x), lane = tid & 31, warp = tid >> 5;
  const int wm = warp >> 1, wn = warp & 1;  // 2x2 warps, 32x32 outputs each

  QA_DYNAMIC_SMEM(T, smem);
  T(*sA)[BM][BK] = reinterpret_cast<T(*)[BM][BK]>(smem);
  __shared__ __align__(128) T sB[2][BK][BN];

  // One k-tile = 256 16-byte chunks of A and 256 of B; each thread issues two of each.
  // Chunks past M/N/K are zero-filled (src-size 0 or partial).
  auto load_tile = [&](int kt, int buf) {
    const int k0 = kt * BK;
    for (int c = tid; c < BM * BK / 8; c += THREADS) {
      const int row = c / (BK / 8), col = c % (BK / 8) * 8;
      const int gr = m0 + row, gk = k0 + col;
      const int bytes = gr < M ? 2 * max0(min8(K - gk)) : 0;
      qa::ptx::cp_async_16(&sA[buf][row][col], bytes ? A + size_t(gr) * K + gk : A, uint32_t(bytes));
    }
    for (int c = tid; c < BK * BN / 8; c += THREADS) {
      const int row = c / (BN / 8), col = c % (BN / 8) * 8;
      const int gk = k0 + row, gn = n0 + col;
      const int bytes = gk < K ? 2 * max0(min8(N - gn)) : 0;
      qa::ptx::cp_async_16(&sB[buf][row][col], bytes ? B + size_t(gk) * N + gn : B, uint32_t(bytes));
    }
  };

  float acc[2][4][4] = {};
  const int nk = (K + BK - 1) / BK;
  load_tile(0, 0);
  qa::ptx::cp_async_commit();
  for (int kt = 0; kt < nk; ++kt) {
    const int buf = kt & 1;
    if (kt + 1 < nk) {
      load_tile(kt + 1, buf ^ 1);
      qa::ptx::cp_async_commit();
      if (Bug == LOOSE_WAIT) qa::ptx::cp_async_wait<2>(); else qa::ptx::cp_async_wait<1>();
    } else {
      if (Bug == LOOSE_WAIT) qa::ptx::cp_async_wait<1>(); else qa::ptx::cp_async_wait<0>();
    }
    __syncthreads();
    // acc += A[wm*32.., k] * B[k, wn*32..] over the two k16 steps of this tile.
    for (int kk = 0; kk < BK; kk += 16) {
      uint32_t a[2][4], b[4][2];
      for (int mi = 0; mi < 2; ++mi) {
        // x4: matrices (rows 0-7 | 8-15) x (cols kk..kk+7 | kk+8..); lane l -> row l%16, col 8*(l/16).
        qa::ptx::ldmatrix_x4(a[mi], &sA[buf][wm * 32 + mi * 16 + (lane & 15)][kk + (lane >> 4) * 8]);
        if (Bug == WRONG_FRAGMENT) {
          const uint32_t t = a[mi][1];
          a[mi][1] = a[mi][2];
          a[mi][2] = t;
        }
      }
      for (int nj = 0; nj < 4; nj += 2) {
        // x4.trans: (k 0-7 | 8-15) x (n tile nj | nj+1); lane l -> k row l%8 + 8*((l/8)%2).
        uint32_t r[4];
        const int mat = lane >> 3;
        qa::ptx::ldmatrix_x4_trans(r, &sB[buf][kk + (mat & 1) * 8 + (lane & 7)][wn * 32 + (nj + (mat >> 1)) * 8]);
        b[nj][0] = r[0];
        b[nj][1] = r[1];
        b[nj + 1][0] = r[2];
        b[nj + 1][1] = r[3];
      }
      for (int mi = 0; mi < 2; ++mi)
        for (int nj = 0; nj < 4; ++nj) mma(A, acc[mi][nj], a[mi], b[nj]);
    }
    if (Bug != NO_TRAILING_SYNC) __syncthreads();  // the next load overwrites this buffer
  }
  if (Bug == LOOSE_WAIT) qa::ptx::cp_async_wait<0>();

  // c0,c1 -> C[g][2t..2t+1], c2,c3 -> C[g+8][2t..2t+1] of each 16x8 tile.
  const int g = lane >> 2, t = lane & 3;
  for (int mi = 0; mi < 2; ++mi)
    for (int nj = 0; nj < 4; ++nj)
      for (int h = 0; h < 2; ++h) {
        const int row = m0 + wm * 32 + mi * 16 + g + 8 * h;
        const int col = n0 + wn * 32 + nj * 8 + 2 * t;
        if (row < M && col < N) C[size_t(row) * N + col] = acc[mi][nj][2 * h];
        if (row < M && col + 1 < N) C[size_t(row) * N + col + 1] = acc[mi][nj][2 * h + 1];
      }
}

}  // namespace gemm
