// The decode kernel family's symbols: per normaliser, dtype and head-dim bound, the chunk kernel
// qa_decode_<norm>_<dtype>_d<D> (grid (splits, kv heads, batch), 128 threads; splits = 1 writes
// o/lse, more write partials) and the combine qa_decode_combine_<norm>_<dtype>_d<D> (4 rows of
// (b, head, i) per 128-thread block); the _stats pair also fills the statistics (stats.cuh).
#pragma once

#include "chunk.cuh"
#include "combine.cuh"

#define QA_DECODE_KERNEL(NAME, NORM, T, MAX_D, STATS)                   \
  QA_KERNEL_BOUNDS(NAME, QaDecodeParams, p, 128, 1) {                   \
    qa::decode::chunk_kernel<NORM, T, MAX_D, STATS>(p);                 \
  }                                                                     \
  QA_KERNEL_BOUNDS(NAME##_combine, QaDecodeParams, p, 128, 1) {         \
    qa::decode::combine_body<NORM, T, MAX_D, STATS>(p);                 \
  }

#define QA_DECODE_KERNELS_FOR_DTYPE(norm, NORM, dt, T)                          \
  QA_DECODE_KERNEL(qa_decode_##norm##_##dt##_d64, NORM, T, 64, false)             \
  QA_DECODE_KERNEL(qa_decode_##norm##_##dt##_d128, NORM, T, 128, false)           \
  QA_DECODE_KERNEL(qa_decode_##norm##_##dt##_d256, NORM, T, 256, false)           \
  QA_DECODE_KERNEL(qa_decode_##norm##_##dt##_d64_stats, NORM, T, 64, true)        \
  QA_DECODE_KERNEL(qa_decode_##norm##_##dt##_d128_stats, NORM, T, 128, true)      \
  QA_DECODE_KERNEL(qa_decode_##norm##_##dt##_d256_stats, NORM, T, 256, true)

// Every decode kernel of one normaliser: f32, f16, bf16 × d64/128/256 × statistics off/on.
#define QA_DECODE_KERNELS(norm, NORM)                    \
  QA_DECODE_KERNELS_FOR_DTYPE(norm, NORM, f32, float)   \
  QA_DECODE_KERNELS_FOR_DTYPE(norm, NORM, f16, qa::f16) \
  QA_DECODE_KERNELS_FOR_DTYPE(norm, NORM, bf16, qa::bf16)
