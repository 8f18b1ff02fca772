// The tensor-core flash-attention kernel body (sm_80+, f16/bf16), FlashAttention-2 style: one
// template per normaliser policy (attention/variant.cuh), element type, head dim (traits.cuh)
// and statistics switch.
//
// Block (m_tile, head, batch) owns 64 query rows; warp w owns rows 16w..16w+15 and keeps its Q
// fragments in registers. Per key tile (pipeline.cuh: kStages stages filled by cp.async):
//   S = Q·Kᵀ (mma, f32) -> logits in log2 units (scale·log2e folded, one ex2 per weight) ->
//   mask on boundary tiles only -> row max over the quad -> weights through the policy ->
//   P rounded to f16/bf16 in registers -> O += P·V (mma). Row sums stay per lane and are
//   reduced over the quad once, in the epilogue. Tiles no row of the warp sees are skipped.
// Clipped softmax: pass 0 computes only the row lse (Q·Kᵀ, no V loads), pass 1 weighs.
// Statistics: Q counted from its shared tile, K/V from the staged tiles by one designated
// block per (sequence, kv head), row statistics from the registers, O from an f32 tile staged
// over the dead Q and K/V tiles; one global atomic per block and counter (attention/stats.cuh).
#pragma once

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

template <bool B, class A, class C>
struct Pick {
  using type = A;
};
template <class A, class C>
struct Pick<false, A, C> {
  using type = C;
};

template <class Norm, class T, int D, bool STATS, int BUG = BUG_NONE>
__device__ __forceinline__ void attention_body(const QaAttnParams& p) {
  using Tr = Traits<D, STATS>;
  using KvLoad = typename Pick<BUG == BUG_WRONG_SWIZZLE, Unswizzled<Tr>, Tr>::type;
  constexpr int BM = Tr::kBlockM, BN = Tr::kBlockN, S = Tr::kStages, NT = Tr::kThreads;
  constexpr int NS = BN / 8, NO = D / 8, KQ = D / 16, KP = BN / 16;
  constexpr int LAST = Norm::kPasses - 1;

  QA_DYNAMIC_SMEM(Chunk, smem);
  Chunk* const sq = smem;
  Chunk* const sk = sq + Tr::kQChunks;
  Chunk* const sv = sk + S * Tr::kKvChunks;

  const int warp = int(threadIdx.x) / WARP_SIZE, lane = int(threadIdx.x) % WARP_SIZE;
  const int g = lane >> 2, t = lane & 3;
  const BlockInfo blk(p, BM, STATS);
  if (blk.idle()) return;  // whole block: no barrier is skipped by a subset
  const int head = blk.head, b = blk.b, kvh = blk.kvh;
  const bool varlen = blk.varlen, counts_kv = blk.counts_kv;
  const Sequence& seq = blk.seq;
  const Mask& mask = blk.mask;
  // Keys any row of the block sees (the designated K/V counter still sweeps all of them), and
  // the rows of this warp and the keys they see.
  const int row0 = blk.row0, rows_here = blk.rows, kv_lo = blk.keys.lo, kv_hi = blk.keys.hi;
  const int wr0 = row0 + 16 * warp;
  const int w_rows = clamp_rows(rows_here - 16 * warp, 16);
  const KeyRange w_keys = blk.keys_of(wr0, w_rows);
  const int w_lo = w_keys.lo, w_hi = w_keys.hi;
  const int rows[2] = {wr0 + g, wr0 + g + 8};  // the accumulator rows of this lane
  const bool row_ok[2] = {g < w_rows, g + 8 < w_rows};

  const NormCtx ctx = norm_ctx<Norm>(p, seq.k_len, head);
  const LogitMap logit(p);

  BlockStats* bs = nullptr;
  ChannelScratch<D>* scratch = nullptr;
  float* x0s = nullptr;  // the first key's logit per row, kept by lane t = 0 of its quad
  // Each thread's entropy and logit-range partials of its two rows live in shared memory
  // between key tiles (own slots, no barrier): in registers they would be live through the
  // whole key loop, and d256 with statistics spilled on sm_90.
  EntropyAcc* ent_s = nullptr;
  RangeAcc* rng_s = nullptr;
  if constexpr (STATS) {
    __shared__ BlockStats sstats;
    __shared__ float sx0[BM];
    // Raw words: a __shared__ array cannot have the accumulators' default initialisers.
    __shared__ __align__(8) float sent[2 * 2 * NT];
    __shared__ __align__(8) float srng[2 * 2 * NT];
    static_assert(sizeof(EntropyAcc) == 8 && sizeof(RangeAcc) == 8, "two words each");
    bs = &sstats;
    x0s = sx0;
    ent_s = reinterpret_cast<EntropyAcc*>(sent) + 2 * threadIdx.x;
    rng_s = reinterpret_cast<RangeAcc*>(srng) + 2 * threadIdx.x;
    if (t == 0) x0s[16 * warp + g] = x0s[16 * warp + g + 8] = -INFINITY;
    scratch = reinterpret_cast<ChannelScratch<D>*>(sv + S * Tr::kKvChunks);
    zero_block_stats<NT>(*bs);
    zero_channels<D, NT>(*scratch);
  }

  // The K/V row pointers are block-uniform and needed once per tile: read from shared memory
  // there, not kept in registers through the key loop (at d256 with statistics, ptxas spilled
  // them; in shared memory the loop is spill-free).
  __shared__ KvRows<T> kv_rows;
  if (threadIdx.x == 0) kv_rows = kv_rows_of<T>(p, varlen, b, seq.k_start, kvh);
  const RowPtr<T> q_rows = rows_of<T>(p.q, varlen, b, seq.q_start + row0, head);
  load_tile<Tr, T>(sq, q_rows, BM, rows_here, rows_aligned(q_rows));
  qa::ptx::cp_async_commit();
  qa::ptx::cp_async_wait<0>();
  __syncthreads();
  if constexpr (STATS) count_tile<Tr, T>(sq, rows_here, QA_STAT_Q, *scratch, bs->hist[QA_STAT_Q]);

  const LaneChunks<Tr> qc = a_chunks<Tr>(16 * warp, lane), kc = k_chunks<Tr>(lane), vc = v_chunks<Tr>(lane);
  uint32_t qf[Tr::kQInRegs ? KQ : 1][4];
  if constexpr (Tr::kQInRegs) {
    if (w_rows > 0) {
QA_UNROLL
      for (int kk = 0; kk < KQ; ++kk) load_a<Tr>(qf[kk], sq, qc, kk);
    }
  }

  float o[NO][4];
QA_UNROLL
  for (int j = 0; j < NO; ++j)
QA_UNROLL
    for (int e = 0; e < 4; ++e) o[j][e] = 0.f;
  OnlineRow st[2];
  float xmax[2], lse2[2];
QA_UNROLL
  for (int h = 0; h < 2; ++h) {
    st[h].m = Norm::start_max(ctx);
    st[h].l = t == 0 ? Norm::kStartMass : 0.f;  // one lane of the quad holds the start mass
    if constexpr (STATS) {
      ent_s[h] = EntropyAcc{};
      if (t == 0) ent_s[h].a = Norm::kStartMass;  // the virtual sink outcome, weight 2^0
      rng_s[h] = RangeAcc{};
    }
    xmax[h] = lse2[h] = -INFINITY;
  }

QA_UNROLL_N(1)
  for (int pass = 0; pass < Norm::kPasses; ++pass) {
    const bool counting = counts_kv && pass == 0;
    const bool weighs = pass == LAST;  // this pass accumulates O += P·V
    const bool loads_v = weighs || counting;
    const bool finds_max = Norm::kRescales && pass == 0;
    if (pass == 1) {  // two-pass policies: the row's lse from pass 0, uniform over the quad
QA_UNROLL
      for (int h = 0; h < 2; ++h) lse2[h] = Norm::lse2(st[h].m, quad_sum(st[h].l), ctx);
    }
    const int begin = counting ? 0 : kv_lo / BN * BN;
    const int end = counting ? seq.k_len : kv_hi;
    const int n_tiles = end > begin ? (end - begin + BN - 1) / BN : 0;

    const KvPipeline<S, BUG == BUG_NO_WAIT> pipe{n_tiles};
    auto load = [&](int i, int stage) {
      const int kv0 = begin + i * BN;
      const int valid = seq.k_len - kv0 < BN ? seq.k_len - kv0 : BN;
      const KvRows<T> kv = kv_rows;
      load_tile<KvLoad, T>(sk + stage * Tr::kKvChunks, KvRows<T>::from(kv.k, kv0), BN, valid, kv.k_aligned);
      if (loads_v) load_tile<KvLoad, T>(sv + stage * Tr::kKvChunks, KvRows<T>::from(kv.v, kv0), BN, valid, kv.v_aligned);
    };
    pipe.prime(load);

QA_UNROLL_N(1)
    for (int i = 0; i < n_tiles; ++i) {
      pipe.acquire(i, load);
      const Chunk* kt = sk + pipe.stage(i) * Tr::kKvChunks;
      const Chunk* vt = sv + pipe.stage(i) * Tr::kKvChunks;
      const int kv0 = begin + i * BN;
      if constexpr (STATS) {
        if (counting) {
          const int valid = seq.k_len - kv0 < BN ? seq.k_len - kv0 : BN;
          count_tile<Tr, T>(kt, valid, QA_STAT_K, *scratch, bs->hist[QA_STAT_K]);
          count_tile<Tr, T>(vt, valid, QA_STAT_V, *scratch, bs->hist[QA_STAT_V]);
        }
      }
      if (w_rows > 0 && kv0 < w_hi && kv0 + BN > w_lo) {  // warp-uniform: some row sees the tile
        // ---- S = Q·Kᵀ over the warp's 16 rows and the tile's BN keys ----
        float s[NS][4];
QA_UNROLL
        for (int j = 0; j < NS; ++j)
QA_UNROLL
          for (int e = 0; e < 4; ++e) s[j][e] = 0.f;
QA_UNROLL
        for (int kk = 0; kk < KQ; ++kk) {
          uint32_t a_smem[4];
          const uint32_t* a = qf[Tr::kQInRegs ? kk : 0];
          if constexpr (!Tr::kQInRegs) {
            load_a<Tr>(a_smem, sq, qc, kk);
            a = a_smem;
          }
QA_UNROLL
          for (int j = 0; j < NS; j += 2) {
            uint32_t bk[4];
            load_k<Tr>(bk, kt, kc, j, kk);
            mma<T>(s[j], a, bk[0], bk[1]);
            mma<T>(s[j + 1], a, bk[2], bk[3]);
          }
        }

        // ---- logits; the mask only where some (row, key) of the tile may be invisible ----
        const bool full = kv0 >= mask.lo(wr0 + w_rows - 1) && kv0 + BN - 1 <= mask.hi(wr0) &&
                          kv0 + BN <= seq.k_len;
        uint32_t vis = 0xffffffffu;  // bit 4j + e: element e of key tile j is visible
QA_UNROLL
        for (int j = 0; j < NS; ++j)
QA_UNROLL
          for (int e = 0; e < 4; ++e) {
            const int key = kv0 + 8 * j + 2 * t + (e & 1);
            const bool v = full || (key < seq.k_len && mask.visible(rows[e >> 1], key));
            if (!v) vis &= ~(1u << ((4 * j + e) & 31));
            s[j][e] = v ? logit(s[j][e]) : -INFINITY;
          }

        // ---- row max over the quad (and the first key's logit) ----
        float tmax[2] = {-INFINITY, -INFINITY};
        if (finds_max || (STATS && pass == 0)) {
QA_UNROLL
          for (int j = 0; j < NS; ++j) {
            tmax[0] = fmaxf(tmax[0], fmaxf(s[j][0], s[j][1]));
            tmax[1] = fmaxf(tmax[1], fmaxf(s[j][2], s[j][3]));
          }
          tmax[0] = quad_max(tmax[0]);
          tmax[1] = quad_max(tmax[1]);
          if constexpr (STATS) {
            if (kv0 == 0 && t == 0) {  // key 0 is element 0 (row g) / 2 (row g + 8) of lane t = 0
              x0s[16 * warp + g] = s[0][0];
              x0s[16 * warp + g + 8] = s[0][2];
            }
          }
        }

        // ---- online update per row: m' = max(m, rowmax), α = 2^(m - m') rescales l, O ----
        float m_use[2];
        EntropyAcc ent[2];
        RangeAcc rng[2];
        if constexpr (STATS) {
          ent[0] = ent_s[0];
          ent[1] = ent_s[1];
          rng[0] = rng_s[0];
          rng[1] = rng_s[1];
        }
QA_UNROLL
        for (int h = 0; h < 2; ++h) {
          float alpha = 1.f, ln_alpha = 0.f;
          if (finds_max) {
            const float m_old = st[h].m;
            alpha = st[h].template advance<Norm>(tmax[h]);
            ln_alpha = (m_old - Norm::shift(st[h].m)) * kLn2;
QA_UNROLL
            for (int j = 0; j < NO; ++j) {
              o[j][2 * h] *= alpha;
              o[j][2 * h + 1] *= alpha;
            }
          }
          m_use[h] = pass == 1 ? lse2[h] : Norm::shift(st[h].m);
          if constexpr (STATS) {
            if (pass == 0) {  // logit range against the growing quad-uniform max
              const float xm = fmaxf(xmax[h], tmax[h]);
              rng[h].reanchor(xmax[h], xm);
              xmax[h] = xm;
            }
            if (weighs && finds_max) ent[h].rescale(alpha, ln_alpha);
          }
        }

        // ---- weights through the policy; s becomes P (f32) ----
QA_UNROLL
        for (int j = 0; j < NS; ++j)
QA_UNROLL
          for (int e = 0; e < 4; ++e) {
            const int h = e >> 1;
            const Weight w = Norm::weight(pass, s[j][e], m_use[h], ctx);
            st[h].l += w.den;
            if constexpr (STATS) {
              if (pass == 0 && ((vis >> ((4 * j + e) & 31)) & 1u)) {
                ++rng[h].n;
                rng[h].sum += s[j][e] - xmax[h];
              }
              if (weighs) ent[h].add(w.acc);
            }
            s[j][e] = w.acc;
          }
        if constexpr (STATS) {
          ent_s[0] = ent[0];
          ent_s[1] = ent[1];
          rng_s[0] = rng[0];
          rng_s[1] = rng[1];
        }

        // ---- O += P·V, P rounded to T in registers as the A operand ----
        if (weighs) {
QA_UNROLL
          for (int kk = 0; kk < KP; ++kk) {
            const uint32_t a[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                                   pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                   pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
QA_UNROLL
            for (int j = 0; j < NO; j += 2) {
              uint32_t bv[4];
              load_v<Tr>(bv, vt, vc, j, kk);
              mma<T>(o[j], a, bv[0], bv[1]);
              mma<T>(o[j + 1], a, bv[2], bv[3]);
            }
          }
        }
      }
      pipe.release();
    }
    pipe.drain();
  }

  // ---- epilogue: quad totals, normalisation, gate, stores ----
  float scale[2];
QA_UNROLL
  for (int h = 0; h < 2; ++h) {
    const float l_tot = Norm::kPasses == 2 ? 1.f : quad_sum(st[h].l);
    const float row_lse2 = Norm::kPasses == 2 ? lse2[h] : Norm::lse2(st[h].m, l_tot, ctx);
    scale[h] = Norm::out_scale(st[h].m, l_tot, ctx);
    if constexpr (STATS) {
      RowTotals r{quad_sum(rng_s[h].n), quad_sum(rng_s[h].sum), quad_sum(ent_s[h].a), quad_sum(ent_s[h].b),
                  -INFINITY, xmax[h]};
      if (t == 0 && row_ok[h] && r.n > 0) {
        r.x0 = x0s[16 * warp + g + 8 * h];
        const float m_use = Norm::kPasses == 2 ? row_lse2 : Norm::shift(st[h].m);
        record_row<Norm>(*bs, ctx, r, m_use, scale[h], row_lse2);
      }
    }
    if (t == 0 && row_ok[h]) store_lse(p, b, head, seq.q_start + rows[h], row_lse2);
  }
  // O = acc / denominator (before the gate) as f32 over the dead Q and K/V tiles, then out in
  // 16-byte chunks (o_tile.cuh); the statistics count O from the same tile.
  float* o_tile = reinterpret_cast<float*>(sq);
  __syncthreads();  // no warp still reads Q or a K/V stage (a pass may have had no tile)
  const int local_rows[2] = {16 * warp + g, 16 * warp + g + 8};
  stage_o<D>(o_tile, o, local_rows, row_ok, scale, t);
  __syncthreads();
  if constexpr (STATS) {  // O channels, before the tile is written out (no barrier: both read)
    const int c0 = int(threadIdx.x) % Tr::kThreadsPerRow;
QA_UNROLL
    for (int k = 0; k < Tr::kDimsPerThread; ++k) {
      ChannelAcc ch;
      const int c = c0 + k * Tr::kThreadsPerRow;
      if (c >= D) break;
      for (int r = int(threadIdx.x) / Tr::kThreadsPerRow; r < rows_here; r += Tr::kRowsPerPass)
        count_element(o_tile[OTile<D>::at(r, c)], ch, bs->hist[QA_STAT_O]);
      merge_channel(*scratch, QA_STAT_O, c, ch);
    }
  }
  store_o<Tr, T>(o_tile, rows_of<T>(p.o, varlen, b, seq.q_start + row0, head), rows_here, p, varlen, b,
                 seq.q_start + row0, head);

  // ---- statistics: one global atomic per counter ----
  if constexpr (STATS) {
    __syncthreads();
    flush_channels<D, NT>(*scratch, QA_STAT_Q, p.stats.channels[QA_STAT_Q], head * D, D);
    flush_channels<D, NT>(*scratch, QA_STAT_O, p.stats.channels[QA_STAT_O], head * D, D);
    if (counts_kv) {
      flush_channels<D, NT>(*scratch, QA_STAT_K, p.stats.channels[QA_STAT_K], kvh * D, D);
      flush_channels<D, NT>(*scratch, QA_STAT_V, p.stats.channels[QA_STAT_V], kvh * D, D);
    }
    flush_block_stats<NT>(*bs, p.stats, head);
  }
}

}  // namespace qa::tc

// One kernel symbol per (normaliser, dtype, head dim, statistics): qa_tc_<norm>_<dtype>_d<D>[_stats].
#define QA_TC_KERNEL(NAME, NORM, T, D, STATS) \
  QA_KERNEL_BOUNDS(NAME, QaAttnParams, p, 128, 1) { qa::tc::attention_body<NORM, T, D, STATS>(p); }

#define QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, D)                  \
  QA_TC_KERNEL(qa_tc_##norm##_##dt##_d##D, NORM, T, D, false) \
  QA_TC_KERNEL(qa_tc_##norm##_##dt##_d##D##_stats, NORM, T, D, true)

#define QA_TC_KERNELS_FOR_DTYPE(norm, NORM, dt, T)     \
  QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 32)         \
  QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 64)         \
  QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 96)         \
  QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 128)        \
  QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 192)        \
  QA_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 256)

// Every kernel of one normaliser: f16, bf16 × d32/64/96/128/192/256 × statistics off/on.
#define QA_TC_KERNELS(norm, NORM)                   \
  QA_TC_KERNELS_FOR_DTYPE(norm, NORM, f16, qa::f16) \
  QA_TC_KERNELS_FOR_DTYPE(norm, NORM, bf16, qa::bf16)
