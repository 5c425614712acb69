#include "bpfvm/verifier/verifier.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>
#include <vector>

#include "bpfvm/verifier/cfg.hpp"
#include "bpfvm/verifier/state.hpp"

namespace bpfvm::verifier {

namespace {

using isa::Insn;

constexpr std::size_t kMaxStatesPerInsn = 64;
constexpr std::size_t kMaxCallFrames = 8;  // MAX_CALL_FRAMES

// Explored states kept for pruning: `branches` counts the paths below one that are still being
// explored; at 0 it is complete and may cover later paths (the kernel's bpf_verifier_state.branches).
struct Checkpoint {
  State state;
  std::uint32_t pc;
  std::int32_t parent;
  std::uint32_t branches;
};

struct Path {
  State state;
  std::uint32_t pc;
  std::int32_t checkpoint;  // the last checkpoint on this path, -1 for none
};

AluOp alu_op(isa::AluOp op) {
  switch (op) {
    case isa::AluOp::kAdd: return AluOp::kAdd;
    case isa::AluOp::kSub: return AluOp::kSub;
    case isa::AluOp::kMul: return AluOp::kMul;
    case isa::AluOp::kDiv: return AluOp::kDiv;
    case isa::AluOp::kSdiv: return AluOp::kSdiv;
    case isa::AluOp::kOr: return AluOp::kOr;
    case isa::AluOp::kAnd: return AluOp::kAnd;
    case isa::AluOp::kLsh: return AluOp::kLsh;
    case isa::AluOp::kRsh: return AluOp::kRsh;
    case isa::AluOp::kNeg: return AluOp::kNeg;
    case isa::AluOp::kMod: return AluOp::kMod;
    case isa::AluOp::kSmod: return AluOp::kSmod;
    case isa::AluOp::kXor: return AluOp::kXor;
    case isa::AluOp::kMov:
    case isa::AluOp::kMovsx: return AluOp::kMov;
    case isa::AluOp::kArsh: return AluOp::kArsh;
  }
  return AluOp::kMov;
}

CmpOp cmp_op(isa::Cond c) {
  switch (c) {
    case isa::Cond::kEq: return CmpOp::kEq;
    case isa::Cond::kGt: return CmpOp::kGt;
    case isa::Cond::kGe: return CmpOp::kGe;
    case isa::Cond::kSet: return CmpOp::kSet;
    case isa::Cond::kNe: return CmpOp::kNe;
    case isa::Cond::kSgt: return CmpOp::kSgt;
    case isa::Cond::kSge: return CmpOp::kSge;
    case isa::Cond::kLt: return CmpOp::kLt;
    case isa::Cond::kLe: return CmpOp::kLe;
    case isa::Cond::kSlt: return CmpOp::kSlt;
    case isa::Cond::kSle: return CmpOp::kSle;
  }
  return CmpOp::kEq;
}

// A sign-extended constant of `bits` bits.
std::uint64_t sign_extend(std::uint64_t v, unsigned bits) {
  if (bits >= 64) return v;
  const std::uint64_t m = 1ull << (bits - 1);
  v &= (1ull << bits) - 1;
  return (v ^ m) - m;
}

class Explorer {
 public:
  Explorer(const Cfg& cfg, const VerifierOptions& options) : cfg_(cfg), options_(options), prune_point_(cfg.size(), 0) {
    for (std::uint32_t i = 0; i < cfg.size(); ++i) {
      if (!cfg.starts[i]) continue;
      if (std::holds_alternative<isa::CondJump>(cfg.insns[i])) prune_point_[i] = 1;
      for (std::int32_t s : cfg.successors[i]) {
        if (s >= 0 && static_cast<std::uint32_t>(s) != i + static_cast<std::uint32_t>(isa::slots_of(cfg.insns[i]))) {
          prune_point_[static_cast<std::size_t>(s)] = 1;  // a jump target
        }
      }
    }
    for (const auto& [from, to] : cfg.back_edges) prune_point_[to] = 1;
    for (std::uint32_t i = 0; i < cfg.size(); ++i) {
      const auto* c = std::get_if<isa::Call>(&cfg.insns[i]);
      if (cfg.starts[i] && c && c->kind == isa::Call::Kind::kLocal && i + 1 < cfg.size()) prune_point_[i + 1] = 1;
    }
    stack_depth_.assign(cfg.subprogs.size(), 0);
    callees_.resize(cfg.subprogs.size());
    for (std::uint32_t i = 0; i < cfg.size(); ++i) {
      const auto* c = std::get_if<isa::Call>(&cfg.insns[i]);
      if (!cfg.starts[i] || !c || c->kind != isa::Call::Kind::kLocal) continue;
      const std::uint32_t target = i + 1 + static_cast<std::uint32_t>(c->imm);
      callees_[cfg.subprog_of(i)].push_back({i, cfg.subprog_of(target)});
    }
  }

  Result<VerifierStats> run() {
    BPFVM_TRY(check_no_recursion());
    work_.push_back({State::entry(), 0, -1});
    while (!work_.empty()) {
      Path path = std::move(work_.back());
      work_.pop_back();
      BPFVM_TRY(explore(std::move(path)));
    }
    BPFVM_TRY(check_stack_depth());
    return stats_;
  }

 private:
  Error error(std::uint32_t pc, std::string message) const {
    return Error(Errc::kAccess, std::move(message)).at_insn(pc);
  }
  Error unsupported(std::uint32_t pc, std::string_view what) const {
    return Error(Errc::kNotSupported, fmt::format("{} are not supported by bpfvm's verifier yet", what)).at_insn(pc);
  }

  // A path ended (exit, or covered by an explored state): its checkpoints may complete.
  void finish(std::int32_t cp) {
    while (cp >= 0) {
      if (--checkpoints_[static_cast<std::size_t>(cp)].branches > 0) return;
      cp = checkpoints_[static_cast<std::size_t>(cp)].parent;
    }
  }

  // At a prune point: true when a complete explored state covers this one (the path ends here).
  Result<bool> visit(Path& path) {
    std::vector<std::uint32_t>& here = at_pc_[path.pc];
    for (std::uint32_t k : here) {
      const Checkpoint& c = checkpoints_[k];
      if (c.branches == 0) {
        if (c.state.includes(path.state)) {
          ++stats_.pruned;
          return true;
        }
      } else if (c.state.includes(path.state) && path.state.includes(c.state)) {
        // The same state again while the first is still being explored: it loops without end.
        return error(path.pc, fmt::format("infinite loop detected at insn {}", path.pc));
      }
    }
    // Keeping every state would make each visit compare against thousands: like the kernel, keep one
    // only when enough has happened since the last (20 jumps or 100 instructions). A state that loops
    // without change is still caught, a little later.
    if (jumps_since_ < 20 && insns_since_ < 100) return false;
    // And at most 64 at one instruction (the kernel's BPF_COMPLEXITY_LIMIT_STATES): a long loop would
    // otherwise compare each iteration with every earlier one.
    if (here.size() >= kMaxStatesPerInsn) return false;
    jumps_since_ = insns_since_ = 0;
    checkpoints_.push_back({path.state, path.pc, path.checkpoint, 1});
    path.checkpoint = static_cast<std::int32_t>(checkpoints_.size() - 1);
    here.push_back(static_cast<std::uint32_t>(path.checkpoint));
    stats_.states = static_cast<std::uint32_t>(checkpoints_.size());
    stats_.peak_states = std::max(stats_.peak_states, stats_.states);
    return false;
  }

  Result<void> explore(Path path) {
    for (;;) {
      ++insns_since_;
      if (++stats_.insns_processed > options_.insn_limit) {
        return error(path.pc, fmt::format("BPF program is too large. Processed {} insn", stats_.insns_processed));
      }
      if (prune_point_[path.pc] && BPFVM_TRY(visit(path))) {
        finish(path.checkpoint);
        return {};
      }
      const std::uint32_t pc = path.pc;
      const Insn& insn = cfg_.insns[pc];
      Frame& f = path.state.cur();
      if (std::holds_alternative<isa::Exit>(insn)) {
        const RegState& r0 = f.regs[0];
        if (r0.type == RegType::kNotInit) return error(pc, "R0 !read_ok: the function returns without setting r0");
        if (path.state.frames.size() > 1) {
          // Back to the caller: r0 is the result, r1-r5 are clobbered (prepare_func_exit).
          if (r0.type == RegType::kStack && r0.frame + 1 == path.state.frames.size()) {
            return error(pc, "R0 points to the returning function's stack, which ends here");
          }
          const RegState result = r0;
          const std::uint32_t callsite = f.callsite;
          path.state.frames.pop_back();
          Frame& caller = path.state.cur();
          caller.regs[0] = result;
          for (int r = 1; r <= 5; ++r) caller.regs[static_cast<std::size_t>(r)] = RegState{};
          path.pc = callsite + 1;
          continue;
        }
        if (r0.is_pointer()) return error(pc, "R0 leaks addr as return value");
        finish(path.checkpoint);
        return {};
      }
      if (const auto* c = std::get_if<isa::Call>(&insn); c && c->kind == isa::Call::Kind::kLocal) {
        // A bpf-to-bpf call: a new frame with the arguments r1-r5 and its own stack.
        if (path.state.frames.size() >= kMaxCallFrames) {
          return error(pc, fmt::format("the call stack of {} frames is too deep", path.state.frames.size() + 1));
        }
        const std::uint32_t target = pc + 1 + static_cast<std::uint32_t>(c->imm);
        Frame callee;
        callee.callsite = pc;
        callee.subprog = cfg_.subprog_of(target);
        for (int r = 1; r <= 5; ++r) callee.regs[static_cast<std::size_t>(r)] = f.regs[static_cast<std::size_t>(r)];
        callee.regs[10] = RegState::pointer(RegType::kStack);
        callee.regs[10].frame = static_cast<std::uint32_t>(path.state.frames.size());
        path.state.frames.push_back(std::move(callee));
        path.pc = target;
        continue;
      }
      if (const auto* j = std::get_if<isa::Jump>(&insn)) {
        ++jumps_since_;
        path.pc = pc + 1 + static_cast<std::uint32_t>(j->offset);
        continue;
      }
      if (const auto* j = std::get_if<isa::CondJump>(&insn)) {
        ++jumps_since_;
        if (!BPFVM_TRY(branch(path, *j))) {  // neither side can happen: nothing follows
          finish(path.checkpoint);
          return {};
        }
        continue;
      }
      BPFVM_TRY(step(path.state, pc, insn));
      path.pc = pc + static_cast<std::uint32_t>(isa::slots_of(insn));
    }
  }

  Result<RegState> read(const Frame& f, std::uint32_t pc, std::uint8_t reg) const {
    if (f.regs[reg].type == RegType::kNotInit) {
      return error(pc, fmt::format("R{} !read_ok: r{} is read before anything is written to it", reg, reg));
    }
    return f.regs[reg];
  }

  Result<void> write_check(std::uint32_t pc, std::uint8_t reg) const {
    if (reg == 10) return error(pc, "frame pointer is read only");
    return {};
  }

  // Follows a conditional jump: the path goes on along one side (refined), and the other side, when it
  // can happen too, waits in the work list. False when no side can happen.
  Result<bool> branch(Path& path, const isa::CondJump& j) {
    const std::uint32_t pc = path.pc;
    const std::uint32_t target = pc + 1 + static_cast<std::uint32_t>(j.offset);
    Frame& f = path.state.cur();
    RegState a = BPFVM_TRY(read(f, pc, j.dst));
    RegState b = j.src.is_reg ? BPFVM_TRY(read(f, pc, j.src.reg))
                              : RegState::scalar(Scalar::constant(sign_extend(static_cast<std::uint32_t>(j.src.imm), 32)));
    if (a.type != RegType::kScalar || b.type != RegType::kScalar) {
      if (a.is_pointer() && b.is_pointer() && a.type != b.type) {
        return error(pc, fmt::format("R{} pointer comparison with a pointer of another type prohibited", j.dst));
      }
      // Comparisons involving pointers teach nothing here; both sides go on.
      fork(path, target);
      path.pc = pc + 1;
      return true;
    }
    const CmpOp op = cmp_op(j.cond);
    if (auto known = branch_taken(op, a.value, b.value, j.is32)) {
      path.pc = *known ? target : pc + 1;
      return true;
    }
    Scalar ta = a.value, tb = b.value, fa = a.value, fb = b.value;
    const bool taken_possible = refine_branch(op, true, ta, tb, j.is32);
    const bool fall_possible = refine_branch(op, false, fa, fb, j.is32);
    if (!taken_possible && !fall_possible) return false;
    if (taken_possible) {
      Path other{path.state, target, path.checkpoint};
      other.state.cur().regs[j.dst].value = ta;
      if (j.src.is_reg) other.state.cur().regs[j.src.reg].value = tb;
      if (fall_possible) {
        push(std::move(other));
      } else {
        path = std::move(other);
        return true;
      }
    }
    f.regs[j.dst].value = fa;
    if (j.src.is_reg) f.regs[j.src.reg].value = fb;
    path.pc = pc + 1;
    return true;
  }

  void fork(const Path& path, std::uint32_t target) { push({path.state, target, path.checkpoint}); }
  void push(Path p) {
    if (p.checkpoint >= 0) ++checkpoints_[static_cast<std::size_t>(p.checkpoint)].branches;
    work_.push_back(std::move(p));
  }

  Result<void> step(State& s, std::uint32_t pc, const Insn& insn) {
    Frame& f = s.cur();
    return std::visit(
        isa::Overloaded{
            [&](const isa::Alu& a) -> Result<void> { return alu(f, pc, a); },
            [&](const isa::Endian& e) -> Result<void> {
              const RegState v = BPFVM_TRY(read(f, pc, e.dst));
              BPFVM_TRY(write_check(pc, e.dst));
              if (v.type != RegType::kScalar) return error(pc, fmt::format("R{} byte swap of a pointer prohibited", e.dst));
              f.regs[e.dst] = RegState::scalar(e.bits == 64 ? Scalar::unknown() : Scalar::range(0, (1ull << e.bits) - 1));
              return {};
            },
            [&](const isa::LoadImm64& l) -> Result<void> {
              BPFVM_TRY(write_check(pc, l.dst));
              if (l.pseudo != isa::Pseudo::kImm64) return unsupported(pc, "map and function references");
              f.regs[l.dst] = RegState::scalar(Scalar::constant(l.value()));
              return {};
            },
            [&](const isa::Load& l) -> Result<void> {
              const RegState base = BPFVM_TRY(read(f, pc, l.base));
              BPFVM_TRY(write_check(pc, l.dst));
              if (base.type != RegType::kStack) return memory(pc, base, l.base);
              f.regs[l.dst] = BPFVM_TRY(stack_read(frame_of(s, base), pc, base, l.base, l.off, isa::bytes_of(l.size), l.sign_extend));
              return {};
            },
            [&](const isa::Store& st) -> Result<void> {
              const RegState base = BPFVM_TRY(read(f, pc, st.base));
              const RegState value = st.src.is_reg ? BPFVM_TRY(read(f, pc, st.src.reg))
                                                   : RegState::scalar(Scalar::constant(sign_extend(
                                                         static_cast<std::uint32_t>(st.src.imm), 32)));
              if (base.type != RegType::kStack) return memory(pc, base, st.base);
              return stack_write(frame_of(s, base), pc, base, st.base, st.off, isa::bytes_of(st.size), value);
            },
            [&](const isa::Atomic&) -> Result<void> { return unsupported(pc, "atomic instructions"); },
            [&](const isa::Call&) -> Result<void> { return unsupported(pc, "helper and kfunc calls"); },
            [&](const isa::CallReg&) -> Result<void> { return unsupported(pc, "calls"); },
            [&](const isa::PacketLoad&) -> Result<void> { return unsupported(pc, "legacy packet loads"); },
            [&](const isa::Exit&) -> Result<void> { return {}; },
            [&](const isa::Jump&) -> Result<void> { return {}; },
            [&](const isa::CondJump&) -> Result<void> { return {}; },
        },
        insn);
  }

  static Frame& frame_of(State& s, const RegState& stack_pointer) { return s.frames[stack_pointer.frame]; }

  Error memory(std::uint32_t pc, const RegState& base, std::uint8_t reg) const {
    if (base.type == RegType::kScalar) {
      return error(pc, fmt::format("R{} invalid mem access 'scalar': r{} holds a number, not a pointer", reg, reg));
    }
    return unsupported(pc, fmt::format("accesses through {} pointers", reg_type_name(base.type)));
  }

  Result<void> alu(Frame& f, std::uint32_t pc, const isa::Alu& a) {
    RegState src;
    if (a.op != isa::AluOp::kNeg) {
      src = a.src.is_reg ? BPFVM_TRY(read(f, pc, a.src.reg))
                         : RegState::scalar(Scalar::constant(a.is64 ? sign_extend(static_cast<std::uint32_t>(a.src.imm), 32)
                                                                    : static_cast<std::uint32_t>(a.src.imm)));
    }
    BPFVM_TRY(write_check(pc, a.dst));
    RegState& dst = f.regs[a.dst];
    if (a.op == isa::AluOp::kMov || a.op == isa::AluOp::kMovsx) {
      if (a.op == isa::AluOp::kMovsx) {
        if (src.type != RegType::kScalar) return error(pc, fmt::format("R{} sign extension of a pointer prohibited", a.src.reg));
        const Scalar v = src.value.is_const() ? Scalar::constant(sign_extend(src.value.const_value(), a.movsx_bits))
                                              : Scalar::unknown();
        dst = RegState::scalar(a.is64 ? v : v.zext32());
        return {};
      }
      if (a.is64) {
        dst = src;
      } else {
        // A 32-bit move of a pointer keeps only a number.
        dst = RegState::scalar(src.type == RegType::kScalar ? src.value.zext32() : Scalar::unknown().zext32());
      }
      return {};
    }
    const RegState d = BPFVM_TRY(read(f, pc, a.dst));
    if (a.op == isa::AluOp::kNeg) src = RegState::scalar(Scalar::constant(0));
    const bool shift = a.op == isa::AluOp::kLsh || a.op == isa::AluOp::kRsh || a.op == isa::AluOp::kArsh;
    const unsigned width = a.is64 ? 64 : 32;
    if (shift && !a.src.is_reg && (a.src.imm < 0 || static_cast<unsigned>(a.src.imm) >= width)) {
      return error(pc, fmt::format("invalid shift {}: a shift by {} or more bits is undefined", a.src.imm, width));
    }
    if (d.type == RegType::kScalar && src.type == RegType::kScalar) {
      // Where the kernel computes no range (is_safe_to_compute_dst_reg_range), neither does bpfvm, so
      // that both explore the same paths: division and modulo, and shifts by anything but a constant
      // below the width (a shift by `width` or more is undefined; the interpreter masks it). The result
      // is wholly unknown, even after a 32-bit operation, as the kernel leaves it.
      const Scalar& amount = src.value;
      const bool const_amount = a.is64 ? amount.is_const() : tnum_subreg(amount.bits).is_const();
      const bool divides = a.op == isa::AluOp::kDiv || a.op == isa::AluOp::kMod || a.op == isa::AluOp::kSdiv ||
                           a.op == isa::AluOp::kSmod;
      if (divides || (shift && (!const_amount || (a.is64 ? amount.umax : amount.u32_max) >= width))) {
        dst = RegState::unknown_scalar();
        return {};
      }
      dst = RegState::scalar(scalar_alu(alu_op(a.op), d.value, src.value, !a.is64));
      return {};
    }
    // Pointer arithmetic: only adding or subtracting a number to a stack pointer, in 64 bits.
    if (!a.is64) return error(pc, fmt::format("R{} 32-bit pointer arithmetic prohibited", a.dst));
    const bool ptr_dst = d.is_pointer();
    const RegState& ptr = ptr_dst ? d : src;
    const RegState& num = ptr_dst ? src : d;
    if (ptr_dst && src.is_pointer()) {
      if (a.op == isa::AluOp::kSub && d.type == src.type && d.type == RegType::kStack && d.value.is_const() &&
          src.value.is_const()) {
        dst = RegState::scalar(Scalar::constant(static_cast<std::uint64_t>(static_cast<std::int64_t>(d.off) - src.off)));
        return {};
      }
      return error(pc, fmt::format("R{} pointer {} pointer prohibited", a.dst, a.op == isa::AluOp::kSub ? "-" : "op"));
    }
    if (a.op != isa::AluOp::kAdd && !(a.op == isa::AluOp::kSub && ptr_dst)) {
      return error(pc, fmt::format("R{} pointer arithmetic with this operator prohibited", a.dst));
    }
    if (ptr.type != RegType::kStack) return unsupported(pc, fmt::format("arithmetic on {} pointers", reg_type_name(ptr.type)));
    RegState r = ptr;
    if (num.value.is_const()) {
      const auto c = static_cast<std::int64_t>(num.value.const_value());
      const std::int64_t off = a.op == isa::AluOp::kSub ? r.off - c : r.off + c;
      if (off < -(1 << 29) || off > (1 << 29)) return error(pc, fmt::format("R{} pointer offset {} out of range", a.dst, off));
      r.off = static_cast<std::int32_t>(off);
    } else {
      r.value = scalar_alu(a.op == isa::AluOp::kSub ? AluOp::kSub : AluOp::kAdd, r.value, num.value, false);
    }
    dst = r;
    return {};
  }

  // The stack bytes [off, off + size) below the frame pointer, checked: within the 512 bytes.
  Result<std::int32_t> stack_offset(std::uint32_t pc, const RegState& base, std::uint8_t reg, std::int16_t insn_off,
                                    int size, bool write) const {
    if (!base.value.is_const()) {
      return error(pc, fmt::format("R{} variable stack access var_off={} size={}: the offset must be known", reg,
                                   base.value.to_string(), size));
    }
    const auto var = static_cast<std::int64_t>(base.value.const_value());
    const std::int64_t off = base.off + insn_off + var;
    // Stack accesses are always aligned to their size: spill tracking relies on it (the kernel's
    // check_ptr_alignment is strict for the stack whatever the architecture).
    if (off % size != 0) {
      return error(pc, fmt::format("misaligned stack access off {}+{}+{} size {}", var, base.off, insn_off, size));
    }
    if (off < -kStackSize || off + size > 0) {
      return error(pc, fmt::format("invalid {} stack R{} off={} size={}: the stack is the {} bytes below r10",
                                   write ? "write to" : "read from", reg, off, size, kStackSize));
    }
    return static_cast<std::int32_t>(off);
  }

  void note_depth(const Frame& f, std::int32_t off) {
    auto& depth = stack_depth_[f.subprog];
    depth = std::max(depth, static_cast<std::uint32_t>(-off));
  }

  // A function may not call itself, directly or not: the kernel refuses recursion before it explores.
  Result<void> check_no_recursion() const {
    enum : std::uint8_t { kNew, kOnPath, kDone };
    std::vector<std::uint8_t> color(cfg_.subprogs.size(), kNew);
    std::vector<std::pair<std::uint32_t, std::size_t>> stack = {{0, 0}};  // (subprogram, next callee)
    color[0] = kOnPath;
    while (!stack.empty()) {
      auto& [sub, next] = stack.back();
      if (next == callees_[sub].size()) {
        color[sub] = kDone;
        stack.pop_back();
        continue;
      }
      const auto [site, callee] = callees_[sub][next++];
      if (color[callee] == kOnPath) {
        return error(site, fmt::format("recursive call from insn {} to {}", site, cfg_.subprogs[callee].start));
      }
      if (color[callee] == kNew) {
        color[callee] = kOnPath;
        stack.emplace_back(callee, 0);
      }
    }
    return {};
  }

  // The kernel's check_max_stack_depth: along every chain of calls, the frames' stacks (each rounded
  // up to 32 bytes) fit in 512 bytes together, and no chain is deeper than 8 frames.
  Result<void> check_stack_depth() const {
    auto frame_size = [&](std::uint32_t sub) { return (std::max<std::uint32_t>(stack_depth_[sub], 1) + 31) / 32 * 32; };
    // Depth-first over call chains (recursion was refused before exploring).
    struct Item {
      std::uint32_t sub;
      std::size_t depth;
      std::uint32_t total;
    };
    std::vector<Item> stack = {{0, 1, frame_size(0)}};
    while (!stack.empty()) {
      const Item it = stack.back();
      stack.pop_back();
      if (it.total > kStackSize) {
        return error(cfg_.subprogs[it.sub].start,
                     fmt::format("combined stack size of {} calls is {}. Too large", it.depth, it.total));
      }
      if (it.depth > kMaxCallFrames) break;
      for (const auto& [site, callee] : callees_[it.sub]) {
        stack.push_back({callee, it.depth + 1, it.total + frame_size(callee)});
      }
    }
    return {};
  }

  static StackSlot& slot_of(Frame& f, std::int32_t byte) { return f.stack[static_cast<std::size_t>((-byte - 1) / 8)]; }
  static std::size_t index_in_slot(std::int32_t byte) { return static_cast<std::size_t>(((byte % 8) + 8) % 8); }

  // How many bytes from the slot's start hold a spilled register (8 for a whole spill, 0 for none).
  static int spill_size(const StackSlot& s) {
    int n = 0;
    while (n < 8 && s.bytes[static_cast<std::size_t>(n)] == ByteType::kSpill) ++n;
    return n;
  }

  Result<void> stack_write(Frame& f, std::uint32_t pc, const RegState& base, std::uint8_t reg, std::int16_t insn_off,
                           int size, const RegState& value) {
    const std::int32_t off = BPFVM_TRY(stack_offset(pc, base, reg, insn_off, size, true));
    note_depth(f, off);
    StackSlot& first = slot_of(f, off);
    if (off % 8 == 0 && (size == 8 || value.type == RegType::kScalar)) {
      // A spill: the register is kept, its `size` low bytes at the slot's start (save_register_state).
      // The slot's other bytes stay zero or unwritten, or become plain bytes.
      if (size < 8 && value.is_pointer()) {
        return error(pc, fmt::format("invalid size of register spill: {} bytes of a pointer", size));
      }
      for (std::size_t i = static_cast<std::size_t>(size); i < 8; ++i) {
        if (first.bytes[i] == ByteType::kSpill) first.bytes[i] = ByteType::kMisc;
      }
      for (std::size_t i = 0; i < static_cast<std::size_t>(size); ++i) first.bytes[i] = ByteType::kSpill;
      first.spilled = value;
      return {};
    }
    if (value.is_pointer()) return error(pc, fmt::format("invalid size of register spill: {} bytes of a pointer", size));
    // Bytes: part of a spilled register overwritten leaves plain bytes (scrub_spilled_slot).
    if (spill_size(first) > 0) {
      for (ByteType& t : first.bytes) {
        if (t != ByteType::kInvalid) t = ByteType::kMisc;
      }
      first.spilled = RegState{};
    }
    const bool zero = value.value.is_const() && value.value.const_value() == 0;
    for (std::int32_t b = off; b < off + size; ++b) first.bytes[index_in_slot(b)] = zero ? ByteType::kZero : ByteType::kMisc;
    return {};
  }

  Result<RegState> stack_read(Frame& f, std::uint32_t pc, const RegState& base, std::uint8_t reg, std::int16_t insn_off,
                              int size, bool sign_extend_load) {
    const std::int32_t off = BPFVM_TRY(stack_offset(pc, base, reg, insn_off, size, false));
    note_depth(f, off);
    StackSlot& slot = slot_of(f, off);
    const int spilled = spill_size(slot);
    if (spilled > 0) {
      if (size == 8 && spilled == 8) return slot.spilled;
      if (slot.spilled.is_pointer()) {
        return error(pc, fmt::format("invalid size of register fill: {} bytes of a spilled pointer", size));
      }
      // A read of the spill's low bytes keeps what is known of the register, truncated (the kernel's
      // narrowing fill, little-endian).
      if (index_in_slot(off) == 0 && size <= spilled && !sign_extend_load) {
        return RegState::scalar(scalar_alu(AluOp::kAnd, slot.spilled.value, Scalar::constant((1ull << (8 * size)) - 1), false));
      }
    }
    // Otherwise byte by byte: written, and known only when every byte is zero (or of a spilled 0).
    int spill_bytes = 0, zero_bytes = 0;
    for (std::int32_t b = off; b < off + size; ++b) {
      const ByteType t = slot.bytes[index_in_slot(b)];
      if (t == ByteType::kInvalid) {
        return error(pc, fmt::format("invalid read from stack off {}+{} size {}: byte fp{} was never written", off,
                                     b - off, size, b));
      }
      spill_bytes += t == ByteType::kSpill;
      zero_bytes += t == ByteType::kZero;
    }
    const bool spilled_zero = slot.spilled.type == RegType::kScalar && slot.spilled.value.is_const() &&
                              slot.spilled.value.const_value() == 0;
    if (zero_bytes == size || (spill_bytes == size && spilled_zero)) return RegState::scalar(Scalar::constant(0));
    return RegState::unknown_scalar();
  }

  const Cfg& cfg_;
  const VerifierOptions& options_;
  std::vector<std::uint8_t> prune_point_;
  std::vector<Path> work_;
  std::vector<Checkpoint> checkpoints_;
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> at_pc_;
  VerifierStats stats_;
  std::uint64_t jumps_since_ = 0, insns_since_ = 0;  // since the last state kept
  std::vector<std::uint32_t> stack_depth_;             // bytes of stack each subprogram uses
  std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> callees_;  // per subprogram: (call insn, callee)
};

}  // namespace

Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const VerifierOptions& options) {
  const Cfg cfg = BPFVM_TRY(build_cfg(program));
  Explorer explorer(cfg, options);
  return explorer.run();
}

}  // namespace bpfvm::verifier
