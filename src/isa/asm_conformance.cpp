// The bpf_conformance suite's assembler syntax (described in shared/conformance/README.md).
#include <map>

#include "asm_lexer.hpp"
#include "asm_syntaxes.hpp"

namespace bpfvm::isa::detail {

namespace {

using RefKind = ProgramBuilder::RefKind;

const std::map<std::string_view, AluOp>& alu_mnemonics() {
  static const std::map<std::string_view, AluOp> m = {
      {"add", AluOp::kAdd}, {"sub", AluOp::kSub}, {"mul", AluOp::kMul},   {"div", AluOp::kDiv},
      {"sdiv", AluOp::kSdiv}, {"mod", AluOp::kMod}, {"smod", AluOp::kSmod}, {"or", AluOp::kOr},
      {"and", AluOp::kAnd}, {"xor", AluOp::kXor}, {"lsh", AluOp::kLsh},   {"rsh", AluOp::kRsh},
      {"arsh", AluOp::kArsh}, {"mov", AluOp::kMov}, {"neg", AluOp::kNeg}};
  return m;
}

const std::map<std::string_view, Cond>& jump_mnemonics() {
  static const std::map<std::string_view, Cond> m = {
      {"jeq", Cond::kEq},   {"jgt", Cond::kGt},   {"jge", Cond::kGe},   {"jset", Cond::kSet},
      {"jne", Cond::kNe},   {"jsgt", Cond::kSgt}, {"jsge", Cond::kSge}, {"jlt", Cond::kLt},
      {"jle", Cond::kLe},   {"jslt", Cond::kSlt}, {"jsle", Cond::kSle}};
  return m;
}

std::optional<Size> size_suffix(std::string_view s) {
  if (s == "b") return Size::kB;
  if (s == "h") return Size::kH;
  if (s == "w") return Size::kW;
  if (s == "dw") return Size::kDW;
  return std::nullopt;
}

Result<std::int32_t> imm32(LineCursor& cur) {
  cur.skip_ws();
  const std::size_t col = cur.pos();
  std::int64_t v = BPFVM_TRY(cur.number());
  return to_imm32(cur, col, v);
}

// "[%rN+OFF]", "[%rN-OFF]" or "[%rN]".
Result<std::pair<std::uint8_t, std::int16_t>> mem_operand(LineCursor& cur) {
  BPFVM_TRY(cur.expect("["));
  std::uint8_t base = BPFVM_TRY(cur.reg("%r"));
  std::int16_t off = 0;
  if (!cur.eat("]")) {
    cur.skip_ws();
    const std::size_t col = cur.pos();
    std::int64_t v = BPFVM_TRY(cur.number());
    off = BPFVM_TRY(to_off16(cur, col, v));
    BPFVM_TRY(cur.expect("]"));
  }
  return std::make_pair(base, off);
}

// A jump target: "+N", "-N", "N" or a label.
Result<void> target(LineCursor& cur, ProgramBuilder& b, Insn insn, RefKind kind) {
  cur.skip_ws();
  const std::size_t col = cur.pos();
  if (cur.peek_number()) {
    std::int64_t v = BPFVM_TRY(cur.number());
    if (auto* j = std::get_if<CondJump>(&insn)) j->offset = BPFVM_TRY(to_off16(cur, col, v));
    if (auto* j = std::get_if<Jump>(&insn)) {
      j->offset = kind == RefKind::kJumpOff ? BPFVM_TRY(to_off16(cur, col, v)) : BPFVM_TRY(to_imm32(cur, col, v));
    }
    if (auto* c = std::get_if<Call>(&insn)) c->imm = BPFVM_TRY(to_imm32(cur, col, v));
    b.add(insn);
    return ok();
  }
  std::string_view label = cur.identifier();
  if (label.empty()) return cur.error_at(col, "expected a jump target: +N, -N or a label");
  b.add_with_label(insn, std::string(label), kind, cur.error_at(col, ""));
  return ok();
}

Result<void> parse_lock(LineCursor& cur, ProgramBuilder& b) {
  bool fetch = cur.eat_word("fetch");
  cur.skip_ws();
  const std::size_t col = cur.pos();
  std::string word(cur.identifier());
  Size size = Size::kDW;
  if (word.size() > 2 && word.ends_with("32")) {
    size = Size::kW;
    word.resize(word.size() - 2);
  }
  AtomicOp op;
  if (word == "add") op = AtomicOp::kAdd;
  else if (word == "or") op = AtomicOp::kOr;
  else if (word == "and") op = AtomicOp::kAnd;
  else if (word == "xor") op = AtomicOp::kXor;
  else if (word == "xchg" && !fetch) op = AtomicOp::kXchg, fetch = true;
  else if (word == "cmpxchg" && !fetch) op = AtomicOp::kCmpxchg, fetch = true;
  else return cur.error_at(col, fmt::format("unknown atomic operation '{}'", word));
  auto [base, off] = BPFVM_TRY(mem_operand(cur));
  BPFVM_TRY(cur.expect(","));
  std::uint8_t src = BPFVM_TRY(cur.reg("%r"));
  b.add(Atomic{op, fetch, size, base, off, src});
  return ok();
}

Result<void> parse_line(LineCursor& cur, ProgramBuilder& b) {
  cur.skip_ws();
  const std::size_t col = cur.pos();
  std::string mnem(cur.identifier());
  if (mnem.empty()) return cur.error_at(col, "expected an instruction mnemonic");
  if (mnem == "exit") {
    b.add(Exit{});
    return ok();
  }
  if (mnem == "lock") return parse_lock(cur, b);
  if (mnem == "ja") return target(cur, b, Jump{0, false}, RefKind::kJumpOff);
  if (mnem == "ja32") return target(cur, b, Jump{0, true}, RefKind::kJumpImm);
  if (mnem == "call") {
    if (auto r = cur.try_reg("%r")) {
      b.add(CallReg{*r});
      return ok();
    }
    if (cur.eat_word("local")) return target(cur, b, Call{Call::Kind::kLocal, 0, 0}, RefKind::kCallImm);
    b.add(Call{Call::Kind::kHelper, BPFVM_TRY(imm32(cur)), 0});
    return ok();
  }
  if (mnem == "lddw") {
    std::uint8_t dst = BPFVM_TRY(cur.reg("%r"));
    BPFVM_TRY(cur.expect(","));
    std::int64_t v = BPFVM_TRY(cur.number());
    b.add(LoadImm64::Imm(dst, static_cast<std::uint64_t>(v)));
    return ok();
  }
  // Byte order: be16 le32 swap64 (and bswap64).
  for (auto [prefix, order] : {std::pair{"bswap", Endian::Order::kSwap}, std::pair{"swap", Endian::Order::kSwap},
                               std::pair{"be", Endian::Order::kBig}, std::pair{"le", Endian::Order::kLittle}}) {
    std::string_view p(prefix);
    if (mnem.starts_with(p) && (mnem.substr(p.size()) == "16" || mnem.substr(p.size()) == "32" ||
                                mnem.substr(p.size()) == "64")) {
      std::uint8_t dst = BPFVM_TRY(cur.reg("%r"));
      b.add(Endian{order, static_cast<std::uint8_t>(std::stoi(mnem.substr(p.size()))), dst});
      return ok();
    }
  }
  // movsx832 movsx1632 movsx864 movsx1664 movsx3264: source width, then destination width.
  if (mnem.starts_with("movsx")) {
    static const std::map<std::string_view, std::pair<std::uint8_t, bool>> forms = {
        {"movsx832", {8, false}}, {"movsx1632", {16, false}}, {"movsx864", {8, true}},
        {"movsx1664", {16, true}}, {"movsx3264", {32, true}}};
    auto it = forms.find(mnem);
    if (it == forms.end()) return cur.error_at(col, fmt::format("unknown mnemonic '{}'", mnem));
    std::uint8_t dst = BPFVM_TRY(cur.reg("%r"));
    BPFVM_TRY(cur.expect(","));
    std::uint8_t src = BPFVM_TRY(cur.reg("%r"));
    b.add(Alu{AluOp::kMovsx, it->second.second, dst, Operand::Reg(src), it->second.first});
    return ok();
  }
  // Loads: ldxb ldxh ldxw ldxdw, ldxsb ldxsh ldxsw; legacy ldabs{b,h,w} IMM, ldind{b,h,w} %rS, IMM.
  if (mnem.starts_with("ldabs") || mnem.starts_with("ldind")) {
    const bool ind = mnem.starts_with("ldind");
    auto size = size_suffix(std::string_view(mnem).substr(5));
    if (!size || *size == Size::kDW) return cur.error_at(col, fmt::format("unknown mnemonic '{}'", mnem));
    std::uint8_t src = 0;
    if (ind) {
      src = BPFVM_TRY(cur.reg("%r"));
      BPFVM_TRY(cur.expect(","));
    }
    b.add(PacketLoad{*size, ind, src, BPFVM_TRY(imm32(cur))});
    return ok();
  }
  if (mnem.starts_with("ldx")) {
    std::string_view rest = std::string_view(mnem).substr(3);
    const bool sx = rest.starts_with("s") && rest.size() == 2;
    auto size = size_suffix(sx ? rest.substr(1) : rest);
    if (!size || (sx && *size == Size::kDW)) return cur.error_at(col, fmt::format("unknown mnemonic '{}'", mnem));
    std::uint8_t dst = BPFVM_TRY(cur.reg("%r"));
    BPFVM_TRY(cur.expect(","));
    auto [base, off] = BPFVM_TRY(mem_operand(cur));
    b.add(Load{*size, sx, dst, base, off});
    return ok();
  }
  if (mnem.starts_with("stx") || mnem.starts_with("st")) {
    const bool reg = mnem.starts_with("stx");
    auto size = size_suffix(std::string_view(mnem).substr(reg ? 3 : 2));
    if (size) {
      auto [base, off] = BPFVM_TRY(mem_operand(cur));
      BPFVM_TRY(cur.expect(","));
      if (reg) {
        b.add(Store{*size, base, off, Operand::Reg(BPFVM_TRY(cur.reg("%r")))});
      } else {
        b.add(Store{*size, base, off, Operand::Imm(BPFVM_TRY(imm32(cur)))});
      }
      return ok();
    }
  }
  std::string base = mnem;
  const bool is32 = base.size() > 2 && base.ends_with("32");
  if (is32) base.resize(base.size() - 2);
  if (auto it = jump_mnemonics().find(base); it != jump_mnemonics().end()) {
    std::uint8_t dst = BPFVM_TRY(cur.reg("%r"));
    BPFVM_TRY(cur.expect(","));
    Operand src = Operand::Imm(0);
    if (auto r = cur.try_reg("%r")) {
      src = Operand::Reg(*r);
    } else {
      src = Operand::Imm(BPFVM_TRY(imm32(cur)));
    }
    BPFVM_TRY(cur.expect(","));
    return target(cur, b, CondJump{it->second, is32, dst, src, 0}, RefKind::kJumpOff);
  }
  if (auto it = alu_mnemonics().find(base); it != alu_mnemonics().end()) {
    std::uint8_t dst = BPFVM_TRY(cur.reg("%r"));
    if (it->second == AluOp::kNeg) {
      b.add(Alu{AluOp::kNeg, !is32, dst, Operand::Imm(0), 0});
      return ok();
    }
    BPFVM_TRY(cur.expect(","));
    if (auto r = cur.try_reg("%r")) {
      b.add(Alu{it->second, !is32, dst, Operand::Reg(*r), 0});
    } else {
      b.add(Alu{it->second, !is32, dst, Operand::Imm(BPFVM_TRY(imm32(cur))), 0});
    }
    return ok();
  }
  return cur.error_at(col, fmt::format("unknown mnemonic '{}'", mnem));
}

}  // namespace

Result<std::vector<RawInsn>> assemble_conformance(std::string_view text, std::string_view file) {
  ProgramBuilder b;
  std::map<std::string, std::size_t> implicit;  // "exit" names the first exit instruction
  BPFVM_TRY(for_each_line(text, [&](std::string_view line, std::uint32_t line_no) -> Result<void> {
    if (auto c = line.find('#'); c != std::string_view::npos) line = line.substr(0, c);
    LineCursor cur(line, line_no, file);
    if (cur.at_end()) return ok();
    const std::size_t col = cur.pos();
    std::string_view id = cur.identifier();
    if (!id.empty() && cur.eat(":") && cur.at_end()) return b.define_label(std::string(id), cur, col);
    cur.set_pos(0);
    const std::size_t slot = b.next_slot();
    BPFVM_TRY(parse_line(cur, b));
    if (!cur.at_end()) return cur.error(fmt::format("unexpected '{}' after the instruction", cur.rest()));
    if (!implicit.count("exit") && std::holds_alternative<Exit>(*b.last())) implicit["exit"] = slot;
    return ok();
  }));
  return b.finish(implicit);
}

}  // namespace bpfvm::isa::detail
