// The split-KV chunk kernel (CUDA cores, any sm_75+, f32/f16/bf16): block (split, kv head,
// sequence) sweeps its chunk of the sequence's visible keys once for all G·q_len query rows of
// the kv head, so each K/V element of the chunk is read from global memory once per row group
// (G·q_len ≤ kBlockM rows: once; more rows sweep the chunk again from L2).
//
// splits = 1: the block owns every visible key and writes o and lse itself, exactly like the
// unsplit kernel (clipped runs both passes). splits > 1: it writes its chunk's partial
// (acc, m, l) for combine.cuh; the sink policies run as plain softmax in a chunk because the
// virtual outcome belongs to the merged row (added once by the combine).
//
// STATS (the _stats instantiations, compiled out otherwise): the block counts the K/V it reads
// and (split 0) its Q rows, and keeps each row's statistics pieces (kernels/decode/stats.cuh):
// in the partial when split, recorded directly with o when not. Statistics count every key of
// a sequence like prefill, so a stats call sweeps [0, len) even under a window (the mask keeps
// the weights exact).
#pragma once

#include "../attention/mask.cuh"
#include "../attention/online_softmax.cuh"
#include "../attention/output.cuh"
#include "../attention/variant.cuh"
#include "chunk_parts.cuh"
#include "stats.cuh"
#include "tiles.cuh"

namespace qa::decode {

using namespace qa::attn;

// The online state of a warp's R rows.
template <int R, int G>
struct Rows {
  int row[R];  // index among the block's G·q_len rows
  bool ok[R];
  GroupRow at[R];
  NormCtx ctx[R];
  OnlineRow st[R];
  f32x4 acc[R][G];
  float lse2[R];  // clipped: the row's lse (log2 units) once pass 0 is done
  // statistics (dead code unless STATS): entropy sums, logit range, largest and first logit
  EntropyAcc ent[R];
  RangeAcc rng[R];
  float xmax[R], x0[R];
};

// Row groups at d <= 64 hold 4 rows per warp, not 8, where a row carries more state: the row
// statistics registers (STATS) or the two-pass policies' lse (clipped) would push the 242-252
// registers of the plain kernel into spills (clipped d64 spilled 40 bytes on sm_90 once rows
// also carried their varlen offsets).
template <int MAX_D, bool kHeavyRows>
struct ChunkTraits : Traits<MAX_D> {
  static constexpr int kRowsPerWarp = kHeavyRows && MAX_D <= 64 ? 4 : Traits<MAX_D>::kRowsPerWarp;
  static constexpr int kBlockM = Traits<MAX_D>::kWarps * kRowsPerWarp;
};

// Statistics of one row in the weighing pass: logit range against the growing tile max, the
// first key's logit, entropy sums rescaled with the online shift.
template <class Tr, int R, int G>
__device__ __forceinline__ void tile_row_stats(Rows<R, G>& w, int r, float x, bool vis, float tmax,
                                               const f32x4 (&s0)[Tr::kBlockN / 4], int kv0) {
  const bool owns_key = threadIdx.x % WARP_SIZE / Tr::kBlockN == 0;
  const float xm = fmaxf(w.xmax[r], tmax);
  w.rng[r].reanchor(w.xmax[r], xm);
  w.xmax[r] = xm;
  if (vis && owns_key) {
    ++w.rng[r].n;
    w.rng[r].sum += x - xm;
  }
  if (kv0 == 0) w.x0[r] = s0[0].v[0];
}

// One key tile of one pass: scores, mask, online update, acc += P·V (when the pass weighs).
template <class N, class Tr, bool STATS, int R, int G>
__device__ __forceinline__ void sweep_tile(Rows<R, G>& w, SharedStorage<Tr::kMaxD, false>& sm,
                                           const Mask& mask, const LogitMap& logit, int kv0, int kv_hi,
                                           int pass, int d) {
  constexpr int BN = Tr::kBlockN;
  constexpr int kSplitLanes = WARP_SIZE / Tr::kKeySplit;
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int key = lane % BN, part = lane / BN, split = lane / kSplitLanes;
  const bool owns_key = part == 0, weighs = pass == N::kPasses - 1;
  const bool finds_max = N::kRescales && pass == 0;
  const bool counts_row = STATS && weighs;  // row statistics come from the weighing pass
  float x[R];
  bool vis[R];
QA_UNROLL
  for (int r = 0; r < R; ++r) x[r] = 0.f;
  for (int c4 = part; c4 < d / 4; c4 += Tr::kLanesPerKey) {
    const f32x4 kv = sm.tiles.k[key][c4];
QA_UNROLL
    for (int r = 0; r < R; ++r) {
      const f32x4 qv = sm.tiles.q[warp * R + r][c4];
QA_UNROLL
      for (int c = 0; c < 4; ++c) x[r] = fmaf(qv.v[c], kv.v[c], x[r]);
    }
  }
  const int j = kv0 + key;
QA_UNROLL
  for (int r = 0; r < R; ++r) {
    if constexpr (Tr::kLanesPerKey == 2) x[r] += __shfl_xor_sync(FULL_MASK, x[r], BN);
    vis[r] = w.ok[r] && j < kv_hi && mask.visible(w.at[r].i, j);
    x[r] = vis[r] ? logit(x[r]) : -INFINITY;  // invisible keys weigh exactly 0 in every policy
  }
  float tmax[R];
QA_UNROLL
  for (int r = 0; r < R; ++r) tmax[r] = -INFINITY;
  if (finds_max || counts_row) {  // the tile's row max, read by every lane (warp-uniform)
QA_UNROLL
    for (int r = 0; r < R; ++r) {
      if (owns_key) sm.s[warp][r][key / 4].v[key % 4] = x[r];
    }
    __syncwarp();
QA_UNROLL
    for (int r = 0; r < R; ++r)
      for (int i = 0; i < BN / 4; ++i) {
        const f32x4 s4 = sm.s[warp][r][i];
        tmax[r] = fmaxf(fmaxf(tmax[r], fmaxf(s4.v[0], s4.v[1])), fmaxf(s4.v[2], s4.v[3]));
      }
  }
QA_UNROLL
  for (int r = 0; r < R; ++r) {
    float alpha = 1.f, ln_alpha = 0.f;
    if (finds_max) {
      const float m_old = w.st[r].m;
      alpha = w.st[r].template advance<N>(tmax[r]);
      ln_alpha = (m_old - N::shift(w.st[r].m)) * kLn2;
QA_UNROLL
      for (int g = 0; g < G; ++g)
QA_UNROLL
        for (int c = 0; c < 4; ++c) w.acc[r][g].v[c] *= alpha;
    }
    const float m_use = pass == 1 ? w.lse2[r] : N::shift(w.st[r].m);
    const Weight wt = N::weight(pass, x[r], m_use, w.ctx[r]);
    if (owns_key) w.st[r].l += wt.den;
    if constexpr (STATS) {
      if (counts_row) {
        tile_row_stats<Tr>(w, r, x[r], vis[r], tmax[r], sm.s[warp][r], kv0);
        if (finds_max) w.ent[r].rescale(alpha, ln_alpha);
        if (owns_key) w.ent[r].add(wt.acc);
      }
    }
    if (weighs && owns_key) sm.p[warp][r][key / 4].v[key % 4] = wt.acc;
  }
  if (!weighs) return;
  __syncwarp();
  for (int jj = 0; jj < Tr::kKeysPerSplit; jj += 4) {  // acc_r += Σ_j p_rj v_j, this lane's keys
    const int j0 = split * Tr::kKeysPerSplit + jj;
QA_UNROLL
    for (int t = 0; t < 4; ++t)
QA_UNROLL
      for (int g = 0; g < G; ++g) {
        const int grp = lane % kSplitLanes + g * WARP_SIZE;
        if (4 * grp >= d) continue;
        const f32x4 vv = sm.tiles.v[j0 + t][grp];
QA_UNROLL
        for (int r = 0; r < R; ++r) {
          const float pr = sm.p[warp][r][j0 / 4].v[t];
QA_UNROLL
          for (int c = 0; c < 4; ++c) w.acc[r][g].v[c] = fmaf(pr, vv.v[c], w.acc[r][g].v[c]);
        }
      }
  }
  __syncwarp();  // sm.s / sm.p are rewritten by the next tile
}

// The epilogue of the warp's rows: o and lse (splits = 1) or the chunk's partial (splits > 1),
// through the row end both chunk kernels share (chunk_parts.cuh).
template <class N, class T, class Tr, bool kSplit, bool STATS, int R, int G>
__device__ __forceinline__ void finish_rows(Rows<R, G>& w, const QaDecodeParams& dp, const QueryRows& q,
                                            int pass, BlockStats* bs) {
  const QaAttnParams& p = dp.attn;
  constexpr int kSplitLanes = WARP_SIZE / Tr::kKeySplit;
  const int lane = threadIdx.x % WARP_SIZE, d = int(p.head_dim);
  const bool stores = lane / kSplitLanes == 0;  // split lanes hold partial sums; the first half stores
QA_UNROLL
  for (int r = 0; r < R; ++r) {
    const float l = warp_sum(w.st[r].l);
    if constexpr (Tr::kKeySplit == 2) {
QA_UNROLL
      for (int g = 0; g < G; ++g)
QA_UNROLL
        for (int c = 0; c < 4; ++c) w.acc[r][g].v[c] += __shfl_xor_sync(FULL_MASK, w.acc[r][g].v[c], kSplitLanes);
    }
    RowTotals t{};
    if constexpr (STATS)
      t = RowTotals{warp_sum(w.rng[r].n), warp_sum(w.rng[r].sum), warp_sum(w.ent[r].a),
                    warp_sum(w.ent[r].b), w.x0[r], w.xmax[r]};
    if (!w.ok[r]) continue;
    const GroupRow at = w.at[r];
    float* slot = kSplit ? partial_slot(dp, int(blockIdx.x), q, at.head, at.i) : nullptr;
    const float scale =
        finish_row<N, kSplit, STATS>(dp, q, at, w.ctx[r], w.st[r].m, l, w.lse2[r], t, pass, slot, lane == 0);
    if (!stores) continue;
    T* o = o_row<T>(p, q, at);
QA_UNROLL
    for (int g = 0; g < G; ++g) {
      const int c0 = 4 * (lane % kSplitLanes + g * WARP_SIZE);
      if (c0 >= d) continue;
QA_UNROLL
      for (int c = 0; c < 4; ++c)
        store_channel<T, kSplit, STATS>(p, o, slot, q, at, c0 + c, w.acc[r][g].v[c] * scale, bs);
    }
  }
}

// Sets up the warp's rows [row0 + warp·R, +R) of the block's G·q_len rows.
template <class N, class Norm, bool kSplit, int R, int G>
__device__ __forceinline__ void start_rows(Rows<R, G>& w, const QaDecodeParams& dp, const QueryRows& q,
                                           int kvh, int row0, int rows, int len) {
  const QaAttnParams& p = dp.attn;
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int group = int(p.heads / p.kv_heads), q_len = q.len > 0 ? q.len : 1;  // no row is ok at 0
QA_UNROLL
  for (int r = 0; r < R; ++r) {
    w.row[r] = row0 + warp * R + r;
    w.ok[r] = w.row[r] < rows;
    w.at[r] = group_row(w.ok[r] ? w.row[r] : 0, q_len, kvh, group);
    w.ctx[r] = norm_ctx<Norm>(p, len, w.at[r].head);
    w.st[r].m = N::start_max(w.ctx[r]);
    w.st[r].l = lane == 0 ? N::kStartMass : 0.f;
    w.lse2[r] = -INFINITY;
    w.ent[r].a = lane == 0 ? N::kStartMass : 0.f;  // the virtual sink outcome, weight 2^0
    w.ent[r].b = 0.f;
    w.rng[r] = RangeAcc{};
    w.xmax[r] = w.x0[r] = -INFINITY;
    // clipped pass 1 of a split launch: combine pass 0 left the row's lse in this chunk's slot
    if (kSplit && N::kPasses == 2 && dp.pass == 1 && w.ok[r])
      w.lse2[r] = partial_slot(dp, int(blockIdx.x), q, w.at[r].head, w.at[r].i)[p.head_dim];
QA_UNROLL
    for (int g = 0; g < G; ++g) w.acc[r][g] = f32x4{{0.f, 0.f, 0.f, 0.f}};
  }
}

// K/V channel moments of this thread's channels (c0 + k·kThreadsPerRow) and the block's
// histograms; unused (and compiled out) without statistics.
template <class Tr>
struct KvCounts {
  ChannelAcc k[Tr::kDimsPerThread], v[Tr::kDimsPerThread];
};

// The statistics epilogue of a chunk block: K/V channel moments merged in shared memory (the
// tiles are dead), then one global atomic per block and counter.
template <class Tr>
__device__ __forceinline__ void flush_chunk_stats(const QaDecodeParams& dp, SharedStorage<Tr::kMaxD, false>& sm,
                                                  const KvCounts<Tr>& kv, const BlockStats& bs, int kvh) {
  constexpr int NT = Tr::kThreads, MAX_D = Tr::kMaxD;
  const QaAttnParams& p = dp.attn;
  const int d = int(p.head_dim);
  __syncthreads();  // every row group is done with the tiles
  zero_channels<MAX_D, NT>(sm.channels);
  __syncthreads();
  const int c0 = threadIdx.x % Tr::kThreadsPerRow;
QA_UNROLL
  for (int k = 0; k < Tr::kDimsPerThread; ++k) {
    merge_channel(sm.channels, QA_STAT_K, c0 + k * Tr::kThreadsPerRow, kv.k[k]);
    merge_channel(sm.channels, QA_STAT_V, c0 + k * Tr::kThreadsPerRow, kv.v[k]);
  }
  __syncthreads();
  flush_channels<MAX_D, NT>(sm.channels, QA_STAT_K, p.stats.channels[QA_STAT_K], kvh * d, d);
  flush_channels<MAX_D, NT>(sm.channels, QA_STAT_V, p.stats.channels[QA_STAT_V], kvh * d, d);
  flush_block_stats<NT>(bs, p.stats, 0);  // histograms only: row statistics went straight out
}

template <class Norm, class T, int MAX_D, bool kSplit, bool STATS>
__device__ __forceinline__ void chunk_body(const QaDecodeParams& dp, SharedStorage<MAX_D, false>& sm,
                                           BlockStats* bs) {
  using Tr = ChunkTraits<MAX_D, STATS || Norm::kPasses == 2>;
  using N = typename ChunkPolicy<Norm, kSplit>::type;
  constexpr int R = Tr::kRowsPerWarp, BM = Tr::kBlockM, BN = Tr::kBlockN;
  const QaAttnParams& p = dp.attn;
  const int kvh = int(blockIdx.y), d = int(p.head_dim);
  const QueryRows q = query_rows(dp, int(blockIdx.z), true);
  int len = 0;
  const KeyRange keys = checked_keys<STATS>(dp, q, Tr::kThreads, &len);
  const Mask mask(p, Sequence{0, q.len, 0, len});
  const LogitMap logit(p);
  const KeyRange own = chunk_of<kSplit>(dp, keys);  // this block's chunk of the visible keys
  const int kv_lo = own.lo, kv_hi = own.hi;
  const int* table = table_row(dp, q.b);
  const int rows = int(p.heads / p.kv_heads) * q.len;
  // prefill counts every key of a sequence, rows or not: without rows a STATS block still
  // sweeps one (empty) row group to read and count its K/V
  const int sweep_rows = STATS && rows == 0 ? 1 : rows;
  const int first = kSplit ? int(dp.pass) : 0, last = kSplit ? int(dp.pass) : N::kPasses - 1;
  KvCounts<Tr> kv;
  // Q is counted by split 0 (in its first launch when clipped runs two)
  unsigned* q_hist = STATS && blockIdx.x == 0 && first == 0 ? bs->hist[QA_STAT_Q] : nullptr;

  for (int row0 = 0; row0 < sweep_rows; row0 += BM) {
    __syncthreads();  // the previous row group is done with every tile
    load_queries<Tr, T>(sm.tiles.q, p, q, kvh, row0, rows, q_hist);
    Rows<R, Tr::kGroupsPerLane> w;
    start_rows<N, Norm, kSplit>(w, dp, q, kvh, row0, rows, len);
    for (int pass = first; pass <= last; ++pass) {
      if (!kSplit && pass == 1) {
QA_UNROLL
        for (int r = 0; r < R; ++r) w.lse2[r] = N::lse2(w.st[r].m, warp_sum(w.st[r].l), w.ctx[r]);
      }
      for (int kv0 = kv_lo; kv0 < kv_hi; kv0 += BN) {
        __syncthreads();  // Q staged / the previous tile consumed
        const int valid = kv_hi - kv0 < BN ? kv_hi - kv0 : BN;
        // each K/V element is counted once: by the first row group, K in pass 0, V when loaded
        const bool counts = STATS && row0 == 0;
        load_keys<Tr, T>(sm.tiles.k, dp, p.k, table, kv0, valid, kvh, d, kv.k,
                         counts && pass == 0 ? bs->hist[QA_STAT_K] : nullptr);
        if (pass == N::kPasses - 1)
          load_keys<Tr, T>(sm.tiles.v, dp, p.v, table, kv0, valid, kvh, d, kv.v,
                           counts ? bs->hist[QA_STAT_V] : nullptr);
        __syncthreads();
        sweep_tile<N, Tr, STATS>(w, sm, mask, logit, kv0, kv_hi, pass, d);
      }
    }
    finish_rows<N, T, Tr, kSplit, STATS>(w, dp, q, last, bs);
  }
  if constexpr (STATS) flush_chunk_stats<Tr>(dp, sm, kv, *bs, kvh);
}

// One shared tile storage for both instantiations (a static __shared__ in each would count twice).
template <class Norm, class T, int MAX_D, bool STATS>
__device__ __forceinline__ void chunk_kernel(const QaDecodeParams& dp) {
  __shared__ SharedStorage<MAX_D, false> sm;
  BlockStats* bs = nullptr;
  if constexpr (STATS) {
    __shared__ BlockStats block;
    bs = &block;
    zero_block_stats<Traits<MAX_D>::kThreads>(block);
    __syncthreads();
  }
  if (dp.splits <= 1) chunk_body<Norm, T, MAX_D, false, STATS>(dp, sm, bs);
  else chunk_body<Norm, T, MAX_D, true, STATS>(dp, sm, bs);
}

}  // namespace qa::decode
