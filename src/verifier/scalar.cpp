#include "bpfvm/verifier/scalar.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace bpfvm::verifier {

namespace {

using u64 = std::uint64_t;
using s64 = std::int64_t;
using u32 = std::uint32_t;
using s32 = std::int32_t;
constexpr u64 kU64Max = std::numeric_limits<u64>::max();
constexpr s64 kS64Min = std::numeric_limits<s64>::min(), kS64Max = std::numeric_limits<s64>::max();
constexpr u32 kU32Max = std::numeric_limits<u32>::max();
constexpr s32 kS32Min = std::numeric_limits<s32>::min(), kS32Max = std::numeric_limits<s32>::max();

// [lo1 op lo2, hi1 op hi2] when neither end overflows T (op reports overflow), else all of T.
template <typename T, typename Op>
void checked_range(T lo1, T lo2, T hi1, T hi2, Op op, T& lo, T& hi) {
  T l, h;
  if (op(lo1, lo2, &l) || op(hi1, hi2, &h)) {
    lo = std::numeric_limits<T>::min();
    hi = std::numeric_limits<T>::max();
  } else {
    lo = l;
    hi = h;
  }
}

// [a_min + b_min, a_max + b_max] and [a_min - b_max, a_max - b_min], or all of T on overflow.
template <typename T>
void add_range(T a_min, T a_max, T b_min, T b_max, T& lo, T& hi) {
  checked_range(a_min, b_min, a_max, b_max, [](T x, T y, T* r) { return __builtin_add_overflow(x, y, r); }, lo, hi);
}
template <typename T>
void sub_range(T a_min, T a_max, T b_min, T b_max, T& lo, T& hi) {
  checked_range(a_min, b_max, a_max, b_min, [](T x, T y, T* r) { return __builtin_sub_overflow(x, y, r); }, lo, hi);
}

// The four corner products (exact bounds of an interval product) when none overflows.
template <typename T>
void mul_range(T a_min, T a_max, T b_min, T b_max, T& lo, T& hi) {
  const T as[2] = {a_min, a_max}, bs[2] = {b_min, b_max};
  bool overflow = false;
  T l = std::numeric_limits<T>::max(), h = std::numeric_limits<T>::min();
  for (T x : as) {
    for (T y : bs) {
      T p{};
      overflow = __builtin_mul_overflow(x, y, &p) || overflow;
      l = std::min(l, p);
      h = std::max(h, p);
    }
  }
  if (overflow) {
    lo = std::numeric_limits<T>::min();
    hi = std::numeric_limits<T>::max();
  } else {
    lo = l;
    hi = h;
  }
}

Scalar alu64(AluOp op, const Scalar& a, const Scalar& b, unsigned shift_bits) {
  Scalar r;
  switch (op) {
    case AluOp::kMov: return b;
    case AluOp::kAdd:
      r.bits = tnum_add(a.bits, b.bits);
      add_range(a.smin, a.smax, b.smin, b.smax, r.smin, r.smax);
      add_range(a.umin, a.umax, b.umin, b.umax, r.umin, r.umax);
      add_range(a.s32_min, a.s32_max, b.s32_min, b.s32_max, r.s32_min, r.s32_max);
      add_range(a.u32_min, a.u32_max, b.u32_min, b.u32_max, r.u32_min, r.u32_max);
      break;
    case AluOp::kSub:
      r.bits = tnum_sub(a.bits, b.bits);
      sub_range(a.smin, a.smax, b.smin, b.smax, r.smin, r.smax);
      sub_range(a.umin, a.umax, b.umin, b.umax, r.umin, r.umax);
      sub_range(a.s32_min, a.s32_max, b.s32_min, b.s32_max, r.s32_min, r.s32_max);
      sub_range(a.u32_min, a.u32_max, b.u32_min, b.u32_max, r.u32_min, r.u32_max);
      break;
    case AluOp::kNeg: return alu64(AluOp::kSub, Scalar::constant(0), a, shift_bits);
    case AluOp::kMul:
      r.bits = tnum_mul(a.bits, b.bits);
      mul_range(a.smin, a.smax, b.smin, b.smax, r.smin, r.smax);
      mul_range(a.umin, a.umax, b.umin, b.umax, r.umin, r.umax);
      mul_range(a.s32_min, a.s32_max, b.s32_min, b.s32_max, r.s32_min, r.s32_max);
      mul_range(a.u32_min, a.u32_max, b.u32_min, b.u32_max, r.u32_min, r.u32_max);
      break;
    case AluOp::kAnd:
      r.bits = tnum_and(a.bits, b.bits);
      r.umax = std::min(a.umax, b.umax);  // x & y <= min(x, y)
      r.u32_max = std::min(a.u32_max, b.u32_max);
      break;
    case AluOp::kOr:
      r.bits = tnum_or(a.bits, b.bits);
      r.umin = std::max(a.umin, b.umin);  // x | y >= max(x, y)
      r.u32_min = std::max(a.u32_min, b.u32_min);
      break;
    case AluOp::kXor: r.bits = tnum_xor(a.bits, b.bits); break;
    case AluOp::kLsh:
    case AluOp::kRsh:
    case AluOp::kArsh: {
      // A shift by an unknown amount (the interpreter masks it) could leave anything.
      if (!b.is_const()) return Scalar::unknown();
      const unsigned k = static_cast<unsigned>(b.const_value() & (shift_bits - 1));
      if (op == AluOp::kLsh) {
        r.bits = tnum_lshift(a.bits, k);
        if (k == 0 || (a.umax >> (64 - k)) == 0) {  // no bit shifted out
          r.umin = a.umin << k;
          r.umax = a.umax << k;
        }
      } else if (op == AluOp::kRsh) {
        r.bits = tnum_rshift(a.bits, k);
        r.umin = a.umin >> k;
        r.umax = a.umax >> k;
      } else {
        r.bits = tnum_arshift(a.bits, k, 64);
        r.smin = a.smin >> k;
        r.smax = a.smax >> k;
      }
      break;
    }
    case AluOp::kDiv:
    case AluOp::kMod: {
      // Unsigned, by a known divisor; by zero: 0 for division, dst unchanged for modulo (RFC 9669 4.1).
      if (!b.is_const()) return Scalar::unknown();
      const u64 c = b.const_value();
      if (op == AluOp::kDiv) {
        if (c == 0) return Scalar::constant(0);
        return Scalar::range(a.umin / c, a.umax / c);
      }
      if (c == 0 || a.umax < c) return a;
      return Scalar::range(0, std::min(a.umax, c - 1));
    }
    case AluOp::kSdiv:
    case AluOp::kSmod: return Scalar::unknown();
  }
  r.sync();
  return r;
}

}  // namespace

Scalar Scalar::constant(std::uint64_t v) {
  Scalar s;
  s.bits = Tnum::constant(v);
  s.smin = s.smax = static_cast<s64>(v);
  s.umin = s.umax = v;
  s.s32_min = s.s32_max = static_cast<s32>(static_cast<u32>(v));
  s.u32_min = s.u32_max = static_cast<u32>(v);
  return s;
}

Scalar Scalar::range(std::uint64_t min, std::uint64_t max) {
  Scalar s;
  s.umin = min;
  s.umax = max;
  s.bits = Tnum::range(min, max);
  s.sync();
  return s;
}

bool Scalar::contains(std::uint64_t x) const {
  const auto lo = static_cast<u32>(x);
  return bits.contains(x) && x >= umin && x <= umax && static_cast<s64>(x) >= smin && static_cast<s64>(x) <= smax &&
         lo >= u32_min && lo <= u32_max && static_cast<s32>(lo) >= s32_min && static_cast<s32>(lo) <= s32_max;
}

bool Scalar::includes(const Scalar& o) const {
  return bits.includes(o.bits) && umin <= o.umin && o.umax <= umax && smin <= o.smin && o.smax <= smax &&
         u32_min <= o.u32_min && o.u32_max <= u32_max && s32_min <= o.s32_min && o.s32_max <= s32_max;
}

bool Scalar::consistent() const {
  if (umin > umax || smin > smax || u32_min > u32_max || s32_min > s32_max) return false;
  if ((bits.value & bits.mask) != 0) return false;
  // The tnum must allow something inside the unsigned range.
  return bits.min() <= umax && bits.max() >= umin;
}

void Scalar::sync() {
  // A constant every view agrees with is already as narrow as it gets (the common case: counters and
  // offsets); otherwise the views narrow each other, a second time only when the first changed them.
  if (bits.is_const() && contains(bits.value)) {
    *this = constant(bits.value);
    return;
  }
  for (int round = 0; round < 2; ++round) {
    const Scalar before = *this;
    // Known bits bound every range (__update_reg_bounds).
    umin = std::max(umin, bits.min());
    umax = std::min(umax, bits.max());
    smin = std::max(smin, static_cast<s64>(bits.value | (bits.mask & (1ull << 63))));
    smax = std::min(smax, static_cast<s64>(bits.value | (bits.mask & ~(1ull << 63))));
    const Tnum low = tnum_subreg(bits);
    u32_min = std::max(u32_min, static_cast<u32>(low.min()));
    u32_max = std::min(u32_max, static_cast<u32>(low.max()));
    s32_min = std::max(s32_min, static_cast<s32>(static_cast<u32>(low.value | (low.mask & 0x80000000u))));
    s32_max = std::min(s32_max, static_cast<s32>(static_cast<u32>(low.value | (low.mask & 0x7fffffffu))));

    // A range that does not cross the sign boundary is the same range signed and unsigned
    // (__reg_deduce_bounds).
    if (static_cast<s32>(u32_min) <= static_cast<s32>(u32_max)) {
      s32_min = std::max(s32_min, static_cast<s32>(u32_min));
      s32_max = std::min(s32_max, static_cast<s32>(u32_max));
    }
    if (s32_min >= 0 || s32_max < 0) {
      u32_min = std::max(u32_min, static_cast<u32>(s32_min));
      u32_max = std::min(u32_max, static_cast<u32>(s32_max));
    }
    if (static_cast<s64>(umin) <= static_cast<s64>(umax)) {
      smin = std::max(smin, static_cast<s64>(umin));
      smax = std::min(smax, static_cast<s64>(umax));
    }
    if (smin >= 0 || smax < 0) {
      umin = std::max(umin, static_cast<u64>(smin));
      umax = std::min(umax, static_cast<u64>(smax));
    }
    // Values that share their upper 32 bits order their low halves as they order themselves.
    if ((umin >> 32) == (umax >> 32)) {
      u32_min = std::max(u32_min, static_cast<u32>(umin));
      u32_max = std::min(u32_max, static_cast<u32>(umax));
    }
    if ((smin >> 32) == (smax >> 32)) {
      u32_min = std::max(u32_min, static_cast<u32>(smin));
      u32_max = std::min(u32_max, static_cast<u32>(smax));
    }
    // Known upper bits and a bounded low half bound the whole value.
    if ((bits.mask >> 32) == 0) {
      const u64 upper = bits.value & ~0xffffffffull;
      umin = std::max(umin, upper | u32_min);
      umax = std::min(umax, upper | u32_max);
      smin = std::max(smin, static_cast<s64>(upper | u32_min));
      smax = std::min(smax, static_cast<s64>(upper | u32_max));
    }
    // And the ranges narrow the known bits (__reg_bound_offset).
    if (umin <= umax) bits = tnum_intersect(bits, Tnum::range(umin, umax));
    if (u32_min <= u32_max) bits = tnum_with_subreg(bits, tnum_intersect(tnum_subreg(bits), Tnum::range(u32_min, u32_max)));
    if (*this == before) break;
  }
}

Scalar Scalar::zext32() const {
  Scalar r;
  r.bits = tnum_subreg(bits);
  r.u32_min = u32_min;
  r.u32_max = u32_max;
  r.s32_min = s32_min;
  r.s32_max = s32_max;
  r.umin = u32_min;
  r.umax = u32_max;
  r.smin = u32_min;
  r.smax = u32_max;
  r.sync();
  return r;
}

std::string Scalar::to_string() const {
  if (is_const()) return fmt::format("{}", static_cast<s64>(const_value()));
  // The kernel's notation: bounds at their defaults are left out, and mins (maxes) with the same value
  // and sign are written once, "smin=smin32=0,smax=umax=15".
  struct Field {
    const char* name;
    u64 value;
    bool omit;
  } fields[] = {
      {"smin", static_cast<u64>(smin), smin == kS64Min},
      {"smax", static_cast<u64>(smax), smax == kS64Max},
      {"umin", umin, umin == 0},
      {"umax", umax, umax == kU64Max},
      {"smin32", static_cast<u64>(static_cast<s64>(s32_min)), s32_min == kS32Min},
      {"smax32", static_cast<u64>(static_cast<s64>(s32_max)), s32_max == kS32Max},
      {"umin32", u32_min, u32_min == 0},
      {"umax32", u32_max, u32_max == kU32Max},
  };
  auto negative = [](const Field& f) { return f.name[0] == 's' && static_cast<s64>(f.value) < 0; };
  std::string out;
  for (std::size_t i = 0; i < std::size(fields); ++i) {
    if (fields[i].omit) continue;
    if (!out.empty()) out.push_back(',');
    out.append(fields[i].name);
    out.push_back('=');
    for (std::size_t j = i + 2; j < std::size(fields); j += 2) {
      if (fields[j].omit || negative(fields[j]) != negative(fields[i]) || fields[j].value != fields[i].value) continue;
      out.append(fields[j].name);
      out.push_back('=');
      fields[j].omit = true;
    }
    out.append(negative(fields[i]) ? fmt::format("{}", static_cast<s64>(fields[i].value)) : fmt::format("{}", fields[i].value));
  }
  if (!bits.is_unknown()) {
    if (!out.empty()) out.push_back(',');
    out.append(fmt::format("var_off=(0x{:x}; 0x{:x})", bits.value, bits.mask));
  }
  return out;
}

namespace {

// Both operands known: the result is too (the common case of counters and offsets), computed as the
// instruction computes it. nullopt for the operations whose ranges the explorer leaves unknown.
std::optional<u64> fold(AluOp op, u64 a, u64 b, bool alu32) {
  const unsigned width = alu32 ? 32 : 64;
  if (alu32) {
    a = static_cast<u32>(a);
    b = static_cast<u32>(b);
  }
  u64 r;
  switch (op) {
    case AluOp::kAdd: r = a + b; break;
    case AluOp::kSub: r = a - b; break;
    case AluOp::kMul: r = a * b; break;
    case AluOp::kOr: r = a | b; break;
    case AluOp::kAnd: r = a & b; break;
    case AluOp::kXor: r = a ^ b; break;
    case AluOp::kNeg: r = 0 - a; break;
    case AluOp::kMov: r = b; break;
    case AluOp::kLsh: r = a << (b & (width - 1)); break;
    case AluOp::kRsh: r = a >> (b & (width - 1)); break;
    case AluOp::kArsh:
      r = alu32 ? static_cast<u64>(static_cast<u32>(static_cast<s32>(static_cast<u32>(a)) >> (b & 31)))
                : static_cast<u64>(static_cast<s64>(a) >> (b & 63));
      break;
    default: return std::nullopt;
  }
  return alu32 ? static_cast<u32>(r) : r;
}

}  // namespace

Scalar scalar_alu(AluOp op, const Scalar& dst, const Scalar& src, bool alu32) {
  if (dst.is_const() && src.is_const()) {
    if (auto r = fold(op, dst.const_value(), src.const_value(), alu32)) return Scalar::constant(*r);
  }
  if (!alu32) return alu64(op, dst, src, 64);
  const Scalar a = dst.zext32(), b = src.zext32();
  if (op == AluOp::kArsh) {
    // The sign is bit 31: shift the low half as signed, zero-extend the result.
    if (!b.is_const()) return Scalar::unknown().zext32();
    const unsigned k = static_cast<unsigned>(b.const_value() & 31);
    Scalar r;
    r.bits = tnum_arshift(a.bits, k, 32);
    r.s32_min = a.s32_min >> k;
    r.s32_max = a.s32_max >> k;
    r.umax = kU32Max;
    r.smin = 0;
    r.smax = kU32Max;
    r.sync();
    return r.zext32();
  }
  // On zero-extended operands the low 32 bits of the 64-bit result are the 32-bit result; shifts use
  // the amount modulo 32.
  return alu64(op, a, b, 32).zext32();
}

namespace {

// One width's view of a scalar, for compares.
struct View {
  Tnum bits;
  u64 umin, umax;
  s64 smin, smax;
};
View view(const Scalar& s, bool w32) {
  if (w32) return {tnum_subreg(s.bits), s.u32_min, s.u32_max, s.s32_min, s.s32_max};
  return {s.bits, s.umin, s.umax, s.smin, s.smax};
}

CmpOp negate(CmpOp op) {
  switch (op) {
    case CmpOp::kEq: return CmpOp::kNe;
    case CmpOp::kNe: return CmpOp::kEq;
    case CmpOp::kGt: return CmpOp::kLe;
    case CmpOp::kGe: return CmpOp::kLt;
    case CmpOp::kLt: return CmpOp::kGe;
    case CmpOp::kLe: return CmpOp::kGt;
    case CmpOp::kSgt: return CmpOp::kSle;
    case CmpOp::kSge: return CmpOp::kSlt;
    case CmpOp::kSlt: return CmpOp::kSge;
    case CmpOp::kSle: return CmpOp::kSgt;
    case CmpOp::kSet: return CmpOp::kSet;  // handled apart
  }
  return op;
}

// Narrows one width's ranges of s (64-bit, or the 32-bit subregister).
void narrow(Scalar& s, bool w32, u64 umin, u64 umax, s64 smin, s64 smax) {
  if (w32) {
    s.u32_min = std::max(s.u32_min, static_cast<u32>(std::min<u64>(umin, kU32Max)));
    s.u32_max = std::min(s.u32_max, static_cast<u32>(std::min<u64>(umax, kU32Max)));
    s.s32_min = std::max(s.s32_min, static_cast<s32>(std::clamp<s64>(smin, kS32Min, kS32Max)));
    s.s32_max = std::min(s.s32_max, static_cast<s32>(std::clamp<s64>(smax, kS32Min, kS32Max)));
  } else {
    s.umin = std::max(s.umin, umin);
    s.umax = std::min(s.umax, umax);
    s.smin = std::max(s.smin, smin);
    s.smax = std::min(s.smax, smax);
  }
}

}  // namespace

std::optional<bool> branch_taken(CmpOp op, const Scalar& sa, const Scalar& sb, bool jmp32) {
  const View a = view(sa, jmp32), b = view(sb, jmp32);
  switch (op) {
    case CmpOp::kEq:
    case CmpOp::kNe: {
      std::optional<bool> eq;
      if (a.bits.is_const() && b.bits.is_const()) eq = a.bits.value == b.bits.value;
      else if (a.umin > b.umax || b.umin > a.umax || a.smin > b.smax || b.smin > a.smax ||
               ((a.bits.value ^ b.bits.value) & ~(a.bits.mask | b.bits.mask)) != 0) eq = false;
      if (!eq) return std::nullopt;
      return op == CmpOp::kEq ? *eq : !*eq;
    }
    case CmpOp::kGt:
      if (a.umin > b.umax) return true;
      if (a.umax <= b.umin) return false;
      return std::nullopt;
    case CmpOp::kGe:
      if (a.umin >= b.umax) return true;
      if (a.umax < b.umin) return false;
      return std::nullopt;
    case CmpOp::kLt: return branch_taken(CmpOp::kGt, sb, sa, jmp32);
    case CmpOp::kLe: return branch_taken(CmpOp::kGe, sb, sa, jmp32);
    case CmpOp::kSgt:
      if (a.smin > b.smax) return true;
      if (a.smax <= b.smin) return false;
      return std::nullopt;
    case CmpOp::kSge:
      if (a.smin >= b.smax) return true;
      if (a.smax < b.smin) return false;
      return std::nullopt;
    case CmpOp::kSlt: return branch_taken(CmpOp::kSgt, sb, sa, jmp32);
    case CmpOp::kSle: return branch_taken(CmpOp::kSge, sb, sa, jmp32);
    case CmpOp::kSet:
      if ((a.bits.value & b.bits.value) != 0) return true;
      if (((a.bits.value | a.bits.mask) & (b.bits.value | b.bits.mask)) == 0) return false;
      return std::nullopt;
  }
  return std::nullopt;
}

bool refine_branch(CmpOp op, bool taken, Scalar& a, Scalar& b, bool jmp32) {
  if (const auto known = branch_taken(op, a, b, jmp32); known && *known != taken) return false;
  if (op == CmpOp::kSet) {
    // (a & c) == 0 with a known c: a's bits of c are 0. (a & c) != 0 with a single-bit c: that bit is 1.
    for (Scalar* s : {&a, &b}) {
      const Scalar& other = s == &a ? b : a;
      if (!other.is_const()) continue;
      u64 c = other.const_value();
      if (jmp32) c &= kU32Max;
      if (!taken) {
        s->bits = {s->bits.value & ~c, s->bits.mask & ~c};
        if (s->bits.value & c) return false;
      } else if ((c & (c - 1)) == 0 && c != 0) {
        if (!(s->bits.mask & c) && !(s->bits.value & c)) return false;
        s->bits = {s->bits.value | c, s->bits.mask & ~c};
      }
    }
    a.sync();
    b.sync();
    return a.consistent() && b.consistent();
  }
  if (!taken) op = negate(op);
  const View va = view(a, jmp32), vb = view(b, jmp32);
  const u64 umax_all = jmp32 ? kU32Max : kU64Max;
  const s64 smin_all = jmp32 ? kS32Min : kS64Min, smax_all = jmp32 ? kS32Max : kS64Max;
  switch (op) {
    case CmpOp::kEq: {
      // Both are the same value: each is what both allow.
      const u64 umin = std::max(va.umin, vb.umin), umax = std::min(va.umax, vb.umax);
      const s64 smin = std::max(va.smin, vb.smin), smax = std::min(va.smax, vb.smax);
      if (umin > umax || smin > smax) return false;
      narrow(a, jmp32, umin, umax, smin, smax);
      narrow(b, jmp32, umin, umax, smin, smax);
      if (((va.bits.value ^ vb.bits.value) & ~(va.bits.mask | vb.bits.mask)) != 0) return false;
      const Tnum both = tnum_intersect(va.bits, vb.bits);
      if (jmp32) {
        a.bits = tnum_with_subreg(a.bits, both);
        b.bits = tnum_with_subreg(b.bits, both);
      } else {
        a.bits = b.bits = both;
      }
      break;
    }
    case CmpOp::kNe:
      // Only a constant at the edge of the other's range narrows it.
      for (int side = 0; side < 2; ++side) {
        Scalar& s = side == 0 ? a : b;
        const View& mine = side == 0 ? va : vb;
        const View& other = side == 0 ? vb : va;
        if (!other.bits.is_const()) continue;
        const u64 c = other.bits.value;
        const s64 sc = jmp32 ? static_cast<s32>(static_cast<u32>(c)) : static_cast<s64>(c);
        u64 umin = mine.umin, umax = mine.umax;
        s64 smin = mine.smin, smax = mine.smax;
        if (umin == c && umin < umax) ++umin;
        else if (umax == c && umin < umax) --umax;
        if (smin == sc && smin < smax) ++smin;
        else if (smax == sc && smin < smax) --smax;
        narrow(s, jmp32, umin, umax, smin, smax);
      }
      break;
    case CmpOp::kGt:  // a > b
      if (vb.umin == umax_all || va.umax == 0) return false;
      narrow(a, jmp32, vb.umin + 1, umax_all, smin_all, smax_all);
      narrow(b, jmp32, 0, va.umax - 1, smin_all, smax_all);
      break;
    case CmpOp::kGe:
      narrow(a, jmp32, vb.umin, umax_all, smin_all, smax_all);
      narrow(b, jmp32, 0, va.umax, smin_all, smax_all);
      break;
    case CmpOp::kLt: return refine_branch(CmpOp::kGt, true, b, a, jmp32);
    case CmpOp::kLe: return refine_branch(CmpOp::kGe, true, b, a, jmp32);
    case CmpOp::kSgt:
      if (vb.smin == smax_all || va.smax == smin_all) return false;
      narrow(a, jmp32, 0, umax_all, vb.smin + 1, smax_all);
      narrow(b, jmp32, 0, umax_all, smin_all, va.smax - 1);
      break;
    case CmpOp::kSge:
      narrow(a, jmp32, 0, umax_all, vb.smin, smax_all);
      narrow(b, jmp32, 0, umax_all, smin_all, va.smax);
      break;
    case CmpOp::kSlt: return refine_branch(CmpOp::kSgt, true, b, a, jmp32);
    case CmpOp::kSle: return refine_branch(CmpOp::kSge, true, b, a, jmp32);
    case CmpOp::kSet: break;
  }
  a.sync();
  b.sync();
  return a.consistent() && b.consistent();
}

}  // namespace bpfvm::verifier
