// Tnums: every operation is sound (the concrete result of any members is a member of the result),
// exact on constants, and as precise as the kernel's on the classic cases.
#include <gtest/gtest.h>

#include <random>

#include "bpfvm/verifier/tnum.hpp"

namespace bpfvm::verifier {
namespace {

// A random tnum with a random density of unknown bits, and a random member of one.
Tnum random_tnum(std::mt19937_64& rng) {
  const std::uint64_t unknown_bits = rng() & rng() & (rng() % 4 == 0 ? rng() : ~0ull);
  const std::uint64_t mask = rng() % 3 == 0 ? 0 : unknown_bits;
  return {rng() & ~mask, mask};
}
std::uint64_t member(Tnum t, std::mt19937_64& rng) { return t.value | (rng() & t.mask); }

template <typename Abstract, typename Concrete>
void check_binary(const char* name, Abstract abstract_op, Concrete concrete_op) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    const Tnum a = random_tnum(rng), b = random_tnum(rng);
    const Tnum r = abstract_op(a, b);
    ASSERT_EQ(r.value & r.mask, 0u) << name << ": value and mask overlap";
    for (int j = 0; j < 8; ++j) {
      const std::uint64_t x = member(a, rng), y = member(b, rng);
      ASSERT_TRUE(r.contains(concrete_op(x, y))) << name << " of " << x << " and " << y;
    }
    if (a.is_const() && b.is_const()) {
      ASSERT_TRUE(r.is_const()) << name << " of constants";
    }
  }
}

TEST(Tnum, ArithmeticIsSound) {
  check_binary("add", tnum_add, [](std::uint64_t x, std::uint64_t y) { return x + y; });
  check_binary("sub", tnum_sub, [](std::uint64_t x, std::uint64_t y) { return x - y; });
  check_binary("mul", tnum_mul, [](std::uint64_t x, std::uint64_t y) { return x * y; });
  check_binary("and", tnum_and, [](std::uint64_t x, std::uint64_t y) { return x & y; });
  check_binary("or", tnum_or, [](std::uint64_t x, std::uint64_t y) { return x | y; });
  check_binary("xor", tnum_xor, [](std::uint64_t x, std::uint64_t y) { return x ^ y; });
}

TEST(Tnum, ShiftsAndCastsAreSound) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    const Tnum a = random_tnum(rng);
    const unsigned s = static_cast<unsigned>(rng() % 64);
    for (int j = 0; j < 8; ++j) {
      const std::uint64_t x = member(a, rng);
      ASSERT_TRUE(tnum_lshift(a, s).contains(x << s));
      ASSERT_TRUE(tnum_rshift(a, s).contains(x >> s));
      ASSERT_TRUE(tnum_arshift(a, s, 64).contains(static_cast<std::uint64_t>(static_cast<std::int64_t>(x) >> s)));
      const auto x32 = static_cast<std::uint32_t>(x);
      ASSERT_TRUE(tnum_arshift(a, s % 32, 32).contains(
          static_cast<std::uint32_t>(static_cast<std::int32_t>(x32) >> (s % 32))));
      ASSERT_TRUE(tnum_neg(a).contains(0 - x));
      for (unsigned bytes : {1u, 2u, 4u, 8u}) {
        const std::uint64_t keep = bytes == 8 ? ~0ull : (1ull << (8 * bytes)) - 1;
        ASSERT_TRUE(tnum_cast(a, bytes).contains(x & keep));
      }
    }
  }
}

TEST(Tnum, RangeUnionAndIntersection) {
  std::mt19937_64 rng(9);
  for (int i = 0; i < 20000; ++i) {
    std::uint64_t lo = rng() >> (rng() % 64), hi = rng() >> (rng() % 64);
    if (lo > hi) std::swap(lo, hi);
    const Tnum r = Tnum::range(lo, hi);
    ASSERT_TRUE(r.contains(lo) && r.contains(hi) && r.contains(lo + (hi - lo) / 2));
    const Tnum a = random_tnum(rng), b = random_tnum(rng);
    const Tnum u = tnum_union(a, b);
    ASSERT_TRUE(u.includes(a) && u.includes(b));
    const std::uint64_t x = member(a, rng);
    // Intersecting with a tnum that also holds x keeps x.
    const Tnum c{x & ~b.mask, b.mask};
    ASSERT_TRUE(tnum_intersect(a, c).contains(x));
  }
  EXPECT_EQ(Tnum::range(0, 255), (Tnum{0, 255}));
  EXPECT_EQ(Tnum::range(16, 31), (Tnum{16, 15}));
  EXPECT_TRUE(Tnum::range(0, ~0ull).is_unknown());
  EXPECT_EQ(Tnum::range(5, 5), Tnum::constant(5));
}

TEST(Tnum, PreciseWhereTheKernelIs) {
  // x & 0xff of anything: 0..255; (x & 0xf0) + 4: the low nibble is exactly 4.
  const Tnum byte = tnum_and(Tnum::unknown(), Tnum::constant(0xff));
  EXPECT_EQ(byte, (Tnum{0, 0xff}));
  const Tnum t = tnum_add(tnum_and(Tnum::unknown(), Tnum::constant(0xf0)), Tnum::constant(4));
  EXPECT_EQ(t.value & 0xf, 4u);
  EXPECT_EQ(t.mask & 0xf, 0u);
  EXPECT_TRUE(tnum_lshift(Tnum{0, 0xff}, 3).aligned(8));
  EXPECT_EQ(tnum_mul(Tnum::constant(6), Tnum::constant(7)), Tnum::constant(42));
  EXPECT_EQ(tnum_subreg(Tnum::constant(0x1234567890ull)), Tnum::constant(0x34567890ull));
  EXPECT_EQ(tnum_with_subreg(Tnum::constant(0xaaaa'0000'0000ull), Tnum::constant(7)), Tnum::constant(0xaaaa'0000'0007ull));
}

}  // namespace
}  // namespace bpfvm::verifier
