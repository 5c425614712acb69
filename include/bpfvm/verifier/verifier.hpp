// The verifier's exploration: every path of a program from its entry, instruction by instruction, on
// the abstract state (registers and stack), forking at conditional jumps whose outcome is not known,
// pruning a path when a completed state at the same instruction covers it, and refusing a loop that
// comes back to a state it already had (the kernel's do_check and is_state_visited).
//
// What the program may call and touch (helpers, maps, the context of its type) comes from a Platform.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/verifier/platform.hpp"

namespace bpfvm::verifier {

struct VerifierStats {
  std::uint64_t insns_processed = 0;
  std::uint32_t states = 0;       // states kept for pruning
  std::uint32_t peak_states = 0;  // the most kept at once
  std::uint32_t pruned = 0;       // paths ended by an explored state that covers them
  std::uint32_t max_states_per_insn = 0;
};

// Why a program was refused, as data: the instruction, what is wrong, how the program got there, and
// what to do about it. `explain` turns it into text with the program's source lines.
struct Rejection {
  std::uint32_t insn = 0;
  std::string message;  // the kernel's words where it has them, then plain ones
  std::string hint;     // a one-line fix, when there is an obvious one
  // The conditional jumps on the path from the entry to `insn`: (jump instruction, taken).
  std::vector<std::pair<std::uint32_t, bool>> path;
  std::string registers;                // the registers at `insn`, in the kernel's log notation
  std::optional<std::uint32_t> origin;  // the instruction the offending value comes from
};

struct VerifierOptions {
  std::uint64_t insn_limit = 1'000'000;  // BPF_COMPLEXITY_LIMIT_INSNS: processed instructions
  Rejection* rejection = nullptr;        // filled when the program is refused
  VerifierStats* stats = nullptr;        // filled either way (up to the rejection when refused)
  // log_level 1 and 2 as the kernel's (1: the state at each rejection path; 2: every instruction with
  // the registers it changed), appended to `log` when given.
  std::uint32_t log_level = 0;
  std::string* log = nullptr;
  // When set: at entry r1 points at this many bytes of memory the program may read and write (a null
  // scalar when 0) and r2 holds the count, instead of r1 = the context. `bpfvm exec`'s and the
  // conformance suite's calling convention.
  std::optional<std::uint32_t> memory_arg;
  // When set, filled with one entry per instruction: at a helper call that takes a map (r1 of
  // bpf_map_lookup_elem, ...), the map's handle when every path reaching the call passes the same map,
  // kVariousMaps when paths pass different ones, kNoMap elsewhere (the kernel's insn_aux_data
  // map_ptr_state, which lets its fixups inline or call a map's own function at that call).
  std::vector<std::int64_t>* call_maps = nullptr;
  // When set, filled with one entry per instruction: true at a load through a pointer to a kernel
  // object (PTR_TO_BTF_ID: a tracing program's arguments and what they point to). The kernel's JIT
  // makes those loads fault-tolerant (BPF_PROBE_MEM, a load that faults reads 0), and so do bpfvm's
  // engines (vm::ProbeLoads).
  std::vector<bool>* probe_loads = nullptr;
  // An extension program (freplace): its entry is verified as the global function it replaces is, its
  // arguments from its BTF (the platform's global_function(0): the context, numbers, memory that may be
  // NULL), not r1 = the context (the kernel's do_check_common for BPF_PROG_TYPE_EXT).
  bool entry_is_global = false;
};
inline constexpr std::int64_t kNoMap = -1;
inline constexpr std::int64_t kVariousMaps = -2;


// Ok with the statistics, or the first unsafe instruction: the error's location names it and the
// message says why, in the kernel's words where it has them ("R0 !read_ok").
Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const Platform& platform,
                             const VerifierOptions& options = {});
// A rejection in words: the message, the instruction with its source line (`source_lines[i]`, empty
// when unknown), where the value came from, the branches taken to get there, the registers and the
// hint. `program` gives the instructions' text.
std::string explain(const Rejection& rejection, std::span<const isa::RawInsn> program,
                    std::span<const std::string> source_lines = {});

// With no helpers, maps or context: scalars, the stack and control flow only.
Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const VerifierOptions& options = {});

}  // namespace bpfvm::verifier
