#include "random_program.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <cstdlib>
#include <random>

#include "bpfvm/isa/codec.hpp"

namespace bpfvm::test {

namespace {

using namespace isa;

// An instruction, and for jumps and calls the item they go to (patched into offsets at the end).
struct Item {
  Insn insn;
  int target = -1;
  bool landing = true;  // false: part of a sequence a jump must not enter halfway (callx after its mov)
};

class Generator {
 public:
  Generator(std::uint64_t seed, RandomProgram::Form form) : rng_(seed), vm_(form == RandomProgram::Form::kVm) {}

  RandomProgram generate(std::size_t length) {
    RandomProgram out;
    out.mem.resize(RandomProgram::kMemSize);
    for (auto& b : out.mem) b = static_cast<std::uint8_t>(rng_());

    // Prologue: r6 = mem, a zeroed 64-byte stack area, r0-r5 and r7-r9 set.
    int to_end_if_short = -1;
    if (vm_) {
      add(Alu{AluOp::kMov, true, 6, Operand::Reg(1)});
    } else {
      add(Load{Size::kW, false, 2, 1, 0});  // xdp_md.data
      add(Load{Size::kW, false, 3, 1, 4});  // xdp_md.data_end
      add(Alu{AluOp::kMov, true, 4, Operand::Reg(2)});
      add(Alu{AluOp::kAdd, true, 4, Operand::Imm(static_cast<std::int32_t>(RandomProgram::kMemSize))});
      to_end_if_short = add(CondJump{Cond::kGt, false, 4, Operand::Reg(3), 0});
      add(Alu{AluOp::kMov, true, 6, Operand::Reg(2)});
    }
    for (int k = 1; k <= 8; ++k) add(Store{Size::kDW, 10, static_cast<std::int16_t>(-8 * k), Operand::Imm(0)});
    for (std::uint8_t r : kScratch) add(LoadImm64::Imm(r, interesting()));

    const std::size_t body_start = items_.size();
    const std::size_t body_end = body_start + length;
    while (items_.size() < body_end) body_item(body_end);
    const int epilogue = static_cast<int>(items_.size());
    // Forward jumps aimed past the body land on the epilogue.
    for (Item& it : items_) {
      if (it.target >= epilogue) it.target = epilogue;
    }
    if (to_end_if_short >= 0) items_[static_cast<std::size_t>(to_end_if_short)].target = -3;  // patched below

    // Epilogue: registers and stack into mem.
    int slot = 0;
    for (std::uint8_t r : kScratch) {
      add(Store{Size::kDW, 6, static_cast<std::int16_t>(RandomProgram::kRegsAt + 8 * slot++), Operand::Reg(r)});
    }
    for (int k = 0; k < 8; ++k) {
      add(Load{Size::kDW, false, 1, 10, static_cast<std::int16_t>(-64 + 8 * k)});
      add(Store{Size::kDW, 6, static_cast<std::int16_t>(RandomProgram::kStackAt + 8 * k), Operand::Reg(1)});
    }
    const int exit_pass = static_cast<int>(items_.size());
    if (!vm_) add(Alu{AluOp::kMov, true, 0, Operand::Imm(XDP_PASS)});
    add(Exit{});
    if (to_end_if_short >= 0) items_[static_cast<std::size_t>(to_end_if_short)].target = exit_pass;

    // The subprogram: its own frame, r1-r5 as arguments, r6-r9 scribbled over (the caller's come back).
    // Only when called: the kernel refuses unreachable code.
    const bool called = std::any_of(items_.begin(), items_.end(), [](const Item& it) { return it.target == -2; });
    if (called) subprogram();
    for (Item& it : items_) {
      if (it.target == -2) it.target = subprogram_;
    }

    return encode_items(std::move(out));
  }

 private:
  void subprogram() {
    subprogram_ = static_cast<int>(items_.size());
    add(Alu{AluOp::kMov, true, 0, Operand::Reg(1)});
    add(Store{Size::kDW, 10, -8, Operand::Reg(2)});
    for (int k = 0; k < 12; ++k) {
      const auto dst = static_cast<std::uint8_t>(pick(0, 5));
      add(alu(binop(), coin(), dst, operand(static_cast<std::uint8_t>(pick(0, 5)))));
    }
    add(LoadImm64::Imm(static_cast<std::uint8_t>(pick(6, 9)), interesting()));
    add(Load{Size::kDW, false, 3, 10, -8});
    add(Alu{AluOp::kXor, true, 0, Operand::Reg(3)});
    add(Exit{});
  }

  RandomProgram encode_items(RandomProgram out) {

    for (Item& it : items_) {
      while (it.target >= 0 && !items_[static_cast<std::size_t>(it.target)].landing) ++it.target;
    }
    // Item indices -> slot offsets.
    std::vector<int> slot_of(items_.size() + 1, 0);
    for (std::size_t i = 0; i < items_.size(); ++i) {
      slot_of[i + 1] = slot_of[i] + (std::holds_alternative<LoadImm64>(items_[i].insn) ? 2 : 1);
    }
    for (std::size_t i = 0; i < items_.size(); ++i) {
      Item& it = items_[i];
      if (it.target < 0) continue;
      const int rel = slot_of[static_cast<std::size_t>(it.target)] - slot_of[i] - 1;
      if (auto* j = std::get_if<CondJump>(&it.insn)) j->offset = static_cast<std::int16_t>(rel);
      if (auto* j = std::get_if<Jump>(&it.insn)) j->offset = rel;
      if (auto* c = std::get_if<Call>(&it.insn)) c->imm = rel;
    }
    for (const Item& it : items_) encode(it.insn, out.insns);
    return out;
  }

  static constexpr std::uint8_t kScratch[] = {0, 1, 2, 3, 4, 5, 7, 8, 9};

  int add(Insn insn, int target = -1) {
    items_.push_back({insn, target});
    return static_cast<int>(items_.size()) - 1;
  }
  int pick(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool coin() { return rng_() & 1; }
  std::uint8_t scratch() { return kScratch[pick(0, 8)]; }

  // Values at the edges of every width, plus random ones.
  std::uint64_t interesting() {
    static constexpr std::uint64_t kEdges[] = {0, 1, 2, 7, 31, 32, 63, 64, 0xff, 0x7fff, 0x8000, 0xffff,
                                               0x7fffffff, 0x80000000, 0xffffffff, 0x100000000,
                                               0x7fffffffffffffff, 0x8000000000000000, ~0ull, ~0ull - 1};
    switch (pick(0, 3)) {
      case 0: return kEdges[pick(0, std::size(kEdges) - 1)];
      case 1: return static_cast<std::uint64_t>(pick(-300, 300));
      default: return rng_();
    }
  }
  std::int32_t imm() {
    const std::uint64_t v = interesting();
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  }
  Operand operand(std::uint8_t reg) { return coin() ? Operand::Reg(reg) : Operand::Imm(imm()); }
  AluOp binop() {
    static constexpr AluOp kOps[] = {AluOp::kAdd, AluOp::kSub, AluOp::kMul, AluOp::kDiv, AluOp::kSdiv,
                                     AluOp::kOr, AluOp::kAnd, AluOp::kLsh, AluOp::kRsh, AluOp::kMod,
                                     AluOp::kSmod, AluOp::kXor, AluOp::kMov, AluOp::kArsh};
    return kOps[pick(0, std::size(kOps) - 1)];
  }
  // The kernel refuses constant shifts past the width and constant division by zero (the vm form
  // keeps them: both engines define them).
  Alu alu(AluOp op, bool is64, std::uint8_t dst, Operand src) {
    if (!vm_ && !src.is_reg) {
      if (op == AluOp::kLsh || op == AluOp::kRsh || op == AluOp::kArsh) src.imm &= is64 ? 63 : 31;
      if ((op == AluOp::kDiv || op == AluOp::kSdiv || op == AluOp::kMod || op == AluOp::kSmod) && src.imm == 0) {
        src.imm = 3;
      }
    }
    return Alu{op, is64, dst, src};
  }
  Size size() {
    static constexpr Size kSizes[] = {Size::kB, Size::kH, Size::kW, Size::kDW};
    return kSizes[pick(0, 3)];
  }
  // A forward target: the next few items, or past the body (the epilogue).
  int forward(std::size_t body_end) {
    const auto here = static_cast<int>(items_.size());
    return std::min(here + pick(1, 12), static_cast<int>(body_end));
  }
  // After a call the verifier considers r1-r5 clobbered: set them again.
  void reload_arguments() {
    for (std::uint8_t r = 1; r <= 5; ++r) add(LoadImm64::Imm(r, interesting()));
  }

  void body_item(std::size_t body_end) {
    const int kind = pick(0, vm_ ? 21 : 18);
    switch (kind) {
      case 0: case 1: case 2: case 3:
        add(alu(binop(), coin(), scratch(), operand(scratch())));
        return;
      case 4: {
        // A copy then an add into it (clang's three-operand add, which the JIT fuses into one lea); the
        // add's source may be the copy itself.
        const bool is64 = coin();
        const std::uint8_t dst = scratch(), src = scratch();
        add(Alu{AluOp::kMov, is64, dst, Operand::Reg(src)});
        add(Alu{AluOp::kAdd, is64, dst, coin() ? Operand::Imm(imm()) : Operand::Reg(coin() ? dst : scratch())});
        return;
      }
      case 5: {
        const bool is64 = coin();
        const std::uint8_t bits = is64 ? static_cast<std::uint8_t>(8 << pick(0, 2)) : static_cast<std::uint8_t>(8 << pick(0, 1));
        if (coin()) {
          add(Alu{AluOp::kMovsx, is64, scratch(), Operand::Reg(scratch()), bits});
        } else {
          add(Alu{AluOp::kNeg, is64, scratch(), Operand::Imm(0)});
        }
        return;
      }
      case 6: {
        static constexpr Endian::Order kOrders[] = {Endian::Order::kLittle, Endian::Order::kBig, Endian::Order::kSwap};
        add(Endian{kOrders[pick(0, 2)], static_cast<std::uint8_t>(16 << pick(0, 2)), scratch()});
        return;
      }
      case 7: add(LoadImm64::Imm(scratch(), interesting())); return;
      case 8: case 9: {
        const Size s = size();
        const int off = pick(0, 256 - bytes_of(s));
        add(Load{s, s != Size::kDW && coin(), scratch(), 6, static_cast<std::int16_t>(off)});
        return;
      }
      case 10: case 11: {
        const Size s = size();
        const int off = pick(0, 256 - bytes_of(s));
        add(Store{s, 6, static_cast<std::int16_t>(off), coin() ? Operand::Reg(scratch()) : Operand::Imm(imm())});
        return;
      }
      case 12: {
        // The stack, aligned (the kernel insists).
        const Size s = size();
        const int off = -64 + bytes_of(s) * pick(0, 64 / bytes_of(s) - 1);
        if (coin()) {
          add(Load{s, s != Size::kDW && coin(), scratch(), 10, static_cast<std::int16_t>(off)});
        } else {
          add(Store{s, 10, static_cast<std::int16_t>(off), coin() ? Operand::Reg(scratch()) : Operand::Imm(imm())});
        }
        return;
      }
      case 13: {
        static constexpr AtomicOp kOps[] = {AtomicOp::kAdd, AtomicOp::kOr, AtomicOp::kAnd, AtomicOp::kXor,
                                            AtomicOp::kXchg, AtomicOp::kCmpxchg};
        const AtomicOp op = kOps[pick(0, 5)];
        const Size s = coin() ? Size::kW : Size::kDW;
        const bool fetch = op == AtomicOp::kXchg || op == AtomicOp::kCmpxchg || coin();
        const bool on_stack = !vm_ || coin();
        const int off = on_stack ? -64 + bytes_of(s) * pick(0, 64 / bytes_of(s) - 1) : bytes_of(s) * pick(0, 256 / bytes_of(s) - 1);
        add(Atomic{op, fetch, s, static_cast<std::uint8_t>(on_stack ? 10 : 6), static_cast<std::int16_t>(off), scratch()});
        // The kernel zero-extends r0 after a 32-bit cmpxchg only where its verifier saw a 64-bit read of
        // r0 follow; state pruning can hide that read (seen on 6.18: the xlated program has no zext and
        // r0 keeps its upper half when the compare succeeds). RFC 9669 and bpfvm always zero-extend: the
        // kernel form makes the zero extension explicit so that both agree.
        if (!vm_ && op == AtomicOp::kCmpxchg && s == Size::kW) add(Alu{AluOp::kMov, false, 0, Operand::Reg(0)});
        return;
      }
      case 14: case 15: case 16: {
        static constexpr Cond kConds[] = {Cond::kEq, Cond::kGt, Cond::kGe, Cond::kSet, Cond::kNe, Cond::kSgt,
                                          Cond::kSge, Cond::kLt, Cond::kLe, Cond::kSlt, Cond::kSle};
        add(CondJump{kConds[pick(0, 10)], coin(), scratch(), operand(scratch()), 0}, forward(body_end));
        return;
      }
      case 17:
        // Code a jump skips would be unreachable, which the kernel refuses: there, only jumps to the next.
        if (pick(0, 3) == 0) add(Jump{0, coin()}, vm_ ? forward(body_end) : static_cast<int>(items_.size()) + 1);
        return;
      case 18:
        // A bpf-to-bpf call; the callee reads r1 and r2.
        add(LoadImm64::Imm(1, interesting()));
        add(LoadImm64::Imm(2, interesting()));
        add(Call{Call::Kind::kLocal, 0}, -2);
        reload_arguments();
        return;
      case 19:
        if (vm_) {
          add(Call{Call::Kind::kHelper, pick(0, 5) == 0 ? RandomProgram::kMaybeExit : RandomProgram::kMix});
        } else {
          // bpf_csum_diff(NULL, 0, NULL, 0, seed): a helper with a deterministic answer.
          for (std::uint8_t r = 1; r <= 4; ++r) add(Alu{AluOp::kMov, true, r, Operand::Imm(0)});
          add(Call{Call::Kind::kHelper, BPF_FUNC_csum_diff});
        }
        reload_arguments();
        return;
      case 20: {
        // callx: the register holds the helper id (vm form only; the kernel has no callx).
        const std::uint8_t r = static_cast<std::uint8_t>(pick(7, 9));
        add(Alu{AluOp::kMov, true, r, Operand::Imm(RandomProgram::kMix)});
        add(CallReg{r});
        items_.back().landing = false;
        reload_arguments();
        return;
      }
      case 21: {
        // LD_ABS/LD_IND on mem as the packet; out of range ends the program with r0 = 0.
        static constexpr Size kSizes[] = {Size::kB, Size::kH, Size::kW};
        const Size s = kSizes[pick(0, 2)];
        const std::uint8_t src = scratch();
        if (coin()) add(Alu{AluOp::kAnd, true, src, Operand::Imm(511)});
        add(PacketLoad{s, coin(), src, pick(-4, 420)});
        return;
      }
      default: return;
    }
  }

  std::mt19937_64 rng_;
  bool vm_;
  std::vector<Item> items_;
  int subprogram_ = -1;
};

}  // namespace

std::uint64_t random_seed_count(std::uint64_t fallback) {
  const char* env = std::getenv("BPFVM_RANDOM_SEEDS");
  return env && *env ? std::strtoull(env, nullptr, 10) : fallback;
}

RandomProgram random_program(std::uint64_t seed, RandomProgram::Form form, std::size_t length) {
  return Generator(seed, form).generate(length);
}

}  // namespace bpfvm::test
