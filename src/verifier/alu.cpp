// Arithmetic: scalars through the Scalar domain, and the pointer arithmetic the kernel allows
// (adjust_ptr_min_max_vals): adding or subtracting a number to a pointer into memory, with the constant
// part in `off` and the variable part in the pointer's value.
#include <fmt/format.h>

#include <limits>

#include "explorer.hpp"

namespace bpfvm::verifier {

namespace {

AluOp alu_op(isa::AluOp op) {
  switch (op) {
    case isa::AluOp::kAdd: return AluOp::kAdd;
    case isa::AluOp::kSub: return AluOp::kSub;
    case isa::AluOp::kMul: return AluOp::kMul;
    case isa::AluOp::kDiv: return AluOp::kDiv;
    case isa::AluOp::kSdiv: return AluOp::kSdiv;
    case isa::AluOp::kOr: return AluOp::kOr;
    case isa::AluOp::kAnd: return AluOp::kAnd;
    case isa::AluOp::kLsh: return AluOp::kLsh;
    case isa::AluOp::kRsh: return AluOp::kRsh;
    case isa::AluOp::kNeg: return AluOp::kNeg;
    case isa::AluOp::kMod: return AluOp::kMod;
    case isa::AluOp::kSmod: return AluOp::kSmod;
    case isa::AluOp::kXor: return AluOp::kXor;
    case isa::AluOp::kMov:
    case isa::AluOp::kMovsx: return AluOp::kMov;
    case isa::AluOp::kArsh: return AluOp::kArsh;
  }
  return AluOp::kMov;
}

// The operator as the kernel's log writes it.
std::string_view op_name(isa::AluOp op) {
  switch (op) {
    case isa::AluOp::kAdd: return "+=";
    case isa::AluOp::kSub: return "-=";
    case isa::AluOp::kMul: return "*=";
    case isa::AluOp::kDiv: return "/=";
    case isa::AluOp::kSdiv: return "s/=";
    case isa::AluOp::kOr: return "|=";
    case isa::AluOp::kAnd: return "&=";
    case isa::AluOp::kLsh: return "<<=";
    case isa::AluOp::kRsh: return ">>=";
    case isa::AluOp::kNeg: return "neg";
    case isa::AluOp::kMod: return "%=";
    case isa::AluOp::kSmod: return "s%=";
    case isa::AluOp::kXor: return "^=";
    case isa::AluOp::kMov: return "=";
    case isa::AluOp::kMovsx: return "=(s)";
    case isa::AluOp::kArsh: return "s>>=";
  }
  return "?";
}

}  // namespace

Result<void> Explorer::alu(Frame& f, std::uint32_t pc, const isa::Alu& a) {
  RegState src;
  if (a.op != isa::AluOp::kNeg) {
    src = a.src.is_reg ? *BPFVM_TRY(read(f, pc, a.src.reg))
                       : RegState::scalar(Scalar::constant(a.is64 ? sign_extend(static_cast<std::uint32_t>(a.src.imm), 32)
                                                                  : static_cast<std::uint32_t>(a.src.imm)));
  }
  BPFVM_TRY(write_check(pc, a.dst));
  RegState& dst = f.regs[a.dst];
  if (a.op == isa::AluOp::kMov || a.op == isa::AluOp::kMovsx) {
    if (a.op == isa::AluOp::kMovsx) {
      if (src.type != RegType::kScalar) return error(pc, fmt::format("R{} sign extension of a pointer prohibited", a.src.reg));
      Scalar v;
      if (src.value.is_const()) {
        v = Scalar::constant(sign_extend(src.value.const_value(), a.movsx_bits));
      } else {
        // Any value of `movsx_bits` bits, sign-extended.
        v.smin = -(std::int64_t{1} << (a.movsx_bits - 1));
        v.smax = (std::int64_t{1} << (a.movsx_bits - 1)) - 1;
        v.sync();
      }
      dst = RegState::scalar(a.is64 ? v : v.zext32());
      return {};
    }
    if (a.is64) {
      // A copy of an unknown number shares an id with it: what a branch learns of one, the other
      // knows too (the kernel's linked scalars).
      if (a.src.is_reg && src.type == RegType::kScalar && !src.value.is_const()) {
        RegState& s = f.regs[a.src.reg];
        if (s.id == 0) s.id = new_id();
        src.id = s.id;
      }
      dst = src;
    } else {
      // A 32-bit move of a pointer keeps only a number.
      dst = RegState::scalar(src.type == RegType::kScalar ? src.value.zext32() : Scalar::unknown().zext32());
    }
    return {};
  }
  const RegState& d = *BPFVM_TRY(read(f, pc, a.dst));
  if (a.op == isa::AluOp::kNeg) {
    // A negated pointer is only a number (for a privileged loader, as the kernel's check_alu_op).
    if (d.is_pointer()) {
      dst = RegState::unknown_scalar();
      return {};
    }
    src = RegState::scalar(Scalar::constant(0));
  }
  const bool shift = a.op == isa::AluOp::kLsh || a.op == isa::AluOp::kRsh || a.op == isa::AluOp::kArsh;
  const unsigned width = a.is64 ? 64 : 32;
  if (shift && !a.src.is_reg && (a.src.imm < 0 || static_cast<unsigned>(a.src.imm) >= width)) {
    return error(pc, fmt::format("invalid shift {}: a shift by {} or more bits is undefined", a.src.imm, width));
  }
  if (d.type == RegType::kScalar && src.type == RegType::kScalar) {
    // Where the kernel computes no range (is_safe_to_compute_dst_reg_range), neither does bpfvm, so
    // that both explore the same paths: division and modulo, and shifts by anything but a constant
    // below the width (a shift by `width` or more is undefined; the interpreter masks it). The result
    // is wholly unknown, even after a 32-bit operation, as the kernel leaves it.
    const Scalar& amount = src.value;
    const bool const_amount = a.is64 ? amount.is_const() : tnum_subreg(amount.bits).is_const();
    const bool divides = a.op == isa::AluOp::kDiv || a.op == isa::AluOp::kMod || a.op == isa::AluOp::kSdiv ||
                         a.op == isa::AluOp::kSmod;
    if (divides || (shift && (!const_amount || (a.is64 ? amount.umax : amount.u32_max) >= width))) {
      dst = RegState::unknown_scalar();
      return {};
    }
    dst = RegState::scalar(scalar_alu(alu_op(a.op), d.value, src.value, !a.is64));
    return {};
  }
  return pointer_alu(dst, pc, a, d, src);
}

Result<void> Explorer::pointer_alu(RegState& dst, std::uint32_t pc, const isa::Alu& a, const RegState& d,
                                   const RegState& src) {
  const bool ptr_dst = d.is_pointer();
  if (ptr_dst && src.is_pointer()) {
    // Pointer minus pointer: a number (a length, data_end - data), for a privileged loader; in 32 bits
    // too (adjust_reg_min_max_vals takes BPF_SUB of two pointers before it looks at the width: w7 -= w6,
    // as clang emits for a u32 length in cilium's programs).
    if (a.op == isa::AluOp::kSub) {
      if (a.is64 && d.type == src.type && d.type == RegType::kStack && d.frame == src.frame && d.value.is_const() &&
          src.value.is_const()) {
        dst = RegState::scalar(Scalar::constant(static_cast<std::uint64_t>(static_cast<std::int64_t>(d.off) - src.off)));
      } else {
        dst = RegState::unknown_scalar();
      }
      return {};
    }
    return error(pc, fmt::format("R{} pointer {} pointer prohibited", a.dst, a.op == isa::AluOp::kSub ? "-=" : "op"));
  }
  const RegState& ptr = ptr_dst ? d : src;
  const RegState& num = ptr_dst ? src : d;
  const std::string_view type = reg_type_name(ptr.type, ptr.maybe_null);
  if (!a.is64) {
    // A 32-bit subtraction with a pointer gives a (meaningless) number to a privileged loader
    // (adjust_ptr_min_max_vals); any other 32-bit operation on a pointer is refused.
    if (a.op == isa::AluOp::kSub) {  // either way round: the width is checked first
      dst = RegState::unknown_scalar();
      return {};
    }
    return error(pc, fmt::format("R{} 32-bit pointer arithmetic prohibited: a pointer lives in all 64 bits", a.dst));
  }
  if (ptr.maybe_null) {
    return reject(pc, fmt::format("R{} pointer arithmetic on {} prohibited, null-check it first", a.dst, type),
                  "compare the pointer with 0 first (`if (!p) return 0;`), then move it", ptr.id);
  }
  if (ptr.type == RegType::kMapPtr || ptr.type == RegType::kPacketEnd || ptr.type == RegType::kFunc ||
      is_socket_type(ptr.type)) {
    return error(pc, fmt::format("R{} pointer arithmetic on {} prohibited", a.dst, type));
  }
  if (!ptr_dst && a.op == isa::AluOp::kSub) {
    return error(pc, fmt::format("R{} tried to subtract pointer from scalar", a.dst));
  }
  if (a.op != isa::AluOp::kAdd && a.op != isa::AluOp::kSub) {
    const std::string_view name = op_name(a.op);
    const bool bitwise = a.op == isa::AluOp::kAnd || a.op == isa::AluOp::kOr || a.op == isa::AluOp::kXor;
    if (bitwise) return error(pc, fmt::format("R{} bitwise operator {} on pointer prohibited", a.dst, name));
    return error(pc, fmt::format("R{} pointer arithmetic with {} operator prohibited: only adding or subtracting a "
                                 "number moves a pointer",
                                 a.dst, name));
  }
  // check_reg_sane_offset, on the number and then on the result: offsets the kernel refuses to track.
  auto sane = [&](const RegState& x, bool is_number) -> Result<void> {
    const std::int64_t smin = x.value.smin;
    if (is_number && x.value.is_const()) {
      const auto c = static_cast<std::int64_t>(x.value.const_value());
      if (c >= kMaxVarOff || c <= -kMaxVarOff) {
        return error(pc, fmt::format("math between {} pointer and {} is not allowed", type, c));
      }
    }
    if (x.off >= kMaxVarOff || x.off <= -kMaxVarOff) {
      return error(pc, fmt::format("{} pointer offset {} is not allowed", type, x.off));
    }
    if (smin == std::numeric_limits<std::int64_t>::min()) {
      return reject(pc,
                    fmt::format("math between {} pointer and register with unbounded min value is not allowed", type),
                    "bound the number before adding it to a pointer (`if (i > N) return 0;` or `i &= N - 1`)");
    }
    if (smin >= kMaxVarOff || smin <= -kMaxVarOff) {
      return error(pc, fmt::format("value {} makes {} pointer be out of bounds", smin, type));
    }
    return {};
  };
  // The number's bounds decide this step's safety, used or not after: the kernel marks it precise
  // back along this path (adjust_reg_min_max_vals' mark_chain_precision); what the walk cannot follow
  // is demanded for every path.
  if (ptr_dst ? a.src.is_reg : true) {
    const auto reg = static_cast<std::uint16_t>(1u << (ptr_dst ? a.src.reg : a.dst));
    precise_here(current_, pc, reg);
  }
  BPFVM_TRY(sane(num, true));
  RegState r = ptr;
  const bool sub = a.op == isa::AluOp::kSub;
  if (num.value.is_const()) {
    const auto c = static_cast<std::int64_t>(num.value.const_value());
    const std::int64_t off = sub ? r.off - c : r.off + c;
    if (off <= -kMaxVarOff || off >= kMaxVarOff) {
      return error(pc, fmt::format("{} pointer offset {} is not allowed", type, off));
    }
    r.off = static_cast<std::int32_t>(off);
  } else {
    // An unbounded variable part is allowed until the pointer is used: accesses check it. (A
    // context pointer with one is refused there too: its fields are at fixed offsets.)
    r.value = scalar_alu(sub ? AluOp::kSub : AluOp::kAdd, r.value, num.value, false);
    if (ptr.type == RegType::kPacket || ptr.type == RegType::kPacketMeta) {
      // A new variable part: nothing proven for the old one holds for the new one.
      r.id = new_id();
      r.range = 0;
    }
  }
  BPFVM_TRY(sane(r, false));
  dst = r;
  return {};
}

}  // namespace bpfvm::verifier
