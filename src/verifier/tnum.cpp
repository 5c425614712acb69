#include "bpfvm/verifier/tnum.hpp"

namespace bpfvm::verifier {

Tnum Tnum::range(std::uint64_t min, std::uint64_t max) {
  // The bits above the highest bit where min and max differ are common to every value in between.
  const std::uint64_t differ = min ^ max;
  const int bits = differ ? 64 - std::countl_zero(differ) : 0;
  if (bits >= 64) return unknown();
  const std::uint64_t low = (1ull << bits) - 1;
  return {min & ~low, low};
}

Tnum tnum_add(Tnum a, Tnum b) {
  // The carries that unknown bits can change: compare the sum with all unknowns 0 and all 1.
  const std::uint64_t sum_masks = a.mask + b.mask;
  const std::uint64_t sum_values = a.value + b.value;
  const std::uint64_t all_ones = sum_masks + sum_values;
  const std::uint64_t unknown = (all_ones ^ sum_values) | a.mask | b.mask;
  return {sum_values & ~unknown, unknown};
}

Tnum tnum_sub(Tnum a, Tnum b) {
  const std::uint64_t diff = a.value - b.value;
  const std::uint64_t high = diff + a.mask;  // a's unknowns all 1, b's all 0
  const std::uint64_t low = diff - b.mask;   // a's unknowns all 0, b's all 1
  const std::uint64_t unknown = (high ^ low) | a.mask | b.mask;
  return {diff & ~unknown, unknown};
}

Tnum tnum_neg(Tnum a) { return tnum_sub(Tnum::constant(0), a); }

Tnum tnum_and(Tnum a, Tnum b) {
  const std::uint64_t may_a = a.value | a.mask, may_b = b.value | b.mask;
  const std::uint64_t ones = a.value & b.value;
  return {ones, may_a & may_b & ~ones};
}

Tnum tnum_or(Tnum a, Tnum b) {
  const std::uint64_t ones = a.value | b.value;
  return {ones, (a.mask | b.mask) & ~ones};
}

Tnum tnum_xor(Tnum a, Tnum b) {
  const std::uint64_t unknown = a.mask | b.mask;
  return {(a.value ^ b.value) & ~unknown, unknown};
}

Tnum tnum_mul(Tnum a, Tnum b) {
  // Long multiplication: the known part of the product, plus, for each bit of a that is 1 or unknown,
  // b's (unknown) contribution shifted into place.
  const std::uint64_t known = a.value * b.value;
  Tnum uncertain = Tnum::constant(0);
  while (a.value || a.mask) {
    if (a.value & 1) {
      uncertain = tnum_add(uncertain, Tnum{0, b.mask});
    } else if (a.mask & 1) {
      uncertain = tnum_add(uncertain, Tnum{0, b.value | b.mask});
    }
    a = tnum_rshift(a, 1);
    b = tnum_lshift(b, 1);
  }
  return tnum_add(Tnum::constant(known), uncertain);
}

Tnum tnum_lshift(Tnum a, unsigned shift) {
  if (shift >= 64) return Tnum::constant(0);
  return {a.value << shift, a.mask << shift};
}

Tnum tnum_rshift(Tnum a, unsigned shift) {
  if (shift >= 64) return Tnum::constant(0);
  return {a.value >> shift, a.mask >> shift};
}

Tnum tnum_arshift(Tnum a, unsigned shift, unsigned bits) {
  if (bits == 32) {
    // An unknown sign bit spreads unknown bits; a known one spreads itself.
    const auto v = static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(a.value)) >> (shift & 31));
    const auto m = static_cast<std::uint32_t>(static_cast<std::int32_t>(static_cast<std::uint32_t>(a.mask)) >> (shift & 31));
    return {v, m};
  }
  const auto v = static_cast<std::uint64_t>(static_cast<std::int64_t>(a.value) >> (shift & 63));
  const auto m = static_cast<std::uint64_t>(static_cast<std::int64_t>(a.mask) >> (shift & 63));
  return {v, m};
}

Tnum tnum_intersect(Tnum a, Tnum b) {
  const std::uint64_t unknown = a.mask & b.mask;
  return {(a.value | b.value) & ~unknown, unknown};
}

Tnum tnum_union(Tnum a, Tnum b) {
  const std::uint64_t unknown = a.mask | b.mask | (a.value ^ b.value);
  return {a.value & ~unknown, unknown};
}

Tnum tnum_cast(Tnum a, unsigned bytes) {
  if (bytes >= 8) return a;
  const std::uint64_t keep = (1ull << (8 * bytes)) - 1;
  return {a.value & keep, a.mask & keep};
}

Tnum tnum_with_subreg(Tnum high, Tnum low) {
  const std::uint64_t hi = ~0xffffffffull;
  return {(high.value & hi) | (low.value & 0xffffffff), (high.mask & hi) | (low.mask & 0xffffffff)};
}

}  // namespace bpfvm::verifier
