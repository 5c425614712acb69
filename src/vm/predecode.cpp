#include "ops.hpp"

#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/helper_names.hpp"
#include "bpfvm/isa/validate.hpp"

namespace bpfvm::vm::detail {

namespace {

using namespace isa;

IOp alu_base(AluOp op) {
  switch (op) {
    case AluOp::kAdd: return IOp::ADD64_IMM;
    case AluOp::kSub: return IOp::SUB64_IMM;
    case AluOp::kMul: return IOp::MUL64_IMM;
    case AluOp::kDiv: return IOp::DIV64_IMM;
    case AluOp::kSdiv: return IOp::SDIV64_IMM;
    case AluOp::kMod: return IOp::MOD64_IMM;
    case AluOp::kSmod: return IOp::SMOD64_IMM;
    case AluOp::kOr: return IOp::OR64_IMM;
    case AluOp::kAnd: return IOp::AND64_IMM;
    case AluOp::kXor: return IOp::XOR64_IMM;
    case AluOp::kLsh: return IOp::LSH64_IMM;
    case AluOp::kRsh: return IOp::RSH64_IMM;
    case AluOp::kArsh: return IOp::ARSH64_IMM;
    case AluOp::kMov: return IOp::MOV64_IMM;
    case AluOp::kNeg: case AluOp::kMovsx: break;
  }
  return IOp::FILLER;
}

IOp cond_base(Cond c) {
  switch (c) {
    case Cond::kEq: return IOp::JEQ64_IMM;
    case Cond::kGt: return IOp::JGT64_IMM;
    case Cond::kGe: return IOp::JGE64_IMM;
    case Cond::kSet: return IOp::JSET64_IMM;
    case Cond::kNe: return IOp::JNE64_IMM;
    case Cond::kSgt: return IOp::JSGT64_IMM;
    case Cond::kSge: return IOp::JSGE64_IMM;
    case Cond::kLt: return IOp::JLT64_IMM;
    case Cond::kLe: return IOp::JLE64_IMM;
    case Cond::kSlt: return IOp::JSLT64_IMM;
    case Cond::kSle: return IOp::JSLE64_IMM;
  }
  return IOp::FILLER;
}

// The four variants of an ALU or jump op follow their base: 64 imm, 64 reg, 32 imm, 32 reg.
IOp variant(IOp base, bool is64, bool is_reg) {
  return static_cast<IOp>(static_cast<int>(base) + (is64 ? 0 : 2) + (is_reg ? 1 : 0));
}

template <typename T>
T by_size(Size s, T b, T h, T w, T dw) {
  switch (s) {
    case Size::kB: return b;
    case Size::kH: return h;
    case Size::kW: return w;
    case Size::kDW: return dw;
  }
  return dw;
}

std::uint64_t sext(std::int32_t imm) { return static_cast<std::uint64_t>(static_cast<std::int64_t>(imm)); }

}  // namespace

Result<std::vector<Op>> predecode(std::span<const RawInsn> program, const HelperTable& helpers,
                                  const ProbeLoads& probes) {
  // One pass: validation hands over each instruction as it decodes it.
  std::vector<Op> ops(program.size(), Op{IOp::FILLER, 0, 0, 0, 0, 0});
  BPFVM_TRY(validate_each(program, [&](std::size_t i, const auto& insn) -> Result<void> {
    Op& op = ops[i];
    const auto at = [i](Error e) { return std::move(e).at_insn(i); };
    const auto target = [&]() { return static_cast<std::int32_t>(*target_of(insn, i)); };
    return Overloaded{
            [&](const Alu& a) -> Result<void> {
              op.dst = a.dst;
              if (a.op == AluOp::kNeg) {
                op.code = a.is64 ? IOp::NEG64 : IOp::NEG32;
              } else if (a.op == AluOp::kMovsx) {
                op.src = a.src.reg;
                switch (a.movsx_bits) {
                  case 8: op.code = a.is64 ? IOp::MOVSX64_8 : IOp::MOVSX32_8; break;
                  case 16: op.code = a.is64 ? IOp::MOVSX64_16 : IOp::MOVSX32_16; break;
                  default: op.code = IOp::MOVSX64_32; break;
                }
              } else {
                op.code = variant(alu_base(a.op), a.is64, a.src.is_reg);
                op.src = a.src.reg;
                op.imm = sext(a.src.imm);
              }
              return ok();
            },
            [&](const Endian& e) -> Result<void> {
              op.dst = e.dst;
              const bool le = e.order == Endian::Order::kLittle;
              // The host is little-endian (static_assert in interpreter.cpp): "to big" and "swap" are
              // the same byte swap, "to little" only truncates.
              op.code = e.bits == 16 ? (le ? IOp::LE16 : IOp::BE16)
                        : e.bits == 32 ? (le ? IOp::LE32 : IOp::BE32)
                                       : (le ? IOp::LE64 : IOp::BE64);
              return ok();
            },
            [&](const Jump&) -> Result<void> {
              op.code = IOp::JA;
              op.off = target();
              return ok();
            },
            [&](const CondJump& j) -> Result<void> {
              op.code = variant(cond_base(j.cond), !j.is32, j.src.is_reg);
              op.dst = j.dst;
              op.src = j.src.reg;
              op.imm = sext(j.src.imm);
              op.off = target();
              return ok();
            },
            [&](const Call& c) -> Result<void> {
              switch (c.kind) {
                case Call::Kind::kHelper: {
                  HelperFn fn = helpers.find(c.imm);
                  if (!fn) {
                    auto name = helper_name(c.imm);
                    return at(make_error(Errc::kNotSupported, "call to helper {}#{}, which is not available here",
                                         name ? *name : std::string_view("unknown"), c.imm));
                  }
                  op.code = IOp::CALL_HELPER;
                  op.imm = reinterpret_cast<std::uint64_t>(fn);
                  return ok();
                }
                case Call::Kind::kLocal:
                  op.code = IOp::CALL_LOCAL;
                  op.off = target();
                  return ok();
                case Call::Kind::kKfunc:
                  return at(make_error(Errc::kNotSupported, "kfunc calls (BTF id {}) are not supported", c.imm));
              }
              return ok();
            },
            [&](const CallReg& c) -> Result<void> {
              op.code = IOp::CALLX;
              op.dst = c.reg;
              return ok();
            },
            [&](const Exit&) -> Result<void> {
              op.code = IOp::EXIT;
              return ok();
            },
            [&](const LoadImm64& l) -> Result<void> {
              if (l.pseudo != Pseudo::kImm64) {
                return at(make_error(Errc::kInvalid,
                                     "64-bit immediate load with pseudo source {} (a map or BTF reference) must be "
                                     "resolved by the loader before the program runs",
                                     static_cast<int>(l.pseudo)));
              }
              op.code = IOp::LDDW;
              op.dst = l.dst;
              op.imm = l.value();
              return ok();
            },
            [&](const Load& l) -> Result<void> {
              op.code = l.sign_extend ? by_size(l.size, IOp::LDXSB, IOp::LDXSH, IOp::LDXSW, IOp::FILLER)
                                      : by_size(l.size, IOp::LDXB, IOp::LDXH, IOp::LDXW, IOp::LDXDW);
              op.dst = l.dst;
              op.src = l.base;
              op.off = l.off;
              if (probes.marks(i)) {
                op.aux = static_cast<std::uint8_t>(by_size(l.size, 1, 2, 4, 8) | (l.sign_extend ? 0x80 : 0));
                op.code = IOp::PROBE_LDX;
                op.imm = reinterpret_cast<std::uint64_t>(probes.read);
              }
              return ok();
            },
            [&](const Store& s) -> Result<void> {
              op.code = s.src.is_reg ? by_size(s.size, IOp::STXB, IOp::STXH, IOp::STXW, IOp::STXDW)
                                     : by_size(s.size, IOp::STB, IOp::STH, IOp::STW, IOp::STDW);
              op.dst = s.base;
              op.src = s.src.reg;
              op.off = s.off;
              op.imm = sext(s.src.imm);
              return ok();
            },
            [&](const Atomic& a) -> Result<void> {
              const bool w64 = a.size == Size::kDW;
              IOp c = IOp::FILLER;
              switch (a.op) {
                case AtomicOp::kAdd: c = a.fetch ? IOp::ATOMIC_FETCH_ADD32 : IOp::ATOMIC_ADD32; break;
                case AtomicOp::kOr: c = a.fetch ? IOp::ATOMIC_FETCH_OR32 : IOp::ATOMIC_OR32; break;
                case AtomicOp::kAnd: c = a.fetch ? IOp::ATOMIC_FETCH_AND32 : IOp::ATOMIC_AND32; break;
                case AtomicOp::kXor: c = a.fetch ? IOp::ATOMIC_FETCH_XOR32 : IOp::ATOMIC_XOR32; break;
                case AtomicOp::kXchg: c = IOp::ATOMIC_XCHG32; break;
                case AtomicOp::kCmpxchg: c = IOp::ATOMIC_CMPXCHG32; break;
              }
              // The 64-bit group follows the 32-bit one in the same order.
              if (w64) c = static_cast<IOp>(static_cast<int>(c) + (static_cast<int>(IOp::ATOMIC_ADD64) -
                                                                   static_cast<int>(IOp::ATOMIC_ADD32)));
              op.code = c;
              op.dst = a.base;
              op.src = a.src;
              op.off = a.off;
              return ok();
            },
            [&](const PacketLoad& p) -> Result<void> {
              op.code = p.indirect ? by_size(p.size, IOp::LDINDB, IOp::LDINDH, IOp::LDINDW, IOp::FILLER)
                                   : by_size(p.size, IOp::LDABSB, IOp::LDABSH, IOp::LDABSW, IOp::FILLER);
              op.src = p.src;
              op.imm = sext(p.imm);
              return ok();
            },
        }(insn);
  }));
  return ops;
}

}  // namespace bpfvm::vm::detail
