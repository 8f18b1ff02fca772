// quietattn-arch: sm_90a
// quietattn-emulate: no
// Proof that the build compiles arch-specific targets: this module is compiled for sm_90a
// alone (`-gencode=arch=compute_90a,code=sm_90a`) and uses `setmaxnreg`, which ptxas accepts
// only there, so a build that dropped the `a` fails here instead of shipping a generic sm_90
// image. It is not emulated: `setmaxnreg` has no twin in kernels/emu/. tests/hopper_probe.rs
// launches it on a GPU; .ci/sass-expect checks its USETMAXREG.
#include "../testing/testing.cuh"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "hopper_probe.cu must be compiled for the arch-specific target sm_90a"
#endif

// out[t] = 90'000 + t for each of the 128 threads (one warpgroup: `setmaxnreg` is executed by
// all four warps of a warpgroup together), written after the register budget was raised to
// 240, so a run that reaches the store has executed the sm_90a-only instruction.
QA_KERNEL_BOUNDS(qa_hopper_probe, QaTestArgs, p, 128, 1) {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
  uint32_t* out = qa::ptr<uint32_t>(p.buf[0]);
  const uint32_t t = threadIdx.x;
  out[t] = 90000u + t;
}
