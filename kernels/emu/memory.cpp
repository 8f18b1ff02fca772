// Shared memory (dynamic and static, poisoned per block) and cp.async.
#include <sys/mman.h>

#include <cstdio>
#include <mutex>
#include <string>
#include <utility>

#include "internal.h"

namespace qa_emu {
namespace {

constexpr size_t kPage = 4096;

struct SharedRange {
  unsigned char* ptr;
  size_t bytes;
};

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}
std::vector<SharedRange>& registry() {
  static std::vector<SharedRange> r;
  return r;
}

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%p", p);
  return buf;
}

void perform(const CpAsyncCopy& c) {
  std::memcpy(c.dst, c.src, c.src_bytes);
  std::memset(static_cast<unsigned char*>(c.dst) + c.src_bytes, 0, 16 - c.src_bytes);
}

size_t pending_copies(const Fiber& f) {
  size_t n = f.cp_open.size();
  for (const auto& g : f.cp_committed) n += g.size();
  return n;
}

}  // namespace

void register_shared(void* ptr, size_t bytes) {
  std::lock_guard<std::mutex> lk(registry_mutex());
  registry().push_back(SharedRange{static_cast<unsigned char*>(ptr), bytes});
  std::memset(ptr, 0xff, bytes);  // first use inside a block: poison like every later block
}

// The dynamic shared memory ends right below a PROT_NONE page, so running off its end faults
// instead of silently reading other memory. Its start is 128-byte aligned.
bool alloc_dyn_smem(Launch& l) {
  const size_t used = (l.dyn_smem_bytes + 127) / 128 * 128;
  const size_t pages = (used + kPage - 1) / kPage;
  l.dyn_map_bytes = (pages + 1) * kPage;
  void* p = mmap(nullptr, l.dyn_map_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return false;
  l.dyn_map = p;
  unsigned char* guard = static_cast<unsigned char*>(p) + pages * kPage;
  mprotect(guard, kPage, PROT_NONE);
  l.dyn_smem = guard - used;
  return true;
}

void free_dyn_smem(Launch& l) {
  if (l.dyn_map) munmap(l.dyn_map, l.dyn_map_bytes);
  l.dyn_map = nullptr;
}

unsigned char* dynamic_smem() { return g_launch->dyn_smem; }

void poison_shared(Launch& l) {
  std::memset(l.dyn_smem, 0xff, l.dyn_smem_bytes);
  std::lock_guard<std::mutex> lk(registry_mutex());
  for (const SharedRange& r : registry()) std::memset(r.ptr, 0xff, r.bytes);
}

bool is_shared(const void* p, size_t bytes) {
  const auto* c = static_cast<const unsigned char*>(p);
  const Launch& l = *g_launch;
  if (c >= l.dyn_smem && c + bytes <= l.dyn_smem + l.dyn_smem_bytes) return true;
  std::lock_guard<std::mutex> lk(registry_mutex());
  for (const SharedRange& r : registry())
    if (c >= r.ptr && c + bytes <= r.ptr + r.bytes) return true;
  return false;
}

// cp.async.cg.shared.global [dst], [src], 16, src_bytes: the destination is poisoned now and
// written when a cp.async.wait_group retires the copy's group.
void cp_async(void* dst, const void* src, unsigned src_bytes, Site site) {
  if (src_bytes > 16) fail(("cp.async with src-size " + std::to_string(src_bytes) + " > 16" + " (" + site_str(site) + ")").c_str());
  if (reinterpret_cast<uintptr_t>(dst) % 16 || (src_bytes && reinterpret_cast<uintptr_t>(src) % 16))
    fail(("cp.async address not 16-byte aligned: dst " + hex(dst) + ", src " + hex(src) + " (" + site_str(site) + ")").c_str());
  if (!is_shared(dst, 16))
    fail(("cp.async destination " + hex(dst) + " is not in shared memory" + " (" + site_str(site) + ")").c_str());
  std::memset(dst, 0xff, 16);
  self().cp_open.push_back(CpAsyncCopy{dst, src, src_bytes});
}

// cp.async.commit_group: closes the open group (an empty group is a group too).
void cp_async_commit() {
  Fiber& f = self();
  f.cp_committed.push_back(std::move(f.cp_open));
  f.cp_open.clear();
}

// cp.async.wait_group N: every committed group but the newest N is complete.
void cp_async_wait(int newest_pending, Site) {
  Fiber& f = self();
  const size_t keep = newest_pending < 0 ? 0 : size_t(newest_pending);
  while (f.cp_committed.size() > keep) {
    for (const CpAsyncCopy& c : f.cp_committed.front()) perform(c);
    f.cp_committed.erase(f.cp_committed.begin());
  }
}

void thread_exit_memory(Fiber& f) {
  if (const size_t n = pending_copies(f))
    fail(("thread exits with " + std::to_string(n) +
          " cp.async copies never completed by cp.async.wait_group (their destinations stay poisoned)")
             .c_str());
}

}  // namespace qa_emu
