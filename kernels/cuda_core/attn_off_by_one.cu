// quietattn-arch: compute_75
// Flash attention with the off_by_one normaliser (docs/contract.md §3) on CUDA cores: f32/f16/bf16
// inputs, head dims up to 64/128/256, statistics off/on. The body is kernels/cuda_core/kernel.cuh.
#include "cuda_core/kernel.cuh"

QA_ATTN_KERNELS(off_by_one, qa::attn::OffByOne)
