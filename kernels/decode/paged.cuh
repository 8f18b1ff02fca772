// Page-aware addressing and the in-kernel checks of the indices only the GPU sees (docs/contract.md
// §7).
//
// Key j of sequence b lives at cache[table[b, j >> log2P], j & (P - 1)]. seq_lens_k and the
// table are device memory the host never validated, so a block checks every page entry of its
// sequence's visible range before it forms an address from one: a bad entry is recorded in the
// error record and the whole sequence is treated as empty by every block that reads it (each
// block checks the same range, so all chunks of the sequence agree without communicating).
// The record is QaAttnParams::errors (attention/error_record.cuh), shared with prefill.
#pragma once

#include "../attention/extents.cuh"
#include "../qa/types.cuh"

namespace qa::decode {

// seq_lens_k[b] when 0 <= it <= min(declared longest, table capacity); else records the error
// and returns -1.
__device__ __forceinline__ int checked_seq_len(const QaDecodeParams& dp, int b) {
  const int len = qa::ptr<const int>(dp.seq_lens_k)[b];
  const long long cap = (long long)dp.max_pages << dp.log2_page;
  const long long bound = cap < (long long)dp.attn.seqlen_k ? cap : (long long)dp.attn.seqlen_k;
  if (len < 0 || (long long)len > bound) {
    const int rule = len < 0 ? QA_RULE_NEGATIVE : QA_RULE_OVER_MAX;
    if (threadIdx.x == 0)
      record_error(dp.attn.errors, IndexError{QA_ERR_BAD_SEQ_LEN, b, -1, len, rule, bound_field(bound), 0});
    return -1;
  }
  return len;
}

// The block table row of sequence b.
__device__ __forceinline__ const int* table_row(const QaDecodeParams& dp, int b) {
  return qa::ptr<const int>(dp.block_table) + int64_t(b) * dp.table_stride;
}

// True when every page entry covering keys [lo, hi) is a page of the cache. Every thread of the
// block must call it (it holds two barriers); the first bad entry is recorded.
__device__ __forceinline__ bool pages_valid(const QaDecodeParams& dp, int b, int lo, int hi, int threads) {
  __shared__ int bad;
  if (threadIdx.x == 0) bad = 0;
  __syncthreads();
  if (lo < hi) {
    const int* row = table_row(dp, b);
    const int first = lo >> dp.log2_page, last = (hi - 1) >> dp.log2_page;
    for (int c = first + int(threadIdx.x); c <= last; c += threads) {
      const int page = row[c];
      if (page < 0 || page >= int(dp.num_pages)) {
        atomicExch(&bad, 1);
        const int rule = page < 0 ? QA_RULE_NEGATIVE : QA_RULE_BEYOND;
        record_error(dp.attn.errors, IndexError{QA_ERR_BAD_PAGE, b, c, page, rule, int(dp.num_pages), 0});
      }
    }
  }
  __syncthreads();
  return bad == 0;
}

// Element offset of key j's row of kv head `kvh` in a cache described by `t` (stride_batch =
// page stride, stride_seq = slot stride); the caller checked j's page entry.
__device__ __forceinline__ int64_t key_offset(const QaDecodeParams& dp, const QaTensorDesc& t,
                                              const int* row, int j, int kvh) {
  const int page = row[j >> dp.log2_page];
  const int slot = j & ((1 << dp.log2_page) - 1);
  return int64_t(page) * t.stride_batch + int64_t(slot) * t.stride_seq + int64_t(kvh) * t.stride_head;
}

// The query rows of sequence b in q, o, gate, lse and the partials. Batched: rows [0, q_len)
// of batch entry b. Varlen (cu_seqlens_q): rows [start, start + len) of the packed
// [total_q, heads, d] tensors, start = cu_seqlens_q[b].
struct QueryRows {
  int b;
  int start;  // first packed row (0 when batched)
  int len;    // query rows; 0 for a sequence with bad cu_seqlens_q entries
  bool packed;

  // Element offset of (query i, head) in a [b, sq, h, ..] or [total_q, h, ..] tensor.
  __device__ __forceinline__ int64_t offset(const QaTensorDesc& t, int i, int head) const {
    return (packed ? 0 : int64_t(b) * t.stride_batch) + int64_t(start + i) * t.stride_seq +
           int64_t(head) * t.stride_head;
  }
};

// Sequence b's query rows. cu_seqlens_q is device memory the host never validated: unless
// 0 <= cu[b] <= cu[b + 1] <= total_q and the sequence holds at most the declared longest
// q_len (seqlen_q: the grid and the plan are sized by it), the sequence has no rows (none is
// read or written) and, when `record`, the error is recorded (the same check as prefill's,
// attention/extents.cuh).
__device__ __forceinline__ QueryRows query_rows(const QaDecodeParams& dp, int b, bool record) {
  const QaAttnParams& p = dp.attn;
  if (p.cu_seqlens_q == 0) return {b, 0, int(p.seqlen_q), false};
  IndexError bad{};
  const qa::attn::Extent e = qa::attn::checked_extent(qa::ptr<const int>(p.cu_seqlens_q), b, p.total_q,
                                                      p.seqlen_q, QA_ERR_BAD_CU_SEQLENS_Q, &bad);
  if (record && threadIdx.x == 0) record_error(p.errors, bad);
  return QueryRows{b, e.start, e.len, true};
}

// Where row (query head of the group g, query i) of the block's G·q_len rows lives.
struct GroupRow {
  int head, i;
};
__device__ __forceinline__ GroupRow group_row(int r, int q_len, int kvh, int group) {
  return {kvh * group + r / q_len, r % q_len};
}

// True when the call asks for any statistics (the _stats instantiations run).
__device__ __forceinline__ bool wants_stats(const QaAttnParams& p) {
  return p.stats.heads != 0 || p.stats.tensors != 0 || p.stats.channels[0] != 0 ||
         p.stats.channels[1] != 0 || p.stats.channels[2] != 0 || p.stats.channels[3] != 0;
}

// The partial slot of (split c, sequence q.b, head, query i): head_dim accumulators, then m, l,
// then (statistics) the 6 row-statistics scalars of stats.cuh (A, B, n, Σ(x − xmax), x0, xmax;
// docs/contract.md §7). Batched: [splits, batch, heads, q_len] rows; varlen: [splits,
// total_q, heads] rows (indexed by the packed row). The host sizes it the same way
// (SplitPlan::partial_bytes over batch · q_len or total_q rows).
__device__ __forceinline__ float* partial_slot(const QaDecodeParams& dp, int c, const QueryRows& q, int head,
                                               int i) {
  const QaAttnParams& p = dp.attn;
  const int64_t row = q.packed ? (int64_t(c) * p.total_q + q.start + i) * p.heads + head
                               : ((int64_t(c) * p.batch + q.b) * p.heads + head) * p.seqlen_q + i;
  return qa::ptr<float>(dp.partials) + row * (int64_t(p.head_dim) + (wants_stats(p) ? 8 : 2));
}

// The keys any of the sequence's rows sees: [lo, hi) (every query head of a kv head shares one
// mask, so this is the union over the block's rows).
using qa::attn::KeyRange;
__device__ __forceinline__ KeyRange visible_keys(const qa::attn::Mask& mask, int q_len) {
  if (q_len == 0) return {0, 0};
  int lo = mask.kv_begin(0), hi = mask.kv_end(q_len - 1);
  if (lo >= hi) lo = hi = 0;
  return {lo, hi};
}

}  // namespace qa::decode
