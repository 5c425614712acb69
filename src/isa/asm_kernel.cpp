// The kernel/bpftool syntax: the inverse of disasm.cpp.
#include <cctype>

#include "asm_lexer.hpp"
#include "asm_syntaxes.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/helper_names.hpp"

namespace bpfvm::isa::detail {

namespace {

using RefKind = ProgramBuilder::RefKind;

struct SizeName {
  std::string_view name;
  Size size;
  bool sign;
};
constexpr SizeName kSizes[] = {{"u8", Size::kB, false},  {"u16", Size::kH, false}, {"u32", Size::kW, false},
                               {"u64", Size::kDW, false}, {"s8", Size::kB, true},   {"s16", Size::kH, true},
                               {"s32", Size::kW, true}};

struct AluName {
  std::string_view op;
  AluOp alu;
};
// Longest first, so that "s>>=" is not read as ">>=" and "<<=" not as "=".
constexpr AluName kAluOps[] = {{"s>>=", AluOp::kArsh}, {"<<=", AluOp::kLsh}, {">>=", AluOp::kRsh},
                               {"s/=", AluOp::kSdiv},  {"s%=", AluOp::kSmod}, {"+=", AluOp::kAdd},
                               {"-=", AluOp::kSub},    {"*=", AluOp::kMul},   {"/=", AluOp::kDiv},
                               {"%=", AluOp::kMod},    {"|=", AluOp::kOr},    {"&=", AluOp::kAnd},
                               {"^=", AluOp::kXor},    {"=", AluOp::kMov}};

struct CondName {
  std::string_view op;
  Cond cond;
};
constexpr CondName kConds[] = {{"s>=", Cond::kSge}, {"s<=", Cond::kSle}, {"s>", Cond::kSgt}, {"s<", Cond::kSlt},
                               {"==", Cond::kEq},   {"!=", Cond::kNe},   {">=", Cond::kGe},  {"<=", Cond::kLe},
                               {">", Cond::kGt},    {"<", Cond::kLt},    {"&", Cond::kSet}};

struct AtomicName {
  std::string_view op;
  AtomicOp atomic;
};
constexpr AtomicName kAtomicOps[] = {
    {"+=", AtomicOp::kAdd}, {"|=", AtomicOp::kOr}, {"&=", AtomicOp::kAnd}, {"^=", AtomicOp::kXor}};

Result<SizeName> parse_size(LineCursor& cur) {
  cur.skip_ws();
  const std::size_t col = cur.pos();
  for (const SizeName& s : kSizes) {
    if (cur.eat_word(s.name)) return s;
  }
  return cur.error_at(col, "expected a size (u8, u16, u32, u64, s8, s16, s32)");
}

// "(r10 -4)" after the size's " *)": a base register and an optional signed offset.
Result<std::pair<std::uint8_t, std::int16_t>> parse_base_off(LineCursor& cur) {
  BPFVM_TRY(cur.expect("("));
  std::uint8_t base = BPFVM_TRY(cur.reg("r"));
  std::int16_t off = 0;
  if (!cur.eat(")")) {
    cur.skip_ws();
    const std::size_t col = cur.pos();
    std::int64_t v = BPFVM_TRY(cur.number());
    off = BPFVM_TRY(to_off16(cur, col, v));
    BPFVM_TRY(cur.expect(")"));
  }
  return std::make_pair(base, off);
}

// "*(u32 *)(r1 +4)" with the leading "*(" already consumed.
Result<std::tuple<SizeName, std::uint8_t, std::int16_t>> parse_mem(LineCursor& cur) {
  SizeName size = BPFVM_TRY(parse_size(cur));
  BPFVM_TRY(cur.expect("*"));
  BPFVM_TRY(cur.expect(")"));
  auto [base, off] = BPFVM_TRY(parse_base_off(cur));
  return std::make_tuple(size, base, off);
}

// A jump target: "pc+N", "pc-N" or a label.
Result<void> parse_target(LineCursor& cur, ProgramBuilder& b, Insn insn, RefKind kind) {
  cur.skip_ws();
  const std::size_t col = cur.pos();
  if (cur.eat_word("pc")) {
    std::int64_t v = BPFVM_TRY(cur.number());
    if (kind == RefKind::kJumpOff) {
      std::int16_t off = BPFVM_TRY(to_off16(cur, col, v));
      if (auto* j = std::get_if<Jump>(&insn)) j->offset = off;
      if (auto* j = std::get_if<CondJump>(&insn)) j->offset = off;
    } else {
      std::int32_t imm = BPFVM_TRY(to_imm32(cur, col, v));
      if (auto* j = std::get_if<Jump>(&insn)) j->offset = imm;
      if (auto* c = std::get_if<Call>(&insn)) c->imm = imm;
    }
    b.add(insn);
    return ok();
  }
  std::string_view label = cur.identifier();
  if (label.empty()) return cur.error_at(col, "expected a jump target: pc+N, pc-N or a label");
  b.add_with_label(insn, std::string(label), kind, cur.error_at(col, ""));
  return ok();
}

Result<void> parse_call(LineCursor& cur, ProgramBuilder& b) {
  cur.skip_ws();
  const std::size_t col = cur.pos();
  if (cur.rest().starts_with("pc+") || cur.rest().starts_with("pc-")) {
    return parse_target(cur, b, Call{Call::Kind::kLocal, 0, 0}, RefKind::kCallImm);
  }
  if (cur.eat("kernel-function")) {
    BPFVM_TRY(cur.expect("#"));
    std::int64_t id = BPFVM_TRY(cur.number());
    std::int16_t module = 0;
    if (cur.eat("(")) {
      if (!cur.eat_word("module") || !cur.eat_word("btf")) return cur.error("expected '(module btf N)'");
      cur.skip_ws();
      const std::size_t mcol = cur.pos();
      module = BPFVM_TRY(to_off16(cur, mcol, BPFVM_TRY(cur.number())));
      BPFVM_TRY(cur.expect(")"));
    }
    b.add(Call{Call::Kind::kKfunc, BPFVM_TRY(to_imm32(cur, col, id)), module});
    return ok();
  }
  if (cur.peek_number()) {
    std::int64_t id = BPFVM_TRY(cur.number());
    b.add(Call{Call::Kind::kHelper, BPFVM_TRY(to_imm32(cur, col, id)), 0});
    return ok();
  }
  std::string_view name = cur.identifier();
  if (name.empty()) return cur.error_at(col, "expected a helper name, pc+N or a label after 'call'");
  std::optional<std::int32_t> id = helper_id(name);
  if (cur.eat("#")) {
    const std::size_t ncol = cur.pos();
    std::int64_t n = BPFVM_TRY(cur.number());
    // A known name wins over the number: in a loaded program's dump the kernel has replaced the id
    // with an address offset ("call bpf_trace_printk#-61360").
    if (!id) id = BPFVM_TRY(to_imm32(cur, ncol, n));
  }
  if (id) {
    b.add(Call{Call::Kind::kHelper, *id, 0});
    return ok();
  }
  b.add_with_label(Call{Call::Kind::kLocal, 0, 0}, std::string(name), RefKind::kCallImm, cur.error_at(col, ""));
  return ok();
}

Result<void> parse_if(LineCursor& cur, ProgramBuilder& b) {
  cur.skip_ws();
  bool is32 = cur.rest().starts_with("w");
  std::uint8_t dst = BPFVM_TRY(cur.reg(is32 ? "w" : "r"));
  cur.skip_ws();
  const std::size_t opcol = cur.pos();
  const CondName* cond = nullptr;
  for (const CondName& c : kConds) {
    if (cur.eat(c.op)) {
      cond = &c;
      break;
    }
  }
  if (!cond) return cur.error_at(opcol, "expected a comparison (==, !=, >, >=, <, <=, s>, s>=, s<, s<=, &)");
  Operand src;
  if (auto r = cur.try_reg(is32 ? "w" : "r")) {
    src = Operand::Reg(*r);
  } else {
    cur.skip_ws();
    const std::size_t col = cur.pos();
    std::int64_t v = BPFVM_TRY(cur.number());
    src = Operand::Imm(BPFVM_TRY(to_imm32(cur, col, v)));
  }
  if (!cur.eat_word("goto")) return cur.error("expected 'goto'");
  return parse_target(cur, b, CondJump{cond->cond, is32, dst, src, 0}, RefKind::kJumpOff);
}

// "lock *(u64 *)(r1 +0) += r2"
Result<void> parse_lock(LineCursor& cur, ProgramBuilder& b) {
  BPFVM_TRY(cur.expect("*("));
  auto [size, base, off] = BPFVM_TRY(parse_mem(cur));
  cur.skip_ws();
  const std::size_t col = cur.pos();
  for (const AtomicName& a : kAtomicOps) {
    if (cur.eat(a.op)) {
      std::uint8_t src = BPFVM_TRY(cur.reg("r"));
      if (size.size != Size::kW && size.size != Size::kDW) return cur.error_at(col, "atomics are 32 or 64 bits");
      b.add(Atomic{a.atomic, false, size.size, base, off, src});
      return ok();
    }
  }
  return cur.error_at(col, "expected an atomic operator (+=, |=, &=, ^=)");
}

// After "rD = ": "atomic64_fetch_add((u64 *)(r1 +0), rD)", "atomic_xchg(...)", "atomic64_cmpxchg(..., r0, rS)".
Result<void> parse_atomic_call(LineCursor& cur, ProgramBuilder& b, std::uint8_t dst, std::size_t col) {
  const bool wide = cur.eat("64");
  AtomicOp op;
  bool fetch = true;
  if (cur.eat("_fetch_")) {
    std::string_view name = cur.identifier();
    if (name == "add") op = AtomicOp::kAdd;
    else if (name == "or") op = AtomicOp::kOr;
    else if (name == "and") op = AtomicOp::kAnd;
    else if (name == "xor") op = AtomicOp::kXor;
    else return cur.error_at(col, fmt::format("unknown atomic operation 'fetch_{}'", name));
  } else if (cur.eat_word("_xchg")) {
    op = AtomicOp::kXchg;
  } else if (cur.eat_word("_cmpxchg")) {
    op = AtomicOp::kCmpxchg;
  } else {
    return cur.error_at(col, "expected atomic_fetch_<op>, atomic_xchg or atomic_cmpxchg");
  }
  BPFVM_TRY(cur.expect("("));
  BPFVM_TRY(cur.expect("("));
  auto [size, base, off] = BPFVM_TRY(parse_mem(cur));
  if ((size.size == Size::kDW) != wide || (size.size != Size::kW && size.size != Size::kDW)) {
    return cur.error_at(col, "atomic64_* takes (u64 *), atomic_* takes (u32 *)");
  }
  BPFVM_TRY(cur.expect(","));
  if (op == AtomicOp::kCmpxchg) {
    if (dst != 0 || BPFVM_TRY(cur.reg("r")) != 0) return cur.error_at(col, "cmpxchg compares with and writes r0");
    BPFVM_TRY(cur.expect(","));
  }
  std::uint8_t src = BPFVM_TRY(cur.reg("r"));
  BPFVM_TRY(cur.expect(")"));
  if (op != AtomicOp::kCmpxchg && src != dst) {
    return cur.error_at(col, "the fetched value goes back into the source register: write 'rN = atomic...(..., rN)'");
  }
  b.add(Atomic{op, fetch, size.size, base, off, src});
  return ok();
}

Result<void> parse_assignment(LineCursor& cur, ProgramBuilder& b, std::optional<std::uint8_t> hint) {
  cur.skip_ws();
  const bool is32 = cur.rest().starts_with("w");
  std::uint8_t dst = BPFVM_TRY(cur.reg(is32 ? "w" : "r"));
  const char rc = is32 ? 'w' : 'r';
  const std::string rp(1, rc);
  cur.skip_ws();
  const std::size_t opcol = cur.pos();
  const AluName* op = nullptr;
  for (const AluName& a : kAluOps) {
    if (cur.eat(a.op)) {
      op = &a;
      break;
    }
  }
  if (!op) return cur.error_at(opcol, "expected an assignment operator (=, +=, -=, ...)");
  cur.skip_ws();
  const std::size_t col = cur.pos();
  if (op->alu != AluOp::kMov) {
    if (auto r = cur.try_reg(rp)) {
      b.add(Alu{op->alu, !is32, dst, Operand::Reg(*r), 0});
    } else {
      std::int64_t v = BPFVM_TRY(cur.number());
      b.add(Alu{op->alu, !is32, dst, Operand::Imm(BPFVM_TRY(to_imm32(cur, col, v))), 0});
    }
    return ok();
  }
  // "rD = ..."
  if (cur.rest().starts_with("-" + rp) && cur.eat("-")) {
    std::uint8_t r = BPFVM_TRY(cur.reg(rp));
    if (r != dst) return cur.error_at(col, "negation is in place: write 'rN = -rN'");
    b.add(Alu{AluOp::kNeg, !is32, dst, Operand::Imm(0), 0});
    return ok();
  }
  if (cur.eat("(s")) {
    const std::size_t c = cur.pos();
    std::int64_t bits = BPFVM_TRY(cur.number());
    if (bits != 8 && bits != 16 && bits != 32) return cur.error_at(c, "movsx takes (s8), (s16) or (s32)");
    BPFVM_TRY(cur.expect(")"));
    std::uint8_t src = BPFVM_TRY(cur.reg(rp));
    b.add(Alu{AluOp::kMovsx, !is32, dst, Operand::Reg(src), static_cast<std::uint8_t>(bits)});
    return ok();
  }
  for (auto [name, order] : {std::pair{"bswap", Endian::Order::kSwap}, std::pair{"be", Endian::Order::kBig},
                             std::pair{"le", Endian::Order::kLittle}}) {
    std::size_t save = cur.pos();
    if (!is32 && cur.eat(name) && cur.peek_number() && std::isdigit(static_cast<unsigned char>(cur.rest()[0]))) {
      const std::size_t c = cur.pos();
      std::int64_t bits = BPFVM_TRY(cur.number());
      if (bits != 16 && bits != 32 && bits != 64) return cur.error_at(c, "byte order widths are 16, 32 and 64");
      std::uint8_t r = BPFVM_TRY(cur.reg("r"));
      if (r != dst) return cur.error_at(col, "byte order conversion is in place: write 'rN = be16 rN'");
      b.add(Endian{order, static_cast<std::uint8_t>(bits), dst});
      return ok();
    }
    cur.set_pos(save);
  }
  if (cur.eat("*(")) {
    SizeName size = BPFVM_TRY(parse_size(cur));
    BPFVM_TRY(cur.expect("*"));
    BPFVM_TRY(cur.expect(")"));
    if (cur.eat("skb[")) {
      if (dst != 0 || size.sign || size.size == Size::kDW) {
        return cur.error_at(col, "legacy packet loads write r0 and take u8, u16 or u32");
      }
      if (auto r = cur.try_reg("r")) {
        BPFVM_TRY(cur.expect("+"));
        const std::size_t c = cur.pos();
        std::int64_t v = BPFVM_TRY(cur.number());
        BPFVM_TRY(cur.expect("]"));
        b.add(PacketLoad{size.size, true, *r, BPFVM_TRY(to_imm32(cur, c, v))});
      } else {
        const std::size_t c = cur.pos();
        std::int64_t v = BPFVM_TRY(cur.number());
        BPFVM_TRY(cur.expect("]"));
        b.add(PacketLoad{size.size, false, 0, BPFVM_TRY(to_imm32(cur, c, v))});
      }
      return ok();
    }
    auto [base, off] = BPFVM_TRY(parse_base_off(cur));
    if (is32) return cur.error_at(col, "loads write a whole register: use rN");
    b.add(Load{size.size, size.sign, dst, base, off});
    return ok();
  }
  if (cur.eat("atomic")) return parse_atomic_call(cur, b, dst, col);
  // 64-bit immediate loads with a pseudo source: map[fd:N], map[fd:N][0]+OFF, map[idx:N], map[idx:N]+OFF,
  // btf_id[N], subprog[+N].
  auto num32 = [&]() -> Result<std::int32_t> {
    cur.skip_ws();
    const std::size_t c = cur.pos();
    std::int64_t v = BPFVM_TRY(cur.number());
    return to_imm32(cur, c, v);
  };
  if (cur.eat("map[fd:")) {
    std::int32_t fd = BPFVM_TRY(num32());
    BPFVM_TRY(cur.expect("]"));
    if (cur.eat("[0]")) {
      BPFVM_TRY(cur.expect("+"));
      std::int32_t off = BPFVM_TRY(num32());
      b.add(LoadImm64{dst, Pseudo::kMapValue, fd, off});
    } else {
      b.add(LoadImm64{dst, Pseudo::kMapFd, fd, 0});
    }
    return ok();
  }
  if (cur.eat("map[idx:")) {
    std::int32_t idx = BPFVM_TRY(num32());
    BPFVM_TRY(cur.expect("]"));
    if (cur.eat("+")) {
      std::int32_t off = BPFVM_TRY(num32());
      b.add(LoadImm64{dst, Pseudo::kMapIdxValue, idx, off});
    } else {
      b.add(LoadImm64{dst, Pseudo::kMapIdx, idx, 0});
    }
    return ok();
  }
  if (cur.eat("map[id:")) {
    return cur.error_at(col, "map[id:N] names a loaded map and cannot be assembled; use map[fd:N] or map[idx:N]");
  }
  if (cur.eat("btf_id[")) {
    std::int32_t id = BPFVM_TRY(num32());
    BPFVM_TRY(cur.expect("]"));
    b.add(LoadImm64{dst, Pseudo::kBtfId, id, 0});
    return ok();
  }
  if (cur.eat("subprog[")) {
    std::int32_t rel = BPFVM_TRY(num32());
    BPFVM_TRY(cur.expect("]"));
    b.add(LoadImm64{dst, Pseudo::kFunc, rel, 0});
    return ok();
  }
  if (auto r = cur.try_reg(rp)) {
    b.add(Alu{AluOp::kMov, !is32, dst, Operand::Reg(*r), 0});
    return ok();
  }
  const bool hex = cur.rest().starts_with("0x") || cur.rest().starts_with("-0x");
  std::int64_t v = BPFVM_TRY(cur.number());
  const bool fits32 = v >= INT32_MIN && v <= INT32_MAX;
  bool lddw = hint ? *hint == (kClassLd | kModeImm | kSizeDW) : (hex || !fits32);
  // llvm-objdump's spelling of a 64-bit immediate load: "r1 = 0x1234 ll".
  if (cur.eat_word("ll")) {
    if (is32) return cur.error_at(col, "'ll' makes a 64-bit load; w registers are 32-bit");
    lddw = true;
  }
  if (is32) lddw = false;
  if (lddw) {
    b.add(LoadImm64::Imm(dst, static_cast<std::uint64_t>(v)));
  } else {
    b.add(Alu{AluOp::kMov, !is32, dst, Operand::Imm(BPFVM_TRY(to_imm32(cur, col, v))), 0});
  }
  return ok();
}

bool is_opcode_bytes_line(std::string_view line) {
  // bpftool's "opcodes" lines: 8 or 16 two-digit hex bytes.
  int count = 0;
  std::size_t i = 0;
  while (i < line.size()) {
    if (std::isspace(static_cast<unsigned char>(line[i]))) {
      ++i;
      continue;
    }
    if (i + 1 >= line.size() || !std::isxdigit(static_cast<unsigned char>(line[i])) ||
        !std::isxdigit(static_cast<unsigned char>(line[i + 1])) ||
        (i + 2 < line.size() && !std::isspace(static_cast<unsigned char>(line[i + 2])))) {
      return false;
    }
    ++count;
    i += 2;
  }
  return count == 8 || count == 16;
}

Result<void> parse_statement(LineCursor& cur, ProgramBuilder& b, std::optional<std::uint8_t> hint) {
  cur.skip_ws();
  if (cur.eat_word("exit")) {
    b.add(Exit{});
  } else if (cur.eat_word("goto")) {
    BPFVM_TRY(parse_target(cur, b, Jump{0, false}, RefKind::kJumpOff));
  } else if (cur.eat_word("gotol")) {
    BPFVM_TRY(parse_target(cur, b, Jump{0, true}, RefKind::kJumpImm));
  } else if (cur.eat_word("callx")) {
    b.add(CallReg{BPFVM_TRY(cur.reg("r"))});
  } else if (cur.eat_word("call")) {
    BPFVM_TRY(parse_call(cur, b));
  } else if (cur.eat_word("if")) {
    BPFVM_TRY(parse_if(cur, b));
  } else if (cur.eat_word("lock")) {
    BPFVM_TRY(parse_lock(cur, b));
  } else if (cur.eat("*(")) {
    auto [size, base, off] = BPFVM_TRY(parse_mem(cur));
    if (size.sign) return cur.error("stores take an unsigned size (u8, u16, u32, u64)");
    BPFVM_TRY(cur.expect("="));
    if (auto r = cur.try_reg("r")) {
      b.add(Store{size.size, base, off, Operand::Reg(*r)});
    } else {
      cur.skip_ws();
      const std::size_t col = cur.pos();
      std::int64_t v = BPFVM_TRY(cur.number());
      b.add(Store{size.size, base, off, Operand::Imm(BPFVM_TRY(to_imm32(cur, col, v)))});
    }
  } else if (cur.rest().starts_with("r") || cur.rest().starts_with("w")) {
    BPFVM_TRY(parse_assignment(cur, b, hint));
  } else {
    return cur.error("expected an instruction");
  }
  if (!cur.at_end()) return cur.error(fmt::format("unexpected '{}' after the instruction", cur.rest()));
  return ok();
}

}  // namespace

Result<std::vector<RawInsn>> assemble_kernel(std::string_view text, std::string_view file) {
  ProgramBuilder b;
  BPFVM_TRY(for_each_line(text, [&](std::string_view line, std::uint32_t line_no) -> Result<void> {
    if (auto c = line.find("//"); c != std::string_view::npos) line = line.substr(0, c);
    LineCursor cur(line, line_no, file);
    if (cur.at_end() || cur.rest().starts_with(";") || cur.rest().starts_with("#")) return ok();
    if (is_opcode_bytes_line(line)) return ok();
    // "   4: " index prefix, as bpftool prints it.
    if (cur.peek_number()) {
      std::size_t save = cur.pos();
      auto n = cur.number();
      if (!n || !cur.eat(":")) cur.set_pos(save);
    }
    // "name:" label.
    {
      std::size_t save = cur.pos();
      cur.skip_ws();
      const std::size_t col = cur.pos();
      std::string_view id = cur.identifier();
      if (!id.empty() && cur.eat(":") && cur.at_end()) return b.define_label(std::string(id), cur, col);
      cur.set_pos(save);
    }
    // "(b7) " opcode hint.
    std::optional<std::uint8_t> hint;
    cur.skip_ws();
    const std::size_t hint_col = cur.pos();
    if (cur.rest().size() >= 4 && cur.rest()[0] == '(' && cur.rest()[3] == ')' &&
        std::isxdigit(static_cast<unsigned char>(cur.rest()[1])) &&
        std::isxdigit(static_cast<unsigned char>(cur.rest()[2]))) {
      hint = static_cast<std::uint8_t>(std::stoi(std::string(cur.rest().substr(1, 2)), nullptr, 16));
      cur.set_pos(cur.pos() + 4);
    }
    const std::size_t slot = b.next_slot();
    BPFVM_TRY(parse_statement(cur, b, hint));
    // The opcode in parentheses must agree with the text, or the line is contradictory.
    if (hint) b.expect_opcode(slot, *hint, cur.error_at(hint_col, ""));
    return ok();
  }));
  return b.finish();
}

}  // namespace bpfvm::isa::detail
