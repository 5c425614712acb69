// Probes in this process's own code: the agent's uprobes and uretprobes, without a trap.
//
// An entry probe replaces the probed instruction with `jmp rel32` to a trampoline allocated within 2 GiB
// of it, or, when the instruction is shorter, with `jmp rel8` to such a jump placed in the alignment
// padding nearby (one instruction replaced by one store is safe for threads running through it; a jump
// over several instructions is made only while no other thread runs). The trampoline steps over the red zone, saves every general register and
// the flags as the kernel's x86-64 `struct pt_regs` (rip = the probed address, rsp as at the probe) and
// the whole extended state (XSAVEC/XRSTOR: vector registers stay as the probed code left them), calls the
// handler with the pt_regs, restores everything, runs the displaced instructions (relocated with Zydis:
// rip-relative operands rebased, relative jumps and calls made absolute) and jumps back after them.
// The patch is written with one atomic store of 8 or 16 aligned bytes; removing a probe writes the
// original bytes back the same way, and keeps the trampoline (a thread may still be in it).
//
// Where a jump cannot be placed safely (the displaced bytes would hold the target of a jump from
// elsewhere in the function, the function with its padding is shorter than the jump, or the jump would
// cover several instructions while other threads run: a USDT site's 1-byte nop mid-function), the probe
// is an `int3`, as the kernel's uprobes always are: one byte, safe under running threads; the agent's
// SIGTRAP handler (installed on the first such probe, SA_NODEFER so that a probe inside a probe is a
// miss, not a death) fills pt_regs from the signal frame, calls the handler, and resumes at a relocated
// copy of the instruction followed by a jump back (the kernel's execute-out-of-line slot). A SIGTRAP that
// is not a probe's (another int3, kill -TRAP) goes to the handler the process had, or kills the process
// as it would have without the agent. A probe refuses (and leaves the code untouched) when neither can
// be placed: the instruction cannot be decoded or moved (loop, jrcxz).
//
// A process that sets its own SIGTRAP action after an int3 probe was placed keeps it beside the probes
// (signals.hpp's trap_action) while the agent has patched its syscall instructions (a syscall or signal
// link in scope); otherwise its handler takes the traps over. Debuggers, which use ptrace, see them
// before either.
//
// Return probes: an entry handler may call `hook_return` to have `handler` run when the probed function
// returns (the return address on the stack is replaced by a return trampoline; a per-thread stack of
// the original addresses drops entries of frames that longjmp skipped, as the kernel's uretprobes do).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "bpfvm/base/result.hpp"

namespace bpfvm::agent {

// The kernel's x86-64 struct pt_regs (arch/x86/include/asm/ptrace.h), as uprobe programs read it.
struct PtRegs {
  std::uint64_t r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8, rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags,
      rsp, ss;
};
static_assert(sizeof(PtRegs) == 168);

using ProbeHandler = void (*)(PtRegs* regs, void* data);

struct PatchSite {
  std::uintptr_t address = 0;     // the probed instruction
  std::uintptr_t func_start = 0;  // the function holding it (0: unknown; then no jump check is possible)
  std::uint64_t func_size = 0, func_slack = 0;
  std::uint64_t func_pad_before = 0;  // padding before the function (after the previous one's end)
  bool trap = false;  // an int3 even where a jump fits ($BPFVM_AGENT_TRAPS=1: tests, comparisons)
};

class Hook {
 public:
  // Patches `site`: from then on every thread that executes it calls `handler(regs, data)` first.
  static Result<std::unique_ptr<Hook>> install(const PatchSite& site, ProbeHandler handler, void* data);
  ~Hook();  // removes the patch (the trampoline stays)
  Hook(const Hook&) = delete;
  Hook& operator=(const Hook&) = delete;

  // Puts the original bytes back (idempotent).
  Result<void> remove();
  std::uintptr_t address() const { return address_; }
  std::size_t displaced_bytes() const { return original_size_; }
  bool trap() const { return trap_ != nullptr; }  // placed as an int3

 private:
  Hook() = default;
  static Result<std::unique_ptr<Hook>> install_jump(const PatchSite& site, ProbeHandler handler, void* data);
  static Result<std::unique_ptr<Hook>> install_trap(const PatchSite& site, ProbeHandler handler, void* data);
  std::uintptr_t address_ = 0;
  std::uint8_t original_[16] = {};
  std::uint8_t patched_[16] = {};
  std::uintptr_t word_ = 0;  // the aligned 8- or 16-byte block written atomically
  std::size_t word_size_ = 0, original_size_ = 0, patch_size_ = 0;
  bool installed_ = false;
  void* trap_ = nullptr;  // the int3 probe's entry in the SIGTRAP handler's table
};

// From an entry handler at a function's first instruction: runs `handler(regs, data)` when the function
// returns (regs->rax its return value, regs->rip where it returns to). False when it cannot (the
// per-thread stack of pending returns is full: the return is then not reported, as the kernel's
// uretprobes drop nested instances beyond their limit).
bool hook_return(PtRegs* regs, ProbeHandler handler, void* data);

// Makes exceptions safe through functions with return probes (see hook.cpp: the unwinder's entry
// points and C++'s catch are probed to take the return trampolines out of the stack while it unwinds,
// and put them back in frames still live when a catch ends it). Idempotent; call again after a dlopen.
Result<void> guard_returns_from_unwinding();

// Writes `bytes` over code at `address` in one atomic store (the bytes must sit in one aligned 8- or
// 16-byte block), making the page writable only for the store.
Result<void> patch_code(std::uintptr_t address, const std::uint8_t* bytes, std::size_t size);

}  // namespace bpfvm::agent
