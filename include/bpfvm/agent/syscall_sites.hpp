// Syscalls seen from inside the process, without a trap: the agent patches every `syscall` instruction
// in the code of the files the process maps (the program, its libraries, those loaded later) so that it
// runs through a trampoline. A syscall whose number has no probe costs the trampoline's table lookup
// (a few instructions, no call, flags untouched); one with probes calls the handler with the registers
// as pt_regs (the number in rax, the arguments in rdi, rsi, rdx, r10, r8, r9, rip after the syscall
// instruction, as the kernel reports it). The handler either performs the syscall itself (for its exit
// probes) and returns with rcx = 1 and rax the result, or returns with rcx = 0 and the original
// instruction runs as it would have.
//
// The jump replacing a `syscall` (two bytes) covers a neighbouring instruction too: the `mov $NR, %eax`
// before it, or the instruction after it, whichever no branch of the file lands inside (direct branch
// targets and symbol addresses are checked; a site with neither is left alone and reported). Such a
// patch is safe only while no other thread can be between the two instructions: sites are patched when
// the agent starts (before main) or, later, only while the process has a single thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpfvm/agent/hook.hpp"
#include "bpfvm/base/result.hpp"

namespace bpfvm::agent {

// One byte per syscall number (indexed by the low 16 bits of rax): nonzero where probes are.
inline constexpr std::size_t kSyscallTableSize = 65536;
std::uint8_t* syscall_table();

// The handler for syscalls with probes (one for the process). It returns with rcx = 0 to let the
// syscall run, 1 when it performed it (rax: the result), or 2 for a clone-family syscall to run whose
// return in the parent (rax: the child's id or an error) the after-fork handler then sees (the child,
// with rax 0, goes on without it).
void set_syscall_handler(ProbeHandler handler);
void set_after_fork_handler(ProbeHandler handler);

struct SyscallSites {
  std::size_t hooked = 0;
  std::vector<std::string> left;  // sites not patched, and why
};

// A site made ready while other threads run (`bpfvm attach` of a process with threads): its trampoline
// written, the jump that replaces the window's bytes not yet. commit_prepared_sites writes the jumps
// while every other thread is stopped (by the attaching ptrace tracer), but where a stopped thread
// would resume inside a window.
struct PreparedSite {
  std::uintptr_t from = 0, to = 0;  // the window
  std::uint8_t bytes[32] = {};      // what replaces it: the jump, then int3s
};

// Patches the syscall instructions of the file `path`, mapped executable at [start, end) from file
// offset `offset`. `alone`: no other thread runs (else nothing is patched: the sites are reported, or,
// given `prepared`, made ready there). `cache_dir`: a directory private to this user where the sweep's
// result for this file is kept (the sweep decodes all of the file's code: 45 ms for libc), empty for none.
Result<SyscallSites> hook_syscall_sites(const std::string& path, std::uintptr_t start, std::uintptr_t end,
                                        std::uint64_t offset, bool alone, const std::string& cache_dir = {},
                                        std::vector<PreparedSite>* prepared = nullptr);
// Writes the prepared sites' jumps, with only the agent's own syscalls and no allocation (other threads
// are stopped and may hold any lock), skipping every window with one of `positions` (where a stopped
// thread resumes) strictly inside. Returns how many were written.
std::size_t commit_prepared_sites(const std::vector<PreparedSite>& sites, const std::uint64_t* positions,
                                  std::size_t count);

// Executes the syscall `nr` with `args` (from the agent's own code, which is never patched).
std::int64_t raw_syscall(std::uint64_t nr, const std::uint64_t* args);
// The same with the arguments given one by one (those left out are 0).
inline std::int64_t sys(std::uint64_t nr, std::uint64_t a = 0, std::uint64_t b = 0, std::uint64_t c = 0,
                        std::uint64_t d = 0, std::uint64_t e = 0, std::uint64_t f = 0) {
  const std::uint64_t args[6] = {a, b, c, d, e, f};
  return raw_syscall(nr, args);
}

}  // namespace bpfvm::agent
