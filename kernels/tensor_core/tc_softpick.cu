// quietattn-arch: compute_80
// Flash attention with the softpick normaliser (docs/contract.md §3) on tensor cores: f16/bf16
// inputs, head dims 32/64/96/128/192/256, statistics off/on. The body is
// kernels/tensor_core/kernel.cuh; the policy is the direct-difference form (variant.cuh,
// SoftpickFast), exact enough for 16-bit outputs.
#include "tensor_core/kernel.cuh"

QA_TC_KERNELS(softpick, qa::attn::SoftpickFast)
