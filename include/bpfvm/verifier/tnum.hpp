// Tristate numbers: what the verifier knows of a 64-bit value bit by bit. Each bit is known 0, known 1,
// or unknown (set in `mask`; such bits are 0 in `value`). The kernel tracks every scalar register with
// one (kernel/bpf/tnum.c); the operations here are sound over-approximations: for every x the tnum a
// contains and y that b contains, op(x, y) is contained in op(a, b).
#pragma once

#include <bit>
#include <cstdint>

namespace bpfvm::verifier {

struct Tnum {
  std::uint64_t value = 0;
  std::uint64_t mask = ~0ull;  // default: nothing known

  static constexpr Tnum constant(std::uint64_t v) { return {v, 0}; }
  static constexpr Tnum unknown() { return {0, ~0ull}; }
  // The smallest tnum holding every value in [min, max] (unsigned).
  static Tnum range(std::uint64_t min, std::uint64_t max);

  constexpr bool is_const() const { return mask == 0; }
  constexpr bool is_unknown() const { return mask == ~0ull; }
  constexpr bool contains(std::uint64_t x) const { return (x & ~mask) == value; }
  // Whether every value of `other` is a value of this one.
  constexpr bool includes(Tnum other) const {
    return (other.mask & ~mask) == 0 && (other.value & ~mask) == value;
  }
  constexpr std::uint64_t min() const { return value; }          // smallest unsigned member
  constexpr std::uint64_t max() const { return value | mask; }   // largest unsigned member
  // Whether every member is a multiple of `size` (a power of 2).
  constexpr bool aligned(std::uint64_t size) const { return ((value | mask) & (size - 1)) == 0; }
  friend constexpr bool operator==(Tnum, Tnum) = default;
};

Tnum tnum_add(Tnum a, Tnum b);
Tnum tnum_sub(Tnum a, Tnum b);
Tnum tnum_neg(Tnum a);
Tnum tnum_and(Tnum a, Tnum b);
Tnum tnum_or(Tnum a, Tnum b);
Tnum tnum_xor(Tnum a, Tnum b);
Tnum tnum_mul(Tnum a, Tnum b);
Tnum tnum_lshift(Tnum a, unsigned shift);
Tnum tnum_rshift(Tnum a, unsigned shift);
// Arithmetic shift of the value read as `bits` wide (64 or 32), the result zero-extended from that width.
Tnum tnum_arshift(Tnum a, unsigned shift, unsigned bits);
// Values both a and b allow (a and b must share at least one value).
Tnum tnum_intersect(Tnum a, Tnum b);
// The smallest tnum holding every value of a and of b.
Tnum tnum_union(Tnum a, Tnum b);
// The low `bytes` bytes (zero-extended), as a narrowing move or load sees them.
Tnum tnum_cast(Tnum a, unsigned bytes);
// The low 32 bits, and a tnum with the low 32 bits of `low` and the high 32 of `high`.
inline Tnum tnum_subreg(Tnum a) { return tnum_cast(a, 4); }
Tnum tnum_with_subreg(Tnum high, Tnum low);

}  // namespace bpfvm::verifier
