// The K/V tile pipelines of the tensor-core kernels. KvPipeline (the decode chunk,
// decode_tc/chunk.cuh, and the prefill statistics sweep): S shared-memory stages filled by
// cp.async, tile i in stage i % S. KvPrefill (below; the prefill main loop): K in two stages, V in
// one or two.
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

namespace qa::tc {

// The prefill kernel's K/V pipeline: K in two stages, V in VS (2, or 1 where shared memory is
// short). Key tiles run from the last to the first; tile t uses K stage t % 2. Every copy is
// issued at the top of a tile, while S and P hold no registers:
//
//   KvPrefill<VS> pipe;
//   pipe.start(last, load_k, load_v);          // tile `last` in flight
//   for (int t = last; t >= first; --t) {
//     pipe.begin(t, t > first, load_k, load_v); // K(t) landed block-wide; tile t - 1 issued
//     ... S = Q·K(t)ᵀ from K stage stage(t), softmax ...
//     pipe.wait_v();                            // V(t) landed block-wide
//     ... O += P·V(t) from V stage v_stage(t) ...
//     pipe.end();
//   }
//   pipe.drain();
//
// VS = 2: begin(t) issues K(t - 1) and V(t - 1) (in flight during the whole of tile t), then
// waits for tile t; end's barrier keeps tile t's stages until every warp is done with them.
// VS = 1: begin(t) waits for K(t), then issues V(t) (in flight during Q·Kᵀ and the softmax) and
// K(t - 1) into the stage tile t + 1 left (every warp passed it: the barrier just before);
// wait_v waits for V(t) alone (groups commit V(t), K(t - 1)) behind a second barrier.
// `load_k(t, stage)` / `load_v(t, stage)` issue tile t's copies. SEED_NO_WAIT (a test-only seed,
// kernels/testing/seeded_bugs.cu) skips the wait for tile t: Q·Kᵀ may read a tile in flight.
template <int VS, bool SEED_NO_WAIT = false>
struct KvPrefill {
  static_assert(VS == 1 || VS == 2, "V stages");

  __device__ __forceinline__ static int stage(int t) { return t & 1; }
  __device__ __forceinline__ static int v_stage(int t) { return VS == 2 ? t & 1 : 0; }

  template <class LoadK, class LoadV>
  __device__ __forceinline__ static void start(int t, const LoadK& load_k, const LoadV& load_v) {
    load_k(t, stage(t));
    if (VS == 2) load_v(t, v_stage(t));
    qa::ptx::cp_async_commit();
  }

  template <class LoadK, class LoadV>
  __device__ __forceinline__ static void begin(int t, bool next, const LoadK& load_k, const LoadV& load_v) {
    if constexpr (VS == 2) {
      if (next) {
        load_k(t - 1, stage(t - 1));
        load_v(t - 1, v_stage(t - 1));
      }
      qa::ptx::cp_async_commit();
      if constexpr (!SEED_NO_WAIT) qa::ptx::cp_async_wait<1>();  // tile t landed; t - 1 may not have
      __syncthreads();
    } else {
      if constexpr (!SEED_NO_WAIT) qa::ptx::cp_async_wait<0>();  // K(t): the only group in flight
      __syncthreads();
      load_v(t, 0);
      qa::ptx::cp_async_commit();
      if (next) load_k(t - 1, stage(t - 1));
      qa::ptx::cp_async_commit();
    }
  }

  __device__ __forceinline__ static void wait_v() {
    if constexpr (VS == 1) {
      qa::ptx::cp_async_wait<1>();
      __syncthreads();
    }
  }

  __device__ __forceinline__ static void end() {
    if constexpr (VS == 2) __syncthreads();
  }

  __device__ __forceinline__ static void drain() { qa::ptx::cp_async_wait<0>(); }
};

}  // namespace qa::tc
