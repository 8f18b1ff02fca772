// The tensor-core flash-attention kernel body (sm_80+, f16/bf16), FlashAttention-2 style: one
// template per normaliser policy (attention/variant.cuh), element type, head dim (traits.cuh)
// and statistics switch.
//
// Block (m_tile, head, batch) owns kBlockM query rows; each warp owns kRowsPerWarp of them (one
// or two mma M tiles) and every K/V fragment it reads from shared memory feeds all its M tiles.
// Per key tile (pipeline.cuh: KvPrefill, K and V stages filled by cp.async):
//   S = Q·Kᵀ (mma, f32) -> row max over the quad -> weights through the policy, the logit scale
//   folded into the exponent -> P rounded to f16/bf16 in registers (one cvt per pair) ->
//   O += P·V (mma). Row sums stay per lane and are reduced over the quad once, in the epilogue.
// Key tiles run from the last to the first, as in FlashAttention-2, so only the first tile
// processed can be partial. Tiles every row of the block sees in full, with 16-byte-aligned K/V
// rows and no softcap, take the steady loop: no mask, no bounds, copy addresses planned once per
// thread (TileCopy). The others (the partial tile, causal and window edges, unaligned rows,
// softcap) take the general loop, which masks element by element.
// Clipped softmax: pass 0 computes only the row lse (Q·Kᵀ, no V loads), pass 1 weighs.
// Statistics: the designated block per (sequence, kv head) first sweeps every K/V tile and
// counts it; Q is counted from its shared tile; row statistics come from the registers (logit
// range, entropy in log2 units: one FFMA per weight for the exponential policies); O from an f32
// tile staged over the dead tiles; one global atomic per block and counter (attention/stats.cuh).
#pragma once

#include <type_traits>

#include "../attention/block_info.cuh"
#include "../attention/online_softmax.cuh"
#include "../attention/output.cuh"
#include "../attention/row_stats.cuh"
#include "../attention/stats.cuh"
#include "../attention/variant.cuh"
#include "fragments.cuh"
#include "kv_rows.cuh"
#include "o_tile.cuh"
#include "pipeline.cuh"
#include "tile_io.cuh"
#include "traits.cuh"

namespace qa::tc {

using namespace qa::attn;

// Test-only seeds (kernels/testing/seeded_bugs.cu): one pipeline mistake each, which the
// emulator must expose. Production kernels are instantiated with BUG_NONE.
enum Bug { BUG_NONE = 0, BUG_NO_WAIT = 1, BUG_WRONG_SWIZZLE = 2 };

// The loader's view of a tile without the XOR swizzle (BUG_WRONG_SWIZZLE).
template <class Tr>
struct Unswizzled : Tr {
  __device__ __forceinline__ static int chunk(int r, int c) { return r * Tr::kStride + c; }
};

// Key tiles [first, last] of one block, processed from last to first; tiles in
// [steady_lo, steady_hi] take the steady loop (steady_lo > first: the steady loop always has a
// next tile to issue; steady_hi = first - 1 when there are none).
struct TileOrder {
  int first, last, steady_lo, steady_hi;
};

// f(std::integral_constant<int, I>) for I = 0 .. N-1: a loop whose index is a compile-time
// constant (register arrays indexed by it stay registers).
template <int N, int I = 0, class F>
__device__ __forceinline__ void static_for(const F& f) {
  if constexpr (I < N) {
    f(std::integral_constant<int, I>{});
    static_for<N, I + 1>(f);
  }
}

// The block's key tiles and the steady range (see the file comment): block-uniform, computed by
// one thread into shared memory, and read there by the loops, where ptxas would otherwise keep
// the bounds in registers through them (and spill them at d128).
template <int BN, class T>
__device__ __forceinline__ TileOrder tile_order(const QaAttnParams& p, const BlockInfo& blk, const KvRows<T>& kv) {
  const int lo = blk.keys.lo, hi = blk.keys.hi;
  if (hi <= lo) return {0, -1, 0, -1};
  TileOrder o{lo / BN, (hi - 1) / BN, 0, lo / BN - 1};
  const bool steady = kv.k_aligned && kv.v_aligned && p.softcap <= 0.f && p.scale > 0.f;
  // Keys every row of the block sees: from the last row's lower bound to the first row's upper
  // bound (both bounds grow with the row).
  const long long see_lo = blk.mask.lo(blk.row0 + blk.rows - 1);
  long long see_hi = blk.mask.hi(blk.row0);
  if (see_hi > blk.seq.k_len - 1) see_hi = blk.seq.k_len - 1;
  long long t_lo = (see_lo + BN - 1) / BN;
  const long long t_hi = (see_hi + 1) / BN - 1;  // tiles [t_lo, t_hi] are seen in full
  if (t_lo <= o.first) t_lo = o.first + 1;
  if (steady && see_hi >= see_lo && t_hi >= t_lo) {
    o.steady_lo = int(t_lo);
    o.steady_hi = int(t_hi);
  }
  return o;
}

template <class Norm, class T, int D, bool STATS, int BUG = BUG_NONE>
struct Prefill {
  using Tr = Traits<D, STATS>;
  using KvLoad = std::conditional_t<BUG == BUG_WRONG_SWIZZLE, Unswizzled<Tr>, Tr>;
  static constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, MT = Tr::kMTiles;
  static constexpr int RW = Tr::kRowsPerWarp;
  static constexpr int NS = BN / 8, NO = D / 8, KQ = D / 16, KP = BN / 16;
  static constexpr int LAST = Norm::kPasses - 1;
  // The steady loop plans its copies once (TileCopy) where the head dim allows it.
  static constexpr bool kPlanned = TileCopy<Tr>::kPlanned && BUG != BUG_WRONG_SWIZZLE;
  // The lane's ldmatrix rows (fragments.cuh, LaneSwizzle: one register per pattern) for Q·Kᵀ's A
  // (Q rows) and B (K rows) and P·V's B (V rows, transposed); the rows and chunks of a_chunks,
  // k_chunks, v_chunks. Derived from an opaque thread index where they are used, each tile: held
  // through the loop, they were what ptxas spilled at d128.
  __device__ __forceinline__ static int opaque_tid() { return int(qa::ptx::opaque(threadIdx.x)); }
  __device__ __forceinline__ static LaneSwizzle<Tr> q_lane(int tid) {
    const int lane = tid % WARP_SIZE;
    return LaneSwizzle<Tr>(RW * (tid / WARP_SIZE) + (lane & 15), lane >> 4);
  }
  __device__ __forceinline__ static LaneSwizzle<Tr> k_lane(int tid) {
    const int lane = tid % WARP_SIZE;
    return LaneSwizzle<Tr>(((lane >> 4) << 3) + (lane & 7), (lane >> 3) & 1);
  }
  __device__ __forceinline__ static LaneSwizzle<Tr> v_lane(int tid) {
    const int lane = tid % WARP_SIZE;
    return LaneSwizzle<Tr>((lane & 7) + (((lane >> 3) & 1) << 3), lane >> 4);
  }
  // Byte offsets from sq of K stage and V stage `stage` (multiples of 128).
  __device__ __forceinline__ static uint32_t k_tile(int stage) { return 16u * uint32_t(Tr::kQChunks + stage * Tr::kKvChunks); }
  __device__ __forceinline__ static uint32_t v_tile(int stage) { return 16u * uint32_t(Tr::kQChunks + (2 + stage) * Tr::kKvChunks); }
  using Pipe = KvPrefill<Tr::kVStages, BUG == BUG_NO_WAIT>;

  const QaAttnParams& p;
  const BlockInfo& blk;  // in shared memory: block-uniform, read where needed
  Chunk *sq, *sk, *sv;
  NormCtx ctx;
  LogitMap logit;
  float scale2;    // scale·log2(e): raw dot products to log2-unit logits (steady loop)
  const KvRows<T>& kv;  // in shared memory, like blk
  const TileOrder& order;  // in shared memory, like blk

  // Per-lane row state: M tile mt, half h (rows g and g + 8 of the tile).
  float o[MT][NO][4];
  uint32_t qf[Tr::kQInRegs ? MT : 1][Tr::kQInRegs ? KQ : 1][4];

  // The online state of the lane's rows and, with statistics, their partials live in shared
  // memory between key tiles (one slot per thread, no barrier), read and written whole once per
  // tile: in registers they stayed live through the loop, and ptxas spilled at d128. The slots'
  // addresses come from an opaque thread index, like the lane rows: recomputed where used.
  struct RowState {
    OnlineRow st[MT][2];
  };
  struct alignas(16) RowStat {
    float xmax;  // running max logit (log2 units), uniform over the quad
    float sum;   // Σ (x - xmax) over the lane's visible keys, against the current xmax
    float n;     // the lane's visible keys (exact in f32 below 2^24)
    float b;     // entropy: Σ w·log2 w of the lane's weights
  };
  // `a` = Σ w of the lane's weights, only for policies whose weights are not exponentials (for
  // the others it is l). Beside the 16-byte partials rather than in them: a fifth float in each
  // would pad it to 32 bytes, and at d128 the block would no longer fit twice per SM.
  struct RowStatsA {
    float a[MT][2];
  };
  struct NoRowStatsA {};
  struct alignas(16) RowStats : std::conditional_t<Norm::kExpWeights, NoRowStatsA, RowStatsA> {
    RowStat r[MT][2];
  };
  // One slot per thread holds its rows' state and statistics partials: a static shared array
  // reached through a function, so one address (base + thread · slot size, each field at an
  // immediate offset) serves both, where member pointers were two registers ptxas kept live
  // through the loop (and spilled, with statistics).
  struct NoSlotStats {};
  struct SlotStats {
    RowStats stats;
  };
  struct alignas(16) Slot : std::conditional_t<STATS, SlotStats, NoSlotStats> {
    RowState rows;
  };
  __device__ __forceinline__ static Slot* slot() {
    __shared__ Slot slots[Tr::kThreads];
    return slots + qa::ptx::opaque(threadIdx.x);
  }
  __device__ __forceinline__ static RowState* rs() { return &slot()->rows; }
  __device__ __forceinline__ static RowStats* rstat() {
    static_assert(STATS, "statistics partials exist only with statistics");
    return &slot()->stats;
  }
  BlockStats* bs = nullptr;  // statistics: the block's counters
  float* x0s = nullptr;      // statistics: the first key's logit per block row

  __device__ __forceinline__ Prefill(const QaAttnParams& params, const BlockInfo& b, const KvRows<T>& rows,
                                     const TileOrder& tiles, Chunk* smem)
      : p(params), blk(b), sq(smem), sk(smem + Tr::kQChunks), sv(sk + 2 * Tr::kKvChunks), logit(params),
        kv(rows), order(tiles) {}

  // Lane coordinates and the warp's rows, derived on demand: held in registers they would stay
  // live through the steady loop that never reads them.
  __device__ __forceinline__ static int warp() { return int(threadIdx.x) / WARP_SIZE; }
  __device__ __forceinline__ static int lane() { return int(threadIdx.x) % WARP_SIZE; }
  __device__ __forceinline__ static int g() { return lane() >> 2; }
  __device__ __forceinline__ static int t() { return lane() & 3; }
  __device__ __forceinline__ int wr0() const { return blk.row0 + RW * warp(); }  // the warp's first row
  __device__ __forceinline__ int w_rows() const { return clamp_rows(blk.rows - RW * warp(), RW); }

  __device__ __forceinline__ int row_of(int mt, int h) const { return wr0() + 16 * mt + g() + 8 * h; }
  __device__ __forceinline__ int local_row(int mt, int h) const { return RW * warp() + 16 * mt + g() + 8 * h; }
  __device__ __forceinline__ bool row_ok(int mt, int h) const { return 16 * mt + g() + 8 * h < w_rows(); }

  // ---- setup ----
  __device__ __forceinline__ void setup() {
    ctx = norm_ctx<Norm>(p, blk.seq.k_len, blk.head);
    scale2 = p.scale * kLog2e;
  }

  __device__ __forceinline__ void zero_state() {
QA_UNROLL
    for (int mt = 0; mt < MT; ++mt) {
QA_UNROLL
      for (int j = 0; j < NO; ++j)
QA_UNROLL
        for (int e = 0; e < 4; ++e) o[mt][j][e] = 0.f;
QA_UNROLL
      for (int h = 0; h < 2; ++h) {
        rs()->st[mt][h].m = Norm::start_max(ctx);
        rs()->st[mt][h].l = t() == 0 ? Norm::kStartMass : 0.f;  // one lane of the quad holds the start mass
        if constexpr (STATS) {
          // the virtual sink outcome has weight 2^0 (one lane of the quad holds it)
          RowStat z;
          z.xmax = -INFINITY, z.sum = 0.f, z.n = 0.f, z.b = 0.f;
          rstat()->r[mt][h] = z;
          if constexpr (!Norm::kExpWeights) rstat()->a[mt][h] = t() == 0 ? Norm::kStartMass : 0.f;
        }
      }
    }
  }

  // ---- loaders ----
  // Tile t into `dst` from `rows`: bounds, zero fill past the sequence, plain loads for
  // unaligned rows. Any tile.
  __device__ __forceinline__ void load_general(int t, Chunk* dst, const RowPtr<T>& rows, bool aligned) const {
    const int kv0 = t * BN;
    const int valid = blk.seq.k_len - kv0 < BN ? blk.seq.k_len - kv0 : BN;
    load_tile<KvLoad, T>(dst, KvRows<T>::from(rows, kv0), BN, valid, aligned);
  }
  // A full tile with 16-byte-aligned rows (every steady tile, and every tile below one): the
  // addresses from the tile index, block-uniform bases and strides plus this thread's offset,
  // nothing carried from tile to tile.
  __device__ __forceinline__ void load_full(int t, Chunk* dst, const RowPtr<T>& rows) const {
    const TileCopy<Tr> copy(rows.stride);
    copy.issue(dst, rows.base + copy.src + int64_t(t) * BN * rows.stride);
  }

  // ---- S = Q·Kᵀ over the warp's rows and the tile's BN keys ----
  // S for M tiles [M0, M0 + N): each K fragment read once feeds the N tiles.
  template <int M0, int N>
  __device__ __forceinline__ void qk(float (&s)[N][NS][4], int stage) const {
QA_UNROLL
    for (int mt = 0; mt < N; ++mt)
QA_UNROLL
      for (int j = 0; j < NS; ++j)
QA_UNROLL
        for (int e = 0; e < 4; ++e) s[mt][j][e] = 0.f;
    const int tid = opaque_tid();
    const LaneSwizzle<Tr> ql = q_lane(tid), kl = k_lane(tid);
QA_UNROLL
    for (int kk = 0; kk < KQ; ++kk) {
      uint32_t a[N][4];
QA_UNROLL
      for (int mt = 0; mt < N; ++mt) {
        if constexpr (Tr::kQInRegs) {
QA_UNROLL
          for (int r = 0; r < 4; ++r) a[mt][r] = qf[M0 + mt][kk][r];
        } else {
          qa::ptx::ldmatrix_x4(a[mt], ql.at(sq, 0, 16 * (M0 + mt), kk));
        }
      }
QA_UNROLL
      for (int j = 0; j < NS; j += 2) {
        uint32_t bk[4];
        qa::ptx::ldmatrix_x4(bk, kl.at(sq, k_tile(stage), 8 * j, kk));
QA_UNROLL
        for (int mt = 0; mt < N; ++mt) {
          mma<T>(s[mt][j], a[mt], bk[0], bk[1]);
          mma<T>(s[mt][j + 1], a[mt], bk[2], bk[3]);
        }
      }
    }
  }

  // ---- P rounded to T in registers, as the A operand of P·V (the C layout of two 8-key S tiles
  // is the A layout of one k16 step); packed before the V wait, so only half its registers stay
  // live through it ----
  // A policy whose weights may come out negative (kPackClamps) is clamped by the same cvt.
  __device__ __forceinline__ static uint32_t pack_p(float lo, float hi) {
    if constexpr (Norm::kPackClamps) return pack2_relu<T>(lo, hi);
    else return pack2<T>(lo, hi);
  }
  __device__ __forceinline__ static void pack(uint32_t (&pk)[KP][4], const float (&s)[NS][4]) {
QA_UNROLL
    for (int kk = 0; kk < KP; ++kk) {
      pk[kk][0] = pack_p(s[2 * kk][0], s[2 * kk][1]);
      pk[kk][1] = pack_p(s[2 * kk][2], s[2 * kk][3]);
      pk[kk][2] = pack_p(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      pk[kk][3] = pack_p(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
  }

  // ---- O += P·V ----
  __device__ __forceinline__ void pv(const uint32_t (&pk)[MT][KP][4], int stage) {
    const LaneSwizzle<Tr> vl = v_lane(opaque_tid());
QA_UNROLL
    for (int kk = 0; kk < KP; ++kk)
QA_UNROLL
      for (int j = 0; j < NO; j += 2) {
        uint32_t bv[4];
        qa::ptx::ldmatrix_x4_trans(bv, vl.at(sq, v_tile(stage), 16 * kk, j >> 1));
QA_UNROLL
        for (int mt = 0; mt < MT; ++mt) {
          mma<T>(o[mt][j], pk[mt][kk], bv[0], bv[1]);
          mma<T>(o[mt][j + 1], pk[mt][kk], bv[2], bv[3]);
        }
      }
  }

  // ---- general tiles: logits in log2 units, invisible keys -inf ----
  // Each row's visible keys in the tile are one interval [lo, hi) of tile offsets (masks and the
  // sequence end), found once per row; the softcap test is made once per tile. Returns the
  // visibility bits of each M tile (bit 4j + e), for the statistics' key counts.
  __device__ __forceinline__ uint32_t mask_logits(float (&s)[NS][4], int mt, int kv0) const {
    const Mask& mask = blk.mask;
    int lo[2], hi[2];
QA_UNROLL
    for (int h = 0; h < 2; ++h) {
      const int r = row_of(mt, h);
      const long long a = mask.lo(r) - kv0;
      long long z = mask.hi(r) + 1 - kv0;
      if (z > blk.seq.k_len - kv0) z = blk.seq.k_len - kv0;
      lo[h] = a < 0 ? 0 : (a > BN ? BN : int(a));
      hi[h] = z < 0 ? 0 : (z > BN ? BN : int(z));
    }
    const bool softcap = logit.softcap;
    uint32_t vis = 0xffffffffu;
QA_UNROLL
    for (int j = 0; j < NS; ++j)
QA_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int key = 8 * j + 2 * t() + (e & 1), h = e >> 1;
        const bool v = key >= lo[h] && key < hi[h];
        if (!v) vis &= ~(1u << ((4 * j + e) & 31));
        const float x = softcap ? logit.cap2 * tanhf(s[j][e] * logit.qk_scale) : s[j][e] * logit.qk_scale;
        s[j][e] = v ? x : -INFINITY;
      }
    return vis;
  }

  // The weights P of one key tile of pass PASS (packed for P·V in the last pass), the row state
  // moved on. Steady tiles: S of every M tile at once (each K fragment read once), s the raw dot
  // product with `scale2` folded into each weight's exponent. General tiles: one M tile at a time
  // (K read once per M tile; the mask's and softcap's registers fit beside one tile's S), s
  // masked and mapped to log2 units first.
  template <int PASS, bool GENERAL>
  __device__ __forceinline__ void weights(uint32_t (&pk)[MT][KP][4], int stage, int kv0) {
    RowState* const slot_rs = rs();
    RowState row = *slot_rs;
    if constexpr (GENERAL) {
      static_for<MT>([&](auto m) {
        constexpr int mt = decltype(m)::value;
        float s[1][NS][4];
        qk<mt, 1>(s, stage);
        const uint32_t vis = mask_logits(s[0], mt, kv0);
        weigh<PASS, true>(s[0], vis, mt, row.st[mt], pk[mt], kv0);
      });
    } else {
      float s[MT][NS][4];
      qk<0, MT>(s, stage);
      // One M tile at a time, its P packed as soon as it is weighed: its f32 scores then free
      // their registers while the other tile is still in f32.
QA_UNROLL
      for (int mt = 0; mt < MT; ++mt) weigh<PASS, false>(s[mt], 0xffffffffu, mt, row.st[mt], pk[mt], kv0);
    }
    *slot_rs = row;
  }

  // One M tile's share of weights(): row max, online update, weights, statistics, packing.
  template <int PASS, bool GENERAL>
  __device__ __forceinline__ void weigh(float (&s)[NS][4], uint32_t vis, int mt, OnlineRow (&st)[2],
                                        uint32_t (&pk)[KP][4], int kv0) {
    constexpr bool kFindsMax = Norm::kRescales && PASS == 0;
    constexpr bool kRange = STATS && PASS == 0;
    constexpr bool kEntropy = STATS && PASS == LAST;
    const float sc = GENERAL ? 1.f : scale2;  // raw value -> log2-unit logit
    RowStat rsv[2];  // statistics: the rows' partials, read once here and written once at the end
    float rsa[2];    // statistics: Σ w (policies whose weights are not exponentials)
    if constexpr (kRange || kEntropy) rsv[0] = rstat()->r[mt][0], rsv[1] = rstat()->r[mt][1];
    if constexpr (kEntropy && !Norm::kExpWeights) rsa[0] = rstat()->a[mt][0], rsa[1] = rstat()->a[mt][1];
    // ---- tile row max over the quad (and the first key's logit) ----
    float tmax[2] = {-INFINITY, -INFINITY};
    if constexpr (kFindsMax || kRange) {
QA_UNROLL
      for (int j = 0; j < NS; ++j) {
        tmax[0] = fmaxf(tmax[0], fmaxf(s[j][0], s[j][1]));
        tmax[1] = fmaxf(tmax[1], fmaxf(s[j][2], s[j][3]));
      }
QA_UNROLL
      for (int h = 0; h < 2; ++h) tmax[h] = quad_max(tmax[h]) * sc;
      // Key 0 is element 0 (row g) / 2 (row g + 8) of lane t = 0, in the tile at kv0 = 0: always
      // a general tile (the steady run stops above the block's first tile).
      if constexpr (kRange && GENERAL) {
        if (kv0 == 0 && t() == 0) {
          x0s[local_row(mt, 0)] = s[0][0] * sc;
          x0s[local_row(mt, 1)] = s[0][2] * sc;
        }
      }
    }

    // ---- online update per row: m' = max(m, tile max), α = 2^(m - m') rescales l and O ----
    // In pass 1 of a two-pass policy, m holds the row's final lse (end_pass0).
    float m_use[2];
QA_UNROLL
    for (int h = 0; h < 2; ++h) {
      if constexpr (kFindsMax) {
        const float m_old = st[h].m, l_old = st[h].l;
        const float alpha = st[h].template advance<Norm>(tmax[h]);
        if constexpr (PASS == LAST) {  // a pass before the last accumulates no O
QA_UNROLL
          for (int j = 0; j < NO; ++j) {
            o[mt][j][2 * h] *= alpha;
            o[mt][j][2 * h + 1] *= alpha;
          }
        }
        if constexpr (kEntropy) {
          // w ← αw moves log2 w by log2 α; a of the exponential policies is l itself.
          RowStat& en = rsv[h];
          float a_old = l_old;
          if constexpr (!Norm::kExpWeights) a_old = rsa[h], rsa[h] *= alpha;
          const float log2_alpha = m_old - Norm::shift(st[h].m);
          en.b = alpha * (en.b + (a_old > 0.f ? a_old * log2_alpha : 0.f));
        }
      }
      m_use[h] = PASS == 1 ? st[h].m : Norm::shift(st[h].m);
      if constexpr (kRange) {  // logit range against the growing quad-uniform max
        RowStat& rg = rsv[h];
        const float xm = fmaxf(rg.xmax, tmax[h]);
        if (rg.n > 0.f) rg.sum += rg.n * (rg.xmax - xm);
        rg.xmax = xm;
      }
    }

    // ---- weights through the policy; s becomes P (f32) ----
    float rsum[2] = {0.f, 0.f}, eb[2] = {0.f, 0.f}, ea[2] = {0.f, 0.f};
    int rn[2] = {0, 0};
QA_UNROLL
    for (int j = 0; j < NS; ++j)
QA_UNROLL
      for (int e = 0; e < 4; ++e) {
        const int h = e >> 1;
        float x = s[j][e] * sc;
        if constexpr (GENERAL && Norm::kMaskedX != -INFINITY)  // the policy's masked logit
          x = (vis >> ((4 * j + e) & 31)) & 1u ? x : Norm::kMaskedX;
        const Weight w = Norm::weight(PASS, x, m_use[h], ctx);
        st[h].l += w.den;
        if constexpr (kRange) {  // Σ of the raw values; scaled once per row below
          const bool v = !GENERAL || ((vis >> ((4 * j + e) & 31)) & 1u);
          rsum[h] += v ? s[j][e] : 0.f;
          rn[h] += v ? 1 : 0;
        }
        if constexpr (kEntropy) {
          if constexpr (Norm::kExpWeights) {
            // log2 w = x - shift; a masked key (x = -inf, w = 0) adds nothing
            eb[h] += GENERAL && x == -INFINITY ? 0.f : w.acc * (x - m_use[h]);
          } else {
            const float wa = clamped_acc<Norm>(w.acc);
            ea[h] += wa;
            // w·log2 w with 0·log2(0) = 0: the floor (a normal number: lg2.approx flushes
            // subnormals) keeps lg2 finite, and a row whose weights are all 0 keeps a = 0.
            eb[h] += wa * qa::ptx::lg2_approx(fmaxf(wa, 1e-30f));
          }
        }
        s[j][e] = w.acc;
      }
    if constexpr (kRange || kEntropy) {
QA_UNROLL
      for (int h = 0; h < 2; ++h) {
        RowStat& r = rsv[h];
        // A row with no visible key yet has xmax = -inf: it adds nothing (not 0·-inf).
        if (kRange && (!GENERAL || rn[h] > 0)) {
          r.sum += rsum[h] * sc - float(rn[h]) * r.xmax;
          r.n += float(rn[h]);
        }
        if constexpr (kEntropy) {
          r.b += eb[h];
          if constexpr (!Norm::kExpWeights) rsa[h] += ea[h];
        }
      }
      rstat()->r[mt][0] = rsv[0];
      rstat()->r[mt][1] = rsv[1];
      if constexpr (kEntropy && !Norm::kExpWeights) rstat()->a[mt][0] = rsa[0], rstat()->a[mt][1] = rsa[1];
    }
    if constexpr (PASS == LAST) pack(pk, s);
  }

  // Warp-uniform: some row of the warp sees a key of the tile at kv0.
  __device__ __forceinline__ bool warp_sees(int kv0) const {
    const KeyRange wk = blk.keys_of(wr0(), w_rows());
    return wk.lo < wk.hi && kv0 < wk.hi && kv0 + BN > wk.lo;
  }

  // Two-pass policies, between the passes: the row's lse (log2 units, uniform over the quad)
  // replaces its running max, which pass 1 weighs against.
  __device__ __forceinline__ void end_pass0() {
QA_UNROLL
    for (int mt = 0; mt < MT; ++mt)
QA_UNROLL
      for (int h = 0; h < 2; ++h) {
        OnlineRow& st = rs()->st[mt][h];
        st.m = Norm::lse2(st.m, quad_sum(st.l), ctx);
      }
  }

  // ---- one pass over the key tiles: general tiles, the steady run, general tiles ----
  template <int PASS>
  __device__ __forceinline__ void run_pass() {
    constexpr bool kWithV = PASS == LAST;  // this pass accumulates O += P·V
    if (order.last < order.first) return;
    auto k_general = [&](int t, int stage) { load_general(t, sk + stage * Tr::kKvChunks, kv.k, kv.k_aligned); };
    auto v_general = [&](int t, int stage) {
      if (kWithV) load_general(t, sv + stage * Tr::kKvChunks, kv.v, kv.v_aligned);
    };
    Pipe::start(order.last, k_general, v_general);
    int t = order.last, general_stop = order.steady_hi;
    while (true) {
QA_UNROLL_N(1)
      for (; t > general_stop; --t) {
        const bool sees = warp_sees(t * BN);
        uint32_t pk[MT][KP][4];
        Pipe::begin(t, t > order.first, k_general, v_general);
        if (sees) weights<PASS, true>(pk, Pipe::stage(t), t * BN);
        Pipe::wait_v();
        if (kWithV && sees) pv(pk, Pipe::v_stage(t));
        Pipe::end();
      }
      if (t < order.first) break;
      steady<PASS>(t);
      general_stop = order.first - 1;
    }
    Pipe::drain();
  }

  // The steady tiles [steady_lo, steady_hi], from t down: every row of the block sees every
  // key, full tiles with aligned rows, and a next tile to issue, which is full and aligned too
  // (only the first tile processed, the last of the keys, can be partial).
  __device__ __forceinline__ void load_steady(int t, Chunk* dst, const RowPtr<T>& rows) const {
    if constexpr (kPlanned) load_full(t, dst, rows);
    else load_general(t, dst, rows, true);
  }
  template <int PASS>
  __device__ __forceinline__ void steady(int& t) {
    constexpr bool kWithV = PASS == LAST;
    auto k_full = [&](int u, int stage) { load_steady(u, sk + stage * Tr::kKvChunks, kv.k); };
    auto v_full = [&](int u, int stage) {
      if (kWithV) load_steady(u, sv + stage * Tr::kKvChunks, kv.v);
    };
QA_UNROLL_N(1)
    for (; t >= order.steady_lo; --t) {
      uint32_t pk[MT][KP][4];
      Pipe::begin(t, true, k_full, v_full);
      weights<PASS, false>(pk, Pipe::stage(t), t * BN);
      Pipe::wait_v();
      if constexpr (kWithV) pv(pk, Pipe::v_stage(t));
      Pipe::end();
    }
  }

  // ---- statistics stages ----
  // The designated block counts every K and V element once, sweeping the whole sequence before
  // its own work: the K tiles, then the V tiles, each through the K and V buffers as two
  // pipeline stages, with the channel scratch over the not yet loaded Q tile.
  __device__ __forceinline__ void count_kv() {
    auto* scratch = reinterpret_cast<ChannelScratch<D>*>(sq);
    zero_channels<D, Tr::kThreads>(*scratch);
    const int n = (blk.seq.k_len + BN - 1) / BN;
    auto valid = [&](int i) { return blk.seq.k_len - i * BN < BN ? blk.seq.k_len - i * BN : BN; };
QA_UNROLL_N(1)
    for (int tensor = QA_STAT_K; tensor <= QA_STAT_V; ++tensor) {
      const RowPtr<T>& rows = tensor == QA_STAT_K ? kv.k : kv.v;
      const bool aligned = tensor == QA_STAT_K ? kv.k_aligned : kv.v_aligned;
      const KvPipeline<2> pipe{n};
      auto load = [&](int i, int stage) {
        load_tile<Tr, T>(sk + stage * Tr::kKvChunks, KvRows<T>::from(rows, i * BN), BN, valid(i), aligned);
      };
      pipe.prime(load);
QA_UNROLL_N(1)
      for (int i = 0; i < n; ++i) {
        pipe.acquire(i, load);
        count_tile<Tr, T>(sk + pipe.stage(i) * Tr::kKvChunks, 0, valid(i), tensor, *scratch, bs->hist[tensor]);
        pipe.release();
      }
      pipe.drain();
    }
    __syncthreads();
    flush_channels<D, Tr::kThreads>(*scratch, QA_STAT_K, p.stats.channels[QA_STAT_K], blk.kvh * D, D);
    flush_channels<D, Tr::kThreads>(*scratch, QA_STAT_V, p.stats.channels[QA_STAT_V], blk.kvh * D, D);
    __syncthreads();  // the Q tile overwrites the scratch next
  }

  // The channel scratch of Q's and O's counts: after the O tile, clear of Q (Traits).
  __device__ __forceinline__ ChannelScratch<D>* late_scratch() const {
    return reinterpret_cast<ChannelScratch<D>*>(reinterpret_cast<unsigned char*>(sq) + Tr::kOTileBytes);
  }

  // Q's channels from its shared tile.
  __device__ __forceinline__ void count_q() {
    ChannelScratch<D>* scratch = late_scratch();
    zero_channels<D, Tr::kThreads>(*scratch);
    __syncthreads();
    count_tile<Tr, T>(sq, 0, blk.rows, QA_STAT_Q, *scratch, bs->hist[QA_STAT_Q]);
    __syncthreads();
    flush_channels<D, Tr::kThreads>(*scratch, QA_STAT_Q, p.stats.channels[QA_STAT_Q], blk.head * D, D);
    __syncthreads();  // the K/V pipeline may fill buffers under the scratch next
  }

  // O's channels from the staged tile, the scratch after it.
  __device__ __forceinline__ void count_o(const float* o_tile) {
    ChannelScratch<D>* scratch = late_scratch();
    zero_channels<D, Tr::kThreads>(*scratch);
    __syncthreads();
    const int c0 = int(threadIdx.x) % Tr::kThreadsPerRow;
QA_UNROLL
    for (int k = 0; k < Tr::kDimsPerThread; ++k) {
      ChannelAcc ch;
      const int c = c0 + k * Tr::kThreadsPerRow;
      if (c >= D) break;
      for (int r = int(threadIdx.x) / Tr::kThreadsPerRow; r < blk.rows; r += Tr::kRowsPerPass)
        count_element(o_tile[OTile<D>::at(r, c)], ch, bs->hist[QA_STAT_O]);
      merge_channel(*scratch, QA_STAT_O, c, ch);
    }
    __syncthreads();
    flush_channels<D, Tr::kThreads>(*scratch, QA_STAT_O, p.stats.channels[QA_STAT_O], blk.head * D, D);
  }

  // One row's statistics (lane t = 0 of its quad records it).
  __device__ __forceinline__ void record(int mt, int h, float scale, float row_lse2) {
    const RowStat rg = rstat()->r[mt][h];
    float a_lane = rs()->st[mt][h].l;
    if constexpr (!Norm::kExpWeights) a_lane = rstat()->a[mt][h];
    const float a = quad_sum(a_lane);
    RowTotals r{int(quad_sum(rg.n)), quad_sum(rg.sum), a, quad_sum(rg.b) * kLn2, -INFINITY, rg.xmax};
    if (t() == 0 && row_ok(mt, h) && r.n > 0) {
      r.x0 = x0s[local_row(mt, h)];
      const float m_use = Norm::kPasses == 2 ? row_lse2 : Norm::shift(rs()->st[mt][h].m);
      record_row<Norm>(*bs, ctx, r, m_use, scale, row_lse2);
    }
  }

  // ---- epilogue: quad totals, normalisation, lse, gate, stores ----
  __device__ __forceinline__ void epilogue() {
    const Sequence& seq = blk.seq;
    float* o_tile = reinterpret_cast<float*>(sq);
    __syncthreads();  // no warp still reads Q, K or V (a pass may have had no tile)
QA_UNROLL
    for (int mt = 0; mt < MT; ++mt) {
      float scale[2];
      bool ok[2];
      int rows[2];
QA_UNROLL
      for (int h = 0; h < 2; ++h) {
        const OnlineRow st = rs()->st[mt][h];
        const float l_tot = Norm::kPasses == 2 ? 1.f : quad_sum(st.l);
        const float row_lse2 = Norm::kPasses == 2 ? st.m : Norm::lse2(st.m, l_tot, ctx);  // end_pass0
        scale[h] = Norm::out_scale(st.m, l_tot, ctx);
        if constexpr (STATS) record(mt, h, scale[h], row_lse2);
        ok[h] = row_ok(mt, h);
        rows[h] = local_row(mt, h);
        if (t() == 0 && ok[h]) store_lse(p, blk.b, blk.head, seq.q_start + row_of(mt, h), row_lse2);
      }
      stage_o<D>(o_tile, o[mt], rows, ok, scale, t());
    }
    __syncthreads();
    if constexpr (STATS) count_o(o_tile);  // reads the tile beside store_o: no barrier between
    store_o<Tr, T>(o_tile, out_rows_of<T>(p.o, blk.varlen, blk.b, seq.q_start + blk.row0, blk.head), blk.rows, p,
                   blk.varlen, blk.b, seq.q_start + blk.row0, blk.head);
    if constexpr (STATS) {
      __syncthreads();
      flush_block_stats<Tr::kThreads>(*bs, p.stats, blk.head);
    }
  }

  __device__ __forceinline__ void run() {
    setup();
    if constexpr (STATS) {
      __shared__ BlockStats sstats;
      __shared__ float sx0[BM];
      bs = &sstats;
      x0s = sx0;
QA_UNROLL
      for (int mt = 0; mt < MT; ++mt)
        if (t() == 0) x0s[local_row(mt, 0)] = x0s[local_row(mt, 1)] = -INFINITY;
      zero_block_stats<Tr::kThreads>(*bs);
      __syncthreads();
      if (blk.counts_kv) count_kv();
    }

    const RowPtr<T> q_rows = rows_of<T>(p.q, blk.varlen, blk.b, blk.seq.q_start + blk.row0, blk.head);
    load_tile<Tr, T>(sq, q_rows, BM, blk.rows, rows_aligned(q_rows));
    qa::ptx::cp_async_commit();
    qa::ptx::cp_async_wait<0>();
    __syncthreads();
    if constexpr (STATS) count_q();

    if constexpr (Tr::kQInRegs) {
      if (w_rows() > 0) {
QA_UNROLL
        for (int mt = 0; mt < MT; ++mt)
QA_UNROLL
          for (int kk = 0; kk < KQ; ++kk) qa::ptx::ldmatrix_x4(qf[mt][kk], q_lane(int(threadIdx.x)).at(sq, 0, 16 * mt, kk));
      }
    }
    zero_state();
    run_pass<0>();
    if constexpr (Norm::kPasses == 2) {
      end_pass0();
      run_pass<1>();
    }
    epilogue();
  }
};

template <class Norm, class T, int D, bool STATS, int BUG = BUG_NONE>
__device__ __forceinline__ void attention_body(const QaAttnParams& p) {
  QA_DYNAMIC_SMEM(Chunk, smem);
  using Tr = Traits<D, STATS>;
  __shared__ BlockInfo sblk;
  __shared__ KvRows<T> skv;
  __shared__ TileOrder sorder;
  {
    const BlockInfo blk(p, Tr::kBlockM, STATS);
    if (blk.idle()) return;  // whole block: no barrier is skipped by a subset
    if (threadIdx.x == 0) {
      sblk = blk;
      skv = kv_rows_of<T>(p, blk.varlen, blk.b, blk.seq.k_start, blk.kvh);
      sorder = tile_order<Tr::kBlockN>(p, blk, skv);
    }
  }
  __syncthreads();
  Prefill<Norm, T, D, STATS, BUG> k(p, sblk, skv, sorder, smem);
  k.run();
}

}  // namespace qa::tc

// One kernel symbol per (normaliser, dtype, head dim, statistics): qa_tc_<norm>_<dtype>_d<D>[_stats].
namespace qa::tc {
// The policy this family runs for a registry normaliser: softpick takes its direct-difference
// form (variant.cuh, SoftpickFast), exact enough for the 16-bit P this family packs.
template <class Norm> struct FamilyPolicy { using type = Norm; };
template <> struct FamilyPolicy<qa::attn::Softpick> { using type = qa::attn::SoftpickFast; };
}  // namespace qa::tc

#define QA_TC_KERNEL(NAME, NORM, T, D, STATS)          \
  QA_KERNEL_BOUNDS(NAME, QaAttnParams, p, (qa::tc::Traits<D, STATS>::kThreads), 1) {    \
    qa::tc::attention_body<typename qa::tc::FamilyPolicy<NORM>::type, T, D, STATS>(p); \
  }

// The instantiations (normalisers x dtypes x head dims x statistics) are generated by build.rs
// from src/registry/table.rs, one unit per normaliser.
