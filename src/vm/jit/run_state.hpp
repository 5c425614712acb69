// Private to src/vm/jit: what JIT code reads and writes besides the program's registers and memory.
// The compiler addresses these fields by offset from r12; JitProgram::run fills them in.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bpfvm::vm::jit {

// Why JIT code stopped early (RunState::fault).
enum class Fault : std::uint32_t {
  kNone = 0,
  kCallDepth,   // a bpf-to-bpf call past the frame limit
  kCallx,       // callx to a helper id with no implementation (fault_value = the id)
  kNoCode,      // control reached the second slot of a 64-bit load, or ran past the end
};

struct RunState {
  std::uint64_t entry_rsp = 0;    // rsp just before the trampoline called the program: early exits unwind here
  std::uint64_t frame_floor = 0;  // a bpf-to-bpf call needs rbp (r10) >= this: room for one more frame
  std::uint64_t packet = 0;       // LD_ABS/LD_IND read [packet, packet + packet_size)
  std::uint64_t packet_size = 0;
  std::uint32_t fault = 0;        // a Fault
  std::uint32_t fault_pc = 0;     // the instruction that faulted
  std::uint64_t fault_value = 0;
};

// The native entry: the trampoline at the start of the code. It saves the host's callee-saved
// registers, loads r1-r5 from args and r10 from stack_top, calls `target` (a BPF function's first
// instruction) and returns its r0. r12 holds `state` throughout; `call` is the CallContext helpers get.
using Entry = std::uint64_t (*)(RunState* state, const std::uint64_t* args, std::uint64_t stack_top,
                                const void* target);

}  // namespace bpfvm::vm::jit
