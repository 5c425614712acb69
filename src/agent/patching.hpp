// The agent's code patching, shared by its probes (hook.cpp) and its syscall sites (syscall_sites.cpp):
// trampoline memory near the code, the state-saving wrapper, instruction relocation. Private to src/agent.
#pragma once

#include <Zydis/Zydis.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "bpfvm/agent/hook.hpp"
#include "bpfvm/base/result.hpp"

namespace bpfvm::agent::detail {

constexpr std::size_t kJmpSize = 5;  // jmp rel32

// Held while trampolines are allocated and code is patched.
extern std::mutex g_chunks_mutex;

// `size` bytes of read+execute memory within a rel32 jump of `near` (0 when none is free within reach).
std::uintptr_t allocate_near(std::uintptr_t near, std::size_t size);
// Copies `code` to trampoline memory from allocate_near.
Result<void> write_trampoline(std::uintptr_t at, const std::vector<std::uint8_t>& code);
// The same for many at once (each to memory no thread executes yet), with one change of protection per
// run of pages.
Result<void> write_trampolines(const std::vector<std::pair<std::uintptr_t, std::vector<std::uint8_t>>>& writes);

// Code that steps over the red zone, saves the registers as pt_regs (rip = `rip`) and the vector state,
// calls handler(regs, data) and restores everything (the handler may change the saved registers).
Result<std::vector<std::uint8_t>> state_wrapper(std::uint64_t rip, ProbeHandler handler, void* data, bool ret_via_stack,
                                                bool at_call_boundary);

struct Decoded {
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
};
bool decode(const ZydisDecoder& dec, std::uintptr_t at, std::size_t avail, Decoded& d);

struct Relocation {
  std::vector<std::uint8_t> code;  // the moved instructions, then an absolute jump back
  std::size_t displaced = 0;
};
// Moves the instructions from `from` on, at least `min_bytes` of them, to `dest`, followed by a jump
// back to the first instruction not moved. `calls_return_in_place`: a moved call (only as the last
// instruction moved) returns to the original code after it, not into `dest` (which must then jump back
// there too), so that unwinders and debuggers see its caller where it is.
Result<Relocation> relocate(const ZydisDecoder& dec, std::uintptr_t from, std::uintptr_t limit, std::uintptr_t dest,
                            std::size_t min_bytes, bool calls_return_in_place = false);
constexpr std::size_t kAbsJumpSize = 14;  // the jump back relocate() appends

// Threads of this process other than the caller and the agent's watcher when it is parked (below).
int other_threads();

// The watcher thread (named bpfvm-agent) is not another thread for other_threads() only while it is
// parked: waiting in the agent's own futex call (never in libc, whose syscall instructions may be
// patched under it) behind the gate, which a thread holds for as long as it patches (see agent.cpp).
extern std::atomic<bool> g_watcher_parked;
extern std::atomic<std::uint32_t> g_gate;
void close_gate();
void open_gate();
// Writes code no thread executes, making the page writable for the copy.
Result<void> write_unexecuted(std::uintptr_t address, const std::uint8_t* bytes, std::size_t size);

}  // namespace bpfvm::agent::detail
