// quietattn-arch: compute_75
// append_kv (vLLM's reshape_and_cache) on the device: one warp per token copies its [kv_heads, d]
// rows of k and v into slot slot_mapping[t] of the paged caches, bit for bit (any dtype of 2 or 4
// bytes). The slot is checked before any address is formed from it: -1 skips the token, anything
// else outside the cache is recorded in the error record and nothing is written for that token.
// Two tokens naming one slot is the caller's contract (as in vLLM): the host reference rejects
// it, the kernel does not detect it.
#include "decode/paged.cuh"

namespace qa::decode {

template <class E>
__device__ __forceinline__ void copy_rows(const QaAppendKvParams& p, uint64_t src, int64_t st_token,
                                          int64_t st_head, uint64_t cache, int t, int64_t slot) {
  const int lane = threadIdx.x % WARP_SIZE, d = int(p.head_dim), row = int(p.kv_heads) * d;
  const E* from = qa::ptr<const E>(src) + int64_t(t) * st_token;
  E* to = qa::ptr<E>(cache) + slot * row;
  for (int e = lane; e < row; e += WARP_SIZE) to[e] = from[int64_t(e / d) * st_head + e % d];
}

__device__ __forceinline__ void append_token(const QaAppendKvParams& p, int t) {
  const int64_t slot = qa::ptr<const int64_t>(p.slot_mapping)[t];
  if (slot == -1) return;
  if (slot < 0 || slot >= int64_t(p.slots)) {
    if (threadIdx.x % WARP_SIZE == 0) {
      const int value = slot > INT32_MAX ? INT32_MAX : (slot < INT32_MIN ? INT32_MIN : int(slot));
      const int rule = slot < 0 ? QA_RULE_NEGATIVE : QA_RULE_BEYOND;
      record_error(p.errors, IndexError{QA_ERR_BAD_SLOT, t, -1, value, rule, bound_field(p.slots), 0});
    }
    return;
  }
  if (p.elem_bytes == 2) {
    copy_rows<uint16_t>(p, p.k, p.k_stride_token, p.k_stride_head, p.k_cache, t, slot);
    copy_rows<uint16_t>(p, p.v, p.v_stride_token, p.v_stride_head, p.v_cache, t, slot);
  } else {
    copy_rows<uint32_t>(p, p.k, p.k_stride_token, p.k_stride_head, p.k_cache, t, slot);
    copy_rows<uint32_t>(p, p.v, p.v_stride_token, p.v_stride_head, p.v_cache, t, slot);
  }
}

}  // namespace qa::decode

// Grid: ceil(tokens / 4) blocks of 4 warps, one token per warp.
QA_KERNEL_BOUNDS(qa_append_kv, QaAppendKvParams, p, 128, 1) {
  const int64_t t = int64_t(blockIdx.x) * 4 + threadIdx.x / qa::WARP_SIZE;
  if (t < int64_t(p.tokens)) qa::decode::append_token(p, int(t));
}
