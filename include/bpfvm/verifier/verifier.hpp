// The verifier's exploration: every path of a program from its entry, instruction by instruction, on
// the abstract state (registers and stack), forking at conditional jumps whose outcome is not known,
// pruning a path when a completed state at the same instruction covers it, and refusing a loop that
// comes back to a state it already had (the kernel's do_check and is_state_visited).
//
// What the program may call and touch (helpers, maps, the context of its type) comes from a Platform.
#pragma once

#include <cstdint>
#include <span>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/verifier/platform.hpp"

namespace bpfvm::verifier {

struct VerifierOptions {
  std::uint64_t insn_limit = 1'000'000;  // BPF_COMPLEXITY_LIMIT_INSNS: processed instructions
};

struct VerifierStats {
  std::uint64_t insns_processed = 0;
  std::uint32_t states = 0;       // states kept for pruning
  std::uint32_t peak_states = 0;  // the most kept at once
  std::uint32_t pruned = 0;       // paths ended by an explored state that covers them
};

// Ok with the statistics, or the first unsafe instruction: the error's location names it and the
// message says why, in the kernel's words where it has them ("R0 !read_ok").
Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const Platform& platform,
                             const VerifierOptions& options = {});
// With no helpers, maps or context: scalars, the stack and control flow only.
Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const VerifierOptions& options = {});

}  // namespace bpfvm::verifier
