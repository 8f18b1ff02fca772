// See context.h.
#include "context.h"

#include <cstdint>

#if defined(__x86_64__)
// qa_emu_switch(void** save_sp, void* new_sp): push the callee-saved registers, swap stacks,
// pop the other context's registers and return into it (System V ABI: rbx, rbp, r12-r15).
asm(R"(
  .text
  .globl qa_emu_switch
  .hidden qa_emu_switch
  .type qa_emu_switch, @function
qa_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
  .size qa_emu_switch, .-qa_emu_switch
)");
extern "C" void qa_emu_switch(void** save_sp, void* new_sp);
#endif

namespace qa_emu {

void context_init(Context& c, unsigned char* stack, size_t bytes, void (*entry)()) {
#if defined(__x86_64__)
  // Six zeroed registers, then `entry` as the return address, then a null fake return address
  // for `entry` itself; `entry` starts with rsp = 8 (mod 16) as after a call.
  auto top = reinterpret_cast<uintptr_t>(stack + bytes) & ~uintptr_t(15);
  auto* sp = reinterpret_cast<uintptr_t*>(top - 64);
  for (int i = 0; i < 6; ++i) sp[i] = 0;
  sp[6] = reinterpret_cast<uintptr_t>(entry);
  sp[7] = 0;
  c.sp = sp;
#else
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
#endif
}

void context_switch(Context& from, Context& to) {
#if defined(__x86_64__)
  qa_emu_switch(&from.sp, to.sp);
#else
  swapcontext(&from.uc, &to.uc);
#endif
}

}  // namespace qa_emu
