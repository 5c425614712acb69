// The two forms of an instruction.
//
// RawInsn is the 8-byte wire form (RFC 9669 section 3): opcode, dst/src register nibbles, a signed 16-bit
// offset and a signed 32-bit immediate. LDDW occupies two RawInsn slots.
//
// Insn is the decoded form: a std::variant of small structs that settles the encoding's quirks once
// (sdiv is div with off = 1, movsx is mov with off = 8/16/32, atomics are told apart by imm, gotol keeps
// its target in imm). Code that consumes instructions visits Insn, so the compiler flags a missed kind.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include "bpfvm/isa/opcode.hpp"

namespace bpfvm::isa {

struct RawInsn {
  std::uint8_t opcode = 0;
  std::uint8_t dst = 0;  // 4 bits on the wire
  std::uint8_t src = 0;  // 4 bits on the wire
  std::int16_t off = 0;
  std::int32_t imm = 0;

  std::uint8_t cls() const { return opcode & kClassMask; }
  bool is_lddw() const { return opcode == (kClassLd | kSizeDW | kModeImm); }
  friend bool operator==(const RawInsn&, const RawInsn&) = default;
};

// Little-endian wire bytes (RFC 9669 section 3: "the dst_reg is in the low 4 bits" of byte 1 on
// little-endian machines).
std::array<std::uint8_t, 8> to_bytes(const RawInsn& insn);
RawInsn from_bytes(std::span<const std::uint8_t, 8> bytes);

enum class Size : std::uint8_t { kB = 1, kH = 2, kW = 4, kDW = 8 };  // value = bytes
constexpr int bytes_of(Size s) { return static_cast<int>(s); }

// An operand of ALU, store and conditional jump: a register or a 32-bit immediate.
struct Operand {
  bool is_reg = false;
  std::uint8_t reg = 0;
  std::int32_t imm = 0;

  static Operand Reg(std::uint8_t r) { return {true, r, 0}; }
  static Operand Imm(std::int32_t v) { return {false, 0, v}; }
  friend bool operator==(const Operand&, const Operand&) = default;
};

enum class AluOp : std::uint8_t {
  kAdd, kSub, kMul, kDiv, kSdiv, kOr, kAnd, kLsh, kRsh, kNeg, kMod, kSmod, kXor, kMov, kMovsx, kArsh,
};

struct Alu {
  AluOp op;
  bool is64;
  std::uint8_t dst;
  Operand src;                  // unused for neg
  std::uint8_t movsx_bits = 0;  // 8, 16 or 32 for kMovsx
  friend bool operator==(const Alu&, const Alu&) = default;
};

// le16/32/64 and be16/32/64 (class ALU), bswap16/32/64 (class ALU64, cpu v4).
struct Endian {
  enum class Order : std::uint8_t { kLittle, kBig, kSwap };
  Order order;
  std::uint8_t bits;  // 16, 32, 64
  std::uint8_t dst;
  friend bool operator==(const Endian&, const Endian&) = default;
};

// Unconditional jump: ja (offset in off) or gotol (class JMP32, offset in imm, cpu v4).
struct Jump {
  std::int32_t offset;
  bool is_long;
  friend bool operator==(const Jump&, const Jump&) = default;
};

enum class Cond : std::uint8_t { kEq, kGt, kGe, kSet, kNe, kSgt, kSge, kLt, kLe, kSlt, kSle };

struct CondJump {
  Cond cond;
  bool is32;
  std::uint8_t dst;
  Operand src;
  std::int16_t offset;
  friend bool operator==(const CondJump&, const CondJump&) = default;
};

struct Call {
  enum class Kind : std::uint8_t { kHelper, kLocal, kKfunc };
  Kind kind;
  std::int32_t imm;      // helper id, pc-relative target, or kfunc BTF id
  std::int16_t off = 0;  // kfunc: index of the module BTF fd
  friend bool operator==(const Call&, const Call&) = default;
};

// callx: call through a register (an LLVM extension; not in RFC 9669 nor the kernel). The register
// holds a helper id. Encoded as 0x8d with the register in dst.
struct CallReg {
  std::uint8_t reg;
  friend bool operator==(const CallReg&, const CallReg&) = default;
};

struct Exit {
  friend bool operator==(const Exit&, const Exit&) = default;
};

struct LoadImm64 {
  std::uint8_t dst;
  Pseudo pseudo;
  std::int32_t imm_lo;  // imm of the first slot: low bits, map fd, map index, BTF id, function offset
  std::int32_t imm_hi;  // imm of the second slot: high bits, or the offset into a map value
  std::uint64_t value() const {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(imm_hi)) << 32) |
           static_cast<std::uint32_t>(imm_lo);
  }
  static LoadImm64 Imm(std::uint8_t dst, std::uint64_t v) {
    return {dst, Pseudo::kImm64, static_cast<std::int32_t>(static_cast<std::uint32_t>(v)),
            static_cast<std::int32_t>(static_cast<std::uint32_t>(v >> 32))};
  }
  friend bool operator==(const LoadImm64&, const LoadImm64&) = default;
};

struct Load {
  Size size;
  bool sign_extend;  // BPF_MEMSX (cpu v4)
  std::uint8_t dst;
  std::uint8_t base;
  std::int16_t off;
  friend bool operator==(const Load&, const Load&) = default;
};

// ST (src is an immediate) and STX (src is a register).
struct Store {
  Size size;
  std::uint8_t base;
  std::int16_t off;
  Operand src;
  friend bool operator==(const Store&, const Store&) = default;
};

enum class AtomicOp : std::uint8_t { kAdd, kOr, kAnd, kXor, kXchg, kCmpxchg };

struct Atomic {
  AtomicOp op;
  bool fetch;  // always true for xchg and cmpxchg
  Size size;   // kW or kDW
  std::uint8_t base;
  std::int16_t off;
  std::uint8_t src;
  friend bool operator==(const Atomic&, const Atomic&) = default;
};

// Legacy packet loads (BPF_LD | BPF_ABS / BPF_IND): r0 = ntoh(*(size *)(packet + [src +] imm)).
struct PacketLoad {
  Size size;
  bool indirect;
  std::uint8_t src;
  std::int32_t imm;
  friend bool operator==(const PacketLoad&, const PacketLoad&) = default;
};

using Insn = std::variant<Alu, Endian, Jump, CondJump, Call, CallReg, Exit, LoadImm64, Load, Store,
                          Atomic, PacketLoad>;

// How many 8-byte slots an instruction occupies (2 for LDDW).
inline int slots_of(const Insn& insn) { return std::holds_alternative<LoadImm64>(insn) ? 2 : 1; }

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace bpfvm::isa
