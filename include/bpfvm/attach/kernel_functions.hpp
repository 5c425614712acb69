// Kernel functions that are syscall entries, as kprobes and kretprobes name them (what BCC's examples
// attach to: `do_sys_openat2`, `__x64_sys_openat` through BPF.get_syscall_fnname, ...). Each fires on
// its syscalls with the registers that function would have on x86-64 (the kernel's calling convention:
// arguments in rdi, rsi, rdx, rcx, r8, r9; a kretprobe's result in rax):
//
//   __x64_sys_NAME     the syscall wrapper (CONFIG_ARCH_HAS_SYSCALL_WRAPPER): rdi points at a struct
//                      pt_regs of the syscall's registers, which the program reads with bpf_probe_read
//                      (BCC's PT_REGS_SYSCALL_CTX)
//   __se_sys_NAME, __do_sys_NAME, sys_NAME, ksys_NAME
//                      the syscall's arguments as a C function gets them
//   do_sys_open, do_sys_openat (as older texts write it)
//                      open, openat, creat: (dfd, filename, flags, mode), dfd AT_FDCWD for open and creat
//   do_sys_openat2     open, openat, creat, openat2: (dfd, filename, struct open_how *): the struct in
//                      the thread's memory, as build_open_how makes it (fs/open.c) or openat2's copy
//
// Other kernel functions have no events in user space.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

namespace bpfvm::attach {

struct KernelFunction {
  enum class Shape { kArgs, kRegsPointer, kOpen, kOpenat2 } shape = Shape::kArgs;
  std::array<int, 4> nrs{};  // the syscalls it is the entry of
  std::size_t count = 0;
  bool covers(int nr) const {
    for (std::size_t i = 0; i < count; ++i) {
      if (nrs[i] == nr) return true;
    }
    return false;
  }
};

std::optional<KernelFunction> kernel_function(std::string_view name);

// /proc/kallsyms as a process with bpfvm as its kernel sees it: the lines of `kernel` (the running
// kernel's file) but those of other functions (and of modules), and do_sys_openat beside do_sys_open where the kernel has
// no such function (older texts attach to it). Loaders that choose a mechanism by the symbols they find
// (BCC's support_kfunc: bpf_trampoline_link_prog, kept where the kernel has it, as bpfvm runs fentry
// and fexit on these functions) choose as on the kernel, and symbol lookups (ksymname,
// get_syscall_fnname) find what bpfvm serves.
std::string kallsyms_view(std::string_view kernel);

// The syscall's registers (struct pt_regs, 168 bytes, into `regs`) as the kernel's entry code saves
// them: the arguments in rdi, rsi, rdx, r10, r8, r9, the number in orig_rax, rax -ENOSYS at entry and the
// result at exit. What a raw syscall tracepoint's args[0] and a syscall wrapper's argument point at.
void syscall_regs(int nr, const std::array<std::uint64_t, 6>& args, bool exit, std::int64_t ret, std::uint64_t ip,
                  std::uint64_t sp, std::uint8_t* regs);

// The registers (struct pt_regs, 168 bytes, into `regs`) the function would have at `nr`'s entry with
// the syscall's `args`, or at its return with `ret` (`exit`); `scratch` (168 bytes, kept beside the
// registers while the program runs) holds what a register points at: the inner pt_regs of a wrapper,
// do_sys_openat2's struct open_how. `ip`, `sp`: the user's instruction and stack pointers.
void kernel_function_regs(const KernelFunction& f, int nr, const std::array<std::uint64_t, 6>& args, bool exit,
                          std::int64_t ret, std::uint64_t ip, std::uint64_t sp, std::uint8_t* regs, std::uint8_t* scratch);

}  // namespace bpfvm::attach
