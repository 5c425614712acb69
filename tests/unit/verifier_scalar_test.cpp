// The scalar domain is sound: abstract a few concrete values, apply an ALU operation or a branch, and
// every concrete result (or every pair that takes the branch) must still be inside the abstract one.
// Values come from where bugs live: around 0, 2^31, 2^32, 2^63 and the top of the range.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "bpfvm/verifier/scalar.hpp"

namespace bpfvm::verifier {
namespace {

using u64 = std::uint64_t;

u64 interesting(std::mt19937_64& rng) {
  static const u64 anchors[] = {0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ull, 0x7fffffffffffffffull,
                                0x8000000000000000ull, ~0ull, 255, 4096};
  switch (rng() % 4) {
    case 0: return rng() % 64;
    case 1: return anchors[rng() % std::size(anchors)] + (rng() % 5) - 2;
    case 2: return rng() >> (rng() % 64);
    default: return rng();
  }
}

// A few values near each other (or not), and the most precise abstraction of them.
std::vector<u64> sample(std::mt19937_64& rng) {
  std::vector<u64> v;
  const u64 base = interesting(rng);
  const int n = 1 + static_cast<int>(rng() % 5);
  for (int i = 0; i < n; ++i) v.push_back(rng() % 3 == 0 ? interesting(rng) : base + rng() % 16);
  return v;
}

Scalar abstract(const std::vector<u64>& values) {
  Scalar s = Scalar::constant(values[0]);
  for (u64 x : values) {
    const Scalar c = Scalar::constant(x);
    s.bits = tnum_union(s.bits, c.bits);
    s.umin = std::min(s.umin, c.umin);
    s.umax = std::max(s.umax, c.umax);
    s.smin = std::min(s.smin, c.smin);
    s.smax = std::max(s.smax, c.smax);
    s.u32_min = std::min(s.u32_min, c.u32_min);
    s.u32_max = std::max(s.u32_max, c.u32_max);
    s.s32_min = std::min(s.s32_min, c.s32_min);
    s.s32_max = std::max(s.s32_max, c.s32_max);
  }
  return s;
}

// The interpreter's semantics (RFC 9669 4.1, the kernel's masking of shift amounts).
u64 concrete(AluOp op, u64 a, u64 b, bool alu32) {
  if (alu32) {
    const auto x = static_cast<std::uint32_t>(a), y = static_cast<std::uint32_t>(b);
    switch (op) {
      case AluOp::kAdd: return static_cast<std::uint32_t>(x + y);
      case AluOp::kSub: return static_cast<std::uint32_t>(x - y);
      case AluOp::kMul: return static_cast<std::uint32_t>(x * y);
      case AluOp::kDiv: return y ? x / y : 0;
      case AluOp::kMod: return y ? x % y : x;
      case AluOp::kOr: return x | y;
      case AluOp::kAnd: return x & y;
      case AluOp::kXor: return x ^ y;
      case AluOp::kLsh: return static_cast<std::uint32_t>(x << (y & 31));
      case AluOp::kRsh: return x >> (y & 31);
      case AluOp::kArsh: return static_cast<std::uint32_t>(static_cast<std::int32_t>(x) >> (y & 31));
      case AluOp::kNeg: return static_cast<std::uint32_t>(0 - x);
      case AluOp::kMov: return y;
      default: return 0;
    }
  }
  switch (op) {
    case AluOp::kAdd: return a + b;
    case AluOp::kSub: return a - b;
    case AluOp::kMul: return a * b;
    case AluOp::kDiv: return b ? a / b : 0;
    case AluOp::kMod: return b ? a % b : a;
    case AluOp::kOr: return a | b;
    case AluOp::kAnd: return a & b;
    case AluOp::kXor: return a ^ b;
    case AluOp::kLsh: return a << (b & 63);
    case AluOp::kRsh: return a >> (b & 63);
    case AluOp::kArsh: return static_cast<u64>(static_cast<std::int64_t>(a) >> (b & 63));
    case AluOp::kNeg: return 0 - a;
    case AluOp::kMov: return b;
    default: return 0;
  }
}

bool holds(CmpOp op, u64 a, u64 b, bool jmp32) {
  if (jmp32) {
    a = static_cast<std::uint32_t>(a);
    b = static_cast<std::uint32_t>(b);
  }
  const auto sa = jmp32 ? std::int64_t{static_cast<std::int32_t>(a)} : static_cast<std::int64_t>(a);
  const auto sb = jmp32 ? std::int64_t{static_cast<std::int32_t>(b)} : static_cast<std::int64_t>(b);
  switch (op) {
    case CmpOp::kEq: return a == b;
    case CmpOp::kNe: return a != b;
    case CmpOp::kGt: return a > b;
    case CmpOp::kGe: return a >= b;
    case CmpOp::kLt: return a < b;
    case CmpOp::kLe: return a <= b;
    case CmpOp::kSgt: return sa > sb;
    case CmpOp::kSge: return sa >= sb;
    case CmpOp::kSlt: return sa < sb;
    case CmpOp::kSle: return sa <= sb;
    case CmpOp::kSet: return (a & b) != 0;
  }
  return false;
}

TEST(Scalar, AbstractionAndSyncKeepEveryValue) {
  std::mt19937_64 rng(1);
  for (int i = 0; i < 50000; ++i) {
    const auto v = sample(rng);
    Scalar s = abstract(v);
    s.sync();
    ASSERT_TRUE(s.consistent());
    for (u64 x : v) ASSERT_TRUE(s.contains(x)) << x << " lost by sync: " << s.to_string();
  }
}

TEST(Scalar, AluIsSound) {
  const AluOp ops[] = {AluOp::kAdd, AluOp::kSub, AluOp::kMul, AluOp::kDiv,  AluOp::kMod, AluOp::kOr,  AluOp::kAnd,
                       AluOp::kXor, AluOp::kLsh, AluOp::kRsh, AluOp::kArsh, AluOp::kNeg, AluOp::kMov, AluOp::kSdiv};
  std::mt19937_64 rng(2);
  for (int i = 0; i < 40000; ++i) {
    const auto va = sample(rng);
    auto vb = sample(rng);
    // Shift amounts and divisors are often constants: make them so half the time.
    if (rng() % 2) vb = {rng() % 70};
    const Scalar a = abstract(va), b = abstract(vb);
    for (AluOp op : ops) {
      for (bool alu32 : {false, true}) {
        const Scalar r = scalar_alu(op, a, b, alu32);
        if (op == AluOp::kSdiv) continue;  // unknown: nothing to check
        for (u64 x : va) {
          for (u64 y : vb) {
            const u64 z = concrete(op, x, y, alu32);
            ASSERT_TRUE(r.contains(z)) << "op " << static_cast<int>(op) << (alu32 ? " (32)" : "") << " of " << x << ", "
                                       << y << " = " << z << " not in " << r.to_string() << " from " << a.to_string()
                                       << " and " << b.to_string();
          }
        }
      }
    }
  }
}

TEST(Scalar, BranchesAreSound) {
  const CmpOp ops[] = {CmpOp::kEq,  CmpOp::kNe,  CmpOp::kGt,  CmpOp::kGe,  CmpOp::kLt, CmpOp::kLe,
                       CmpOp::kSgt, CmpOp::kSge, CmpOp::kSlt, CmpOp::kSle, CmpOp::kSet};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 40000; ++i) {
    const auto va = sample(rng);
    auto vb = sample(rng);
    if (rng() % 2) vb = {va[rng() % va.size()] + rng() % 3 - 1};  // compare with a close constant
    const Scalar a = abstract(va), b = abstract(vb);
    for (CmpOp op : ops) {
      for (bool jmp32 : {false, true}) {
        const auto known = branch_taken(op, a, b, jmp32);
        for (bool taken : {true, false}) {
          Scalar ra = a, rb = b;
          const bool possible = refine_branch(op, taken, ra, rb, jmp32);
          for (u64 x : va) {
            for (u64 y : vb) {
              if (holds(op, x, y, jmp32) != taken) continue;
              ASSERT_TRUE(!known || *known == taken) << "branch_taken wrong for " << x << " " << y;
              ASSERT_TRUE(possible) << "op " << static_cast<int>(op) << " side " << taken << " said impossible for " << x
                                    << ", " << y;
              ASSERT_TRUE(ra.contains(x) && rb.contains(y))
                  << "op " << static_cast<int>(op) << (jmp32 ? " (32)" : "") << " side " << taken << " lost " << x << ", "
                  << y << ": " << ra.to_string() << " / " << rb.to_string();
            }
          }
        }
      }
    }
  }
}

TEST(Scalar, LearnsWhatTheKernelLearns) {
  // if (x < 16) on an unknown x: x is 0..15 and its upper bits are known 0.
  Scalar x = Scalar::unknown(), c = Scalar::constant(16);
  ASSERT_TRUE(refine_branch(CmpOp::kLt, true, x, c, false));
  EXPECT_EQ(x.umax, 15u);
  EXPECT_EQ(x.bits, (Tnum{0, 15}));
  EXPECT_EQ(x.smin, 0);
  // (x & 0xff) << 2 is a multiple of 4 up to 1020.
  const Scalar y = scalar_alu(AluOp::kLsh, scalar_alu(AluOp::kAnd, Scalar::unknown(), Scalar::constant(0xff), false),
                              Scalar::constant(2), false);
  EXPECT_EQ(y.umax, 1020u);
  EXPECT_TRUE(y.bits.aligned(4));
  // A 32-bit move leaves the upper half zero.
  const Scalar z = scalar_alu(AluOp::kMov, Scalar::unknown(), Scalar::unknown(), true);
  EXPECT_EQ(z.umax, 0xffffffffu);
  // if (x s> 5) then x != 0 and unsigned x >= 6.
  Scalar s = Scalar::range(0, 100), five = Scalar::constant(5);
  ASSERT_TRUE(refine_branch(CmpOp::kSgt, true, s, five, false));
  EXPECT_EQ(s.umin, 6u);
  // A branch that cannot be taken is known.
  EXPECT_EQ(branch_taken(CmpOp::kGt, Scalar::range(0, 10), Scalar::constant(10), false), std::optional<bool>(false));
  Scalar p = Scalar::range(0, 10), q = Scalar::constant(10);
  EXPECT_FALSE(refine_branch(CmpOp::kGt, true, p, q, false));
  EXPECT_EQ(Scalar::constant(5).to_string(), "5");
}

}  // namespace
}  // namespace bpfvm::verifier
