#include "bpfvm/isa/validate.hpp"

#include <vector>

#include "bpfvm/isa/codec.hpp"

namespace bpfvm::isa {

Result<void> validate(std::span<const RawInsn> program) {
  BPFVM_TRY(decode_program(program));
  return ok();
}

Result<std::vector<Insn>> decode_program(std::span<const RawInsn> program) {
  const std::size_t n = program.size();
  if (n == 0) return make_error(Errc::kInvalid, "program is empty");
  if (n > kMaxProgramSlots) {
    return make_error(Errc::kTooBig, "program has {} instructions, more than the limit of {}", n,
                      kMaxProgramSlots);
  }
  // Pass 1: decode every instruction and mark the second slots of LDDW, which no jump may target.
  std::vector<bool> is_second_slot(n, false);
  std::vector<std::pair<std::size_t, std::int64_t>> targets;
  std::vector<Insn> decoded;
  BPFVM_TRY(decode_all(program, decoded));
  std::size_t last_index = 0;
  for (std::size_t i = 0, k = 0; k < decoded.size(); ++k) {
    const Insn& insn = decoded[k];
    if (auto t = branch_target(insn, i)) targets.emplace_back(i, *t);
    last_index = i;
    const int slots = slots_of(insn);
    if (slots == 2) is_second_slot[i + 1] = true;
    i += static_cast<std::size_t>(slots);
  }
  const Insn& last = decoded.back();
  for (auto [from, to] : targets) {
    if (to < 0 || static_cast<std::size_t>(to) >= n) {
      return make_error(Errc::kInvalid, "jump out of range (target {}, program has {})", to, n).at_insn(from);
    }
    if (is_second_slot[static_cast<std::size_t>(to)]) {
      return make_error(Errc::kInvalid, "jump into the middle of a 64-bit immediate load at {}", to - 1)
          .at_insn(from);
    }
  }
  // The kernel requires the last instruction to be an exit or an unconditional jump, so that control
  // never runs off the end of the program (check_subprogs: "last insn is not an exit or jmp").
  if (!std::holds_alternative<Exit>(last) && !std::holds_alternative<Jump>(last)) {
    return make_error(Errc::kInvalid, "last instruction is not an exit or an unconditional jump: control "
                                      "would run off the end of the program")
        .at_insn(last_index);
  }
  return decoded;
}

}  // namespace bpfvm::isa
