// quietattn kernel runtime: the one header every kernels/*.cu includes first.
//
// Two branches, side by side:
//  - device (nvcc): CUDA's own built-ins; this header only adds the project macros.
//  - emulated (QA_EMULATED, host C++20 through the `cc` crate): kernels/emu/emu.h supplies
//    threadIdx/blockIdx, __syncthreads, warp shuffles/votes, atomics and the CUDA keywords, with
//    the same semantics, so the unchanged kernel source runs on the CPU (see src/emulator/).
//
// Project macros, identical in both branches:
//   QA_KERNEL(name, Params, p) { body }       extern "C" kernel taking `const Params p` by value
//   QA_KERNEL_BOUNDS(name, Params, p, threads, min_blocks) { body }   same, with __launch_bounds__
//   QA_DYNAMIC_SMEM(T, ptr);                  declares `T* ptr` = start of dynamic shared memory
#pragma once

#include "../abi.h"

#if defined(QA_EMULATED)
#include "../emu/emu.h"
#else  // device branch (nvcc)

#define QA_DEVICE 1
#define QA_KERNEL(name, Params, p) extern "C" __global__ void name(const __grid_constant__ Params p)
#define QA_KERNEL_BOUNDS(name, Params, p, threads, min_blocks) \
  extern "C" __global__ void __launch_bounds__(threads, min_blocks) name(const __grid_constant__ Params p)
#define QA_DYNAMIC_SMEM(T, ptr)                                   \
  extern __shared__ __align__(16) unsigned char qa_dynamic_smem_[]; \
  T* ptr = reinterpret_cast<T*>(qa_dynamic_smem_)

#endif

namespace qa {
constexpr unsigned FULL_MASK = 0xffffffffu;
constexpr int WARP_SIZE = 32;

// Device-memory pointer from an ABI address (uint64_t, 0 = absent).
template <class T>
__device__ __forceinline__ T* ptr(uint64_t addr) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(addr));
}
}  // namespace qa
