// quietattn-arch: compute_80
// Kernels with one deliberate synchronisation or indexing bug each, next to their correct
// twins: tests/emulator_seeded_bugs.rs shows the emulator reports every one (an error, NaN or
// wrong values) and passes the twins.
#include "decode_tc/kernel.cuh"
#include "gemm_tile.cuh"
#include "tensor_core/kernel.cuh"

// Tensor-core attention (softmax, f16, d64) whose cp.async.wait_group leaves the stage about to
// be read in flight, its correct twin, and one whose K/V loader skips the XOR swizzle the
// ldmatrix reads assume.
QA_KERNEL_BOUNDS(qa_bug_tc_twin, QaAttnParams, p, 128, 1) {
  qa::tc::attention_body<qa::attn::Softmax, qa::f16, 64, false, qa::tc::BUG_NONE>(p);
}
QA_KERNEL_BOUNDS(qa_bug_tc_no_wait, QaAttnParams, p, 128, 1) {
  qa::tc::attention_body<qa::attn::Softmax, qa::f16, 64, false, qa::tc::BUG_NO_WAIT>(p);
}
QA_KERNEL_BOUNDS(qa_bug_tc_wrong_swizzle, QaAttnParams, p, 128, 1) {
  qa::tc::attention_body<qa::attn::Softmax, qa::f16, 64, false, qa::tc::BUG_WRONG_SWIZZLE>(p);
}

// Tensor-core decode chunk (softmax, bf16, d64; tests/decode_emulator.rs runs them through the
// paged host path): the correct twin, one whose cp.async.wait_group leaves the tile about to be
// read in flight, and one whose warps keep their own row max instead of the block's (their l
// and O partials are then added in different units).
QA_KERNEL_BOUNDS(qa_bug_decode_tc_twin, QaDecodeParams, p, 128, 1) {
  qa::decode_tc::chunk_kernel<qa::attn::Softmax, qa::bf16, 64, false, qa::decode_tc::BUG_NONE>(p);
}
QA_KERNEL_BOUNDS(qa_bug_decode_tc_no_wait, QaDecodeParams, p, 128, 1) {
  qa::decode_tc::chunk_kernel<qa::attn::Softmax, qa::bf16, 64, false, qa::decode_tc::BUG_NO_WAIT>(p);
}
QA_KERNEL_BOUNDS(qa_bug_decode_tc_warp_max, QaDecodeParams, p, 128, 1) {
  qa::decode_tc::chunk_kernel<qa::attn::Softmax, qa::bf16, 64, false, qa::decode_tc::BUG_WARP_MAX>(p);
}

// GEMM tile without the barrier that protects the double buffer from the next cp.async.
QA_KERNEL_BOUNDS(qa_bug_gemm_no_trailing_sync, QaTestArgs, p, gemm::THREADS, 1) {
  gemm::gemm_tile<qa::bf16, gemm::NO_TRAILING_SYNC>(p);
}
// GEMM tile whose cp.async.wait_group leaves one group too many in flight.
QA_KERNEL_BOUNDS(qa_bug_gemm_loose_wait, QaTestArgs, p, gemm::THREADS, 1) {
  gemm::gemm_tile<qa::bf16, gemm::LOOSE_WAIT>(p);
}
// GEMM tile with the A fragment registers a1/a2 swapped.
QA_KERNEL_BOUNDS(qa_bug_gemm_wrong_fragment, QaTestArgs, p, gemm::THREADS, 1) {
  gemm::gemm_tile<qa::bf16, gemm::WRONG_FRAGMENT>(p);
}

// Half-warp sums: lanes 0..15 of each warp reduce their values with mask 0x0000ffff.
// out[warp] = sum of (t + 1) over the warp's first 16 threads. n[0] = 1 seeds the bug: the
// shuffle keeps the default width 32, so lane 8 reads lane 16, outside the mask.
QA_KERNEL(qa_bug_half_warp_sum, QaTestArgs, p) {
  const unsigned t = threadIdx.x, lane = t & 31u;
  const bool bug = p.n[0] != 0;
  if (lane < 16) {
    unsigned v = t + 1;
    for (int off = 8; off > 0; off >>= 1)
      v += bug ? __shfl_down_sync(0x0000ffffu, v, off) : __shfl_down_sync(0x0000ffffu, v, off, 16);
    if (lane == 0) qa::ptr<unsigned>(p.buf[0])[t >> 5] = v;
  }
}

// Block sum through shared memory. n[0] = 1 seeds the bug: the barrier after the stores sits
// in both branches of a divergent if (two different barriers).
QA_KERNEL(qa_bug_divergent_barrier, QaTestArgs, p) {
  __shared__ float partial[256];
  const unsigned t = threadIdx.x;
  partial[t] = float(t);
  if (p.n[0] != 0) {
    if (t < 64) {
      __syncthreads();
    } else {
      __syncthreads();
    }
  } else {
    __syncthreads();
  }
  if (t == 0) {
    float s = 0.0f;
    for (unsigned i = 0; i < blockDim.x; ++i) s += partial[i];
    qa::ptr<float>(p.buf[0])[blockIdx.x] = s;
  }
}

// Threads past n[1] return early; n[0] = 1 seeds the bug: the others then wait at a barrier the
// returned threads never reach. out[block] = number of threads kept.
QA_KERNEL(qa_bug_exit_before_barrier, QaTestArgs, p) {
  __shared__ unsigned kept;
  const unsigned t = threadIdx.x;
  if (t == 0) kept = 0;
  __syncthreads();
  const bool active = int(t) < p.n[1];
  if (p.n[0] != 0 && !active) return;
  if (active) atomicAdd(&kept, 1u);
  __syncthreads();
  if (t == 0) qa::ptr<unsigned>(p.buf[0])[blockIdx.x] = kept;
}

// Step 0: a shuffle, step 1: __syncthreads (one call site). n[0] = 1 seeds the bug: thread 31
// takes the steps in the other order, so warp 0 waits in the shuffle for lane 31 while lane 31
// waits at the barrier for warp 0 -- a deadlock the emulator must report instead of hanging.
QA_KERNEL(qa_bug_warp_deadlock, QaTestArgs, p) {
  const unsigned t = threadIdx.x;
  const bool swapped = p.n[0] != 0 && t == 31;
  float v = float(t);
  for (int step = 0; step < 2; ++step) {
    if (step == (swapped ? 0 : 1)) {
      __syncthreads();
    } else {
      v += __shfl_xor_sync(qa::FULL_MASK, v, 1);
    }
  }
  qa::ptr<float>(p.buf[0])[t] = v;
}

// Issues a cp.async and (n[0] = 1) exits without waiting for it.
QA_KERNEL(qa_bug_unwaited_cp_async, QaTestArgs, p) {
  __shared__ __align__(16) float stage[4 * 32];
  const unsigned t = threadIdx.x;
  qa::ptx::cp_async_16(&stage[4 * t], qa::ptr<const float>(p.buf[0]) + 4 * t, 16);
  qa::ptx::cp_async_commit();
  if (p.n[0] == 0) qa::ptx::cp_async_wait<0>();
  __syncwarp();
  if (p.n[0] == 0) qa::ptr<float>(p.buf[1])[t] = stage[4 * ((t + 1) & 31u)];
}

// Broken shuffle masks, chosen by n[0]: 1 = a mask without the calling lane, 2 = lanes 0..15
// use the full mask while lanes 16..31 use 0xffff0000 at the same call, 3 = the full mask in a
// partial warp (launch with 48 threads). 0 = correct (full mask, 32 threads per warp).
QA_KERNEL(qa_bug_shuffle_masks, QaTestArgs, p) {
  const unsigned lane = threadIdx.x & 31u;
  unsigned mask = qa::FULL_MASK;
  if (p.n[0] == 1) mask = 1u << ((lane + 1) & 31u);
  if (p.n[0] == 2) mask = lane < 16 ? qa::FULL_MASK : 0xffff0000u;
  const unsigned v = __shfl_xor_sync(mask, threadIdx.x, 1);
  qa::ptr<unsigned>(p.buf[0])[threadIdx.x] = v;
}
