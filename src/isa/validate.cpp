#include "bpfvm/isa/validate.hpp"

#include <vector>

#include "bpfvm/isa/codec.hpp"

namespace bpfvm::isa {

namespace detail {

Result<void> check_program_size(std::size_t n) {
  if (n == 0) return make_error(Errc::kInvalid, "program is empty");
  if (n > kMaxProgramSlots) {
    return make_error(Errc::kTooBig, "program has {} instructions, more than the limit of {}", n,
                      kMaxProgramSlots);
  }
  return {};
}

Result<void> ProgramShape::check() const {
  const std::size_t n = second_slot_.size();
  for (auto [from, to] : targets_) {
    if (to < 0 || static_cast<std::size_t>(to) >= n) {
      return make_error(Errc::kInvalid, "jump out of range (target {}, program has {})", to, n).at_insn(from);
    }
    if (second_slot_[static_cast<std::size_t>(to)]) {
      return make_error(Errc::kInvalid, "jump into the middle of a 64-bit immediate load at {}", to - 1)
          .at_insn(from);
    }
  }
  // The kernel requires the last instruction to be an exit or an unconditional jump, so that control
  // never runs off the end of the program (check_subprogs: "last insn is not an exit or jmp").
  if (!last_ends_) {
    return make_error(Errc::kInvalid, "last instruction is not an exit or an unconditional jump: control "
                                      "would run off the end of the program")
        .at_insn(last_);
  }
  return {};
}

}  // namespace detail

Result<void> validate(std::span<const RawInsn> program) {
  return validate_each(program, [](std::size_t, const auto&) -> Result<void> { return {}; });
}

Result<std::vector<Insn>> decode_program(std::span<const RawInsn> program) {
  std::vector<Insn> decoded;
  decoded.reserve(program.size());
  BPFVM_TRY(validate_each(program, [&](std::size_t, const auto& insn) -> Result<void> {
    decoded.emplace_back(insn);
    return {};
  }));
  return decoded;
}

}  // namespace bpfvm::isa
