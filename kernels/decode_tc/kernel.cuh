// The tensor-core decode family's symbols: per normaliser, dtype and head dim D (64/128;
// smaller head dims run zero-padded in the next D), the chunk kernel qa_decode_tc_<norm>_<dtype>_d<D>
// with grid (splits, kv heads, batch), 128 threads and Traits<D>::smem_bytes of dynamic shared
// memory. Its partials are the CUDA-core chunk's: the combine is decode/'s
// qa_decode_<norm>_<dtype>_d<D>_combine. The _stats variant also fills the statistics.
#pragma once

#include "chunk.cuh"

#define QA_DECODE_TC_KERNEL(NAME, NORM, T, D, STATS) \
  QA_KERNEL_BOUNDS(NAME, QaDecodeParams, p, 128, 1) { qa::decode_tc::chunk_kernel<NORM, T, D, STATS>(p); }

#define QA_DECODE_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, D)                 \
  QA_DECODE_TC_KERNEL(qa_decode_tc_##norm##_##dt##_d##D, NORM, T, D, false) \
  QA_DECODE_TC_KERNEL(qa_decode_tc_##norm##_##dt##_d##D##_stats, NORM, T, D, true)

// Head dims 64 and 128 only: at d256 the O accumulator (16 rows × 256 channels per warp, 128
// floats per lane) spills on sm_80 and sm_90 (ptxas: 36-52 bytes without statistics, 272 with);
// the host serves head dims above 128 on CUDA cores.
#define QA_DECODE_TC_KERNELS_FOR_DTYPE(norm, NORM, dt, T) \
  QA_DECODE_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 64)     \
  QA_DECODE_TC_KERNELS_FOR_DIM(norm, NORM, dt, T, 128)

// Every tensor-core decode chunk kernel of one normaliser: f16, bf16 × d64/128 × statistics.
#define QA_DECODE_TC_KERNELS(norm, NORM)                   \
  QA_DECODE_TC_KERNELS_FOR_DTYPE(norm, NORM, f16, qa::f16) \
  QA_DECODE_TC_KERNELS_FOR_DTYPE(norm, NORM, bf16, qa::bf16)
