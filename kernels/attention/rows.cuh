// Where a sequence's rows of q/k/v/o live in global memory (any strides, batched or varlen),
// shared by every kernel family.
#pragma once

#include "../qa/types.cuh"

namespace qa::attn {

// The element stride between rows and the address of row 0 of (sequence, head): E is const T
// for the inputs, T for the output (OutRowPtr).
template <class T, class E = const T>
struct RowPtr {
  E* base;
  int64_t stride;
};
template <class T>
using OutRowPtr = RowPtr<T, T>;

__device__ __forceinline__ int64_t row0_offset(const QaTensorDesc& t, bool varlen, int b, int start, int head) {
  return (varlen ? 0 : int64_t(b) * t.stride_batch) + int64_t(start) * t.stride_seq + int64_t(head) * t.stride_head;
}

template <class T>
__device__ __forceinline__ RowPtr<T> rows_of(const QaTensorDesc& t, bool varlen, int b, int start,
                                              int head) {
  return {qa::ptr<const T>(t.ptr) + row0_offset(t, varlen, b, start, head), t.stride_seq};
}

// The output's rows, writable.
template <class T>
__device__ __forceinline__ OutRowPtr<T> out_rows_of(const QaTensorDesc& t, bool varlen, int b, int start,
                                                     int head) {
  return {qa::ptr<T>(t.ptr) + row0_offset(t, varlen, b, start, head), t.stride_seq};
}

// A value of any dtype (a gate tensor's own, not necessarily q's).
__device__ __forceinline__ float load_any(uint64_t addr, uint32_t dtype, int64_t i) {
  if (dtype == QA_DTYPE_F16) return qa::to_float(qa::ptr<const qa::f16>(addr)[i]);
  if (dtype == QA_DTYPE_BF16) return qa::to_float(qa::ptr<const qa::bf16>(addr)[i]);
  return qa::ptr<const float>(addr)[i];
}

}  // namespace qa::attn
