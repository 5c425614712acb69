#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/decode_visit.hpp"

#include "bpfvm/isa/opcode_table.hpp"

namespace bpfvm::isa {

std::array<std::uint8_t, 8> to_bytes(const RawInsn& insn) {
  const auto off = static_cast<std::uint16_t>(insn.off);
  const auto imm = static_cast<std::uint32_t>(insn.imm);
  return {insn.opcode,
          static_cast<std::uint8_t>((insn.src & 0xf) << 4 | (insn.dst & 0xf)),
          static_cast<std::uint8_t>(off),
          static_cast<std::uint8_t>(off >> 8),
          static_cast<std::uint8_t>(imm),
          static_cast<std::uint8_t>(imm >> 8),
          static_cast<std::uint8_t>(imm >> 16),
          static_cast<std::uint8_t>(imm >> 24)};
}

RawInsn from_bytes(std::span<const std::uint8_t, 8> b) {
  RawInsn insn;
  insn.opcode = b[0];
  insn.dst = b[1] & 0xf;
  insn.src = b[1] >> 4;
  insn.off = static_cast<std::int16_t>(static_cast<std::uint16_t>(b[2] | b[3] << 8));
  insn.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(b[4]) | static_cast<std::uint32_t>(b[5]) << 8 |
                                       static_cast<std::uint32_t>(b[6]) << 16 |
                                       static_cast<std::uint32_t>(b[7]) << 24);
  return insn;
}

Result<std::vector<RawInsn>> from_wire(std::span<const std::uint8_t> bytes) {
  if (bytes.size() % 8 != 0) {
    return make_error(Errc::kInvalid, "program size {} bytes is not a multiple of 8", bytes.size());
  }
  std::vector<RawInsn> out;
  out.reserve(bytes.size() / 8);
  for (std::size_t i = 0; i < bytes.size(); i += 8) {
    out.push_back(from_bytes(std::span<const std::uint8_t, 8>(bytes.data() + i, 8)));
  }
  return out;
}

std::vector<std::uint8_t> to_wire(std::span<const RawInsn> insns) {
  std::vector<std::uint8_t> out;
  out.reserve(insns.size() * 8);
  for (const RawInsn& insn : insns) {
    auto b = to_bytes(insn);
    out.insert(out.end(), b.begin(), b.end());
  }
  return out;
}

namespace {


std::uint8_t size_bits(Size s) {
  switch (s) {
    case Size::kB: return kSizeB;
    case Size::kH: return kSizeH;
    case Size::kW: return kSizeW;
    case Size::kDW: return kSizeDW;
  }
  return kSizeDW;
}

bool is_atomic_op(std::int32_t imm) {
  switch (imm) {
    case kAluAdd: case kAluOr: case kAluAnd: case kAluXor:
    case kAluAdd | kAtomicFetch: case kAluOr | kAtomicFetch:
    case kAluAnd | kAtomicFetch: case kAluXor | kAtomicFetch:
    case kAtomicXchg: case kAtomicCmpxchg:
      return true;
    default:
      return false;
  }
}

// Checks one field of `insn` against the table's rule; returns the reason it is wrong, or nothing.
Result<void> check_fields(const RawInsn& insn, const OpcodeInfo& info) {
  auto bad = [&](const char* field, long value, const char* expected) {
    return make_error(Errc::kInvalid, "opcode 0x{:02x}: {} is {}, {}", insn.opcode, field, value, expected);
  };
  switch (info.dst) {
    case DstRule::kZero:
      if (insn.dst != 0) return bad("dst_reg", insn.dst, "must be 0 (reserved)");
      break;
    case DstRule::kRead:
      if (insn.dst > kFramePointer) return bad("dst_reg", insn.dst, "not a register (r0-r10)");
      break;
    case DstRule::kWrite:
      if (insn.dst == kFramePointer) {
        return make_error(Errc::kInvalid, "opcode 0x{:02x}: writes r10, which is read-only", insn.opcode);
      }
      if (insn.dst > kFramePointer) return bad("dst_reg", insn.dst, "not a register (r0-r10)");
      break;
  }
  switch (info.src) {
    case SrcRule::kZero:
      if (insn.src != 0) return bad("src_reg", insn.src, "must be 0 (reserved)");
      break;
    case SrcRule::kReg:
      if (insn.src > kFramePointer) return bad("src_reg", insn.src, "not a register (r0-r10)");
      break;
    case SrcRule::kLddwPseudo:
      if (insn.src > kPseudoMax) return bad("src_reg", insn.src, "not a 64-bit immediate source (0-6)");
      break;
    case SrcRule::kCallKind:
      if (insn.src > kCallKfunc) return bad("src_reg", insn.src, "not a call kind (0 helper, 1 local, 2 kfunc)");
      break;
  }
  switch (info.off) {
    case OffRule::kZero:
      if (insn.off != 0) return bad("off", insn.off, "must be 0 (reserved)");
      break;
    case OffRule::kAny:
      break;
    case OffRule::kSignedFlag:
      if (insn.off != 0 && insn.off != 1) return bad("off", insn.off, "must be 0 (unsigned) or 1 (signed)");
      break;
    case OffRule::kMovsx64:
      if (insn.off != 0 && insn.off != 8 && insn.off != 16 && insn.off != 32) {
        return bad("off", insn.off, "must be 0 (mov) or 8, 16, 32 (movsx)");
      }
      break;
    case OffRule::kMovsx32:
      if (insn.off != 0 && insn.off != 8 && insn.off != 16) {
        return bad("off", insn.off, "must be 0 (mov) or 8, 16 (movsx)");
      }
      break;
    case OffRule::kKfuncOnly:
      if (insn.off != 0 && insn.src != kCallKfunc) return bad("off", insn.off, "must be 0 (reserved)");
      break;
  }
  switch (info.imm) {
    case ImmRule::kZero:
      if (insn.imm != 0) return bad("imm", insn.imm, "must be 0 (reserved)");
      break;
    case ImmRule::kAny:
      break;
    case ImmRule::kEndianBits:
      if (insn.imm != 16 && insn.imm != 32 && insn.imm != 64) return bad("imm", insn.imm, "must be 16, 32 or 64");
      break;
    case ImmRule::kAtomicOp:
      if (!is_atomic_op(insn.imm)) {
        return make_error(Errc::kInvalid, "opcode 0x{:02x}: imm 0x{:x} is not an atomic operation", insn.opcode,
                          static_cast<std::uint32_t>(insn.imm));
      }
      break;
  }
  return ok();
}


std::uint8_t alu_bits(AluOp op) {
  switch (op) {
    case AluOp::kAdd: return kAluAdd;
    case AluOp::kSub: return kAluSub;
    case AluOp::kMul: return kAluMul;
    case AluOp::kDiv: case AluOp::kSdiv: return kAluDiv;
    case AluOp::kOr: return kAluOr;
    case AluOp::kAnd: return kAluAnd;
    case AluOp::kLsh: return kAluLsh;
    case AluOp::kRsh: return kAluRsh;
    case AluOp::kNeg: return kAluNeg;
    case AluOp::kMod: case AluOp::kSmod: return kAluMod;
    case AluOp::kXor: return kAluXor;
    case AluOp::kMov: case AluOp::kMovsx: return kAluMov;
    case AluOp::kArsh: return kAluArsh;
  }
  return kAluAdd;
}



std::int32_t atomic_imm(AtomicOp op, bool fetch) {
  const std::int32_t f = fetch ? kAtomicFetch : 0;
  switch (op) {
    case AtomicOp::kAdd: return kAluAdd | f;
    case AtomicOp::kOr: return kAluOr | f;
    case AtomicOp::kAnd: return kAluAnd | f;
    case AtomicOp::kXor: return kAluXor | f;
    case AtomicOp::kXchg: return kAtomicXchg;
    case AtomicOp::kCmpxchg: return kAtomicCmpxchg;
  }
  return 0;
}

}  // namespace

int required_cpu(const RawInsn& insn) {
  const OpcodeInfo& info = opcode_info(insn.opcode);
  int cpu = info.cpu;
  if (info.kind == OpKind::kAlu && insn.off != 0) cpu = 4;  // sdiv, smod, movsx
  if (info.kind == OpKind::kAtomic && (insn.imm != kAluAdd || (insn.opcode & kSizeMask) == kSizeW)) {
    cpu = std::max(cpu, 3);  // fetch forms, xchg, cmpxchg and 32-bit atomics came with -mcpu=v3
  }
  return cpu;
}

Result<void> check_insn(std::span<const RawInsn> slots) {
  if (slots.empty()) return make_error(Errc::kInvalid, "no instruction");
  const RawInsn& r = slots[0];
  const OpcodeInfo& info = opcode_info(r.opcode);
  if (info.kind == OpKind::kInvalid) {
    return make_error(Errc::kInvalid, "unknown opcode 0x{:02x}", r.opcode);
  }
  BPFVM_TRY(check_fields(r, info));
  if (info.kind == OpKind::kLoadImm64) {
    if (slots.size() < 2) {
      return make_error(Errc::kInvalid, "truncated 64-bit immediate load: the second slot is missing");
    }
    const RawInsn& hi = slots[1];
    if (hi.opcode != 0 || hi.dst != 0 || hi.src != 0 || hi.off != 0) {
      return make_error(Errc::kInvalid,
                        "64-bit immediate load: second slot must have opcode, registers and off 0 "
                        "(has opcode 0x{:02x}, dst {}, src {}, off {})",
                        hi.opcode, hi.dst, hi.src, hi.off);
    }
  }
  if (info.kind == OpKind::kAtomic && (r.imm & kAtomicFetch) != 0 && r.src == kFramePointer) {
    return make_error(Errc::kInvalid, "atomic fetch writes its result to r10, which is read-only");
  }
  return {};
}

Result<Insn> decode(std::span<const RawInsn> slots) {
  BPFVM_TRY(check_insn(slots));
  return visit_insn(slots, [](const auto& insn) { return Insn(insn); });
}

void encode(const Insn& insn, std::vector<RawInsn>& out) {
  std::visit(
      Overloaded{
          [&](const Alu& a) {
            const std::uint8_t cls = a.is64 ? kClassAlu64 : kClassAlu;
            RawInsn r{};
            r.dst = a.dst;
            if (a.op == AluOp::kNeg) {
              r.opcode = cls | kAluNeg | kSrcK;
            } else if (a.src.is_reg) {
              r.opcode = static_cast<std::uint8_t>(cls | alu_bits(a.op) | kSrcX);
              r.src = a.src.reg;
            } else {
              r.opcode = static_cast<std::uint8_t>(cls | alu_bits(a.op) | kSrcK);
              r.imm = a.src.imm;
            }
            if (a.op == AluOp::kSdiv || a.op == AluOp::kSmod) r.off = 1;
            if (a.op == AluOp::kMovsx) r.off = a.movsx_bits;
            out.push_back(r);
          },
          [&](const Endian& e) {
            RawInsn r{};
            r.opcode = e.order == Endian::Order::kSwap ? (kClassAlu64 | kAluEnd | kSrcK)
                       : e.order == Endian::Order::kBig ? (kClassAlu | kAluEnd | kSrcX)
                                                        : (kClassAlu | kAluEnd | kSrcK);
            r.dst = e.dst;
            r.imm = e.bits;
            out.push_back(r);
          },
          [&](const Jump& j) {
            RawInsn r{};
            if (j.is_long) {
              r.opcode = kClassJmp32 | kJmpJa;
              r.imm = j.offset;
            } else {
              r.opcode = kClassJmp | kJmpJa;
              r.off = static_cast<std::int16_t>(j.offset);
            }
            out.push_back(r);
          },
          [&](const CondJump& j) {
            RawInsn r{};
            const std::uint8_t cls = j.is32 ? kClassJmp32 : kClassJmp;
            r.opcode = static_cast<std::uint8_t>(cls | detail::kCondBits[static_cast<int>(j.cond)] |
                                                 (j.src.is_reg ? kSrcX : kSrcK));
            r.dst = j.dst;
            r.src = j.src.is_reg ? j.src.reg : 0;
            r.imm = j.src.is_reg ? 0 : j.src.imm;
            r.off = j.offset;
            out.push_back(r);
          },
          [&](const Call& c) {
            RawInsn r{};
            r.opcode = kClassJmp | kJmpCall;
            r.src = static_cast<std::uint8_t>(c.kind);
            r.imm = c.imm;
            r.off = c.off;
            out.push_back(r);
          },
          [&](const CallReg& c) {
            RawInsn r{};
            r.opcode = kClassJmp | kJmpCall | kSrcX;
            r.dst = c.reg;
            out.push_back(r);
          },
          [&](const Exit&) {
            RawInsn r{};
            r.opcode = kClassJmp | kJmpExit;
            out.push_back(r);
          },
          [&](const LoadImm64& l) {
            RawInsn lo{};
            lo.opcode = kClassLd | kModeImm | kSizeDW;
            lo.dst = l.dst;
            lo.src = static_cast<std::uint8_t>(l.pseudo);
            lo.imm = l.imm_lo;
            RawInsn hi{};
            hi.imm = l.imm_hi;
            out.push_back(lo);
            out.push_back(hi);
          },
          [&](const Load& l) {
            RawInsn r{};
            r.opcode = static_cast<std::uint8_t>(kClassLdx | (l.sign_extend ? kModeMemSx : kModeMem) |
                                                 size_bits(l.size));
            r.dst = l.dst;
            r.src = l.base;
            r.off = l.off;
            out.push_back(r);
          },
          [&](const Store& s) {
            RawInsn r{};
            r.opcode = static_cast<std::uint8_t>((s.src.is_reg ? kClassStx : kClassSt) | kModeMem |
                                                 size_bits(s.size));
            r.dst = s.base;
            r.off = s.off;
            if (s.src.is_reg) {
              r.src = s.src.reg;
            } else {
              r.imm = s.src.imm;
            }
            out.push_back(r);
          },
          [&](const Atomic& a) {
            RawInsn r{};
            r.opcode = static_cast<std::uint8_t>(kClassStx | kModeAtomic | size_bits(a.size));
            r.dst = a.base;
            r.src = a.src;
            r.off = a.off;
            r.imm = atomic_imm(a.op, a.fetch);
            out.push_back(r);
          },
          [&](const PacketLoad& p) {
            RawInsn r{};
            r.opcode = static_cast<std::uint8_t>(kClassLd | (p.indirect ? kModeInd : kModeAbs) |
                                                 size_bits(p.size));
            r.src = p.indirect ? p.src : 0;
            r.imm = p.imm;
            out.push_back(r);
          },
      },
      insn);
}

std::vector<RawInsn> encode(std::span<const Insn> insns) {
  std::vector<RawInsn> out;
  out.reserve(insns.size());
  for (const Insn& insn : insns) encode(insn, out);
  return out;
}

}  // namespace bpfvm::isa
