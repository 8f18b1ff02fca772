// The K/V tile pipeline both tensor-core kernels run (prefill: kernel.cuh, decode chunk:
// decode_tc/chunk.cuh): S shared-memory stages filled by cp.async, tile i in stage i % S.
//
//   KvPipeline<S> pipe{n_tiles};
//   pipe.prime(load);                      // tiles 0 .. S-2 in flight
//   for (int i = 0; i < n_tiles; ++i) {
//     pipe.acquire(i, load);               // tile i + S - 1 issued; tile i landed, block-wide
//     ... read stage pipe.stage(i) ...
//     pipe.release();                      // no warp reads stage i % S any more
//   }
//   pipe.drain();
//
// `load(i, stage)` issues the cp.async copies of tile i into `stage`. Every issue commits one
// group, empty past the last tile, so after issuing tile i + S - 1 the wait for "at most S - 1
// pending" is exactly "tile i complete" for this thread; the barrier makes every thread's copies
// visible. SEED_NO_WAIT (a test-only seed, kernels/testing/seeded_bugs.cu) waits for one group
// too few, leaving the tile about to be read in flight: the emulator must catch it.
#pragma once

#include "../qa/ptx.cuh"

namespace qa::tc {

template <int S, bool SEED_NO_WAIT = false>
struct KvPipeline {
  static_assert(S >= 2, "one stage is read while the next is filled");
  int n_tiles;

  __device__ __forceinline__ static int stage(int i) { return i % S; }

  template <class Load>
  __device__ __forceinline__ void issue(int i, const Load& load) const {
    if (i < n_tiles) load(i, stage(i));
    qa::ptx::cp_async_commit();
  }

  template <class Load>
  __device__ __forceinline__ void prime(const Load& load) const {
    for (int i = 0; i < S - 1; ++i) issue(i, load);
  }

  template <class Load>
  __device__ __forceinline__ void acquire(int i, const Load& load) const {
    issue(i + S - 1, load);
    if constexpr (SEED_NO_WAIT) qa::ptx::cp_async_wait<S>();
    else qa::ptx::cp_async_wait<S - 1>();
    __syncthreads();
  }

  // Every warp is done with the stage read last before the next acquire refills it.
  __device__ __forceinline__ static void release() { __syncthreads(); }

  // Only empty groups are left after the last acquire; none outlives the loop.
  __device__ __forceinline__ static void drain() { qa::ptx::cp_async_wait<0>(); }
};

}  // namespace qa::tc
