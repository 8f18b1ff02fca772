// quietattn-arch: compute_75
// Decode against a paged KV cache with the clipped normaliser (docs/contract.md §3, §7): split-KV
// chunk and combine kernels, f32/f16/bf16, head dims up to 64/128/256. Bodies:
// kernels/decode/kernel.cuh.
#include "decode/kernel.cuh"

QA_DECODE_KERNELS(clipped, qa::attn::Clipped)
