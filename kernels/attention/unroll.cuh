// `#pragma unroll` for nvcc only: host compilers (the emulator build) would warn on it.
#pragma once

#ifndef QA_UNROLL
#if defined(QA_EMULATED)
#define QA_UNROLL
#define QA_UNROLL_N(n)
#else
#define QA_PRAGMA_(x) _Pragma(#x)
#define QA_UNROLL QA_PRAGMA_(unroll)
#define QA_UNROLL_N(n) QA_PRAGMA_(unroll n)
#endif
#endif
