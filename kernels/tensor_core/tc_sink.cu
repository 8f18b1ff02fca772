// quietattn-arch: compute_80
// Flash attention with the sink normaliser (docs/contract.md §3) on tensor cores: f16/bf16 inputs,
// head dims 32/64/96/128/192/256, statistics off/on. The body is kernels/tensor_core/kernel.cuh.
#include "tensor_core/kernel.cuh"

QA_TC_KERNELS(sink, qa::attn::Sink)
