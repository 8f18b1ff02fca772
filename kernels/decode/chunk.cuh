// The split-KV chunk kernel (CUDA cores, any sm_75+, f32/f16/bf16): block (split, kv head,
// sequence) sweeps its chunk of the sequence's visible keys once for all G·q_len query rows of
// the kv head, so each K/V element of the chunk is read from global memory once per row group
// (G·q_len ≤ kBlockM rows: once; more rows sweep the chunk again from L2).
//
// splits = 1: the block owns every visible key and writes o and lse itself, exactly like the
// unsplit kernel (clipped runs both passes). splits > 1: it writes its chunk's partial
// (acc, m, l) for combine.cuh; the sink policies run as plain softmax in a chunk because the
// virtual outcome belongs to the merged row (added once by the combine).
#pragma once

#include "../attention/mask.cuh"
#include "../attention/online_softmax.cuh"
#include "../attention/output.cuh"
#include "../attention/variant.cuh"
#include "tiles.cuh"

namespace qa::decode {

using namespace qa::attn;

// The policy one chunk runs.
template <class Norm, bool kSplit>
struct ChunkPolicy {
  using type = Norm;
};
template <>
struct ChunkPolicy<OffByOne, true> {
  using type = Softmax;
};
template <>
struct ChunkPolicy<Sink, true> {
  using type = Softmax;
};

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
};

// One key tile of one pass: scores, mask, online update, acc += P·V (when the pass weighs).
template <class N, class Tr, int R, int G>
__device__ __forceinline__ void sweep_tile(Rows<R, G>& w, SharedStorage<Tr::kMaxD, false>& sm,
                                           const Mask& mask, const LogitMap& logit, int kv0, int kv_hi,
                                           int pass, int d) {
  constexpr int BN = Tr::kBlockN;
  constexpr int kSplitLanes = WARP_SIZE / Tr::kKeySplit;
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int key = lane % BN, part = lane / BN, split = lane / kSplitLanes;
  const bool owns_key = part == 0, weighs = pass == N::kPasses - 1;
  const bool finds_max = N::kRescales && pass == 0;
  float x[R];
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
    const bool vis = w.ok[r] && j < kv_hi && mask.visible(w.at[r].i, j);
    x[r] = vis ? logit(x[r]) : -INFINITY;  // invisible keys weigh exactly 0 in every policy
  }
  float tmax[R];
QA_UNROLL
  for (int r = 0; r < R; ++r) tmax[r] = -INFINITY;
  if (finds_max) {  // the tile's row max, read by every lane (the max is warp-uniform)
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
    if (finds_max) {
      const float alpha = w.st[r].template advance<N>(tmax[r]);
QA_UNROLL
      for (int g = 0; g < G; ++g)
QA_UNROLL
        for (int c = 0; c < 4; ++c) w.acc[r][g].v[c] *= alpha;
    }
    const float m_use = pass == 1 ? w.lse2[r] : N::shift(w.st[r].m);
    const Weight wt = N::weight(pass, x[r], m_use, w.ctx[r]);
    if (owns_key) w.st[r].l += wt.den;
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

// The epilogue of one row: o and lse (splits = 1) or the chunk's partial (splits > 1).
template <class N, class T, class Tr, bool kSplit, int R, int G>
__device__ __forceinline__ void finish_rows(Rows<R, G>& w, const QaDecodeParams& dp, int b, int pass) {
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
    if (!w.ok[r]) continue;
    const GroupRow at = w.at[r];
    float scale = 1.f, m_out = w.st[r].m, l_out = l;
    if constexpr (kSplit) {
      if (N::kPasses == 2 && pass == 1) m_out = w.lse2[r], l_out = 0.f;  // carry the row's lse
    } else {
      const bool two = N::kPasses == 2;
      scale = two ? 1.f : N::out_scale(w.st[r].m, l, w.ctx[r]);
      if (lane == 0) store_lse(p, b, at.head, at.i, two ? w.lse2[r] : N::lse2(w.st[r].m, l, w.ctx[r]));
    }
    float* slot = kSplit ? partial_slot(dp, int(blockIdx.x), b, at.head, at.i) : nullptr;
    if (kSplit && lane == 0) slot[d] = m_out, slot[d + 1] = l_out;
    if (!stores) continue;
    T* o = qa::ptr<T>(p.o.ptr) + int64_t(b) * p.o.stride_batch + int64_t(at.i) * p.o.stride_seq +
           int64_t(at.head) * p.o.stride_head;
QA_UNROLL
    for (int g = 0; g < G; ++g) {
      const int c0 = 4 * (lane % kSplitLanes + g * WARP_SIZE);
      if (c0 >= d) continue;
QA_UNROLL
      for (int c = 0; c < 4; ++c) {
        const float v = w.acc[r][g].v[c] * scale;
        if constexpr (kSplit) slot[c0 + c] = v;
        else o[c0 + c] = qa::from_float<T>(v * gate_factor(p, false, b, at.i, at.head, c0 + c));
      }
    }
  }
}

// Sets up the warp's rows [row0 + warp·R, +R) of the block's G·q_len rows.
template <class N, class Norm, bool kSplit, int R, int G>
__device__ __forceinline__ void start_rows(Rows<R, G>& w, const QaDecodeParams& dp, int b, int kvh,
                                           int row0, int rows, int len) {
  const QaAttnParams& p = dp.attn;
  const int warp = threadIdx.x / WARP_SIZE, lane = threadIdx.x % WARP_SIZE;
  const int group = int(p.heads / p.kv_heads), q_len = int(p.seqlen_q);
QA_UNROLL
  for (int r = 0; r < R; ++r) {
    w.row[r] = row0 + warp * R + r;
    w.ok[r] = w.row[r] < rows;
    w.at[r] = group_row(w.ok[r] ? w.row[r] : 0, q_len, kvh, group);
    w.ctx[r] = norm_ctx<Norm>(p, len, w.at[r].head);
    w.st[r].m = N::start_max(w.ctx[r]);
    w.st[r].l = lane == 0 ? N::kStartMass : 0.f;
    w.lse2[r] = -INFINITY;
    // clipped pass 1 of a split launch: combine pass 0 left the row's lse in this chunk's slot
    if (kSplit && N::kPasses == 2 && dp.pass == 1 && w.ok[r])
      w.lse2[r] = partial_slot(dp, int(blockIdx.x), b, w.at[r].head, w.at[r].i)[p.head_dim];
QA_UNROLL
    for (int g = 0; g < G; ++g) w.acc[r][g] = f32x4{{0.f, 0.f, 0.f, 0.f}};
  }
}

// The visible keys of sequence b after the index checks: [lo, hi); empty for a bad sequence.
__device__ __forceinline__ KeyRange checked_keys(const QaDecodeParams& dp, int b, int threads, int* len) {
  const int q_len = int(dp.attn.seqlen_q);
  const int n = checked_seq_len(dp, b);
  KeyRange keys = visible_keys(Mask(dp.attn, Sequence{0, q_len, 0, n < 0 ? 0 : n}), q_len);
  const bool ok = pages_valid(dp, b, keys.lo, keys.hi, threads);  // every thread: it has barriers
  *len = n >= 0 && ok ? n : 0;
  return *len > 0 ? keys : KeyRange{0, 0};
}

template <class Norm, class T, int MAX_D, bool kSplit>
__device__ __forceinline__ void chunk_body(const QaDecodeParams& dp, SharedStorage<MAX_D, false>& sm) {
  using Tr = Traits<MAX_D>;
  using N = typename ChunkPolicy<Norm, kSplit>::type;
  constexpr int R = Tr::kRowsPerWarp, BM = Tr::kBlockM, BN = Tr::kBlockN;
  const QaAttnParams& p = dp.attn;
  const int kvh = int(blockIdx.y), b = int(blockIdx.z), d = int(p.head_dim);
  int len = 0;
  const KeyRange keys = checked_keys(dp, b, Tr::kThreads, &len);
  const Mask mask(p, Sequence{0, int(p.seqlen_q), 0, len});
  const LogitMap logit(p);
  // this block's chunk of the visible keys (all of them when splits = 1)
  const long long c_lo = kSplit ? keys.lo + (long long)blockIdx.x * dp.chunk : keys.lo;
  const int kv_lo = int(c_lo < keys.hi ? c_lo : keys.hi);
  const int kv_hi = kSplit ? int(c_lo + dp.chunk < keys.hi ? c_lo + dp.chunk : keys.hi) : keys.hi;
  const int* table = table_row(dp, b);
  const int rows = int(p.heads / p.kv_heads) * int(p.seqlen_q);
  const int first = kSplit ? int(dp.pass) : 0, last = kSplit ? int(dp.pass) : N::kPasses - 1;

  for (int row0 = 0; row0 < rows; row0 += BM) {
    __syncthreads();  // the previous row group is done with every tile
    load_queries<Tr, T>(sm.tiles.q, p, b, kvh, row0, rows);
    Rows<R, Tr::kGroupsPerLane> w;
    start_rows<N, Norm, kSplit>(w, dp, b, kvh, row0, rows, len);
    for (int pass = first; pass <= last; ++pass) {
      if (!kSplit && pass == 1) {
QA_UNROLL
        for (int r = 0; r < R; ++r) w.lse2[r] = N::lse2(w.st[r].m, warp_sum(w.st[r].l), w.ctx[r]);
      }
      for (int kv0 = kv_lo; kv0 < kv_hi; kv0 += BN) {
        __syncthreads();  // Q staged / the previous tile consumed
        const int valid = kv_hi - kv0 < BN ? kv_hi - kv0 : BN;
        load_keys<Tr, T>(sm.tiles.k, dp, p.k, table, kv0, valid, kvh, d);
        if (pass == N::kPasses - 1) load_keys<Tr, T>(sm.tiles.v, dp, p.v, table, kv0, valid, kvh, d);
        __syncthreads();
        sweep_tile<N, Tr>(w, sm, mask, logit, kv0, kv_hi, pass, d);
      }
    }
    finish_rows<N, T, Tr, kSplit>(w, dp, b, last);
  }
}

// One shared tile storage for both instantiations (a static __shared__ in each would count twice).
template <class Norm, class T, int MAX_D>
__device__ __forceinline__ void chunk_kernel(const QaDecodeParams& dp) {
  __shared__ SharedStorage<MAX_D, false> sm;
  if (dp.splits <= 1) chunk_body<Norm, T, MAX_D, false>(dp, sm);
  else chunk_body<Norm, T, MAX_D, true>(dp, sm);
}

}  // namespace qa::decode
