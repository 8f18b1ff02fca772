// The CUDA-core flash-attention kernel body (any sm_75+; the fallback family for sm_75 and f32): one template, instantiated per
// normaliser policy (variant.cuh), element type, head-dim bound (traits.cuh) and statistics
// switch (stats.cuh, compiled out entirely when off).
//
// Block (m_tile, head, batch) owns BLOCK_M query rows of one sequence and head:
//   load Q tile -> for each key tile: load K/V (f32 in shared memory), scores, online update,
//   acc += P·V -> epilogue: reduce per-lane partials, normalise, gate, store o and lse.
// Clipped softmax runs the key sweep twice (pass 0: lse; pass 1: clipped weights).
// Statistics of K and V are counted by one designated block per (sequence, kv head): the first
// query tile of the first query head of the group; it sweeps every key tile even when its rows
// see none of them (or it has no rows at all).
#pragma once

#include "../attention/block_info.cuh"
#include "../attention/online_softmax.cuh"
#include "../attention/output.cuh"
#include "../attention/row_stats.cuh"
#include "../attention/stats.cuh"
#include "../attention/variant.cuh"
#include "tile_io.cuh"
#include "traits.cuh"

namespace qa::attn {

// One block's work: the key sweep (one pass, two for clipped) over tiles loaded by the whole
// block, then the epilogue and, with statistics, the channel flush. Each method is one stage;
// the row state, accumulators and statistics partials are members, held in registers.
template <class Norm, class T, int MAX_D, bool STATS>
class Prefill {
  using Tr = Traits<MAX_D>;
  static constexpr int R = Tr::kRowsPerWarp, BN = Tr::kBlockN;
  static constexpr int G = Tr::kGroupsPerLane, DPT = Tr::kDimsPerThread, NT = Tr::kThreads;
  static constexpr int LAST = Norm::kPasses - 1;
  static constexpr int kSplitLanes = WARP_SIZE / Tr::kKeySplit;

  const QaAttnParams& p;
  const BlockInfo blk;  // a copy: a reference to the caller's left it on the stack at d64 + stats
  SharedStorage<MAX_D, STATS>& sm;
  BlockStats* const bs;  // statistics only
  const NormCtx ctx;
  const LogitMap logit;
  const int warp, lane, d;
  const int key, part;  // scores: this lane's key of the tile and its slice of d
  const bool owns_key;
  const int split;  // P·V: which share of the tile's keys this lane sums
  RowPtr<T> k_rows, v_rows;  // the sequence's K and V rows of this kv head, set after Q's load
  int row[R];
  bool row_ok[R];
  OnlineRow st[R];
  f32x4 acc[R][G];
  float lse2[R];  // two-pass policies: the row's lse from pass 0
  // Statistics partials (dead code, and no registers, when STATS is off). The output's channel
  // partials live in the epilogue only (run()), not through the key loop.
  ChannelAcc ch_q[DPT], ch_k[DPT], ch_v[DPT];
  EntropyAcc ent[R];
  RangeAcc rng[R];
  float xmax[R], x0[R];

 public:
  __device__ __forceinline__ Prefill(const QaAttnParams& p_, const BlockInfo& blk_, SharedStorage<MAX_D, STATS>& sm_,
                                     BlockStats* bs_)
      : p(p_), blk(blk_), sm(sm_), bs(bs_), ctx(norm_ctx<Norm>(p_, blk_.seq.k_len, blk_.head)), logit(p_),
        warp(int(threadIdx.x) / WARP_SIZE), lane(int(threadIdx.x) % WARP_SIZE), d(int(p_.head_dim)),
        key(lane % BN), part(lane / BN), owns_key(part == 0), split(lane / kSplitLanes) {}

  __device__ __forceinline__ void run() {
    load_rows<Tr, STATS>(sm.tiles.q, Tr::kBlockM,
                         rows_of<T>(p.q, blk.varlen, blk.b, blk.seq.q_start + blk.row0, blk.head), blk.rows, d,
                         ch_q, STATS ? bs->hist[QA_STAT_Q] : nullptr);
    init_rows();
    k_rows = rows_of<T>(p.k, blk.varlen, blk.b, blk.seq.k_start, blk.kvh);
    v_rows = rows_of<T>(p.v, blk.varlen, blk.b, blk.seq.k_start, blk.kvh);
QA_UNROLL_N(1)
    for (int pass = 0; pass < Norm::kPasses; ++pass) sweep(pass);
    ChannelAcc ch_o[G][4];
    epilogue(ch_o);
    if constexpr (STATS) flush_stats(ch_o);
  }

 private:
  __device__ __forceinline__ void init_rows() {
QA_UNROLL
    for (int r = 0; r < R; ++r) {
      row[r] = blk.row0 + warp * R + r;
      row_ok[r] = warp * R + r < blk.rows;
      st[r].m = Norm::start_max(ctx);
      st[r].l = lane == 0 ? Norm::kStartMass : 0.f;
      if constexpr (STATS) {
        if (lane == 0) ent[r].a = Norm::kStartMass;  // the virtual sink outcome, weight 2^0
        xmax[r] = -INFINITY;
        x0[r] = -INFINITY;
      }
QA_UNROLL
      for (int g = 0; g < G; ++g) acc[r][g] = f32x4{{0.f, 0.f, 0.f, 0.f}};
    }
  }

  // One pass over the key tiles. The designated K/V counter's pass 0 sweeps every tile; other
  // passes only the tiles some row of the block sees.
  __device__ __forceinline__ void sweep(int pass) {
    const bool counting = blk.counts_kv && pass == 0;
    const bool weighs = pass == LAST;  // this pass accumulates acc += P·V
    if (pass == 1) {  // two-pass policies: the row's lse from pass 0, uniform over the warp
QA_UNROLL
      for (int r = 0; r < R; ++r) lse2[r] = Norm::lse2(st[r].m, warp_sum(st[r].l), ctx);
    }
    const int kv_lo = blk.keys.lo, kv_hi = blk.keys.hi;
    const int begin = counting ? 0 : kv_lo / BN * BN;
    const int end = counting ? blk.seq.k_len : kv_hi;
QA_UNROLL_N(1)
    for (int kv0 = begin; kv0 < end; kv0 += BN) {
      __syncthreads();  // Q staged / the previous tile fully consumed by every warp
      load_tile(kv0, counting, weighs);
      __syncthreads();
      if (kv0 + BN <= kv_lo || kv0 >= kv_hi) continue;  // no row of the block sees this tile
      float x[R], tmax[R];
      bool vis[R];
      scores(kv0, x, vis);
      tile_max(kv0, pass, x, tmax);
      update_rows(pass, x, vis, tmax);
      if (!weighs) continue;
      __syncwarp();
      accumulate_pv();
    }
  }

  // K (and, when this pass weighs, V) rows [kv0, kv0 + BN) into shared memory as f32; the
  // designated counter counts both.
  __device__ __forceinline__ void load_tile(int kv0, bool counting, bool weighs) {
    const int valid = blk.seq.k_len - kv0 < BN ? blk.seq.k_len - kv0 : BN;
    const RowPtr<T> kr{k_rows.base + int64_t(kv0) * k_rows.stride, k_rows.stride};
    const RowPtr<T> vr{v_rows.base + int64_t(kv0) * v_rows.stride, v_rows.stride};
    if (counting) {
      if constexpr (STATS) {
        load_rows<Tr, true>(sm.tiles.k, BN, kr, valid, d, ch_k, bs->hist[QA_STAT_K]);
        load_rows<Tr, true>(sm.tiles.v, BN, vr, valid, d, ch_v, bs->hist[QA_STAT_V]);
      }
    } else {
      load_rows<Tr, false>(sm.tiles.k, BN, kr, valid, d, ch_k, nullptr);
      if (weighs) load_rows<Tr, false>(sm.tiles.v, BN, vr, valid, d, ch_v, nullptr);
    }
  }

  // x_r = logit(scale·(q_r·k_j)) for this lane's key j, -inf where row r does not see it; split
  // lanes take alternate float4 groups of d.
  __device__ __forceinline__ void scores(int kv0, float (&x)[R], bool (&vis)[R]) const {
QA_UNROLL
    for (int r = 0; r < R; ++r) x[r] = 0.f;
QA_UNROLL_N(4)
    for (int c4 = part; c4 < d / 4; c4 += Tr::kLanesPerKey) {
      const f32x4 kv = sm.tiles.k[key][c4];
QA_UNROLL
      for (int r = 0; r < R; ++r) {
        const f32x4 qv = sm.tiles.q[warp * R + r][c4];
        x[r] = fmaf(qv.v[0], kv.v[0], x[r]);
        x[r] = fmaf(qv.v[1], kv.v[1], x[r]);
        x[r] = fmaf(qv.v[2], kv.v[2], x[r]);
        x[r] = fmaf(qv.v[3], kv.v[3], x[r]);
      }
    }
    const int j = kv0 + key;
QA_UNROLL
    for (int r = 0; r < R; ++r) {
      if constexpr (Tr::kLanesPerKey == 2) x[r] += __shfl_xor_sync(FULL_MASK, x[r], BN);
      vis[r] = row_ok[r] && blk.mask.visible(row[r], j);
      x[r] = !vis[r] ? -INFINITY : logit(x[r]);
    }
  }

  // The tile's row max (and, with statistics, the first key's logit), read by every lane from
  // shared memory; -inf where this pass needs neither.
  __device__ __forceinline__ void tile_max(int kv0, int pass, const float (&x)[R], float (&tmax)[R]) {
QA_UNROLL
    for (int r = 0; r < R; ++r) tmax[r] = -INFINITY;
    if (!((Norm::kRescales || STATS) && pass == 0)) return;
    if (owns_key) {
QA_UNROLL
      for (int r = 0; r < R; ++r) sm.s[warp][r][key / 4].v[key % 4] = x[r];
    }
    __syncwarp();
QA_UNROLL
    for (int r = 0; r < R; ++r) {
QA_UNROLL
      for (int i = 0; i < BN / 4; ++i) {
        const f32x4 s4 = sm.s[warp][r][i];
        tmax[r] = fmaxf(fmaxf(tmax[r], fmaxf(s4.v[0], s4.v[1])), fmaxf(s4.v[2], s4.v[3]));
      }
      if constexpr (STATS) {
        if (kv0 == 0) x0[r] = sm.s[warp][r][0].v[0];
      }
    }
  }

  // The online update of each row: the new max and α (acc, l and the entropy partials rescale
  // by it), the weight of this lane's key, the logit range; P goes to shared memory for P·V.
  __device__ __forceinline__ void update_rows(int pass, const float (&x)[R], const bool (&vis)[R],
                                              const float (&tmax)[R]) {
    const bool finds_max = Norm::kRescales && pass == 0;
    const bool weighs = pass == LAST;
QA_UNROLL
    for (int r = 0; r < R; ++r) {
      float alpha = 1.f, ln_alpha = 0.f;
      if (finds_max) {  // m' = max(m, rowmax), α = 2^(m - m')
        const float m_old = st[r].m;
        alpha = st[r].template advance<Norm>(tmax[r]);
        ln_alpha = (m_old - Norm::shift(st[r].m)) * kLn2;
QA_UNROLL
        for (int g = 0; g < G; ++g)
QA_UNROLL
          for (int c = 0; c < 4; ++c) acc[r][g].v[c] *= alpha;
      }
      const float m_use = pass == 1 ? lse2[r] : Norm::shift(st[r].m);
      const Weight w = Norm::weight(pass, x[r], m_use, ctx);
      if (owns_key) st[r].l += w.den;
      if constexpr (STATS) {
        if (pass == 0) {  // logit range: n, Σ(x - xmax) against the growing uniform max
          const float xm = fmaxf(xmax[r], tmax[r]);
          rng[r].reanchor(xmax[r], xm);
          xmax[r] = xm;
          if (vis[r] && owns_key) {
            ++rng[r].n;
            rng[r].sum += x[r] - xm;
          }
        }
        if (weighs) {
          if (finds_max) ent[r].rescale(alpha, ln_alpha);
          if (owns_key) ent[r].add(w.acc);
        }
      }
      if (weighs && owns_key) sm.p[warp][r][key / 4].v[key % 4] = w.acc;
    }
  }

  // acc_r += Σ_j p_rj v_j over this lane's share of the tile's keys.
  __device__ __forceinline__ void accumulate_pv() {
QA_UNROLL_N(2)
    for (int jj = 0; jj < Tr::kKeysPerSplit; jj += 4) {
      const int j0 = split * Tr::kKeysPerSplit + jj;
      f32x4 pr[R];
QA_UNROLL
      for (int r = 0; r < R; ++r) pr[r] = sm.p[warp][r][j0 / 4];
QA_UNROLL
      for (int t = 0; t < 4; ++t) {
QA_UNROLL
        for (int g = 0; g < G; ++g) {
          const int grp = lane % kSplitLanes + g * WARP_SIZE;
          if (4 * grp >= d) continue;
          const f32x4 vv = sm.tiles.v[j0 + t][grp];
QA_UNROLL
          for (int r = 0; r < R; ++r)
QA_UNROLL
            for (int c = 0; c < 4; ++c) acc[r][g].v[c] = fmaf(pr[r].v[t], vv.v[c], acc[r][g].v[c]);
        }
      }
    }
  }

  // Warp totals, the output scale and lse, the row's statistics; o = acc·scale, gated, stored by
  // the first half of split lanes (after adding the other half's partial sums).
  __device__ __forceinline__ void epilogue(ChannelAcc (&ch_o)[G][4]) {
    const OutRowPtr<T> o_rows = out_rows_of<T>(p.o, blk.varlen, blk.b, blk.seq.q_start, blk.head);
    const bool stores = split == 0;
QA_UNROLL
    for (int r = 0; r < R; ++r) {
      const float l_tot = Norm::kPasses == 2 ? 1.f : warp_sum(st[r].l);
      if constexpr (Tr::kKeySplit == 2) {
QA_UNROLL
        for (int g = 0; g < G; ++g)
QA_UNROLL
          for (int c = 0; c < 4; ++c) acc[r][g].v[c] += __shfl_xor_sync(FULL_MASK, acc[r][g].v[c], kSplitLanes);
      }
      const float row_lse2 = Norm::kPasses == 2 ? lse2[r] : Norm::lse2(st[r].m, l_tot, ctx);
      const float scale = Norm::out_scale(st[r].m, l_tot, ctx);
      if constexpr (STATS) record(r, row_lse2, scale);
      if (!row_ok[r]) continue;
      if (lane == 0) store_lse(p, blk.b, blk.head, blk.seq.q_start + row[r], row_lse2);
      if (!stores) continue;
      T* const out = o_rows.base + int64_t(row[r]) * o_rows.stride;
QA_UNROLL
      for (int g = 0; g < G; ++g) {
        const int c0 = 4 * (lane % kSplitLanes + g * WARP_SIZE);
        if (c0 >= d) continue;
QA_UNROLL
        for (int c = 0; c < 4; ++c) {
          const float o = acc[r][g].v[c] * scale;  // o = acc / denominator, before the gate
          if constexpr (STATS) count_element(o, ch_o[g][c], bs->hist[QA_STAT_O]);
          const float f = gate_factor(p, blk.varlen, blk.b, blk.seq.q_start + row[r], blk.head, c0 + c);
          out[c0 + c] = qa::from_float<T>(o * f);
        }
      }
    }
  }

  // Row r's statistics: its warp totals, binned once per row by lane 0.
  __device__ __forceinline__ void record(int r, float row_lse2, float scale) {
    const int n = warp_sum(rng[r].n);
    const float rsum = warp_sum(rng[r].sum);
    const float ea = warp_sum(ent[r].a), eb = warp_sum(ent[r].b);
    if (lane == 0 && row_ok[r] && n > 0) {
      const float m_use = Norm::kPasses == 2 ? row_lse2 : Norm::shift(st[r].m);
      record_row<Norm>(*bs, ctx, RowTotals{n, rsum, ea, eb, x0[r], xmax[r]}, m_use, scale, row_lse2);
    }
  }

  // Per-thread channel moments merged in shared memory (the dead tiles), then one atomic each.
  __device__ __forceinline__ void flush_stats(const ChannelAcc (&ch_o)[G][4]) {
    __syncthreads();  // tiles are dead: their memory becomes the channel scratch
    zero_channels<MAX_D, NT>(sm.channels);
    __syncthreads();
    const int c0 = int(threadIdx.x) % Tr::kThreadsPerRow;
QA_UNROLL
    for (int k = 0; k < DPT; ++k) {
      const int c = c0 + k * Tr::kThreadsPerRow;
      merge_channel(sm.channels, QA_STAT_Q, c, ch_q[k]);
      merge_channel(sm.channels, QA_STAT_K, c, ch_k[k]);
      merge_channel(sm.channels, QA_STAT_V, c, ch_v[k]);
    }
QA_UNROLL
    for (int g = 0; g < G; ++g)
QA_UNROLL
      for (int c = 0; c < 4; ++c) {
        const int ch = 4 * (lane % kSplitLanes + g * WARP_SIZE) + c;
        if (split == 0 && ch < d) merge_channel(sm.channels, QA_STAT_O, ch, ch_o[g][c]);
      }
    __syncthreads();
    const int head = blk.head, kvh = blk.kvh;
    flush_channels<MAX_D, NT>(sm.channels, QA_STAT_Q, p.stats.channels[QA_STAT_Q], head * d, d);
    flush_channels<MAX_D, NT>(sm.channels, QA_STAT_O, p.stats.channels[QA_STAT_O], head * d, d);
    if (blk.counts_kv) {
      flush_channels<MAX_D, NT>(sm.channels, QA_STAT_K, p.stats.channels[QA_STAT_K], kvh * d, d);
      flush_channels<MAX_D, NT>(sm.channels, QA_STAT_V, p.stats.channels[QA_STAT_V], kvh * d, d);
    }
    flush_block_stats<NT>(*bs, p.stats, head);
  }
};

template <class Norm, class T, int MAX_D, bool STATS>
__device__ __forceinline__ void attention_body(const QaAttnParams& p) {
  __shared__ SharedStorage<MAX_D, STATS> sm;
  const BlockInfo blk(p, Traits<MAX_D>::kBlockM, STATS);
  if (blk.idle()) return;  // whole block: no barrier is skipped by a subset
  BlockStats* bs = nullptr;
  if constexpr (STATS) {
    __shared__ SharedStats<MAX_D> sstats;
    bs = &sstats.block;
    zero_block_stats<Traits<MAX_D>::kThreads>(*bs);
    __syncthreads();
  }
  Prefill<Norm, T, MAX_D, STATS> block(p, blk, sm, bs);
  block.run();
}

}  // namespace qa::attn

// One kernel symbol per (normaliser, dtype, head-dim bound, statistics): qa_attn_<norm>_<dtype>_d<D>[_stats].
#define QA_ATTN_KERNEL(NAME, NORM, T, MAX_D, STATS)                                              \
  QA_KERNEL_BOUNDS(NAME, QaAttnParams, p, (qa::attn::Traits<MAX_D>::kThreads), 1) {             \
    qa::attn::attention_body<NORM, T, MAX_D, STATS>(p);                                       \
  }

// The instantiations (normalisers x dtypes x head dims x statistics) are generated by build.rs
// from src/registry/table.rs, one unit per normaliser.
