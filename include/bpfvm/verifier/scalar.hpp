// What the verifier knows of a scalar register: a tnum plus signed and unsigned bounds, for the whole
// 64-bit value and for its low 32 bits (the kernel's bpf_reg_state scalar fields). Every operation is
// a sound over-approximation; bounds are kept consistent with each other (sync) so that a fact learnt
// in one form (a branch on a signed compare) shows in the others (the unsigned range, the known bits).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "bpfvm/verifier/tnum.hpp"

namespace bpfvm::verifier {

// BPF_ALU / BPF_ALU64 operations; kSdiv and kSmod are the signed (offset 1) division and modulo of cpu v4.
enum class AluOp : std::uint8_t { kAdd, kSub, kMul, kDiv, kMod, kSdiv, kSmod, kOr, kAnd, kXor, kLsh, kRsh, kArsh, kNeg, kMov };
enum class CmpOp : std::uint8_t { kEq, kNe, kGt, kGe, kLt, kLe, kSgt, kSge, kSlt, kSle, kSet };

struct Scalar {
  Tnum bits = Tnum::unknown();
  std::int64_t smin = std::numeric_limits<std::int64_t>::min(), smax = std::numeric_limits<std::int64_t>::max();
  std::uint64_t umin = 0, umax = std::numeric_limits<std::uint64_t>::max();
  std::int32_t s32_min = std::numeric_limits<std::int32_t>::min(), s32_max = std::numeric_limits<std::int32_t>::max();
  std::uint32_t u32_min = 0, u32_max = std::numeric_limits<std::uint32_t>::max();

  static Scalar constant(std::uint64_t v);
  static Scalar unknown() { return {}; }
  // Any value in [min, max] (unsigned).
  static Scalar range(std::uint64_t min, std::uint64_t max);

  bool is_const() const { return bits.is_const(); }
  std::uint64_t const_value() const { return bits.value; }
  bool contains(std::uint64_t x) const;
  // Whether every value of `other` is a value of this one (state pruning).
  bool includes(const Scalar& other) const;
  // Whether some value satisfies every view (false for the impossible side of a branch).
  bool consistent() const;
  // Makes the five views agree, each narrowed by what the others know (reg_bounds_sync).
  void sync();
  // The low 32 bits, zero-extended: what a 32-bit ALU result or a 32-bit move leaves in the register.
  Scalar zext32() const;
  // "smin=..,smax=..,umin=..": the kernel's log notation for what is known.
  std::string to_string() const;

  friend bool operator==(const Scalar&, const Scalar&) = default;
};

// dst = dst OP src, on the 64-bit value or (alu32) on the low 32 bits with the result zero-extended, as
// BPF_ALU64 / BPF_ALU define it (division by zero gives 0, modulo by zero leaves dst).
Scalar scalar_alu(AluOp op, const Scalar& dst, const Scalar& src, bool alu32);

// `a OP b` on 64 bits or (jmp32) on the low 32 bits: true or false when every value pair agrees.
std::optional<bool> branch_taken(CmpOp op, const Scalar& a, const Scalar& b, bool jmp32);

// What a and b must be on the side of the branch where `a OP b` is `taken`. Returns false when that
// side cannot happen at all.
bool refine_branch(CmpOp op, bool taken, Scalar& a, Scalar& b, bool jmp32);

}  // namespace bpfvm::verifier
