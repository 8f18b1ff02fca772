// quietattn-arch: compute_80
// Decode against a paged KV cache with the sigmoid normaliser on tensor cores (docs/contract.md §3,
// §7): the split-KV chunk kernel, f16/bf16, head dims up to 64/128; its combine is
// decode_sigmoid.cu's. Body: kernels/decode_tc/chunk.cuh.
#include "decode_tc/kernel.cuh"

QA_DECODE_TC_KERNELS(sigmoid, qa::attn::Sigmoid)
