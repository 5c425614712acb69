// Private to src/vm/jit: the translation of a pre-decoded program into x86-64 code.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "../ops.hpp"
#include "bpfvm/base/executable_memory.hpp"
#include "bpfvm/vm/jit.hpp"

namespace bpfvm::vm::jit {

// Where JIT code finds the run's CallContext, relative to its RunState (r12).
struct ContextLayout {
  std::int32_t call = 0;       // the CallContext helpers receive
  std::int32_t exit_flag = 0;  // its exit-requested byte
  std::int32_t user = 0;       // its user-data pointer
};

struct NativeCode {
  os::ExecutableMemory memory;  // sealed: read + execute
  std::uint32_t size = 0;       // bytes of code in it
  std::vector<std::uint32_t> insn_offsets;  // per instruction slot
};

// Compiles `ops` (the interpreter's pre-decoded stream, so both engines share decoding and helper
// resolution). `callx_table` is indexed by helper id for callx and must outlive the code.
Result<NativeCode> compile_native(std::span<const detail::Op> ops, std::span<const HelperFn> callx_table,
                                  const JitOptions& options, ContextLayout layout);

}  // namespace bpfvm::vm::jit
