// Fiber context switch. On x86-64 a hand-written switch of the callee-saved registers (glibc's
// swapcontext makes two sigprocmask system calls per switch, which dominated the emulator's
// run time); elsewhere ucontext.
#pragma once

#include <ucontext.h>

#include <cstddef>

namespace qa_emu {

struct Context {
  void* sp = nullptr;  // x86-64: saved stack pointer
  ucontext_t uc;       // other architectures
};

// Prepares `c` to run `entry` (which must never return) on the given stack.
void context_init(Context& c, unsigned char* stack, size_t bytes, void (*entry)());
// Saves the running context in `from` and resumes `to`.
void context_switch(Context& from, Context& to);

}  // namespace qa_emu
