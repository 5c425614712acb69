// Structural validation of a whole program: every instruction decodes, LDDW pairs are intact, jumps and
// local calls land on an instruction of the program, and control cannot run off the end.
//
// This is what any consumer of untrusted bytecode needs before executing it; the verifier then proves
// the much stronger safety properties. Errors carry the instruction index in their location.
#pragma once

#include <cstddef>
#include <span>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

inline constexpr std::size_t kMaxProgramSlots = 1'000'000;  // the kernel's BPF_COMPLEXITY_LIMIT_INSNS

Result<void> validate(std::span<const RawInsn> program);

// The slot index a jump or call at `index` reaches, or nullopt for instructions that do not branch.
std::optional<std::int64_t> branch_target(const Insn& insn, std::size_t index);

}  // namespace bpfvm::isa
