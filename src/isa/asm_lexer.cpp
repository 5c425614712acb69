#include "asm_lexer.hpp"

#include <cctype>
#include <limits>

#include "bpfvm/isa/codec.hpp"

namespace bpfvm::isa::detail {

namespace {
bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }
}  // namespace

void LineCursor::skip_ws() {
  while (pos_ < line_.size() && std::isspace(static_cast<unsigned char>(line_[pos_]))) ++pos_;
}

bool LineCursor::at_end() {
  skip_ws();
  return pos_ >= line_.size();
}

bool LineCursor::eat(std::string_view s) {
  skip_ws();
  if (line_.substr(pos_, s.size()) != s) return false;
  pos_ += s.size();
  return true;
}

bool LineCursor::eat_word(std::string_view w) {
  skip_ws();
  if (line_.substr(pos_, w.size()) != w) return false;
  if (pos_ + w.size() < line_.size() && is_word_char(line_[pos_ + w.size()])) return false;
  pos_ += w.size();
  return true;
}

Result<void> LineCursor::expect(std::string_view s) {
  if (!eat(s)) {
    skip_ws();
    std::string_view got = rest().empty() ? std::string_view("end of line") : rest().substr(0, 12);
    return error(fmt::format("expected '{}', found '{}'", s, got));
  }
  return ok();
}

std::string_view LineCursor::identifier() {
  skip_ws();
  std::size_t start = pos_;
  if (pos_ < line_.size() && (std::isalpha(static_cast<unsigned char>(line_[pos_])) || line_[pos_] == '_' ||
                              line_[pos_] == '.')) {
    ++pos_;
    while (pos_ < line_.size() && (is_word_char(line_[pos_]) || line_[pos_] == '.')) ++pos_;
  }
  return line_.substr(start, pos_ - start);
}

std::optional<std::uint8_t> LineCursor::try_reg(std::string_view prefix) {
  skip_ws();
  std::size_t save = pos_;
  if (!eat(prefix)) return std::nullopt;
  std::size_t start = pos_;
  while (pos_ < line_.size() && std::isdigit(static_cast<unsigned char>(line_[pos_]))) ++pos_;
  if (pos_ == start || pos_ - start > 2 || (pos_ < line_.size() && is_word_char(line_[pos_]))) {
    pos_ = save;
    return std::nullopt;
  }
  int n = std::stoi(std::string(line_.substr(start, pos_ - start)));
  if (n > 10) {
    pos_ = save;
    return std::nullopt;
  }
  return static_cast<std::uint8_t>(n);
}

Result<std::uint8_t> LineCursor::reg(std::string_view prefix) {
  skip_ws();
  std::size_t col = pos_;
  if (auto r = try_reg(prefix)) return *r;
  std::string_view got = rest().empty() ? std::string_view("end of line") : rest().substr(0, 8);
  return error_at(col, fmt::format("expected a register {}0-{}10, found '{}'", prefix, prefix, got));
}

bool LineCursor::peek_number() {
  skip_ws();
  std::size_t p = pos_;
  if (p < line_.size() && (line_[p] == '-' || line_[p] == '+')) ++p;
  return p < line_.size() && std::isdigit(static_cast<unsigned char>(line_[p]));
}

Result<std::int64_t> LineCursor::number() {
  skip_ws();
  const std::size_t col = pos_;
  bool neg = false;
  if (pos_ < line_.size() && (line_[pos_] == '-' || line_[pos_] == '+')) {
    neg = line_[pos_] == '-';
    ++pos_;
  }
  std::uint64_t value = 0;
  bool hex = line_.substr(pos_, 2) == "0x" || line_.substr(pos_, 2) == "0X";
  if (hex) pos_ += 2;
  const std::size_t digits = pos_;
  const std::uint64_t base = hex ? 16 : 10;
  bool overflow = false;
  while (pos_ < line_.size()) {
    char c = line_[pos_];
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
    if (d < 0) break;
    if (value > (std::numeric_limits<std::uint64_t>::max() - static_cast<std::uint64_t>(d)) / base) overflow = true;
    value = value * base + static_cast<std::uint64_t>(d);
    ++pos_;
  }
  if (pos_ == digits) return error_at(col, "expected a number");
  if (pos_ < line_.size() && is_word_char(line_[pos_])) return error_at(col, "malformed number");
  if (overflow) return error_at(col, "number does not fit in 64 bits");
  // Decimal magnitudes must fit a signed 64-bit value (or its negation); hex is taken as raw bits.
  if (!hex && !neg && value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    return error_at(col, "number does not fit in 64 bits");
  }
  if (!hex && neg && value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) + 1) {
    return error_at(col, "number does not fit in 64 bits");
  }
  std::uint64_t bits = neg ? (~value + 1) : value;
  return static_cast<std::int64_t>(bits);
}

Error LineCursor::error_at(std::size_t column, std::string message) const {
  Location loc;
  loc.file = std::string(file_);
  loc.line = line_no_;
  loc.column = static_cast<std::uint32_t>(column + 1);
  return Error(Errc::kInvalid, std::move(message)).at(std::move(loc));
}

Result<std::int32_t> to_imm32(LineCursor& cur, std::size_t column, std::int64_t v) {
  // Signed values in [-2^31, 2^31) and unsigned ones up to 0xffffffff are accepted (as their bits).
  if (v < std::numeric_limits<std::int32_t>::min() || v > static_cast<std::int64_t>(0xffffffffLL)) {
    return cur.error_at(column, fmt::format("immediate {} does not fit in 32 bits", v));
  }
  return static_cast<std::int32_t>(static_cast<std::uint32_t>(static_cast<std::uint64_t>(v)));
}

Result<std::int16_t> to_off16(LineCursor& cur, std::size_t column, std::int64_t v) {
  if (v < std::numeric_limits<std::int16_t>::min() || v > std::numeric_limits<std::int16_t>::max()) {
    return cur.error_at(column, fmt::format("offset {} does not fit in 16 bits", v));
  }
  return static_cast<std::int16_t>(v);
}

void ProgramBuilder::add(Insn insn) {
  slots_.push_back(slot_);
  slot_ += static_cast<std::size_t>(slots_of(insn));
  insns_.push_back(std::move(insn));
}

void ProgramBuilder::add_with_label(Insn insn, std::string label, RefKind kind, Error where) {
  fixups_.push_back(Fixup{insns_.size(), slot_, std::move(label), kind, std::move(where)});
  add(std::move(insn));
}

Result<void> ProgramBuilder::define_label(std::string name, const LineCursor& cur, std::size_t column) {
  if (labels_.count(name)) return cur.error_at(column, fmt::format("label '{}' is defined twice", name));
  labels_[std::move(name)] = slot_;
  return ok();
}

Result<std::vector<RawInsn>> ProgramBuilder::finish(const std::map<std::string, std::size_t>& implicit_labels) {
  for (Fixup& f : fixups_) {
    auto it = labels_.find(f.label);
    std::size_t target = 0;
    if (it != labels_.end()) {
      target = it->second;
    } else if (auto imp = implicit_labels.find(f.label); imp != implicit_labels.end()) {
      target = imp->second;
    } else {
      Error e = f.where;
      return Error(Errc::kInvalid, fmt::format("undefined label '{}'", f.label)).at(e.location());
    }
    const std::int64_t delta = static_cast<std::int64_t>(target) - static_cast<std::int64_t>(f.slot) - 1;
    Insn& insn = insns_[f.insn_index];
    switch (f.kind) {
      case RefKind::kJumpOff:
        if (delta < std::numeric_limits<std::int16_t>::min() || delta > std::numeric_limits<std::int16_t>::max()) {
          return Error(Errc::kInvalid,
                       fmt::format("jump to '{}' is {} instructions away, beyond a 16-bit offset (use gotol)",
                                   f.label, delta))
              .at(f.where.location());
        }
        if (auto* j = std::get_if<Jump>(&insn)) j->offset = static_cast<std::int32_t>(delta);
        if (auto* j = std::get_if<CondJump>(&insn)) j->offset = static_cast<std::int16_t>(delta);
        break;
      case RefKind::kJumpImm:
        std::get<Jump>(insn).offset = static_cast<std::int32_t>(delta);
        break;
      case RefKind::kCallImm:
        std::get<Call>(insn).imm = static_cast<std::int32_t>(delta);
        break;
    }
  }
  std::vector<RawInsn> out = encode(insns_);
  for (const ExpectedOpcode& e : expected_opcodes_) {
    if (out[e.slot].opcode != e.opcode) {
      return Error(Errc::kInvalid, fmt::format("opcode ({:02x}) does not match the instruction, which encodes as ({:02x})",
                                               e.opcode, out[e.slot].opcode))
          .at(e.where.location());
    }
  }
  return out;
}

}  // namespace bpfvm::isa::detail
