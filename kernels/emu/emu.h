// SIMT emulator: the CUDA execution model for host C++20 (included by qa/runtime.cuh when
// QA_EMULATED is defined; never include it directly).
//
// Model: a launch runs its blocks one after another; the threads of a block are cooperative
// fibers on one OS thread, scheduled deterministically (a thread runs until it blocks at a
// barrier or warp collective). Determinism is what makes a missing barrier or a too-loose
// cp.async wait show up the same way on every run: shared memory and cp.async destinations
// are poisoned with 0xFF bytes (NaN) per block, and the scheduler lets the lowest (even blocks)
// or highest (odd blocks) runnable thread run ahead as far as the synchronisation allows.
// Every broken rule (divergent barrier, lane outside a shuffle mask, deadlock, unwaited
// cp.async at exit, ...) stops the launch with an error naming kernel, block and thread.
#pragma once

#include <math.h>

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <source_location>
#include <type_traits>

#define QA_EMULATED_RUNTIME 1

// ---- CUDA keywords ----
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __align__(n) __attribute__((aligned(n)))
#define __launch_bounds__(...)
#define __grid_constant__
// build/emulator.rs rewrites every `__shared__` declaration into QA_EMU_SHARED (below); one
// that escaped the rewrite (e.g. hidden in a macro) fails to compile here instead of silently
// losing its poisoning.
#define __shared__ qa_emu_shared_declaration_was_not_rewritten_by_build_emulator_rs

struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};
constexpr int warpSize = 32;

// The running thread's coordinates; the scheduler updates them at every switch.
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;

namespace qa_emu {
using Site = std::source_location;

// ---- runtime entry points (kernels/emu/*.cpp) ----
[[noreturn]] void fail(const char* what);
void syncthreads(Site site);
void syncwarp(unsigned mask, Site site);
// PTX shfl.sync modes.
enum ShflMode { SHFL_IDX = 0, SHFL_UP = 1, SHFL_DOWN = 2, SHFL_BFLY = 3 };
uint64_t shfl(ShflMode mode, unsigned mask, uint64_t value, int b, int width, Site site);
enum VoteKind { VOTE_BALLOT = 0, VOTE_ANY = 1, VOTE_ALL = 2 };
unsigned vote(VoteKind kind, unsigned mask, bool pred, Site site);
enum ReduceKind { REDUCE_ADD = 0, REDUCE_MIN = 1, REDUCE_MAX = 2, REDUCE_AND = 3, REDUCE_OR = 4, REDUCE_XOR = 5 };
uint32_t reduce(ReduceKind kind, bool is_signed, unsigned mask, uint32_t value, Site site);
unsigned char* dynamic_smem();
void register_shared(void* ptr, size_t bytes);
// PTX-level operations behind qa/ptx.cuh.
void cp_async(void* dst, const void* src, unsigned src_bytes, Site site);
void cp_async_commit();
void cp_async_wait(int newest_pending, Site site);
enum MmaKind { MMA_F16 = 0, MMA_BF16 = 1 };
void mma_m16n8k16(MmaKind kind, float d[4], const uint32_t a[4], const uint32_t b[2], const float c[4], Site site);
void ldmatrix(int matrices, bool trans, uint32_t* r, const void* row_ptr, Site site);

// ---- f16 <-> f32, exact (IEEE binary16, round to nearest even) ----
inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: mant * 2^-24, exact in f32
    const float mag = float(mant) * 0x1p-24f;
    return sign ? -mag : mag;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant ? 0x400000u | (mant << 13) : 0u));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline uint16_t float_to_half_rn(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // quiet NaN
  if (a >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // >= 65520 rounds to inf
  if (a >= 0x38800000u) {  // normal half: drop 13 mantissa bits, ties to even
    uint32_t h = ((a >> 23) - 112u) << 10 | ((a >> 13) & 0x3ffu);
    const uint32_t rest = a & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // a carry bumps the exponent
    return uint16_t(sign | h);
  }
  if (a <= 0x33000000u) return sign;  // <= 2^-25: ties to even gives zero
  // Subnormal half: value / 2^-24 = m >> (126 - e), rounded to nearest even.
  const uint32_t e = a >> 23;
  const uint32_t m = (a & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126u - e;
  uint32_t h = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1u);
  if (rest > halfway || (rest == halfway && (h & 1u))) ++h;
  return uint16_t(sign | h);
}

// ---- f32 -> bf16, round to nearest even (the high half of an f32); NaN stays a quiet NaN ----
inline uint16_t float_to_bf16_rn(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

// Static __shared__ storage: one instance shared by the block, registered on first use so the
// runtime can poison it before every block.
template <class T, size_t Align>
struct Shared {
  alignas(Align < alignof(T) ? alignof(T) : Align) T value;
  Shared() { register_shared(&value, sizeof(T)); }
  Shared(const Shared&) = delete;
  Shared& operator=(const Shared&) = delete;
};

template <class T>
inline uint64_t to_bits(T v) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of a type over 8 bytes");
  uint64_t b = 0;
  std::memcpy(&b, &v, sizeof(T));
  return b;
}
template <class T>
inline T from_bits(uint64_t b) {
  T v;
  std::memcpy(&v, &b, sizeof(T));
  return v;
}

template <class T, class F>
inline T atomic_update(T* addr, F f) {
  std::atomic_ref<T> ref(*addr);
  T old = ref.load();
  while (!ref.compare_exchange_weak(old, f(old))) {
  }
  return old;
}
}  // namespace qa_emu

// The rewritten form of `__shared__ [__align__(A)] TYPE NAME DIMS;` (see build/emulator.rs):
// `QA_EMU_SHARED(A, NAME, TYPE DIMS)`.
#define QA_EMU_SHARED(align, name, ...)                                                   \
  static ::qa_emu::Shared<__VA_ARGS__, align> qa_emu_shared_storage_##name;                \
  static auto& name = qa_emu_shared_storage_##name.value

// ---- project macros (same meaning as the device branch of qa/runtime.cuh) ----
namespace qa_emu {
struct KernelInfo {
  const char* name;
  size_t params_size;
  unsigned max_threads;  // __launch_bounds__ limit, 0 = none
  void (*entry)(const void* params);
};
template <class Params, void (*F)(const Params)>
void invoke(const void* bytes) {
  Params p;
  std::memcpy(static_cast<void*>(&p), bytes, sizeof(Params));
  F(p);
}
namespace {
// Each kernel translation unit has its own table; the generated wrapper exports it.
struct TuKernels {
  KernelInfo items[64];
  size_t count = 0;
};
inline TuKernels& tu_kernels() {
  static TuKernels t;
  return t;
}
struct Registrar {
  Registrar(const char* name, size_t params_size, unsigned max_threads, void (*entry)(const void*)) {
    TuKernels& t = tu_kernels();
    if (t.count == 64) fail("more than 64 kernels in one .cu file");
    t.items[t.count++] = KernelInfo{name, params_size, max_threads, entry};
  }
};
}  // namespace
}  // namespace qa_emu

#define QA_DEVICE 0
#define QA_KERNEL_BOUNDS(name, Params, p, threads, min_blocks)                                    \
  static void name(const Params p);                                                              \
  [[maybe_unused]] static const ::qa_emu::Registrar qa_emu_registrar_##name{                     \
      #name, sizeof(Params), (threads), &::qa_emu::invoke<Params, &name>};                        \
  static void name(const Params p)
#define QA_KERNEL(name, Params, p) QA_KERNEL_BOUNDS(name, Params, p, 0, 0)
#define QA_DYNAMIC_SMEM(T, ptr) T* ptr = reinterpret_cast<T*>(::qa_emu::dynamic_smem())

// ---- synchronisation and warp built-ins ----
inline void __syncthreads(qa_emu::Site s = qa_emu::Site::current()) { qa_emu::syncthreads(s); }
inline void __syncwarp(unsigned mask = 0xffffffffu, qa_emu::Site s = qa_emu::Site::current()) {
  qa_emu::syncwarp(mask, s);
}

template <class T>
inline T __shfl_sync(unsigned mask, T var, int src_lane, int width = warpSize,
                     qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::from_bits<T>(qa_emu::shfl(qa_emu::SHFL_IDX, mask, qa_emu::to_bits(var), src_lane, width, s));
}
template <class T>
inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                        qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::from_bits<T>(qa_emu::shfl(qa_emu::SHFL_UP, mask, qa_emu::to_bits(var), int(delta), width, s));
}
template <class T>
inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = warpSize,
                          qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::from_bits<T>(qa_emu::shfl(qa_emu::SHFL_DOWN, mask, qa_emu::to_bits(var), int(delta), width, s));
}
template <class T>
inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = warpSize,
                         qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::from_bits<T>(qa_emu::shfl(qa_emu::SHFL_BFLY, mask, qa_emu::to_bits(var), lane_mask, width, s));
}
inline unsigned __ballot_sync(unsigned mask, int pred, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::vote(qa_emu::VOTE_BALLOT, mask, pred != 0, s);
}
inline int __any_sync(unsigned mask, int pred, qa_emu::Site s = qa_emu::Site::current()) {
  return int(qa_emu::vote(qa_emu::VOTE_ANY, mask, pred != 0, s));
}
inline int __all_sync(unsigned mask, int pred, qa_emu::Site s = qa_emu::Site::current()) {
  return int(qa_emu::vote(qa_emu::VOTE_ALL, mask, pred != 0, s));
}
// sm_80 warp reductions (redux.sync).
inline unsigned __reduce_add_sync(unsigned mask, unsigned v, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::reduce(qa_emu::REDUCE_ADD, false, mask, v, s);
}
inline unsigned __reduce_min_sync(unsigned mask, unsigned v, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::reduce(qa_emu::REDUCE_MIN, false, mask, v, s);
}
inline unsigned __reduce_max_sync(unsigned mask, unsigned v, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::reduce(qa_emu::REDUCE_MAX, false, mask, v, s);
}
inline int __reduce_add_sync(unsigned mask, int v, qa_emu::Site s = qa_emu::Site::current()) {
  return int(qa_emu::reduce(qa_emu::REDUCE_ADD, true, mask, uint32_t(v), s));
}
inline int __reduce_min_sync(unsigned mask, int v, qa_emu::Site s = qa_emu::Site::current()) {
  return int(qa_emu::reduce(qa_emu::REDUCE_MIN, true, mask, uint32_t(v), s));
}
inline int __reduce_max_sync(unsigned mask, int v, qa_emu::Site s = qa_emu::Site::current()) {
  return int(qa_emu::reduce(qa_emu::REDUCE_MAX, true, mask, uint32_t(v), s));
}
inline unsigned __reduce_and_sync(unsigned mask, unsigned v, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::reduce(qa_emu::REDUCE_AND, false, mask, v, s);
}
inline unsigned __reduce_or_sync(unsigned mask, unsigned v, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::reduce(qa_emu::REDUCE_OR, false, mask, v, s);
}
inline unsigned __reduce_xor_sync(unsigned mask, unsigned v, qa_emu::Site s = qa_emu::Site::current()) {
  return qa_emu::reduce(qa_emu::REDUCE_XOR, false, mask, v, s);
}

// ---- atomics (return the old value, like CUDA) ----
inline float atomicAdd(float* a, float v) { return std::atomic_ref<float>(*a).fetch_add(v); }
inline double atomicAdd(double* a, double v) { return std::atomic_ref<double>(*a).fetch_add(v); }
inline int atomicAdd(int* a, int v) { return std::atomic_ref<int>(*a).fetch_add(v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_add(v); }
inline unsigned long long atomicAdd(unsigned long long* a, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*a).fetch_add(v);
}
template <class T>
inline T qa_emu_atomic_max(T* a, T v) {
  return qa_emu::atomic_update(a, [v](T old) { return old < v ? v : old; });
}
template <class T>
inline T qa_emu_atomic_min(T* a, T v) {
  return qa_emu::atomic_update(a, [v](T old) { return v < old ? v : old; });
}
inline int atomicMax(int* a, int v) { return qa_emu_atomic_max(a, v); }
inline unsigned atomicMax(unsigned* a, unsigned v) { return qa_emu_atomic_max(a, v); }
inline unsigned long long atomicMax(unsigned long long* a, unsigned long long v) { return qa_emu_atomic_max(a, v); }
inline long long atomicMax(long long* a, long long v) { return qa_emu_atomic_max(a, v); }
inline int atomicMin(int* a, int v) { return qa_emu_atomic_min(a, v); }
inline unsigned atomicMin(unsigned* a, unsigned v) { return qa_emu_atomic_min(a, v); }
inline unsigned long long atomicMin(unsigned long long* a, unsigned long long v) { return qa_emu_atomic_min(a, v); }
inline long long atomicMin(long long* a, long long v) { return qa_emu_atomic_min(a, v); }
template <class T>
inline T qa_emu_atomic_cas(T* a, T compare, T v) {
  std::atomic_ref<T>(*a).compare_exchange_strong(compare, v);
  return compare;  // the old value, whether or not it was replaced
}
inline int atomicCAS(int* a, int c, int v) { return qa_emu_atomic_cas(a, c, v); }
inline unsigned atomicCAS(unsigned* a, unsigned c, unsigned v) { return qa_emu_atomic_cas(a, c, v); }
inline unsigned long long atomicCAS(unsigned long long* a, unsigned long long c, unsigned long long v) {
  return qa_emu_atomic_cas(a, c, v);
}
inline int atomicExch(int* a, int v) { return std::atomic_ref<int>(*a).exchange(v); }
inline unsigned atomicExch(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).exchange(v); }
inline unsigned long long atomicExch(unsigned long long* a, unsigned long long v) {
  return std::atomic_ref<unsigned long long>(*a).exchange(v);
}
inline float atomicExch(float* a, float v) { return std::atomic_ref<float>(*a).exchange(v); }

// ---- bit casts and integer intrinsics ----
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return std::countl_zero(unsigned(x)); }
inline unsigned __brev(unsigned x) {
  unsigned r = 0;
  for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
  return r;
}

// ---- fast-math intrinsics: the emulator computes them accurately (see docs/emulator.md) ----
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float x) { return expf(x); }
inline float __logf(float x) { return logf(x); }
inline float __frcp_rn(float x) { return 1.0f / x; }
inline float __saturatef(float x) { return x != x ? 0.0f : fminf(fmaxf(x, 0.0f), 1.0f); }
inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
