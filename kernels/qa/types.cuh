// Element types f32 / f16 / bf16 and their conversions to and from f32.
//
// f16 and bf16 are plain 16-bit storage structs (no cuda_fp16.h needed on either branch).
// bf16 converts with integer arithmetic (identical code on device and host, any sm_75+);
// f16 uses the hardware cvt on the device and an exact software conversion when emulated.
#pragma once

#include "runtime.cuh"

namespace qa {

struct f16 { uint16_t bits; };
struct bf16 { uint16_t bits; };

// ---- f16 ----
__device__ __forceinline__ float to_float(f16 x) {
#if defined(QA_EMULATED)
  return qa_emu::half_to_float(x.bits);
#else
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(x.bits));
  return f;
#endif
}

__device__ __forceinline__ f16 f16_from_float(float f) {
#if defined(QA_EMULATED)
  return f16{qa_emu::float_to_half_rn(f)};
#else
  uint16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return f16{h};
#endif
}

// ---- bf16: the high half of an f32, rounded to nearest even; NaN stays a (quiet) NaN ----
__device__ __forceinline__ float to_float(bf16 x) { return __uint_as_float(uint32_t(x.bits) << 16); }

__device__ __forceinline__ bf16 bf16_from_float(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{uint16_t(u >> 16)};
}

__device__ __forceinline__ float to_float(float x) { return x; }

// from_float<T>(f): f32 -> element type T with round-to-nearest-even.
template <class T> __device__ __forceinline__ T from_float(float f);
template <> __device__ __forceinline__ float from_float<float>(float f) { return f; }
template <> __device__ __forceinline__ f16 from_float<f16>(float f) { return f16_from_float(f); }
template <> __device__ __forceinline__ bf16 from_float<bf16>(float f) { return bf16_from_float(f); }

// The ABI dtype tag of each element type.
template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr uint32_t value = QA_DTYPE_F32; };
template <> struct dtype_of<f16> { static constexpr uint32_t value = QA_DTYPE_F16; };
template <> struct dtype_of<bf16> { static constexpr uint32_t value = QA_DTYPE_BF16; };

}  // namespace qa
