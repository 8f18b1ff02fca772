// A kernel that must spill under -maxrregcount=16: .ci/test-check-ptx.sh proves that
// .ci/check-ptx.sh fails on a spill unless .ci/spill-allow bounds it.
extern "C" __global__ void spill_me(float* o, const float* a, int n) {
  float r[64];
  #pragma unroll
  for (int i = 0; i < 64; ++i) r[i] = a[threadIdx.x * 64 + i] * 1.5f;
  float s = 0.f;
  #pragma unroll
  for (int i = 0; i < 64; ++i) s += r[i] * r[(i * 7) % 64];
  o[threadIdx.x] = s;
}
