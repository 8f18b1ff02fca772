// quietattn-arch: compute_80
// Test-only tensor-core GEMM tiles (see gemm_tile.cuh); tests/emulator_gemm.rs checks them
// exactly against an integer reference, on the emulator and on a GPU.
#include "gemm_tile.cuh"

QA_KERNEL_BOUNDS(qa_test_gemm_f16, QaTestArgs, p, gemm::THREADS, 1) { gemm::gemm_tile<qa::f16, gemm::NONE>(p); }
QA_KERNEL_BOUNDS(qa_test_gemm_bf16, QaTestArgs, p, gemm::THREADS, 1) { gemm::gemm_tile<qa::bf16, gemm::NONE>(p); }
