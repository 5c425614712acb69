// Decoding without the variant: visit_insn() hands the instruction to a visitor as its own struct
// (Alu, Load, ...). decode() builds an Insn this way; a consumer that translates a whole program
// (validate_each, the engines' pre-decoding) does its work inside the visitor, with one dispatch per
// instruction instead of one to build the variant and one more to take it apart.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"
#include "bpfvm/isa/opcode_table.hpp"

namespace bpfvm::isa {

// Whether `slots` starts a valid instruction, and if not why (decode() refuses exactly these).
Result<void> check_insn(std::span<const RawInsn> slots);

namespace detail {

inline Size size_of(std::uint8_t opcode) {
  switch (opcode & kSizeMask) {
    case kSizeB: return Size::kB;
    case kSizeH: return Size::kH;
    case kSizeW: return Size::kW;
    default: return Size::kDW;
  }
}

inline AluOp alu_op(std::uint8_t opcode, std::int16_t off) {
  switch (opcode & kOpMask) {
    case kAluAdd: return AluOp::kAdd;
    case kAluSub: return AluOp::kSub;
    case kAluMul: return AluOp::kMul;
    case kAluDiv: return off ? AluOp::kSdiv : AluOp::kDiv;
    case kAluOr: return AluOp::kOr;
    case kAluAnd: return AluOp::kAnd;
    case kAluLsh: return AluOp::kLsh;
    case kAluRsh: return AluOp::kRsh;
    case kAluNeg: return AluOp::kNeg;
    case kAluMod: return off ? AluOp::kSmod : AluOp::kMod;
    case kAluXor: return AluOp::kXor;
    case kAluMov: return off ? AluOp::kMovsx : AluOp::kMov;
    default: return AluOp::kArsh;
  }
}

// Cond's values in order: the operation bits of each.
inline constexpr std::uint8_t kCondBits[] = {kJmpJeq, kJmpJgt, kJmpJge, kJmpJset, kJmpJne, kJmpJsgt,
                                             kJmpJsge, kJmpJlt, kJmpJle, kJmpJslt, kJmpJsle};

inline Cond cond_of(std::uint8_t opcode) {
  const std::uint8_t op = opcode & kOpMask;
  for (std::size_t i = 0; i < std::size(kCondBits); ++i) {
    if (kCondBits[i] == op) return static_cast<Cond>(i);
  }
  return Cond::kEq;  // unreachable: the table only admits the listed operations
}

inline AtomicOp atomic_op(std::int32_t imm) {
  if (imm == kAtomicXchg) return AtomicOp::kXchg;
  if (imm == kAtomicCmpxchg) return AtomicOp::kCmpxchg;
  switch (imm & ~kAtomicFetch) {
    case kAluAdd: return AtomicOp::kAdd;
    case kAluOr: return AtomicOp::kOr;
    case kAluAnd: return AtomicOp::kAnd;
    default: return AtomicOp::kXor;
  }
}

}  // namespace detail

// Calls visit(x) with the instruction `slots` starts, as the struct of its kind, and returns what visit
// returns. `slots` must start an instruction check_insn() accepted.
template <typename Visitor>
decltype(auto) visit_insn(std::span<const RawInsn> slots, Visitor&& visit) {
  const RawInsn& r = slots[0];
  const bool is64 = r.cls() == kClassAlu64;
  const bool x = (r.opcode & kSrcMask) == kSrcX;
  switch (opcode_info(r.opcode).kind) {
    case OpKind::kAlu: {
      const AluOp op = detail::alu_op(r.opcode, r.off);
      return visit(Alu{op, is64, r.dst,
                       op == AluOp::kNeg ? Operand::Imm(0) : (x ? Operand::Reg(r.src) : Operand::Imm(r.imm)),
                       op == AluOp::kMovsx ? static_cast<std::uint8_t>(r.off) : std::uint8_t{0}});
    }
    case OpKind::kEndian:
      return visit(Endian{is64 ? Endian::Order::kSwap : (x ? Endian::Order::kBig : Endian::Order::kLittle),
                          static_cast<std::uint8_t>(r.imm), r.dst});
    case OpKind::kJump:
      if (r.cls() == kClassJmp32) return visit(Jump{r.imm, true});
      return visit(Jump{r.off, false});
    case OpKind::kCondJump:
      return visit(CondJump{detail::cond_of(r.opcode), r.cls() == kClassJmp32, r.dst,
                            x ? Operand::Reg(r.src) : Operand::Imm(r.imm), r.off});
    case OpKind::kCall:
      return visit(Call{static_cast<Call::Kind>(r.src), r.imm, r.off});
    case OpKind::kCallReg:
      return visit(CallReg{r.dst});
    case OpKind::kLoadImm64:
      return visit(LoadImm64{r.dst, static_cast<Pseudo>(r.src), r.imm, slots[1].imm});
    case OpKind::kLoad:
      return visit(Load{detail::size_of(r.opcode), (r.opcode & kModeMask) == kModeMemSx, r.dst, r.src, r.off});
    case OpKind::kStore:
      return visit(Store{detail::size_of(r.opcode), r.dst, r.off,
                         r.cls() == kClassStx ? Operand::Reg(r.src) : Operand::Imm(r.imm)});
    case OpKind::kAtomic:
      return visit(Atomic{detail::atomic_op(r.imm), (r.imm & kAtomicFetch) != 0, detail::size_of(r.opcode), r.dst,
                          r.off, r.src});
    case OpKind::kPacketLoad:
      return visit(PacketLoad{detail::size_of(r.opcode), (r.opcode & kModeMask) == kModeInd, r.src, r.imm});
    case OpKind::kInvalid:
    case OpKind::kExit:
      break;
  }
  return visit(Exit{});
}

}  // namespace bpfvm::isa
