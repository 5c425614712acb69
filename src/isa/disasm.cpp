#include "bpfvm/isa/disasm.hpp"

#include <fmt/format.h>

#include "bpfvm/base/hex.hpp"
#include "bpfvm/isa/codec.hpp"
#include "bpfvm/isa/helper_names.hpp"
#include "bpfvm/isa/opcode.hpp"

namespace bpfvm::isa {

std::optional<std::string> SymbolResolver::call_target(const Call&, std::size_t) const { return std::nullopt; }
std::optional<std::string> SymbolResolver::imm64(const LoadImm64&, std::size_t) const { return std::nullopt; }

namespace {

const char* size_name(Size s, bool sign) {
  switch (s) {
    case Size::kB: return sign ? "s8" : "u8";
    case Size::kH: return sign ? "s16" : "u16";
    case Size::kW: return sign ? "s32" : "u32";
    case Size::kDW: return sign ? "s64" : "u64";
  }
  return "u64";
}

// The operator strings of the kernel's printer (bpf_alu_string, bpf_alu_sign_string).
const char* alu_operator(AluOp op) {
  switch (op) {
    case AluOp::kAdd: return "+=";
    case AluOp::kSub: return "-=";
    case AluOp::kMul: return "*=";
    case AluOp::kDiv: return "/=";
    case AluOp::kSdiv: return "s/=";
    case AluOp::kOr: return "|=";
    case AluOp::kAnd: return "&=";
    case AluOp::kLsh: return "<<=";
    case AluOp::kRsh: return ">>=";
    case AluOp::kNeg: return "neg";
    case AluOp::kMod: return "%=";
    case AluOp::kSmod: return "s%=";
    case AluOp::kXor: return "^=";
    case AluOp::kMov: case AluOp::kMovsx: return "=";
    case AluOp::kArsh: return "s>>=";
  }
  return "?";
}

const char* cond_operator(Cond c) {
  switch (c) {
    case Cond::kEq: return "==";
    case Cond::kGt: return ">";
    case Cond::kGe: return ">=";
    case Cond::kSet: return "&";
    case Cond::kNe: return "!=";
    case Cond::kSgt: return "s>";
    case Cond::kSge: return "s>=";
    case Cond::kLt: return "<";
    case Cond::kLe: return "<=";
    case Cond::kSlt: return "s<";
    case Cond::kSle: return "s<=";
  }
  return "?";
}

const char* atomic_name(AtomicOp op) {
  switch (op) {
    case AtomicOp::kAdd: return "add";
    case AtomicOp::kOr: return "or";
    case AtomicOp::kAnd: return "and";
    case AtomicOp::kXor: return "xor";
    case AtomicOp::kXchg: return "xchg";
    case AtomicOp::kCmpxchg: return "cmpxchg";
  }
  return "?";
}

const char* atomic_operator(AtomicOp op) {
  switch (op) {
    case AtomicOp::kAdd: return "+=";
    case AtomicOp::kOr: return "|=";
    case AtomicOp::kAnd: return "&=";
    case AtomicOp::kXor: return "^=";
    default: return "?";
  }
}

std::string default_imm64(const LoadImm64& l) {
  switch (l.pseudo) {
    case Pseudo::kImm64: return fmt::format("0x{:x}", l.value());
    case Pseudo::kMapFd: return fmt::format("map[fd:{}]", l.imm_lo);
    case Pseudo::kMapValue: return fmt::format("map[fd:{}][0]+{}", l.imm_lo, static_cast<std::uint32_t>(l.imm_hi));
    case Pseudo::kBtfId: return fmt::format("btf_id[{}]", l.imm_lo);
    case Pseudo::kFunc: return fmt::format("subprog[{:+d}]", l.imm_lo);
    case Pseudo::kMapIdx: return fmt::format("map[idx:{}]", l.imm_lo);
    case Pseudo::kMapIdxValue: return fmt::format("map[idx:{}]+{}", l.imm_lo, static_cast<std::uint32_t>(l.imm_hi));
  }
  return "?";
}

std::string default_call(const Call& c) {
  switch (c.kind) {
    case Call::Kind::kHelper: {
      auto name = helper_name(c.imm);
      return fmt::format("{}#{}", name ? *name : std::string_view("unknown"), c.imm);
    }
    case Call::Kind::kLocal: return fmt::format("pc{:+d}", c.imm);
    case Call::Kind::kKfunc:
      // The kernel prints no more; the module BTF index (off) is added when set, so that text
      // assembles back to the same instruction.
      if (c.off != 0) return fmt::format("kernel-function#{} (module btf {})", c.imm, c.off);
      return fmt::format("kernel-function#{}", c.imm);
  }
  return "?";
}

std::string text_of(const Insn& insn, std::size_t index, const SymbolResolver* resolver) {
  return std::visit(
      Overloaded{
          [](const Alu& a) -> std::string {
            const char r = a.is64 ? 'r' : 'w';
            if (a.op == AluOp::kNeg) return fmt::format("{}{} = -{}{}", r, a.dst, r, a.dst);
            if (a.op == AluOp::kMovsx) {
              return fmt::format("{}{} = (s{}){}{}", r, a.dst, a.movsx_bits, r, a.src.reg);
            }
            if (a.src.is_reg) return fmt::format("{}{} {} {}{}", r, a.dst, alu_operator(a.op), r, a.src.reg);
            return fmt::format("{}{} {} {}", r, a.dst, alu_operator(a.op), a.src.imm);
          },
          [](const Endian& e) -> std::string {
            const char* name = e.order == Endian::Order::kSwap ? "bswap"
                               : e.order == Endian::Order::kBig ? "be"
                                                                : "le";
            return fmt::format("r{} = {}{} r{}", e.dst, name, e.bits, e.dst);
          },
          [](const Jump& j) -> std::string {
            return fmt::format("{} pc{:+d}", j.is_long ? "gotol" : "goto", j.offset);
          },
          [](const CondJump& j) -> std::string {
            const char r = j.is32 ? 'w' : 'r';
            if (j.src.is_reg) {
              return fmt::format("if {}{} {} {}{} goto pc{:+d}", r, j.dst, cond_operator(j.cond), r, j.src.reg,
                                 j.offset);
            }
            return fmt::format("if {}{} {} 0x{:x} goto pc{:+d}", r, j.dst, cond_operator(j.cond),
                               static_cast<std::uint32_t>(j.src.imm), j.offset);
          },
          [&](const Call& c) -> std::string {
            std::optional<std::string> custom;
            if (resolver) custom = resolver->call_target(c, index);
            return "call " + (custom ? *custom : default_call(c));
          },
          [](const CallReg& c) -> std::string { return fmt::format("callx r{}", c.reg); },
          [](const Exit&) -> std::string { return "exit"; },
          [&](const LoadImm64& l) -> std::string {
            std::optional<std::string> custom;
            if (resolver) custom = resolver->imm64(l, index);
            return fmt::format("r{} = {}", l.dst, custom ? *custom : default_imm64(l));
          },
          [](const Load& l) -> std::string {
            return fmt::format("r{} = *({} *)(r{} {:+d})", l.dst, size_name(l.size, l.sign_extend), l.base, l.off);
          },
          [](const Store& s) -> std::string {
            if (s.src.is_reg) {
              return fmt::format("*({} *)(r{} {:+d}) = r{}", size_name(s.size, false), s.base, s.off, s.src.reg);
            }
            return fmt::format("*({} *)(r{} {:+d}) = {}", size_name(s.size, false), s.base, s.off, s.src.imm);
          },
          [](const Atomic& a) -> std::string {
            const char* sz = size_name(a.size, false);
            const char* w = a.size == Size::kDW ? "64" : "";
            switch (a.op) {
              case AtomicOp::kCmpxchg:
                return fmt::format("r0 = atomic{}_cmpxchg(({} *)(r{} {:+d}), r0, r{})", w, sz, a.base, a.off, a.src);
              case AtomicOp::kXchg:
                return fmt::format("r{} = atomic{}_xchg(({} *)(r{} {:+d}), r{})", a.src, w, sz, a.base, a.off, a.src);
              default:
                if (a.fetch) {
                  return fmt::format("r{} = atomic{}_fetch_{}(({} *)(r{} {:+d}), r{})", a.src, w, atomic_name(a.op),
                                     sz, a.base, a.off, a.src);
                }
                return fmt::format("lock *({} *)(r{} {:+d}) {} r{}", sz, a.base, a.off, atomic_operator(a.op), a.src);
            }
          },
          [](const PacketLoad& p) -> std::string {
            if (p.indirect) return fmt::format("r0 = *({} *)skb[r{} + {}]", size_name(p.size, false), p.src, p.imm);
            return fmt::format("r0 = *({} *)skb[{}]", size_name(p.size, false), p.imm);
          },
      },
      insn);
}

// Instructions only the kernel's verifier writes (no user program may contain them: the verifier
// refuses their reserved fields), which `bpftool prog dump xlated` shows in a loaded program. Printed
// as kernel/bpf/disasm.c prints them.
std::optional<std::string> kernel_internal_text(const RawInsn& insn) {
  const std::uint8_t mov32_x = kClassAlu | kAluMov | kSrcX, mov64_x = kClassAlu64 | kAluMov | kSrcX;
  // BPF_ZEXT_REG: "mov32 rX, rX" with imm 1, inserted after a 32-bit cmpxchg (always) and after every
  // 32-bit definition when the JIT needs explicit zero-extension (opt_subreg_zext_lo32_rnd_hi32).
  if (insn.opcode == mov32_x && insn.imm == 1 && insn.off == 0 && insn.dst == insn.src && insn.dst < kFramePointer) {
    return fmt::format("w{} = w{}", insn.dst, insn.src);
  }
  // BPF_MOV64_PERCPU_REG (off -1, BPF_ADDR_PERCPU): a per-CPU address made absolute, from the inlined
  // bpf_get_smp_processor_id() and per-CPU map lookups (kernel 6.8+).
  if (insn.opcode == mov64_x && insn.off == -1 && insn.imm == 0 && insn.dst < kFramePointer && insn.src <= kFramePointer) {
    return fmt::format("r{} = &(void __percpu *)(r{})", insn.dst, insn.src);
  }
  // BPF_ST | BPF_NOSPEC: the speculation barrier the verifier adds for unprivileged programs.
  if (insn.opcode == (kClassSt | 0xc0) && insn.dst == 0 && insn.src == 0 && insn.off == 0 && insn.imm == 0) {
    return std::string("nospec");
  }
  return std::nullopt;
}

}  // namespace

std::string format_insn(std::span<const RawInsn> slots, std::size_t index, const SymbolResolver* resolver) {
  if (slots.empty()) return "(none)";
  auto insn = decode(slots);
  if (!insn) {
    if (auto text = kernel_internal_text(slots[0])) return fmt::format("({:02x}) {}", slots[0].opcode, *text);
    return fmt::format("({:02x}) invalid: {}", slots[0].opcode, insn.error().message());
  }
  return fmt::format("({:02x}) {}", slots[0].opcode, text_of(*insn, index, resolver));
}

std::string disassemble(std::span<const RawInsn> program, const DisasmOptions& options) {
  std::string out;
  for (std::size_t i = 0; i < program.size();) {
    auto insn = decode(program.subspan(i));
    const std::size_t slots = insn ? static_cast<std::size_t>(slots_of(*insn)) : 1;
    out += fmt::format("{:4d}: {}\n", i, format_insn(program.subspan(i), i, options.resolver));
    if (options.opcodes) {
      std::vector<std::uint8_t> bytes = to_wire(program.subspan(i, slots));
      out += "       " + format_hex_bytes(bytes) + "\n";
    }
    i += slots;
  }
  return out;
}

}  // namespace bpfvm::isa
