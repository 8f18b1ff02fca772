// The error record (abi.h QaErrorRecord) of every kernel that reads an index only the device
// holds: cu_seqlens (prefill and decode), seq_lens_k and block-table entries (decode), slots
// (append_kv). A kernel never forms an address from a bad index; it records the first one so
// the host can name it as an error instead of leaving rows silently unwritten.
#pragma once

#include "../qa/types.cuh"

namespace qa {

// What a kernel found wrong with one index (the fields of QaErrorRecord but the reserved word).
struct IndexError {
  int code;    // QaErrorCode; QA_ERR_OK: nothing wrong
  int seq;     // sequence (append_kv: token)
  int column;  // the entry's index, or -1
  int value;   // the offending value
  int rule;    // QaErrorRule
  int bound;   // the bound of the rule, or -1
  int other;   // cu_seqlens: the sequence's first offset
};

// A count (rows, pages, a declared maximum) as a record field: the host keeps them below 2^31,
// raw callers may not.
__device__ __forceinline__ int bound_field(long long n) { return n > INT32_MAX ? INT32_MAX : int(n); }

// Records `e` at `errors` (0: the launch keeps no record) unless an error is already there.
// Whoever wins the compare-and-swap on the code word writes the rest; later errors are dropped
// (one record, like a sticky CUDA error). The host reads it only after the launch completes.
__device__ __forceinline__ void record_error(uint64_t errors, const IndexError& e) {
  if (errors == 0 || e.code == QA_ERR_OK) return;
  QaErrorRecord* r = qa::ptr<QaErrorRecord>(errors);
  if (atomicCAS(&r->code, 0, e.code) == 0) {
    r->seq = e.seq;
    r->column = e.column;
    r->value = e.value;
    r->rule = e.rule;
    r->bound = e.bound;
    r->other = e.other;
  }
}

}  // namespace qa
