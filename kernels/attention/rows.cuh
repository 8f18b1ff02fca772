// Where a sequence's rows of q/k/v/o live in global memory (any strides, batched or varlen),
// shared by every kernel family.
#pragma once

#include "../qa/types.cuh"

namespace qa::attn {

// The element stride between rows and the address of row 0 of (sequence, head).
template <class T>
struct RowPtr {
  const T* base;
  int64_t stride;
};

template <class T>
__device__ __forceinline__ RowPtr<T> rows_of(const QaTensorDesc& t, bool varlen, int b, int start,
                                              int head) {
  const int64_t off = (varlen ? 0 : int64_t(b) * t.stride_batch) + int64_t(start) * t.stride_seq +
                      int64_t(head) * t.stride_head;
  return {qa::ptr<const T>(t.ptr) + off, t.stride_seq};
}

// A value of any dtype (a gate tensor's own, not necessarily q's).
__device__ __forceinline__ float load_any(uint64_t addr, uint32_t dtype, int64_t i) {
  if (dtype == QA_DTYPE_F16) return qa::to_float(qa::ptr<const qa::f16>(addr)[i]);
  if (dtype == QA_DTYPE_BF16) return qa::to_float(qa::ptr<const qa::bf16>(addr)[i]);
  return qa::ptr<const float>(addr)[i];
}

}  // namespace qa::attn
