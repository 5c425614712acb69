// Private to src/isa: a cursor over one line of assembler text, and the label fixups both
// syntaxes share.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa::detail {

class LineCursor {
 public:
  LineCursor(std::string_view line, std::uint32_t line_no, std::string_view file)
      : line_(line), line_no_(line_no), file_(file) {}

  void skip_ws();
  bool at_end();
  std::size_t pos() const { return pos_; }
  void set_pos(std::size_t p) { pos_ = p; }
  std::string_view rest() const { return line_.substr(pos_); }

  // Consumes `s` after white space if it is next; returns whether it did.
  bool eat(std::string_view s);
  // As eat(), but `w` must end at a word boundary (not followed by [A-Za-z0-9_]).
  bool eat_word(std::string_view w);
  Result<void> expect(std::string_view s);
  // [A-Za-z_.][A-Za-z0-9_.]*, or empty.
  std::string_view identifier();
  // A register "rN"/"wN" (prefix given) or "%rN": 0..10.
  Result<std::uint8_t> reg(std::string_view prefix);
  std::optional<std::uint8_t> try_reg(std::string_view prefix);
  // A signed decimal or hex number (optional sign); up to 64 bits (hex taken as bits).
  Result<std::int64_t> number();
  bool peek_number();

  Error error(std::string message) const { return error_at(pos_, std::move(message)); }
  Error error_at(std::size_t column, std::string message) const;

 private:
  std::string_view line_;
  std::size_t pos_ = 0;
  std::uint32_t line_no_;
  std::string_view file_;
};

// Calls fn(line, line_no) for each line of text (1-based numbers); stops at and returns fn's first error.
template <typename Fn>
Result<void> for_each_line(std::string_view text, Fn&& fn) {
  std::uint32_t line_no = 0;
  for (std::size_t start = 0; start <= text.size();) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    BPFVM_TRY(fn(text.substr(start, end - start), ++line_no));
    start = end + 1;
  }
  return ok();
}

// Range checks for immediates: a value that fits in a signed or unsigned 32-bit field, or 16 bits.
Result<std::int32_t> to_imm32(LineCursor& cur, std::size_t column, std::int64_t v);
Result<std::int16_t> to_off16(LineCursor& cur, std::size_t column, std::int64_t v);

// Instructions in order, with labels and references to them resolved when the text is done.
class ProgramBuilder {
 public:
  enum class RefKind { kJumpOff, kJumpImm, kCallImm };
  void add(Insn insn);
  // Adds an instruction whose offset (or imm) is the distance to `label`.
  void add_with_label(Insn insn, std::string label, RefKind kind, Error where);
  Result<void> define_label(std::string name, const LineCursor& cur, std::size_t column);
  bool has_label(std::string_view name) const { return labels_.count(std::string(name)) != 0; }
  std::size_t next_slot() const { return slot_; }
  const Insn* last() const { return insns_.empty() ? nullptr : &insns_.back(); }
  // finish() fails unless the instruction at `slot` has this opcode.
  void expect_opcode(std::size_t slot, std::uint8_t opcode, Error where) {
    expected_opcodes_.push_back({slot, opcode, std::move(where)});
  }
  Result<std::vector<RawInsn>> finish(const std::map<std::string, std::size_t>& implicit_labels = {});

 private:
  struct Fixup {
    std::size_t insn_index;
    std::size_t slot;
    std::string label;
    RefKind kind;
    Error where;
  };
  std::vector<Insn> insns_;
  std::vector<std::size_t> slots_;
  std::vector<Fixup> fixups_;
  struct ExpectedOpcode {
    std::size_t slot;
    std::uint8_t opcode;
    Error where;
  };
  std::vector<ExpectedOpcode> expected_opcodes_;
  std::map<std::string, std::size_t> labels_;
  std::size_t slot_ = 0;
};

}  // namespace bpfvm::isa::detail
