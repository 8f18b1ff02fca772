// The tensor-core decode chunk kernel (sm_80+, f16/bf16): the ABI, grid, partial layout and
// combine of the CUDA-core chunk (decode/chunk.cuh), with the math of the prefill tensor-core
// family (tensor_core/fragments.cuh: mma.sync m16n8k16, ldmatrix, cp.async into swizzled tiles).
//
// Block (split, kv head, sequence) sweeps its chunk for row groups of 16 of the G·q_len query
// rows of its kv head (Q fragments in registers), head dims 64 and 128 (kernel.cuh). Per key
// tile of 64 (page-addressed cp.async, two stages; tiles on multiples of 64 keys, tiles.cuh),
// warp w computes S = Q·Kᵀ for keys 16w..16w+15, the warps agree on the tile's row
// max through shared memory, weigh through the policy and add P·V for their keys. As in
// prefill, the tiles every row sees in full take a steady loop (no mask, no bounds, copies
// planned per thread, KeyPass) and the others a general loop; one loop per pass. With one
// running max per row for the whole block, each warp's l, O and statistics partials are in the
// same units: the epilogue adds them (shared memory, fixed warp order) and ends each row like
// the CUDA-core chunk (decode/chunk_parts.cuh). The per-normaliser merge of split partials
// stays in the combine. Clipped: pass 0 (no V) then pass 1, as the CUDA-core chunk runs them.
//
// STATS: the CUDA-core chunk's counting contract: K (pass 0) and V (weighing pass) from the
// staged tiles by the block that reads them (first row group), Q by split 0, O by the writer,
// row statistics from the weighing pass into the partial or recorded.
#pragma once

#include "../attention/mask.cuh"
#include "../attention/online_softmax.cuh"
#include "../decode/chunk_parts.cuh"
#include "../tensor_core/fragments.cuh"
#include "../tensor_core/o_tile.cuh"
#include "../tensor_core/pipeline.cuh"
#include "tiles.cuh"
#include "traits.cuh"

namespace qa::decode_tc {

using namespace qa::attn;
using qa::decode::GroupRow;
using qa::decode::KeyRange;

// Test-only seeds (kernels/testing/seeded_bugs.cu), each a mistake the emulator tests must
// expose: a cp.async wait that leaves the tile about to be read in flight, and warps that
// keep their own row max (their partials then add in different units).
enum Bug { BUG_NONE = 0, BUG_NO_WAIT = 1, BUG_WARP_MAX = 2 };

// Block totals of K per-row quantities, each lane holding rows g and g + 8 of the row group:
// sums, or maxima where bit k of kMaxMask is set. Quad reduction, then the warps' values from
// `red` (K × 64 floats nobody reads since the last barrier) in warp order, so every warp gets
// bit-identical totals. One barrier; the caller fences before `red` is written again.
template <int K, unsigned kMaxMask>
__device__ __forceinline__ void block_rows(float (&v)[K][2], float* red) {
  const int warp = int(threadIdx.x) / WARP_SIZE, lane = int(threadIdx.x) % WARP_SIZE;
  const int g = lane >> 2, t = lane & 3;
QA_UNROLL
  for (int k = 0; k < K; ++k)
QA_UNROLL
    for (int h = 0; h < 2; ++h) {
      v[k][h] = (kMaxMask >> k) & 1u ? qa::tc::quad_max(v[k][h]) : qa::tc::quad_sum(v[k][h]);
      if (t == 0) red[64 * k + 16 * warp + g + 8 * h] = v[k][h];
    }
  __syncthreads();
QA_UNROLL
  for (int k = 0; k < K; ++k)
QA_UNROLL
    for (int h = 0; h < 2; ++h) {
      float acc = red[64 * k + g + 8 * h];
      for (int w = 1; w < 4; ++w) {
        const float x = red[64 * k + 16 * w + g + 8 * h];
        acc = (kMaxMask >> k) & 1u ? fmaxf(acc, x) : acc + x;
      }
      v[k][h] = acc;
    }
}

// This lane's statistics partials of its two rows: entropy sums, logit range, the first key's
// logit. They live in shared memory between key tiles (each thread its own slot, no barrier):
// in registers they would be live through the whole key loop (ptxas sm_80: 11 registers fewer
// at d128 with statistics).
struct StatSlot {
  EntropyAcc ent[2];
  RangeAcc rng[2];
  float x0[2];
};

// The online state of this lane's two rows (g, g + 8) of the row group; m, lse2 and xmax are
// identical in every warp, l, O and the statistics sums are this lane's share.
template <int D>
struct RowState {
  bool ok[2];
  GroupRow at[2];
  NormCtx ctx[2];
  OnlineRow st[2];
  float lse2[2];
  float o[D / 8][4];
  float xmax[2];
  StatSlot* stat;  // statistics only (else null)
};

// Rows row0 + g and row0 + g + 8 of the G·q_len rows, in the start state of policy N (the start
// mass and the virtual sink outcome in one lane of the block: warp 0, t = 0).
template <class N, class Norm, bool kSplit, int D>
__device__ __forceinline__ void start_rows(RowState<D>& s, const QaDecodeParams& dp, const qa::decode::QueryRows& q,
                                           int kvh, int row0, int rows, int len) {
  const QaAttnParams& p = dp.attn;
  const int lane = int(threadIdx.x) % WARP_SIZE, g = lane >> 2;
  const bool lead = threadIdx.x < WARP_SIZE && lane % 4 == 0;
  const int group = int(p.heads / p.kv_heads), q_len = q.len > 0 ? q.len : 1;  // no row is ok at 0
QA_UNROLL
  for (int h = 0; h < 2; ++h) {
    const int row = row0 + g + 8 * h;
    s.ok[h] = row < rows;
    s.at[h] = qa::decode::group_row(s.ok[h] ? row : 0, q_len, kvh, group);
    s.ctx[h] = norm_ctx<Norm>(p, len, s.at[h].head);
    s.st[h].m = N::start_max(s.ctx[h]);
    s.st[h].l = lead ? N::kStartMass : 0.f;
    s.lse2[h] = -INFINITY;
    // clipped pass 1 of a split launch: combine pass 0 left the row's lse in this chunk's slot
    if (kSplit && N::kPasses == 2 && dp.pass == 1 && s.ok[h])
      s.lse2[h] = qa::decode::partial_slot(dp, int(blockIdx.x), q, s.at[h].head, s.at[h].i)[p.head_dim];
    s.xmax[h] = -INFINITY;
    if (s.stat != nullptr) {
      s.stat->ent[h] = EntropyAcc{};
      s.stat->ent[h].a = lead ? N::kStartMass : 0.f;  // the virtual sink outcome, weight 2^0
      s.stat->rng[h] = RangeAcc{};
      s.stat->x0[h] = -INFINITY;
    }
  }
QA_UNROLL
  for (int j = 0; j < D / 8; ++j)
QA_UNROLL
    for (int e = 0; e < 4; ++e) s.o[j][e] = 0.f;
}

// S = Q·Kᵀ for the row group and this warp's 16 keys of tile `kt`.
template <class Tr, class T, int KQ>
__device__ __forceinline__ void scores(float (&s)[2][4], const uint32_t (&qf)[KQ][4], const Chunk* kt,
                                       const qa::tc::LaneChunks<Tr>& kc) {
  const int warp = int(threadIdx.x) / WARP_SIZE;
QA_UNROLL
  for (int j = 0; j < 2; ++j)
QA_UNROLL
    for (int e = 0; e < 4; ++e) s[j][e] = 0.f;
QA_UNROLL
  for (int kk = 0; kk < KQ; ++kk) {
    uint32_t bk[4];
    qa::tc::load_k<Tr>(bk, kt, kc, 2 * warp, kk);
    qa::tc::mma<T>(s[0], qf[kk], bk[0], bk[1]);
    qa::tc::mma<T>(s[1], qf[kk], bk[2], bk[3]);
  }
}

// Logits in log2 units of this warp's keys kv0 + 16w.. of the tile and their visibility bits
// (bit 4j + e: element e of key tile j). GENERAL: the keys in [kv_lo, kv_hi) that the mask
// shows each row, softcap applied; invisible keys are -inf, which weighs exactly 0 in every
// policy (a sweep's first tile starts below kv_lo, KeyTiles: those keys are another chunk's).
// Steady tiles (steady_iterations): every row sees every key and there is no softcap, so the
// logit is the scaled dot product alone; the padding rows past the block's rows (Q = 0) stay
// unmasked, they are never stored.
template <bool GENERAL, int D>
__device__ __forceinline__ uint32_t mask_logits(float (&x)[2][4], const RowState<D>& s, const Mask& mask,
                                                const LogitMap& logit, int kv0, int kv_lo, int kv_hi) {
  if constexpr (!GENERAL) {
QA_UNROLL
    for (int j = 0; j < 2; ++j)
QA_UNROLL
      for (int e = 0; e < 4; ++e) x[j][e] *= logit.qk_scale;
    return 0xffu;
  }
  const int warp = int(threadIdx.x) / WARP_SIZE, t = int(threadIdx.x) % 4;
  uint32_t vis = 0u;
QA_UNROLL
  for (int j = 0; j < 2; ++j)
QA_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int h = e >> 1, key = kv0 + 16 * warp + 8 * j + 2 * t + (e & 1);
      const bool v = s.ok[h] && unsigned(key - kv_lo) < unsigned(kv_hi - kv_lo) && mask.visible(s.at[h].i, key);
      vis |= uint32_t(v) << (4 * j + e);
      x[j][e] = v ? logit(x[j][e]) : -INFINITY;
    }
  return vis;
}

// One key tile of one pass for this warp's keys kv0 + 16w..: logits (mask_logits), the block's
// row max, online update, weights (and row statistics), O += P·V when the pass weighs.
template <class N, class Tr, class T, bool STATS, int BUG, bool GENERAL, int D>
__device__ __forceinline__ void sweep_tile(RowState<D>& s, float (&x)[2][4], const Chunk* vt, const Mask& mask,
                                           const LogitMap& logit, int kv0, int kv_lo, int kv_hi, int pass,
                                           float* red) {
  const int warp = int(threadIdx.x) / WARP_SIZE, lane = int(threadIdx.x) % WARP_SIZE;
  const int t = lane & 3;
  const bool weighs = pass == N::kPasses - 1, finds_max = N::kRescales && pass == 0;
  const bool counts_row = STATS && weighs;  // row statistics come from the weighing pass
  const uint32_t vis = mask_logits<GENERAL>(x, s, mask, logit, kv0, kv_lo, kv_hi);
  StatSlot acc;  // the statistics partials for this tile (statistics only)
  if (counts_row) acc = *s.stat;
  float tmax[1][2] = {{-INFINITY, -INFINITY}};
  if (finds_max || counts_row) {  // block-uniform
QA_UNROLL
    for (int j = 0; j < 2; ++j) {
      tmax[0][0] = fmaxf(tmax[0][0], fmaxf(x[j][0], x[j][1]));
      tmax[0][1] = fmaxf(tmax[0][1], fmaxf(x[j][2], x[j][3]));
    }
    if constexpr (BUG == BUG_WARP_MAX) {
      tmax[0][0] = qa::tc::quad_max(tmax[0][0]);
      tmax[0][1] = qa::tc::quad_max(tmax[0][1]);
    } else {
      block_rows<1, 1u>(tmax, red);
    }
  }
QA_UNROLL
  for (int h = 0; h < 2; ++h) {
    float alpha = 1.f, ln_alpha = 0.f;
    if (finds_max) {
      const float m_old = s.st[h].m;
      alpha = s.st[h].template advance<N>(tmax[0][h]);
      ln_alpha = (m_old - N::shift(s.st[h].m)) * kLn2;
QA_UNROLL
      for (int j = 0; j < D / 8; ++j) {
        s.o[j][2 * h] *= alpha;
        s.o[j][2 * h + 1] *= alpha;
      }
    }
    if constexpr (STATS) {
      if (counts_row) {  // logit range against the growing tile max, the first key's logit
        const float xm = fmaxf(s.xmax[h], tmax[0][h]);
        acc.rng[h].reanchor(s.xmax[h], xm);
        s.xmax[h] = xm;
        if (kv0 == 0 && warp == 0 && t == 0) acc.x0[h] = x[0][2 * h];
        if (finds_max) acc.ent[h].rescale(alpha, ln_alpha);
      }
    }
    const float m_use = pass == 1 ? s.lse2[h] : N::shift(s.st[h].m);
QA_UNROLL
    for (int j = 0; j < 2; ++j)
QA_UNROLL
      for (int c = 0; c < 2; ++c) {
        const int e = 2 * h + c;
        const Weight w = N::weight(pass, x[j][e], m_use, s.ctx[h]);
        s.st[h].l += w.den;
        if constexpr (STATS) {
          if (counts_row) {
            if ((vis >> (4 * j + e)) & 1u) {
              ++acc.rng[h].n;
              acc.rng[h].sum += x[j][e] - s.xmax[h];
            }
            acc.ent[h].add(w.acc);
          }
        }
        x[j][e] = w.acc;
      }
  }
  if (counts_row) *s.stat = acc;
  if (!weighs) return;
  // O += P·V: P (rounded to T in registers) is the A operand of one k-step over this warp's keys
  const uint32_t a[4] = {qa::tc::pack2<T>(x[0][0], x[0][1]), qa::tc::pack2<T>(x[0][2], x[0][3]),
                         qa::tc::pack2<T>(x[1][0], x[1][1]), qa::tc::pack2<T>(x[1][2], x[1][3])};
  const qa::tc::LaneChunks<Tr> vc = qa::tc::v_chunks<Tr>(lane);
QA_UNROLL
  for (int j = 0; j < D / 8; j += 2) {
    uint32_t bv[4];
    qa::tc::load_v<Tr>(bv, vt, vc, j, warp);
    qa::tc::mma<T>(s.o[j], a, bv[0], bv[1]);
    qa::tc::mma<T>(s.o[j + 1], a, bv[2], bv[3]);
  }
}

// The block's dynamic tiles: Q (one row group), the K and V stages, then the statistics scratch.
template <class Tr>
struct Tiles {
  Chunk* q;
  Chunk* k;
  Chunk* v;
  __device__ __forceinline__ explicit Tiles(Chunk* base)
      : q(base), k(base + Tr::kQChunks), v(base + Tr::kQChunks + Tr::kStages * Tr::kKvChunks) {}
};

// What one sweep over the chunk needs besides the row state, every choice made once per call.
template <class Tr>
struct Sweep {
  const int* table;
  int kvh, d;
  uint64_t k_rows, v_rows;  // the kv head's rows in slot 0 of page 0 of each cache (addresses)
  KeyTiles<Tr> tiles;
  bool k_aligned, v_aligned;
  // Full tiles take PagedCopy (`pages` entries each): both caches cp.async-aligned and no
  // zero-padded channels.
  bool lean;
  TilePages pages;
  KeyRange steady;  // the iterations of the steady loop (steady_iterations)
  bool counts;      // statistics: this sweep counts the K/V it stages (the first row group)
};

// The iterations [lo, hi) of a sweep that take the steady loop: tile i seen in full by every
// row (no mask) without softcap, and the tile it issues, i + 1, full or none (the last tile
// may be partial). {n, n} when there are none.
template <class Tr>
__device__ __forceinline__ KeyRange steady_iterations(const KeyTiles<Tr>& kt, const Mask& mask, int q_len, bool lean,
                                                      bool softcap) {
  constexpr int BN = Tr::kBlockN;
  const KeyRange none{kt.n, kt.n};
  if (!lean || softcap || q_len == 0 || kt.n == 0) return none;
  // Keys every row sees: from the last row's lower bound to the first row's upper bound (both
  // bounds grow with the row; the block's rows are its query heads × q_len).
  const long long lo = mask.lo(q_len - 1) > kt.lo ? mask.lo(q_len - 1) : kt.lo;
  const long long hi = mask.hi(0) + 1 < kt.hi ? mask.hi(0) + 1 : kt.hi;
  if (hi <= lo) return none;
  const int first = int((lo - kt.base + BN - 1) / BN);
  int end = int((hi - kt.base) / BN);  // tiles [first, end) are seen in full
  const int issues_full = kt.hi % BN == 0 ? kt.n : kt.n - 2;
  if (end > issues_full) end = issues_full;
  return first < end ? KeyRange{first, end} : none;
}

// One pass PASS over the chunk's key tiles (KeyTiles) through the prefill family's K/V pipeline
// (tensor_core/pipeline.cuh), in two loops as prefill runs them: the steady loop over
// sw.steady (PagedCopy with the pages per tile a template parameter, no bounds, no mask: no
// inner loop), and the general loop before and after it (the ends of the range, causal and
// window edges, unaligned caches, softcap), which masks element by element.
template <class N, class Tr, class T, bool STATS, int BUG, int PASS, int D, int KQ>
struct KeyPass {
  static constexpr bool kWeighs = PASS == N::kPasses - 1;  // loads V, adds P·V
  using Pipe = qa::tc::KvPipeline<Tr::kStages, BUG == BUG_NO_WAIT>;

  RowState<D>& s;
  const uint32_t (&qf)[KQ][4];
  const Tiles<Tr>& tl;
  const QaDecodeParams& dp;
  const Sweep<Tr>& sw;
  const Mask& mask;
  float* red;
  BlockStats* bs;
  qa::attn::ChannelScratch<D>* scratch;
  Pipe pipe;

  // Tile i, full and lean, with NP page entries.
  template <int NP>
  __device__ __forceinline__ void issue_full(int i, int stage) const {
    const PagedCopy<Tr, NP> copy(dp, sw.table, sw.tiles.key0(i));
    copy.template issue<T>(tl.k + stage * Tr::kKvChunks, qa::ptr<const T>(sw.k_rows), dp.attn.k);
    if (kWeighs) copy.template issue<T>(tl.v + stage * Tr::kKvChunks, qa::ptr<const T>(sw.v_rows), dp.attn.v);
  }
  // Any tile i: the lean copies where it is full (statistics off, see run()), else the general
  // loader.
  __device__ __forceinline__ void issue_any(int i, int stage) const {
    const KeyTiles<Tr>& kt = sw.tiles;
    if (!STATS && sw.lean && kt.full(i)) {
      sw.pages.dispatch([&](auto np) { this->template issue_full<decltype(np)::value>(i, stage); });
      return;
    }
    const int kv0 = kt.key0(i), first = kt.first(i), valid = kt.valid(i);
    load_key_tile<Tr, T>(tl.k + stage * Tr::kKvChunks, dp, dp.attn.k, sw.table, kv0, first, valid, sw.kvh, sw.d,
                         sw.k_aligned);
    if (kWeighs)
      load_key_tile<Tr, T>(tl.v + stage * Tr::kKvChunks, dp, dp.attn.v, sw.table, kv0, first, valid, sw.kvh,
                           sw.d, sw.v_aligned);
  }

  // Tile i landed (tile i + S - 1 issued by `load`), counted, weighed; its stage released.
  template <bool GENERAL, class Load>
  __device__ __forceinline__ void tile(int i, const Load& load, const qa::tc::LaneChunks<Tr>& kc,
                                       const LogitMap& logit) {
    const KeyTiles<Tr>& kt = sw.tiles;
    pipe.acquire(i, load);
    const Chunk* k_stage = tl.k + Pipe::stage(i) * Tr::kKvChunks;
    const Chunk* v_stage = tl.v + Pipe::stage(i) * Tr::kKvChunks;
    if constexpr (STATS) {  // each K/V element once: K in pass 0, V in the weighing pass
      if (sw.counts && PASS == 0)
        qa::tc::count_tile<Tr, T>(k_stage, kt.first(i), kt.valid(i), QA_STAT_K, *scratch, bs->hist[QA_STAT_K], sw.d);
      if (sw.counts && kWeighs)
        qa::tc::count_tile<Tr, T>(v_stage, kt.first(i), kt.valid(i), QA_STAT_V, *scratch, bs->hist[QA_STAT_V], sw.d);
    }
    float x[2][4];
    scores<Tr, T>(x, qf, k_stage, kc);
    sweep_tile<N, Tr, T, STATS, BUG, GENERAL>(s, x, v_stage, mask, logit, kt.key0(i), kt.lo, kt.hi, PASS, red);
    pipe.release();  // also: every warp is done with `red`
  }

  // The steady iterations from i on, NP page entries per tile.
  template <int NP>
  __device__ __forceinline__ void steady(int& i, const qa::tc::LaneChunks<Tr>& kc, const LogitMap& logit) {
    const auto load = [&](int u, int stage) { issue_full<NP>(u, stage); };
QA_UNROLL_N(1)
    for (; i < sw.steady.hi; ++i) tile<false>(i, load, kc, logit);
  }

  __device__ __forceinline__ void run() {
    const qa::tc::LaneChunks<Tr> kc = qa::tc::k_chunks<Tr>(int(threadIdx.x) % WARP_SIZE);
    const LogitMap logit(dp.attn);
    const auto any = [&](int u, int stage) { issue_any(u, stage); };
    pipe.prime(any);
    // Statistics: the general loop and loader alone, as before the steady loop. Counting the
    // staged tiles is an inner loop in every tile (count_tile), so a steady loop would not be
    // flat; with it, or with PagedCopy in the general loop, the d128 statistics kernels spilled
    // (ptxas 13.0: clipped 40 bytes on sm_90, 4 to 20 bytes on sm_80 for clipped, sink and
    // off_by_one).
    int i = 0, general_stop = STATS ? sw.tiles.n : sw.steady.lo;
    while (true) {  // general tiles, the steady run, general tiles
QA_UNROLL_N(1)
      for (; i < general_stop; ++i) tile<true>(i, any, kc, logit);
      if (i >= sw.tiles.n) break;
      if constexpr (!STATS)
        sw.pages.dispatch([&](auto np) { this->template steady<decltype(np)::value>(i, kc, logit); });
      general_stop = sw.tiles.n;
    }
    pipe.drain();
  }
};

template <class N, class Tr, class T, bool STATS, int BUG, int PASS, int D, int KQ>
__device__ __forceinline__ void sweep_pass(RowState<D>& s, const uint32_t (&qf)[KQ][4], const Tiles<Tr>& tl,
                                           const QaDecodeParams& dp, const Sweep<Tr>& sw, const Mask& mask,
                                           float* red, BlockStats* bs, qa::attn::ChannelScratch<D>* scratch) {
  KeyPass<N, Tr, T, STATS, BUG, PASS, D, KQ>{s, qf, tl, dp, sw, mask, red, bs, scratch, {sw.tiles.n}}.run();
}

// The end of the row group: the warps' O into f32 tiles over the dead K/V stages, their l and
// statistics added (block_rows), then warp w ends rows w, w + 4, ...: lse or the partial's
// scalars (chunk_parts.cuh), and its channels summed over the warps in warp order.
template <class N, class Norm, class Tr, class T, bool kSplit, bool STATS, int D>
__device__ __forceinline__ void finish_group(RowState<D>& s, const QaDecodeParams& dp, Chunk* smem,
                                             const qa::decode::QueryRows& q, int kvh, int row0, int rows, int len, int pass, float* red, BlockStats* bs) {
  const QaAttnParams& p = dp.attn;
  const int warp = int(threadIdx.x) / WARP_SIZE, lane = int(threadIdx.x) % WARP_SIZE;
  const int g = lane >> 2, t = lane & 3, d = int(p.head_dim);
  float* const o_tiles = reinterpret_cast<float*>(smem);
  __syncthreads();  // no warp still reads Q or a K/V stage (a pass may have had no tile)
  const int local_rows[2] = {g, g + 8};
  const bool all[2] = {true, true};
  const float one[2] = {1.f, 1.f};
  qa::tc::stage_o<D>(o_tiles + warp * Tr::kOTileFloats, s.o, local_rows, all, one, t);
  float v[6][2];
  const StatSlot part = s.stat != nullptr ? *s.stat : StatSlot{};
QA_UNROLL
  for (int h = 0; h < 2; ++h) {
    v[0][h] = s.st[h].l, v[1][h] = part.ent[h].a, v[2][h] = part.ent[h].b;
    v[3][h] = float(part.rng[h].n), v[4][h] = part.rng[h].sum, v[5][h] = part.x0[h];
  }
  block_rows<6, 1u << 5>(v, red);  // its barrier also publishes the O tiles
  const int group = int(p.heads / p.kv_heads), q_len = q.len;
  for (int r = warp; r < Tr::kRows; r += Tr::kWarps) {
    if (row0 + r >= rows) break;  // warp-uniform
    const int h = r >> 3, src = 4 * (r & 7);  // the quad holding row r, in every warp
    const auto from = [&](float x0, float x1) { return __shfl_sync(FULL_MASK, h ? x1 : x0, src); };
    const float m = from(s.st[0].m, s.st[1].m), lse2 = from(s.lse2[0], s.lse2[1]);
    const RowTotals tot{int(from(v[3][0], v[3][1])), from(v[4][0], v[4][1]), from(v[1][0], v[1][1]),
                        from(v[2][0], v[2][1]), from(v[5][0], v[5][1]), from(s.xmax[0], s.xmax[1])};
    const float l = from(v[0][0], v[0][1]);
    const GroupRow at = qa::decode::group_row(row0 + r, q_len, kvh, group);
    const NormCtx ctx = norm_ctx<Norm>(p, len, at.head);
    float* slot = kSplit ? qa::decode::partial_slot(dp, int(blockIdx.x), q, at.head, at.i) : nullptr;
    const float scale =
        qa::decode::finish_row<N, kSplit, STATS>(dp, q, at, ctx, m, l, lse2, tot, pass, slot, lane == 0);
    T* o = qa::decode::o_row<T>(p, q, at);
    for (int c = lane; c < d; c += WARP_SIZE) {
      float acc = 0.f;
QA_UNROLL
      for (int w = 0; w < Tr::kWarps; ++w) acc += o_tiles[w * Tr::kOTileFloats + qa::tc::OTile<D>::at(r, c)];
      qa::decode::store_channel<T, kSplit, STATS>(p, o, slot, q, at, c, acc * scale, bs);
    }
  }
}

template <class Norm, class T, int D, bool kSplit, bool STATS, int BUG>
__device__ __forceinline__ void chunk_body(const QaDecodeParams& dp, Chunk* smem, float* red, BlockStats* bs,
                                           qa::attn::ChannelScratch<D>* scratch, StatSlot* stat) {
  using Tr = Traits<D, STATS>;
  using N = typename qa::decode::ChunkPolicy<Norm, kSplit>::type;
  constexpr int KQ = D / 16;
  const QaAttnParams& p = dp.attn;
  const int kvh = int(blockIdx.y), d = int(p.head_dim), lane = int(threadIdx.x) % WARP_SIZE;
  const qa::decode::QueryRows q = qa::decode::query_rows(dp, int(blockIdx.z), true);
  int len = 0;
  const KeyRange keys = qa::decode::checked_keys<STATS>(dp, q, Tr::kThreads, &len);
  const KeyRange own = qa::decode::chunk_of<kSplit>(dp, keys);
  const Mask mask(p, Sequence{0, q.len, 0, len});
  const int rows = int(p.heads / p.kv_heads) * q.len;
  // prefill counts every key of a sequence, rows or not: without rows a STATS block still
  // sweeps one (empty) row group to read and count its K/V
  const int sweep_rows = STATS && rows == 0 ? 1 : rows;
  const int first = kSplit ? int(dp.pass) : 0, last = kSplit ? int(dp.pass) : N::kPasses - 1;
  const Tiles<Tr> tl(smem);
  const bool k_aligned = cache_aligned<T>(p.k, d), v_aligned = cache_aligned<T>(p.v, d);
  const bool lean = k_aligned && v_aligned && d == D;
  const KeyTiles<Tr> tiles(own.lo, own.hi);
  const uint64_t k_rows = p.k.ptr + uint64_t(kvh) * uint64_t(p.k.stride_head) * sizeof(T);
  const uint64_t v_rows = p.v.ptr + uint64_t(kvh) * uint64_t(p.v.stride_head) * sizeof(T);
  Sweep<Tr> sw{qa::decode::table_row(dp, q.b), kvh, d, k_rows, v_rows, tiles, k_aligned, v_aligned, lean,
               TilePages(dp),
               steady_iterations(tiles, mask, q.len, lean, p.softcap > 0.f), false};
  // Q is counted by split 0 (in its first launch when clipped runs two)
  unsigned* q_hist = STATS && blockIdx.x == 0 && first == 0 ? bs->hist[QA_STAT_Q] : nullptr;
  for (int row0 = 0; row0 < sweep_rows; row0 += Tr::kRows) {
    __syncthreads();  // the previous row group is done with the tiles
    load_query_rows<Tr, T>(tl.q, p, q, kvh, row0, rows, q_hist);
    __syncthreads();
    uint32_t qf[KQ][4];  // the row group's Q fragments, in registers for the whole sweep
    const qa::tc::LaneChunks<Tr> qc = qa::tc::a_chunks<Tr>(0, lane);
QA_UNROLL
    for (int kk = 0; kk < KQ; ++kk) qa::tc::load_a<Tr>(qf[kk], tl.q, qc, kk);
    RowState<D> s;
    s.stat = stat;
    start_rows<N, Norm, kSplit>(s, dp, q, kvh, row0, rows, len);
    sw.counts = STATS && row0 == 0;
    // One loop per pass (the pass a template parameter): clipped's pass 0 loads no V.
    if (N::kPasses == 1 || first == 0) sweep_pass<N, Tr, T, STATS, BUG, 0>(s, qf, tl, dp, sw, mask, red, bs, scratch);
    if constexpr (N::kPasses == 2) {
      if (!kSplit) {  // the row's lse from pass 0's (m, l): l summed over the block
        float l[1][2] = {{s.st[0].l, s.st[1].l}};
        block_rows<1, 0u>(l, red + 64);
QA_UNROLL
        for (int h = 0; h < 2; ++h) s.lse2[h] = N::lse2(s.st[h].m, l[0][h], s.ctx[h]);
      }
      if (last == 1) sweep_pass<N, Tr, T, STATS, BUG, 1>(s, qf, tl, dp, sw, mask, red, bs, scratch);
    }
    finish_group<N, Norm, Tr, T, kSplit, STATS>(s, dp, smem, q, kvh, row0, rows, len, last, red + 128, bs);
  }
  if constexpr (STATS) {
    __syncthreads();  // every count is in the scratch
    qa::attn::flush_channels<D, Tr::kThreads>(*scratch, QA_STAT_K, p.stats.channels[QA_STAT_K], kvh * d, d);
    qa::attn::flush_channels<D, Tr::kThreads>(*scratch, QA_STAT_V, p.stats.channels[QA_STAT_V], kvh * d, d);
    qa::attn::flush_block_stats<Tr::kThreads>(*bs, p.stats, 0);  // histograms: rows went straight out
  }
}

// One set of shared buffers for both instantiations (a static __shared__ in each would count
// twice): the reductions' exchange (tile max, clipped l, epilogue totals) and the statistics.
template <class Norm, class T, int D, bool STATS, int BUG = BUG_NONE>
__device__ __forceinline__ void chunk_kernel(const QaDecodeParams& dp) {
  using Tr = Traits<D, STATS>;
  QA_DYNAMIC_SMEM(Chunk, smem);
  __shared__ float red[(2 + 6) * 64];
  BlockStats* bs = nullptr;
  qa::attn::ChannelScratch<D>* scratch = nullptr;
  StatSlot* stat = nullptr;
  if constexpr (STATS) {
    __shared__ BlockStats block;
    // Raw words: a __shared__ array cannot have the accumulators' default initialisers.
    __shared__ __align__(8) float slots[Tr::kThreads * sizeof(StatSlot) / 4];
    static_assert(sizeof(StatSlot) % 8 == 0, "8-byte slots");
    stat = reinterpret_cast<StatSlot*>(slots) + threadIdx.x;
    bs = &block;
    scratch = reinterpret_cast<qa::attn::ChannelScratch<D>*>(reinterpret_cast<unsigned char*>(smem) + Tr::kTileBytes);
    zero_block_stats<Tr::kThreads>(block);
    zero_channels<D, Tr::kThreads>(*scratch);
    __syncthreads();
  }
  if (dp.splits <= 1) chunk_body<Norm, T, D, false, STATS, BUG>(dp, smem, red, bs, scratch, stat);
  else chunk_body<Norm, T, D, true, STATS, BUG>(dp, smem, red, bs, scratch, stat);
}

}  // namespace qa::decode_tc
