// What one attention block owns, for every kernel family: its (batch, head, kv head), the
// sequence's extents, the mask, its query rows and the keys they see. Written once, so the
// families cannot disagree on which block is idle, which one counts K/V or which keys a row sees.
#pragma once

#include "extents.cuh"

namespace qa::attn {

// n clamped to [0, most]: how many of `most` rows exist when `n` rows are left.
__device__ __forceinline__ int clamp_rows(int n, int most) { return n < 0 ? 0 : (n > most ? most : n); }

struct BlockInfo {
  int b, head, kvh;  // grid (., head, batch); kv head of the query head's group
  bool varlen;       // cu_seqlens: rows start at seq.q_start / seq.k_start of packed tensors
  IndexError bad;    // a bad cu_seqlens entry of the sequence (QA_ERR_OK: none); seq is then cut
  Sequence seq;      // checked: never reaches past the rows the host declared
  Mask mask;
  int row0, rows;  // the block's first query row in its sequence, and how many it owns
  // The designated K/V counter of statistics: the first query tile of the first query head of
  // each group; it sweeps every key tile even when it owns no rows.
  bool counts_kv;
  KeyRange keys;  // keys any of the block's rows sees

  // Trivial, so a block can keep one copy in shared memory (read there by loops that would
  // otherwise hold every field in registers).
  BlockInfo() = default;

  // Block (blockIdx.x, head, batch) of `block_m` query rows. Checks the sequence's offsets
  // (extents.cuh) and records a bad one in p.errors: every family constructs this before it
  // reads anything, so none can compute a sequence the host's bounds do not cover, or skip it
  // silently.
  __device__ __forceinline__ BlockInfo(const QaAttnParams& p, int block_m, bool stats)
      : b(int(blockIdx.z)), head(int(blockIdx.y)), kvh(head / int(p.heads / p.kv_heads)),
        varlen(p.cu_seqlens_q != 0), seq(sequence_of(p, b, &bad)), mask(p, seq), row0(int(blockIdx.x) * block_m),
        rows(clamp_rows(seq.q_len - row0, block_m)),
        counts_kv(stats && blockIdx.x == 0 && head % int(p.heads / p.kv_heads) == 0), keys(keys_of(row0, rows)) {
    record_extent_error(p, bad);
  }

  // Nothing to do for the whole block (so no barrier is skipped by a subset of it).
  __device__ __forceinline__ bool idle() const { return rows == 0 && !counts_kv; }

  // Keys any of rows [i0, i0 + n) sees (both mask bounds grow with the row).
  __device__ __forceinline__ KeyRange keys_of(int i0, int n) const {
    if (n <= 0) return {0, 0};
    const int lo = mask.kv_begin(i0), hi = mask.kv_end(i0 + n - 1);
    return lo < hi ? KeyRange{lo, hi} : KeyRange{0, 0};
  }
};

}  // namespace qa::attn
