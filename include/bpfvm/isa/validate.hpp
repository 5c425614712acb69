// Structural validation of a whole program: every instruction decodes, LDDW pairs are intact, jumps and
// local calls land on an instruction of the program, and control cannot run off the end.
//
// This is what any consumer of untrusted bytecode needs before executing it; the verifier then proves
// the much stronger safety properties. Errors carry the instruction index in their location.
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/decode_visit.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa {

inline constexpr std::size_t kMaxProgramSlots = 1'000'000;  // the kernel's BPF_COMPLEXITY_LIMIT_INSNS

Result<void> validate(std::span<const RawInsn> program);

// validate(), keeping what it decoded: the instructions in program order, one per instruction (an LDDW
// is one entry for its two slots). For consumers that would otherwise decode the program again.
Result<std::vector<Insn>> decode_program(std::span<const RawInsn> program);

// The slot index a jump or call at `index` reaches, or nullopt for instructions that do not branch;
// target_of takes the instruction as its own struct (see decode_visit.hpp).
template <typename T>
std::optional<std::int64_t> target_of(const T& insn, std::size_t index) {
  const auto next = static_cast<std::int64_t>(index) + 1;
  if constexpr (std::is_same_v<T, Jump> || std::is_same_v<T, CondJump>) {
    return next + insn.offset;
  } else if constexpr (std::is_same_v<T, Call>) {
    if (insn.kind == Call::Kind::kLocal) return next + insn.imm;
  } else if constexpr (std::is_same_v<T, LoadImm64>) {
    // A function reference (LDDW src=4) names a subprogram like a local call does.
    if (insn.pseudo == Pseudo::kFunc) return next + insn.imm_lo;
  }
  return std::nullopt;
}
inline std::optional<std::int64_t> branch_target(const Insn& insn, std::size_t index) {
  return std::visit([&](const auto& x) { return target_of(x, index); }, insn);
}

namespace detail {

Result<void> check_program_size(std::size_t slots);

// What validation keeps of a program's shape while it walks the instructions: where jumps go, which
// slots are second halves of 64-bit loads, how the program ends.
class ProgramShape {
 public:
  explicit ProgramShape(std::size_t slots) : second_slot_(slots, false) {}
  template <typename T>
  void add(const T& insn, std::size_t index) {
    if (auto t = target_of(insn, index)) targets_.emplace_back(index, *t);
    if constexpr (std::is_same_v<T, LoadImm64>) second_slot_[index + 1] = true;
    last_ = index;
    last_ends_ = std::is_same_v<T, Exit> || std::is_same_v<T, Jump>;
  }
  // Jumps in range and not into a 64-bit load; the last instruction an exit or a jump.
  Result<void> check() const;

 private:
  std::vector<bool> second_slot_;
  std::vector<std::pair<std::size_t, std::int64_t>> targets_;
  std::size_t last_ = 0;
  bool last_ends_ = false;
};

}  // namespace detail

// validate(), handing each instruction to on_insn(index, insn) as it goes (insn as its own struct;
// on_insn returns a Result, and its error ends the walk): consumers that translate a program do it in
// the same pass, with one dispatch per instruction.
template <typename OnInsn>
Result<void> validate_each(std::span<const RawInsn> program, OnInsn&& on_insn) {
  BPFVM_TRY(detail::check_program_size(program.size()));
  detail::ProgramShape shape(program.size());
  for (std::size_t i = 0; i < program.size();) {
    const auto slots = program.subspan(i);
    if (auto ok = check_insn(slots); !ok) return std::move(ok).error().at_insn(i);
    const std::size_t index = i;
    Result<void> r = visit_insn(slots, [&](const auto& insn) -> Result<void> {
      shape.add(insn, index);
      i += std::is_same_v<std::decay_t<decltype(insn)>, LoadImm64> ? 2 : 1;
      return on_insn(index, insn);
    });
    BPFVM_TRY(r);
  }
  return shape.check();
}

}  // namespace bpfvm::isa
