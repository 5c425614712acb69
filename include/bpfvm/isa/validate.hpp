// Structural validation of a whole program: every instruction decodes, LDDW pairs are intact, jumps and
// local calls land on an instruction of the program, and control cannot run off the end.
//
// This is what any consumer of untrusted bytecode needs before executing it; the verifier then proves
// the much stronger safety properties. Errors carry the instruction index in their location.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

inline constexpr std::size_t kMaxProgramSlots = 1'000'000;  // the kernel's BPF_COMPLEXITY_LIMIT_INSNS

Result<void> validate(std::span<const RawInsn> program);

// validate(), keeping what it decoded: the instructions in program order, one per instruction (an LDDW
// is one entry for its two slots). For consumers that would otherwise decode the program again.
Result<std::vector<Insn>> decode_program(std::span<const RawInsn> program);

// The slot index a jump or call at `index` reaches, or nullopt for instructions that do not branch.
// Inline: decoding calls it for every instruction, and an out-of-line optional return stalls on the
// partial store of its flag.
inline std::optional<std::int64_t> branch_target(const Insn& insn, std::size_t index) {
  const auto next = static_cast<std::int64_t>(index) + 1;
  if (const auto* j = std::get_if<Jump>(&insn)) return next + j->offset;
  if (const auto* j = std::get_if<CondJump>(&insn)) return next + j->offset;
  if (const auto* c = std::get_if<Call>(&insn); c && c->kind == Call::Kind::kLocal) return next + c->imm;
  // A function reference (LDDW src=4) names a subprogram like a local call does.
  if (const auto* l = std::get_if<LoadImm64>(&insn); l && l->pseudo == Pseudo::kFunc) return next + l->imm_lo;
  return std::nullopt;
}

}  // namespace bpfvm::isa
