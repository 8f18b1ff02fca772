// Runtime-private state of the SIMT emulator, shared by kernels/emu/*.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "context.h"
#include "emu.h"

namespace qa_emu {

struct CpAsyncCopy {
  void* dst;
  const void* src;
  unsigned src_bytes;
};

enum class FiberState { Runnable, Blocked, Exited };

// One emulated GPU thread.
struct Fiber {
  Context ctx;
  unsigned tid = 0;  // linear thread index in the block
  uint3 idx{};
  FiberState state = FiberState::Runnable;
  // What a blocked thread waits at, for deadlock reports.
  const char* wait_what = nullptr;
  Site wait_site{};
  unsigned wait_mask = 0;
  // cp.async: the open (uncommitted) group and the committed groups, oldest first.
  std::vector<CpAsyncCopy> cp_open;
  std::vector<std::vector<CpAsyncCopy>> cp_committed;
};

// A warp collective in progress: the lanes of `mask` deposit words, then each reads them all.
struct WarpGroup {
  bool used = false;
  bool complete = false;  // every lane of mask arrived; lanes now read the slots
  int op = 0;
  unsigned mask = 0;
  unsigned arrived = 0;
  unsigned read = 0;
  Site site{};
  uint32_t slots[32][16];
};

struct Warp {
  unsigned present = 0;  // lanes that exist (a partial last warp has fewer)
  unsigned exited = 0;
  WarpGroup groups[32];  // a lane is in at most one group at a time
};

struct Launch {
  const KernelInfo* kernel = nullptr;
  std::vector<unsigned char> params;
  dim3 grid, block;
  unsigned nthreads = 0;
  unsigned char* dyn_smem = nullptr;  // ends right below a PROT_NONE guard page
  size_t dyn_smem_bytes = 0;
  void* dyn_map = nullptr;
  size_t dyn_map_bytes = 0;
  bool descending = false;  // scheduling order of this block (alternates per block)

  std::vector<Fiber> fibers;
  std::vector<Warp> warps;
  std::vector<uint64_t> runnable;  // bitmap over tids
  Context main_ctx;
  Fiber* current = nullptr;

  // __syncthreads state.
  unsigned barrier_count = 0;
  Site barrier_site{};
  unsigned live = 0;
  unsigned exited = 0;
  unsigned first_exited = 0;

  std::string error;  // first failure; non-empty stops the launch
  uint64_t switches = 0;
};

extern Launch* g_launch;

// Scheduler (sched.cpp).
void make_runnable(Fiber& f);
// Blocks the current thread until someone makes it runnable again.
void block_current(const char* what, Site site, unsigned mask);
// Records `what` (prefixed with kernel, block and thread) as the launch error.
void set_error(const Fiber* f, const std::string& what);
std::string thread_name(const Fiber& f);
std::string site_str(const Site& s);
bool same_site(const Site& a, const Site& b);

// Memory (memory.cpp).
bool alloc_dyn_smem(Launch& l);
void free_dyn_smem(Launch& l);
void poison_shared(Launch& l);
bool is_shared(const void* p, size_t bytes);
void thread_exit_memory(Fiber& f);

// Warp (warp.cpp): the calling lane's exit; errors if lanes wait for it.
void warp_lane_exit(Fiber& f);

inline Fiber& self() { return *g_launch->current; }
inline unsigned lane_of(const Fiber& f) { return f.tid & 31u; }
inline Warp& warp_of(const Fiber& f) { return g_launch->warps[f.tid >> 5]; }

}  // namespace qa_emu
