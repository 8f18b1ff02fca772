// The tensor-core decode chunk kernel (sm_80+, f16/bf16): the ABI, grid, partial layout and
// combine of the CUDA-core chunk (decode/chunk.cuh), with the math of the prefill tensor-core
// family (tensor_core/fragments.cuh: mma.sync m16n8k16, ldmatrix, cp.async into swizzled tiles).
//
// Block (split, kv head, sequence) sweeps its chunk for row groups of 16 of the G·q_len query
// rows of its kv head (Q fragments in registers), head dims 64 and 128 (kernel.cuh). Per key tile of 64 (page-addressed cp.async,
// two stages), warp w computes S = Q·Kᵀ for keys 16w..16w+15, the warps agree on the tile's row
// max through shared memory, weigh through the policy and add P·V for their keys. With one
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

// One key tile of one pass for this warp's keys kv0 + 16w..: logits and mask, the block's
// row max, online update, weights (and row statistics), O += P·V when the pass weighs.
template <class N, class Tr, class T, bool STATS, int BUG, int D>
__device__ __forceinline__ void sweep_tile(RowState<D>& s, float (&x)[2][4], const Chunk* vt, const Mask& mask,
                                           const LogitMap& logit, int kv0, int kv_hi, int pass, float* red) {
  const int warp = int(threadIdx.x) / WARP_SIZE, lane = int(threadIdx.x) % WARP_SIZE;
  const int t = lane & 3;
  const bool weighs = pass == N::kPasses - 1, finds_max = N::kRescales && pass == 0;
  const bool counts_row = STATS && weighs;  // row statistics come from the weighing pass
  uint32_t vis = 0u;  // bit 4j + e: element e of key tile j is visible
QA_UNROLL
  for (int j = 0; j < 2; ++j)
QA_UNROLL
    for (int e = 0; e < 4; ++e) {
      const int h = e >> 1, key = kv0 + 16 * warp + 8 * j + 2 * t + (e & 1);
      const bool v = s.ok[h] && key < kv_hi && mask.visible(s.at[h].i, key);
      vis |= uint32_t(v) << (4 * j + e);
      x[j][e] = v ? logit(x[j][e]) : -INFINITY;  // invisible keys weigh exactly 0 in every policy
    }
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

// What one sweep over the chunk needs besides the row state.
struct Sweep {
  const int* table;
  int kvh, d, kv_lo, kv_hi;
  bool k_aligned, v_aligned;
  bool counts;  // statistics: this sweep counts the K/V it stages (the first row group)
};

// One pass over the chunk's key tiles through the prefill family's K/V pipeline
// (tensor_core/pipeline.cuh), its loads page-addressed.
template <class N, class Tr, class T, bool STATS, int BUG, int D, int KQ>
__device__ __forceinline__ void sweep_pass(RowState<D>& s, const uint32_t (&qf)[KQ][4], const Tiles<Tr>& tl,
                                           const QaDecodeParams& dp, const Sweep& sw, const Mask& mask,
                                           int pass, float* red, BlockStats* bs,
                                           qa::attn::ChannelScratch<D>* scratch) {
  constexpr int BN = Tr::kBlockN, S = Tr::kStages;
  const QaAttnParams& p = dp.attn;
  const bool weighs = pass == N::kPasses - 1;
  const int n_tiles = sw.kv_hi > sw.kv_lo ? (sw.kv_hi - sw.kv_lo + BN - 1) / BN : 0;
  const int lane = int(threadIdx.x) % WARP_SIZE;
  const qa::tc::LaneChunks<Tr> kc = qa::tc::k_chunks<Tr>(lane);
  const LogitMap logit(p);
  const qa::tc::KvPipeline<S, BUG == BUG_NO_WAIT> pipe{n_tiles};
  auto load = [&](int i, int stage) {
    const int kv0 = sw.kv_lo + i * BN, valid = sw.kv_hi - kv0 < BN ? sw.kv_hi - kv0 : BN;
    load_key_tile<Tr, T>(tl.k + stage * Tr::kKvChunks, dp, p.k, sw.table, kv0, valid, sw.kvh, sw.d,
                         sw.k_aligned);
    if (weighs)
      load_key_tile<Tr, T>(tl.v + stage * Tr::kKvChunks, dp, p.v, sw.table, kv0, valid, sw.kvh, sw.d,
                           sw.v_aligned);
  };
  pipe.prime(load);
QA_UNROLL_N(1)
  for (int i = 0; i < n_tiles; ++i) {
    pipe.acquire(i, load);
    const Chunk* kt = tl.k + pipe.stage(i) * Tr::kKvChunks;
    const Chunk* vt = tl.v + pipe.stage(i) * Tr::kKvChunks;
    const int kv0 = sw.kv_lo + i * BN;
    if constexpr (STATS) {  // each K/V element once: K in pass 0, V in the weighing pass
      const int valid = sw.kv_hi - kv0 < BN ? sw.kv_hi - kv0 : BN;
      if (sw.counts && pass == 0) qa::tc::count_tile<Tr, T>(kt, valid, QA_STAT_K, *scratch, bs->hist[QA_STAT_K], sw.d);
      if (sw.counts && weighs) qa::tc::count_tile<Tr, T>(vt, valid, QA_STAT_V, *scratch, bs->hist[QA_STAT_V], sw.d);
    }
    float x[2][4];
    scores<Tr, T>(x, qf, kt, kc);
    sweep_tile<N, Tr, T, STATS, BUG>(s, x, vt, mask, logit, kv0, sw.kv_hi, pass, red);
    pipe.release();  // also: every warp is done with `red`
  }
  pipe.drain();
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
  Sweep sw{qa::decode::table_row(dp, q.b), kvh, d, own.lo, own.hi, cache_aligned<T>(p.k, d),
           cache_aligned<T>(p.v, d), false};
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
    for (int pass = first; pass <= last; ++pass) {
      if (!kSplit && pass == 1) {  // the row's lse from pass 0's (m, l): l summed over the block
        float l[1][2] = {{s.st[0].l, s.st[1].l}};
        block_rows<1, 0u>(l, red + 64);
QA_UNROLL
        for (int h = 0; h < 2; ++h) s.lse2[h] = N::lse2(s.st[h].m, l[0][h], s.ctx[h]);
      }
      sweep_pass<N, Tr, T, STATS, BUG>(s, qf, tl, dp, sw, mask, pass, red, bs, scratch);
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
