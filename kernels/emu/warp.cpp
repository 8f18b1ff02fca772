// Warp collectives: shuffles, votes, __syncwarp, redux, mma.sync and ldmatrix.
//
// Every collective is a rendezvous of the lanes named by its mask: each lane deposits words in
// its slot; the last lane to arrive runs the operation's completion (for ldmatrix and mma the
// whole warp's result at one instant) and wakes the others; each lane reads its result and
// leaves. The group's slots live until every lane has read them, so a fast lane starting the
// next collective cannot overwrite them.
#include <cstdarg>
#include <cstdio>
#include <string>

#include "internal.h"

namespace qa_emu {
namespace {

constexpr int OP_SHFL = 1, OP_VOTE = 5, OP_SYNCWARP = 8, OP_REDUCE = 9, OP_MMA = 20, OP_LDMATRIX = 30;

constexpr const char* kShflNames[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync", "__shfl_xor_sync"};
constexpr const char* kVoteNames[] = {"__ballot_sync", "__any_sync", "__all_sync"};

[[noreturn]] void failf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
void failf(const char* fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fail(buf);
}

using Complete = void (*)(WarpGroup& g, const void* ctx);

// Deposits `words` for the calling lane and waits for the rest of `mask`. `aligned`
// operations (PTX .aligned) must be reached at the same call site by every lane.
WarpGroup& arrive(int op, const char* what, unsigned mask, const uint32_t* words, int nwords, Site site,
                  bool aligned, Complete complete = nullptr, const void* ctx = nullptr) {
  Fiber& f = self();
  Warp& w = warp_of(f);
  const unsigned lane = lane_of(f);
  const unsigned bit = 1u << lane;
  if (!(mask & bit)) failf("%s (%s) with mask 0x%08x, which does not contain the calling lane %u", what, site_str(site).c_str(), mask, lane);
  if (mask & ~w.present)
    failf("%s (%s) with mask 0x%08x names lanes that do not exist (this warp has lanes 0x%08x)", what, site_str(site).c_str(), mask, w.present);
  if (mask & w.exited)
    failf("%s (%s) with mask 0x%08x names lane(s) 0x%08x that already exited", what, site_str(site).c_str(), mask, mask & w.exited);
  WarpGroup* g = nullptr;
  for (WarpGroup& c : w.groups) {
    if (!c.used || c.complete) continue;
    if (c.mask == mask) {
      g = &c;
    } else if ((c.mask & mask) && same_site(c.site, site)) {
      failf("%s (%s): this lane uses mask 0x%08x while lane(s) 0x%08x wait at the same call with the overlapping "
            "mask 0x%08x",
            what, site_str(site).c_str(), mask, c.arrived, c.mask);
    }
  }
  if (!g) {
    for (WarpGroup& c : w.groups)
      if (!c.used) {
        g = &c;
        break;
      }
    g->used = true;
    g->complete = false;
    g->op = op;
    g->mask = mask;
    g->arrived = 0;
    g->read = 0;
    g->site = site;
  } else if (g->op != op || (aligned && !same_site(g->site, site))) {
    const Fiber& other = g_launch->fibers[(f.tid & ~31u) + unsigned(std::countr_zero(g->arrived))];
    failf("lanes of mask 0x%08x disagree: this lane is at %s (%s) while lane(s) 0x%08x wait at %s (%s)", mask, what,
          site_str(site).c_str(), g->arrived, other.wait_what, site_str(g->site).c_str());
  }
  std::memcpy(g->slots[lane], words, size_t(nwords) * 4);
  g->arrived |= bit;
  if (g->arrived == mask) {
    g->complete = true;
    if (complete) complete(*g, ctx);
    for (unsigned m = mask & ~bit; m; m &= m - 1)
      make_runnable(g_launch->fibers[(f.tid & ~31u) + unsigned(std::countr_zero(m))]);
  } else {
    block_current(what, site, mask);
  }
  return *g;
}

void leave(WarpGroup& g) {
  g.read |= 1u << lane_of(self());
  if (g.read == g.mask) g.used = false;
}

}  // namespace

void warp_lane_exit(Fiber& f) {
  Warp& w = warp_of(f);
  const unsigned bit = 1u << lane_of(f);
  w.exited |= bit;
  for (const WarpGroup& g : w.groups) {
    if (!g.used || g.complete || !(g.mask & bit)) continue;
    const Fiber& other = g_launch->fibers[(f.tid & ~31u) + unsigned(std::countr_zero(g.arrived))];
    failf("thread exited while lane(s) 0x%08x wait for it at %s (mask 0x%08x, %s)", g.arrived, other.wait_what,
          g.mask, site_str(g.site).c_str());
  }
}

void syncwarp(unsigned mask, Site site) {
  leave(arrive(OP_SYNCWARP, "__syncwarp", mask, nullptr, 0, site, false));
}

// shfl.sync.{idx,up,down,bfly}.b32 with CUDA's clamp value c = ((32 - width) << 8) | (up ? 0 : 31).
uint64_t shfl(ShflMode mode, unsigned mask, uint64_t value, int b, int width, Site site) {
  const char* what = kShflNames[mode];
  if (width < 1 || width > 32 || (width & (width - 1)))
    failf("%s (%s) with width %d (must be a power of two in 1..32)", what, site_str(site).c_str(), width);
  const uint32_t words[2] = {uint32_t(value), uint32_t(value >> 32)};
  WarpGroup& g = arrive(OP_SHFL + mode, what, mask, words, 2, site, false);
  const int lane = int(lane_of(self()));
  const int segmask = 32 - width;
  const int cval = mode == SHFL_UP ? 0 : 31;
  const int bval = b & 31;
  const int max_lane = (lane & segmask) | (cval & ~segmask);
  const int min_lane = lane & segmask;
  int j = lane;
  bool ok = true;
  switch (mode) {
    case SHFL_IDX: j = min_lane | (bval & ~segmask); ok = j <= max_lane; break;
    case SHFL_UP: j = lane - bval; ok = j >= max_lane; break;
    case SHFL_DOWN: j = lane + bval; ok = j <= max_lane; break;
    case SHFL_BFLY: j = lane ^ bval; ok = j <= max_lane; break;
  }
  if (!ok) j = lane;
  if (!(mask & (1u << j)))
    failf("%s (%s) reads lane %d, which is not in its mask 0x%08x (the value would be undefined)", what,
          site_str(site).c_str(), j, mask);
  const uint64_t r = uint64_t(g.slots[j][0]) | uint64_t(g.slots[j][1]) << 32;
  leave(g);
  return r;
}

unsigned vote(VoteKind kind, unsigned mask, bool pred, Site site) {
  const uint32_t word = pred;
  WarpGroup& g = arrive(OP_VOTE + kind, kVoteNames[kind], mask, &word, 1, site, false);
  unsigned ballot = 0;
  for (unsigned m = mask; m; m &= m - 1) {
    const unsigned l = unsigned(std::countr_zero(m));
    if (g.slots[l][0]) ballot |= 1u << l;
  }
  leave(g);
  switch (kind) {
    case VOTE_BALLOT: return ballot;
    case VOTE_ANY: return ballot != 0;
    case VOTE_ALL: return ballot == mask;
  }
  return 0;
}

// redux.sync.{add,min,max,and,or,xor}.{u32,s32}
uint32_t reduce(ReduceKind kind, bool is_signed, unsigned mask, uint32_t value, Site site) {
  WarpGroup& g = arrive(OP_REDUCE + kind, "__reduce_*_sync", mask, &value, 1, site, false);
  uint32_t acc = g.slots[std::countr_zero(mask)][0];
  for (unsigned m = mask & (mask - 1); m; m &= m - 1) {
    const uint32_t v = g.slots[std::countr_zero(m)][0];
    switch (kind) {
      case REDUCE_ADD: acc += v; break;
      case REDUCE_MIN: acc = is_signed ? uint32_t(std::min(int32_t(acc), int32_t(v))) : std::min(acc, v); break;
      case REDUCE_MAX: acc = is_signed ? uint32_t(std::max(int32_t(acc), int32_t(v))) : std::max(acc, v); break;
      case REDUCE_AND: acc &= v; break;
      case REDUCE_OR: acc |= v; break;
      case REDUCE_XOR: acc ^= v; break;
    }
  }
  leave(g);
  return acc;
}

// ---- tensor-core operations ----
namespace {

float elem(MmaKind kind, uint32_t reg, int half) {
  const uint16_t bits = uint16_t(half ? reg >> 16 : reg & 0xffffu);
  return kind == MMA_F16 ? half_to_float(bits) : std::bit_cast<float>(uint32_t(bits) << 16);
}

// Slot words of one lane: a0..a3, b0, b1, c0..c3 (f32 bits); the result d0..d3 goes to 10..13.
void mma_complete(WarpGroup& g, const void* ctx) {
  const MmaKind kind = *static_cast<const MmaKind*>(ctx);
  // Rebuild A (16x16), B (16x8) from the fragments: g = lane>>2, t = lane&3;
  // a0 = A[g][2t..2t+1], a1 = A[g+8][2t..], a2 = A[g][2t+8..], a3 = A[g+8][2t+8..];
  // b0 = B[2t..2t+1][g], b1 = B[2t+8..2t+9][g].
  float A[16][16], B[16][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int r = lane >> 2, t = lane & 3;
    for (int h = 0; h < 2; ++h) {
      A[r][2 * t + h] = elem(kind, g.slots[lane][0], h);
      A[r + 8][2 * t + h] = elem(kind, g.slots[lane][1], h);
      A[r][2 * t + 8 + h] = elem(kind, g.slots[lane][2], h);
      A[r + 8][2 * t + 8 + h] = elem(kind, g.slots[lane][3], h);
      B[2 * t + h][r] = elem(kind, g.slots[lane][4], h);
      B[2 * t + 8 + h][r] = elem(kind, g.slots[lane][5], h);
    }
  }
  // D = A*B + C with c0,c1 = C[g][2t], C[g][2t+1]; c2,c3 = C[g+8][2t], C[g+8][2t+1]. Products of
  // 16-bit floats are exact in f64; the sum is rounded to f32 once.
  for (int lane = 0; lane < 32; ++lane) {
    const int r = lane >> 2, t = lane & 3;
    for (int i = 0; i < 4; ++i) {
      const int row = r + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
      double acc = std::bit_cast<float>(g.slots[lane][6 + i]);
      for (int k = 0; k < 16; ++k) acc += double(A[row][k]) * double(B[k][col]);
      g.slots[lane][10 + i] = std::bit_cast<uint32_t>(float(acc));
    }
  }
}

struct LdmatrixCtx {
  int matrices;
  bool trans;
};

uint16_t load_u16(uint32_t lo, uint32_t hi, int col) {
  const auto* row = reinterpret_cast<const uint16_t*>(uintptr_t(lo) | uintptr_t(hi) << 32);
  return row[col];
}

// Slot words: 0,1 = the lane's row address; the result registers go to 4..7. Matrix m's row r
// comes from lane 8m + r; lane l gets row l/4, columns 2(l%4), 2(l%4)+1 (.trans: the transpose).
void ldmatrix_complete(WarpGroup& g, const void* ctx) {
  const auto& c = *static_cast<const LdmatrixCtx*>(ctx);
  for (int lane = 0; lane < 32; ++lane) {
    const int r = lane >> 2, col = 2 * (lane & 3);
    for (int m = 0; m < c.matrices; ++m) {
      uint16_t e0, e1;
      if (!c.trans) {
        const uint32_t* a = g.slots[8 * m + r];
        e0 = load_u16(a[0], a[1], col);
        e1 = load_u16(a[0], a[1], col + 1);
      } else {
        const uint32_t* a0 = g.slots[8 * m + col];
        const uint32_t* a1 = g.slots[8 * m + col + 1];
        e0 = load_u16(a0[0], a0[1], r);
        e1 = load_u16(a1[0], a1[1], r);
      }
      g.slots[lane][4 + m] = uint32_t(e0) | uint32_t(e1) << 16;
    }
  }
}

}  // namespace

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16}.{f16,bf16}.f32
void mma_m16n8k16(MmaKind kind, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], Site site) {
  uint32_t words[10];
  std::memcpy(words, a, 16);
  std::memcpy(words + 4, b, 8);
  std::memcpy(words + 6, c, 16);
  WarpGroup& g = arrive(OP_MMA + kind, kind == MMA_F16 ? "mma.sync.m16n8k16.f16" : "mma.sync.m16n8k16.bf16",
                        0xffffffffu, words, 10, site, true, mma_complete, &kind);
  std::memcpy(d, g.slots[lane_of(self())] + 10, 16);
  leave(g);
}

// ldmatrix.sync.aligned.m8n8.{x1,x2,x4}[.trans].shared.b16
void ldmatrix(int matrices, bool trans, uint32_t* r, const void* row_ptr, Site site) {
  const unsigned lane = lane_of(self());
  if (int(lane) < 8 * matrices) {
    if (reinterpret_cast<uintptr_t>(row_ptr) % 16)
      failf("ldmatrix (%s): row address %p is not 16-byte aligned", site_str(site).c_str(), row_ptr);
    if (!is_shared(row_ptr, 16))
      failf("ldmatrix (%s): row address %p is not in shared memory", site_str(site).c_str(), row_ptr);
  }
  const auto addr = reinterpret_cast<uintptr_t>(row_ptr);
  const uint32_t words[2] = {uint32_t(addr), uint32_t(uint64_t(addr) >> 32)};
  const LdmatrixCtx ctx{matrices, trans};
  const int op = OP_LDMATRIX + matrices * 2 + (trans ? 1 : 0);
  WarpGroup& g = arrive(op, trans ? "ldmatrix.trans" : "ldmatrix", 0xffffffffu, words, 2, site, true,
                        ldmatrix_complete, &ctx);
  std::memcpy(r, g.slots[lane] + 4, size_t(matrices) * 4);
  leave(g);
}

}  // namespace qa_emu
