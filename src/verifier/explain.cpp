// A rejection in words, for people: what is wrong where (with the source line), where the offending
// value came from, which way the branches went to get there, the registers, and the fix.
#include <fmt/format.h>

#include "bpfvm/isa/disasm.hpp"
#include "bpfvm/verifier/verifier.hpp"

namespace bpfvm::verifier {

namespace {

std::string insn_line(std::span<const isa::RawInsn> program, std::uint32_t insn, std::span<const std::string> source) {
  std::string text = insn < program.size() ? isa::format_insn(program.subspan(insn), insn) : std::string("?");
  std::string line = fmt::format("{:>5}: {}", insn, text);
  if (insn < source.size() && !source[insn].empty()) {
    if (line.size() < 48) line.resize(48, ' ');
    line += fmt::format("  {}", source[insn]);
  }
  return line;
}

}  // namespace

std::string explain(const Rejection& r, std::span<const isa::RawInsn> program, std::span<const std::string> source_lines) {
  std::string out = fmt::format("error at insn {}: {}\n", r.insn, r.message);
  out += insn_line(program, r.insn, source_lines) + "\n";
  if (r.origin) {
    out += fmt::format("  the value comes from insn {}:\n{}\n", *r.origin, insn_line(program, *r.origin, source_lines));
  }
  if (!r.path.empty()) {
    // The branches that led here, the last ones (which matter most) with their source lines.
    constexpr std::size_t kShown = 8;
    const std::size_t first = r.path.size() > kShown ? r.path.size() - kShown : 0;
    out += first ? fmt::format("  the path here ({} earlier branches not shown):\n", first) : "  the path here:\n";
    for (std::size_t i = first; i < r.path.size(); ++i) {
      const auto [insn, taken] = r.path[i];
      std::string line = insn_line(program, insn, {});
      line += taken ? "  -> jumped" : "  -> fell through";
      if (insn < source_lines.size() && !source_lines[insn].empty()) {
        if (line.size() < 64) line.resize(64, ' ');
        line += "  " + source_lines[insn];
      }
      out += line + "\n";
    }
  }
  if (!r.registers.empty()) out += fmt::format("  registers: {}\n", r.registers);
  if (!r.hint.empty()) out += fmt::format("  hint: {}\n", r.hint);
  return out;
}

}  // namespace bpfvm::verifier
