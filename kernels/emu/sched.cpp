// Launches, the fiber scheduler and __syncthreads.
//
// All threads of a block are ucontext fibers on one OS thread (the "SM" thread of the launch).
// A fiber runs until it blocks (barrier, warp collective) or exits; the scheduler then resumes
// the lowest runnable thread (highest on odd blocks). No runnable fiber while some still live
// is a deadlock, reported with what every thread waits at. The calling thread is a watchdog:
// a launch that stops switching fibers for `timeout` seconds (a spin loop) is reported, never
// waited for forever.
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "internal.h"

uint3 threadIdx{};
uint3 blockIdx{};
dim3 blockDim{};
dim3 gridDim{};

namespace qa_emu {

Launch* g_launch = nullptr;

namespace {

constexpr size_t kStackBytes = 512 * 1024;
constexpr const char* kBarrier = "__syncthreads";

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Fiber stacks, kept for the whole process (each with a guard page below it).
std::vector<unsigned char*>& stacks() {
  static std::vector<unsigned char*> s;
  return s;
}

unsigned char* stack_for(size_t i) {
  auto& s = stacks();
  while (s.size() <= i) {
    void* p = mmap(nullptr, kStackBytes + 4096, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mprotect(p, 4096, PROT_NONE);
    s.push_back(static_cast<unsigned char*>(p) + 4096);
  }
  return s[i];
}

void switch_to_main(Fiber& f) {
  context_switch(f.ctx, g_launch->main_ctx);
}

void thread_exit(Fiber& f) {
  Launch& l = *g_launch;
  thread_exit_memory(f);
  if (l.barrier_count > 0)
    fail(format("thread exited while %u thread(s) wait at __syncthreads (%s): every thread of the "
                "block must reach each barrier",
                l.barrier_count, site_str(l.barrier_site).c_str())
             .c_str());
  warp_lane_exit(f);
  if (l.exited++ == 0) l.first_exited = f.tid;
  --l.live;
}

void fiber_main() {
  Launch& l = *g_launch;
  Fiber& f = *l.current;
  l.kernel->entry(l.params.data());
  thread_exit(f);
  f.state = FiberState::Exited;
  l.runnable[f.tid >> 6] &= ~(uint64_t(1) << (f.tid & 63));
  switch_to_main(f);
  __builtin_unreachable();
}

Fiber* pick(Launch& l) {
  const size_t n = l.runnable.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t w = l.descending ? n - 1 - k : k;
    const uint64_t bits = l.runnable[w];
    if (bits == 0) continue;
    const unsigned b = l.descending ? 63u - unsigned(std::countl_zero(bits)) : unsigned(std::countr_zero(bits));
    return &l.fibers[w * 64 + b];
  }
  return nullptr;
}

std::string deadlock_report(Launch& l) {
  // Group the blocked threads by what they wait at.
  std::map<std::string, std::vector<unsigned>> waits;
  for (const Fiber& f : l.fibers) {
    if (f.state != FiberState::Blocked) continue;
    std::string key = std::string(f.wait_what ? f.wait_what : "?");
    if (f.wait_mask) key += format(" (mask 0x%08x)", f.wait_mask);
    key += " at " + site_str(f.wait_site);
    waits[key].push_back(f.tid);
  }
  std::string s = "deadlock: no thread can make progress;";
  for (auto& [what, tids] : waits) {
    s += format(" %zu thread(s) (tid %u", tids.size(), tids.front());
    if (tids.size() > 1) s += format("..%u", tids.back());
    s += ") wait at " + what + ";";
  }
  if (l.exited) s += format(" %u thread(s) exited (first tid %u)", l.exited, l.first_exited);
  return s;
}

// Runs one block to completion or to the first error.
void run_block(Launch& l) {
  const unsigned n = l.nthreads;
  std::fill(l.runnable.begin(), l.runnable.end(), 0);
  for (auto& w : l.warps) {
    w.exited = 0;
    for (auto& g : w.groups) g.used = false;
  }
  l.barrier_count = 0;
  l.live = n;
  l.exited = 0;
  for (unsigned t = 0; t < n; ++t) {
    Fiber& f = l.fibers[t];
    f.state = FiberState::Runnable;
    f.wait_what = nullptr;
    f.cp_open.clear();
    f.cp_committed.clear();
    context_init(f.ctx, stack_for(t), kStackBytes, fiber_main);
    make_runnable(f);
  }
  poison_shared(l);
  while (l.error.empty()) {
    Fiber* f = pick(l);
    if (!f) {
      if (l.live > 0) set_error(nullptr, deadlock_report(l));
      return;
    }
    l.current = f;
    threadIdx = f->idx;
    std::atomic_ref<uint64_t>(l.switches).fetch_add(1, std::memory_order_relaxed);
    context_switch(l.main_ctx, f->ctx);
  }
}

void run_launch(Launch& l) {
  for (unsigned z = 0; z < l.grid.z && l.error.empty(); ++z)
    for (unsigned y = 0; y < l.grid.y && l.error.empty(); ++y)
      for (unsigned x = 0; x < l.grid.x && l.error.empty(); ++x) {
        blockIdx = uint3{x, y, z};
        l.descending = ((x + y + z) & 1u) != 0;
        run_block(l);
      }
}

std::mutex& launch_mutex() {
  static std::mutex m;
  return m;
}
std::string g_broken;  // set when a launch had to be abandoned; guarded by launch_mutex

void park(int) {
  for (;;) pause();
}

// The signal that parks an abandoned SM thread (installed once).
int park_signal() {
  static const int sig = [] {
    struct sigaction sa {};
    sa.sa_handler = park;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGRTMIN + 5, &sa, nullptr);
    return SIGRTMIN + 5;
  }();
  return sig;
}

}  // namespace

std::string site_str(const Site& s) { return format("%s:%u", s.file_name(), unsigned(s.line())); }

bool same_site(const Site& a, const Site& b) {
  return a.line() == b.line() && a.column() == b.column() && std::strcmp(a.file_name(), b.file_name()) == 0;
}

std::string thread_name(const Fiber& f) {
  return format("thread (%u,%u,%u) [warp %u lane %u]", f.idx.x, f.idx.y, f.idx.z, f.tid >> 5, f.tid & 31u);
}

void set_error(const Fiber* f, const std::string& what) {
  Launch& l = *g_launch;
  if (!l.error.empty()) return;
  l.error = format("kernel `%s`, block (%u,%u,%u)", l.kernel->name, blockIdx.x, blockIdx.y, blockIdx.z);
  if (f) l.error += ", " + thread_name(*f);
  l.error += ": " + what;
}

void fail(const char* what) {
  if (!g_launch || !g_launch->current) {
    std::fprintf(stderr, "quietattn emulator: %s (outside a launch)\n", what);
    std::abort();
  }
  Fiber& f = self();
  set_error(&f, what);
  f.state = FiberState::Blocked;  // never resumed: the launch stops at the first error
  switch_to_main(f);
  __builtin_unreachable();
}

void make_runnable(Fiber& f) {
  f.state = FiberState::Runnable;
  g_launch->runnable[f.tid >> 6] |= uint64_t(1) << (f.tid & 63);
}

void block_current(const char* what, Site site, unsigned mask) {
  Fiber& f = self();
  f.state = FiberState::Blocked;
  f.wait_what = what;
  f.wait_site = site;
  f.wait_mask = mask;
  g_launch->runnable[f.tid >> 6] &= ~(uint64_t(1) << (f.tid & 63));
  switch_to_main(f);
  // Resumed: the scheduler made this thread current again.
}

void syncthreads(Site site) {
  Launch& l = *g_launch;
  if (l.exited)
    fail(format("__syncthreads (%s) after %u thread(s) exited (first tid %u): every thread of the "
                "block must reach each barrier",
                site_str(site).c_str(), l.exited, l.first_exited)
             .c_str());
  if (l.barrier_count == 0) {
    l.barrier_site = site;
  } else if (!same_site(site, l.barrier_site)) {
    fail(format("divergent __syncthreads: this thread is at %s while %u thread(s) wait at %s",
                site_str(site).c_str(), l.barrier_count, site_str(l.barrier_site).c_str())
             .c_str());
  }
  if (++l.barrier_count == l.live) {
    l.barrier_count = 0;
    for (Fiber& f : l.fibers)
      if (f.state == FiberState::Blocked && f.wait_what == kBarrier) make_runnable(f);
    return;
  }
  block_current(kBarrier, site, 0);
}

}  // namespace qa_emu

using qa_emu::KernelInfo;
using qa_emu::Launch;

// Runs `kernel` over the whole grid. Returns 0, or 1 with a message in `err`.
extern "C" int qa_emu_launch(const KernelInfo* kernel, const void* params, size_t params_len,
                             const uint32_t grid[3], const uint32_t block[3], uint32_t dyn_smem,
                             double timeout_s, char* err, size_t err_cap) {
  auto report = [&](const std::string& msg) {
    std::snprintf(err, err_cap, "%s", msg.c_str());
    return 1;
  };
  std::unique_lock<std::mutex> guard(qa_emu::launch_mutex());
  if (!qa_emu::g_broken.empty()) return report("the emulator is unusable: " + qa_emu::g_broken);
  if (params_len != kernel->params_size)
    return report(qa_emu::format("kernel `%s` takes %zu bytes of parameters, got %zu", kernel->name,
                                 kernel->params_size, params_len));
  const unsigned n = block[0] * block[1] * block[2];
  if (n == 0 || n > 1024 || (kernel->max_threads && n > kernel->max_threads))
    return report(qa_emu::format("kernel `%s`: %u threads per block (limit %u)", kernel->name, n,
                                 kernel->max_threads ? kernel->max_threads : 1024));

  auto* l = new Launch;
  l->kernel = kernel;
  l->params.assign(static_cast<const unsigned char*>(params), static_cast<const unsigned char*>(params) + params_len);
  l->grid = dim3{grid[0], grid[1], grid[2]};
  l->block = dim3{block[0], block[1], block[2]};
  l->nthreads = n;
  l->fibers.resize(n);
  for (unsigned t = 0; t < n; ++t) {
    l->fibers[t].tid = t;
    l->fibers[t].idx = uint3{t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1])};
  }
  l->warps.resize((n + 31) / 32);
  for (size_t w = 0; w < l->warps.size(); ++w) {
    const unsigned lanes = std::min(32u, n - unsigned(w) * 32u);
    l->warps[w].present = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
  }
  l->runnable.assign((n + 63) / 64, 0);
  l->dyn_smem_bytes = dyn_smem;
  if (!qa_emu::alloc_dyn_smem(*l)) {
    delete l;
    return report("cannot allocate dynamic shared memory");
  }
  gridDim = l->grid;
  blockDim = l->block;
  qa_emu::g_launch = l;

  for (unsigned t = 0; t < n; ++t)
    if (!qa_emu::stack_for(t)) return report("cannot allocate fiber stacks");

  // The SM thread runs the fibers; this thread watches that it keeps switching.
  // Shared with the SM thread, which may outlive this call when the launch is abandoned.
  struct Sync {
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
  };
  auto sync = std::make_shared<Sync>();
  std::thread sm([sync, l] {
    qa_emu::run_launch(*l);
    std::lock_guard<std::mutex> lk(sync->m);
    sync->done = true;
    sync->cv.notify_all();
  });
  std::mutex& m = sync->m;
  std::condition_variable& cv = sync->cv;
  bool& done = sync->done;
  const auto limit = std::chrono::duration<double>(timeout_s);
  uint64_t last = ~uint64_t(0);
  auto since = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lk(m);
  while (!done) {
    cv.wait_for(lk, std::chrono::milliseconds(200));
    const uint64_t now_switches = std::atomic_ref<uint64_t>(l->switches).load(std::memory_order_relaxed);
    if (now_switches != last) {
      last = now_switches;
      since = std::chrono::steady_clock::now();
    } else if (!done && std::chrono::steady_clock::now() - since > limit) {
      const qa_emu::Fiber* f = l->current;
      std::string msg = qa_emu::format("kernel `%s`, block (%u,%u,%u)", kernel->name, blockIdx.x, blockIdx.y, blockIdx.z);
      if (f) msg += ", " + qa_emu::thread_name(*f);
      msg += qa_emu::format(": deadlock: no progress for %.0f s (a thread spins waiting for another "
                            "thread, or loops forever); the emulator cannot preempt it",
                            timeout_s);
      qa_emu::g_broken = "an earlier launch never finished (" + msg + ")";
      lk.unlock();
      // Park the runaway thread for good (a signal handler that never returns): left running,
      // it could wake up later, e.g. when freed memory it spins on changes, and write into
      // memory that belongs to someone else by then. `l` is leaked with it.
      pthread_kill(sm.native_handle(), qa_emu::park_signal());
      sm.detach();
      return report(msg);
    }
  }
  lk.unlock();
  sm.join();
  qa_emu::g_launch = nullptr;
  std::string error = std::move(l->error);
  qa_emu::free_dyn_smem(*l);
  delete l;
  if (!error.empty()) return report(error);
  return 0;
}
