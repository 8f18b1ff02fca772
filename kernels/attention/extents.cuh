// Where each sequence's rows are, checked in the kernel. Varlen offsets (cu_seqlens) are device
// memory the host never read: it declared the longest sequences (the grid has max_seqlen_q /
// BLOCK_M query tiles) and the rows of the packed tensors, and nothing else stops an offset
// from disagreeing with them. A sequence whose offsets break a bound is neither read nor
// written through them, and the entry is recorded (error_record.cuh), so the host returns an
// error naming it instead of rows the grid never covered.
#pragma once

#include "error_record.cuh"
#include "mask.cuh"

namespace qa::attn {

// Rows [start, start + len) of a packed tensor.
struct Extent {
  int start, len;
};

// Sequence b's rows as offsets `cu` delimit them: [cu[b], cu[b + 1]) when
// 0 <= cu[b] <= cu[b + 1] <= rows and cu[b + 1] - cu[b] <= longest; else no rows, and `err`
// (code `code`) names the entry and the bound it broke (else err->code stays QA_ERR_OK).
__device__ __forceinline__ Extent checked_extent(const int* cu, int b, long long rows, long long longest,
                                                 int code, IndexError* err) {
  const int lo = cu[b], hi = cu[b + 1];
  IndexError e{code, b, b + 1, hi, QA_RULE_NONE, -1, lo};
  if (lo < 0) {
    e.column = b;
    e.value = lo;
    e.rule = QA_RULE_NEGATIVE;
  } else if (hi < lo) {
    e.rule = QA_RULE_DECREASING;
  } else if ((long long)hi > rows) {
    e.rule = QA_RULE_BEYOND;
    e.bound = bound_field(rows);
  } else if ((long long)hi - lo > longest) {
    e.rule = QA_RULE_OVER_MAX;
    e.bound = bound_field(longest);
  } else {
    return Extent{lo, hi - lo};
  }
  *err = e;
  return Extent{0, 0};
}

// Sequence b of a prefill launch. Fixed lengths are the host's own numbers. Varlen: bad query
// offsets leave the sequence empty (no row is known to be its own, so none is read or written,
// and its keys are not counted either); bad key offsets leave it without keys (its rows are
// written as rows that see no key). `err` receives the bad entry (the query offsets' first),
// else QA_ERR_OK.
__device__ __forceinline__ Sequence sequence_of(const QaAttnParams& p, int b, IndexError* err) {
  *err = IndexError{};
  if (p.cu_seqlens_q == 0) return Sequence{0, int(p.seqlen_q), 0, int(p.seqlen_k)};
  IndexError bad_k{};
  const Extent q = checked_extent(qa::ptr<const int>(p.cu_seqlens_q), b, p.total_q, p.seqlen_q,
                                  QA_ERR_BAD_CU_SEQLENS_Q, err);
  const Extent k = checked_extent(qa::ptr<const int>(p.cu_seqlens_k), b, p.total_k, p.seqlen_k,
                                  QA_ERR_BAD_CU_SEQLENS_K, &bad_k);
  if (err->code != QA_ERR_OK) return Sequence{0, 0, 0, 0};
  *err = bad_k;
  return Sequence{q.start, q.len, k.start, k.len};
}

// Records the bad entry of the block's sequence once per sequence (thread 0 of its first query
// tile of head 0; that block exists whatever the lengths: the grid has at least one tile).
__device__ __forceinline__ void record_extent_error(const QaAttnParams& p, const IndexError& err) {
  if (err.code != QA_ERR_OK && blockIdx.x == 0 && blockIdx.y == 0 && threadIdx.x == 0) record_error(p.errors, err);
}

}  // namespace qa::attn
