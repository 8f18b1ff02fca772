// A kernel whose sm_90a build holds setmaxnreg (USETMAXREG), for .ci/test-check-ptx.sh: built for
// sm_90a it is what an arch-specific module ships; built for plain sm_90 (the `a` dropped) it
// compiles without the instruction, as a regressed build would.
extern "C" __global__ void __launch_bounds__(128, 1) probe(unsigned* out) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  asm volatile("setmaxnreg.inc.sync.aligned.u32 240;\n" ::: "memory");
#endif
  out[threadIdx.x] = threadIdx.x;
}
