#include "bpfvm/verifier/liveness.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <climits>

namespace bpfvm::verifier {

namespace {

constexpr std::uint64_t kAllSlots = ~0ull;
constexpr std::uint16_t kArgs = 0x3e;     // r1-r5
constexpr std::uint16_t kCallerSaved = 0x3f;  // r0-r5

std::uint16_t bit(std::uint8_t reg) { return static_cast<std::uint16_t>(1u << reg); }

// The stack slots an access of `size` bytes at r10+off touches (none when outside the 512 bytes).
std::uint64_t slots_of(std::int32_t off, int size) {
  std::uint64_t m = 0;
  for (std::int32_t b = off; b < off + size; ++b) {
    if (b < -512 || b >= 0) continue;
    m |= 1ull << ((-b - 1) / 8);
  }
  return m;
}

// Forward: which registers (and stack slots) may hold a pointer into the stack, so that loads and
// stores through other registers are known not to touch it. A function's arguments may (its caller's
// stack); values loaded from memory that is not the stack may not (no pointer to the stack can be
// stored anywhere else: bpfvm keeps pointers out of maps, and the stack dies with the program).
//
// Of a register that may point into the function's own stack, `off` also keeps its offset from r10
// when every path that makes it a stack pointer gives the same constant one (kVaries otherwise), so
// that accesses and helper calls through it touch only the slots there.
constexpr std::int32_t kVaries = INT32_MIN;
struct StackPointers {
  std::uint16_t regs = 0;
  std::uint64_t slots = 0;
  std::array<std::int32_t, 11> off{};
  bool operator==(const StackPointers&) const = default;
};

std::vector<StackPointers> stack_pointers(const Cfg& cfg) {
  const std::size_t n = cfg.size();
  std::vector<StackPointers> in(n);
  std::vector<std::uint8_t> reached(n, 0);
  for (const Subprogram& sub : cfg.subprogs) {
    reached[sub.start] = 1;
    in[sub.start].regs = static_cast<std::uint16_t>(bit(10) | (sub.start == 0 ? 0 : kArgs));
    in[sub.start].off.fill(kVaries);  // a function's arguments point into its caller's stack
    in[sub.start].off[10] = 0;
  }
  // Forward sweeps in instruction order; a change flows to successors, and a loop's back edge sends the
  // sweep back to its head.
  std::vector<std::uint8_t> queued(n, 0);
  for (const Subprogram& sub : cfg.subprogs) queued[sub.start] = 1;
  for (std::size_t k = 0; k < n;) {
    if (!queued[k] || !cfg.starts[k]) {
      ++k;
      continue;
    }
    queued[k] = 0;
    std::size_t next = k + 1;
    {
      StackPointers out = in[k];
      std::visit(
          isa::Overloaded{
              [&](const isa::Alu& a) {
                const bool src_sp = a.src.is_reg && (in[k].regs & bit(a.src.reg));
                const bool dst_sp = in[k].regs & bit(a.dst);
                const bool mov = a.op == isa::AluOp::kMov && a.is64;
                if (mov) {
                  out.regs = static_cast<std::uint16_t>(src_sp ? out.regs | bit(a.dst) : out.regs & ~bit(a.dst));
                  if (src_sp) out.off[a.dst] = in[k].off[a.src.reg];
                } else if ((a.op == isa::AluOp::kAdd || a.op == isa::AluOp::kSub) && a.is64) {
                  if (src_sp) {
                    out.regs |= bit(a.dst);  // number + stack pointer
                    out.off[a.dst] = kVaries;
                  } else if (dst_sp) {
                    // A stack pointer moved by a constant keeps a known offset; by a register, not.
                    const std::int64_t moved = static_cast<std::int64_t>(in[k].off[a.dst]) +
                                               (a.op == isa::AluOp::kAdd ? a.src.imm : -static_cast<std::int64_t>(a.src.imm));
                    const bool known = !a.src.is_reg && in[k].off[a.dst] != kVaries && moved > -4096 && moved < 4096;
                    out.off[a.dst] = known ? static_cast<std::int32_t>(moved) : kVaries;
                  }
                } else {
                  out.regs &= static_cast<std::uint16_t>(~bit(a.dst));
                }
              },
              [&](const isa::Endian& e) { out.regs &= static_cast<std::uint16_t>(~bit(e.dst)); },
              [&](const isa::LoadImm64& l) { out.regs &= static_cast<std::uint16_t>(~bit(l.dst)); },
              [&](const isa::Load& l) {
                bool sp = false;
                if (l.base == 10) {
                  sp = in[k].slots & slots_of(l.off, isa::bytes_of(l.size));
                } else if (in[k].regs & bit(l.base)) {
                  sp = in[k].slots != 0;
                }
                out.regs = static_cast<std::uint16_t>(sp ? out.regs | bit(l.dst) : out.regs & ~bit(l.dst));
                if (sp) out.off[l.dst] = kVaries;  // a spilled stack pointer: where it points is not known here
              },
              [&](const isa::Store& st) {
                const bool sp = st.src.is_reg && (in[k].regs & bit(st.src.reg));
                if (st.base == 10) {
                  const std::uint64_t slots = slots_of(st.off, isa::bytes_of(st.size));
                  out.slots = sp ? out.slots | slots : out.slots;
                } else if (sp && (in[k].regs & bit(st.base))) {
                  out.slots = ~0ull;
                }
              },
              [&](const isa::Atomic& a) {
                const std::uint8_t dst = a.op == isa::AtomicOp::kCmpxchg ? 0 : a.src;
                if (a.fetch) out.regs &= static_cast<std::uint16_t>(~bit(dst));
              },
              [&](const isa::Call&) { out.regs &= static_cast<std::uint16_t>(~kCallerSaved); },
              [&](const isa::CallReg&) { out.regs &= static_cast<std::uint16_t>(~kCallerSaved); },
              [&](const isa::PacketLoad&) { out.regs &= static_cast<std::uint16_t>(~kCallerSaved); },
              [](const isa::CondJump&) {},
              [](const isa::Jump&) {},
              [](const isa::Exit&) {},
          },
          cfg.insns[k]);
      for (std::int32_t s : cfg.successors[k]) {
        if (s < 0) continue;
        const auto t = static_cast<std::size_t>(s);
        StackPointers merged{static_cast<std::uint16_t>(in[t].regs | out.regs), in[t].slots | out.slots, {}};
        for (std::size_t r = 0; r < merged.off.size(); ++r) {
          const bool a = reached[t] && (in[t].regs & bit(static_cast<std::uint8_t>(r)));
          const bool b = out.regs & bit(static_cast<std::uint8_t>(r));
          merged.off[r] = a && b ? (in[t].off[r] == out.off[r] ? out.off[r] : kVaries) : a ? in[t].off[r] : b ? out.off[r] : 0;
        }
        if (!reached[t] || !(merged == in[t])) {
          in[t] = merged;
          reached[t] = 1;
          queued[t] = 1;
          next = std::min(next, t);
        }
      }
    }
    k = next;
  }
  return in;
}

struct Facts {
  std::uint16_t live = 0, demanded = 0;
  std::uint64_t live_slots = 0, demanded_slots = 0;
  bool operator==(const Facts&) const = default;
};

// What holds at the entry of `insn` given what holds after it (a backward transfer).
Facts transfer(const isa::Insn& insn, Facts out, bool in_subprog, const StackPointers& sp, const HelperSignature* sig,
               bool result_demanded, bool branch_demands, bool conservative) {
  // The stack slots an access through `base` may touch: exact through r10 or a stack pointer at a
  // known offset, any through a register that may point anywhere into the stack, none through others.
  auto touched = [&](std::uint8_t base, std::int16_t off, isa::Size size) -> std::uint64_t {
    if (!(sp.regs & bit(base))) return 0;
    if (sp.off[base] == kVaries) return kAllSlots;
    return slots_of(sp.off[base] + off, isa::bytes_of(size));
  };
  // What a helper may read through a pointer argument: from where it points to the frame's top (its
  // size is a register's value, not known here).
  auto reachable = [&](std::uint8_t reg) -> std::uint64_t {
    if (!(sp.regs & bit(reg))) return 0;
    if (sp.off[reg] == kVaries || sp.off[reg] >= 0) return sp.off[reg] == kVaries ? kAllSlots : 0;
    return slots_of(sp.off[reg], -sp.off[reg]);
  };
  Facts in = out;
  std::visit(
      isa::Overloaded{
          [&](const isa::Alu& a) {
            const bool mov = a.op == isa::AluOp::kMov || a.op == isa::AluOp::kMovsx;
            const bool dst_live = out.live & bit(a.dst), dst_demanded = out.demanded & bit(a.dst);
            if (mov) {
              in.live &= static_cast<std::uint16_t>(~bit(a.dst));
              in.demanded &= static_cast<std::uint16_t>(~bit(a.dst));
            } else {
              in.live |= bit(a.dst);  // read by the operation (and its type checked)
            }
            if (a.src.is_reg) {
              in.live |= bit(a.src.reg);  // read (reading an unset register is an error)
              if (dst_demanded) in.demanded |= bit(a.src.reg);
              // A number added to a pointer must be bounded (check_reg_sane_offset) whether or not the
              // pointer is used after: the explorer demands it where it sees one (LivenessSolver::
              // demand); a conservative analysis, blind to types, demands both sides of every move.
              if (conservative && a.is64 && (a.op == isa::AluOp::kAdd || a.op == isa::AluOp::kSub)) {
                in.demanded |= static_cast<std::uint16_t>(bit(a.src.reg) | bit(a.dst));
              }
            }
            (void)dst_live;
          },
          [&](const isa::Endian& e) { in.live |= bit(e.dst); },
          [&](const isa::LoadImm64& l) {
            in.live &= static_cast<std::uint16_t>(~bit(l.dst));
            in.demanded &= static_cast<std::uint16_t>(~bit(l.dst));
          },
          [&](const isa::Load& l) {
            const bool dst_demanded = out.demanded & bit(l.dst);
            in.live &= static_cast<std::uint16_t>(~bit(l.dst));
            in.demanded &= static_cast<std::uint16_t>(~bit(l.dst));
            in.live |= bit(l.base);
            // The address's offset decides whether the access is safe. A base is a pointer, compared
            // whole by pruning; what matters is the numbers added to it, which the explorer marks where
            // it adds them (LivenessSolver::demand) and a conservative analysis demands through here.
            if (conservative) in.demanded |= bit(l.base);
            const std::uint64_t slots = touched(l.base, l.off, l.size);
            in.live_slots |= slots;
            if (dst_demanded) in.demanded_slots |= slots;
          },
          [&](const isa::Store& s) {
            in.live |= bit(s.base);
            if (conservative) in.demanded |= bit(s.base);  // as a load's
            const std::uint64_t slots = touched(s.base, s.off, s.size);
            const bool whole = s.base == 10 && s.size == isa::Size::kDW && s.off % 8 == 0;
            if (s.src.is_reg) {
              in.live |= bit(s.src.reg);
              if (out.demanded_slots & slots) in.demanded |= bit(s.src.reg);
            }
            if (whole) {
              in.live_slots &= ~slots;
              in.demanded_slots &= ~slots;
            }
          },
          [&](const isa::Atomic& a) {
            in.live |= bit(a.base) | bit(a.src) | (a.op == isa::AtomicOp::kCmpxchg ? bit(0) : 0);
            in.demanded |= bit(a.base) | bit(a.src) | (a.op == isa::AtomicOp::kCmpxchg ? bit(0) : 0);
            const std::uint64_t slots = touched(a.base, a.off, a.size);
            in.live_slots |= slots;
            in.demanded_slots |= slots;
          },
          [&](const isa::CondJump& j) {
            // Its operands are read; their values matter only where they decided the path (see
            // LivenessSolver::demand_branch).
            in.live |= bit(j.dst);
            if (branch_demands) in.demanded |= bit(j.dst);
            if (j.src.is_reg) {
              in.live |= bit(j.src.reg);
              if (branch_demands) in.demanded |= bit(j.src.reg);
            }
          },
          [&](const isa::Call& c) {
            // r0-r5 are set by the call; its arguments are read, and may decide safety (sizes). The
            // callee may read the stack through pointers: every slot is live across a call, except
            // for a helper of known prototype, which reads only its arguments and the stack they may
            // point to (the kernel's check_helper_mem_access marks only the bytes a helper reads).
            in.live &= static_cast<std::uint16_t>(~kCallerSaved);
            in.demanded &= static_cast<std::uint16_t>(~kCallerSaved);
            if (sig) {  // a helper (not one that calls back) of known prototype
              for (std::size_t i = 0; i < sig->args.size() && sig->args[i] != ArgType::kNone; ++i) {
                const auto r = static_cast<std::uint8_t>(i + 1);
                in.live |= bit(r);
                // Which numbers decide the call (sizes, a NULL pointer) the explorer sees and marks
                // (LivenessSolver::demand); a conservative analysis demands every checked argument.
                if (conservative && sig->args[i] != ArgType::kAnything) in.demanded |= bit(r);
                in.live_slots |= reachable(r);
              }
              return;
            }
            in.live |= kArgs;
            in.demanded |= kArgs;
            in.live_slots = kAllSlots;
            // Whose values matter: a function's (or a callback's) code is verified with the caller's
            // stack as its memory, so what it reads there may decide its safety. A helper's code is not
            // verified: the bytes it reads through a pointer must be initialised (live, their type
            // compared) but their values decide nothing; it has no argument read from the stack (keys,
            // buffers and names are data, sizes come in registers), as the kernel's check_func_arg
            // marks precise only registers (ARG_CONST_SIZE*, constant allocation sizes).
            if (c.kind != isa::Call::Kind::kHelper || calls_callback(c)) in.demanded_slots = kAllSlots;
          },
          [&](const isa::CallReg&) {
            in.live |= kArgs;
            in.demanded |= kArgs;
            in.live_slots = in.demanded_slots = kAllSlots;
          },
          [&](const isa::PacketLoad& p) {
            in.live &= static_cast<std::uint16_t>(~kCallerSaved);
            in.demanded &= static_cast<std::uint16_t>(~kCallerSaved);
            in.live |= bit(6) | (p.indirect ? bit(p.src) : 0);
          },
          [&](const isa::Exit&) {
            // A function's result goes back to its caller, a callback's must be 0 or 1; the program's
            // own result is checked against its type's range when it has one (check_return_code), and
            // otherwise only for its type.
            in = Facts{};
            in.live = bit(0);
            if (in_subprog || result_demanded) in.demanded = bit(0);
          },
          [&](const isa::Jump&) {},
      },
      insn);
  return in;
}

}  // namespace

struct LivenessSolver::Impl {
  const Cfg& cfg;
  const Platform* platform;
  std::vector<StackPointers> sp;
  std::vector<Facts> in;
  bool conservative;
  std::vector<std::uint8_t> demands;  // per conditional jump: its operands are demanded
  std::vector<std::uint16_t> extra;   // registers demanded at an instruction (LivenessSolver::demand)
  std::vector<std::uint64_t> extra_slots;
  std::vector<const HelperSignature*> sigs;  // per helper call of known prototype
  bool result_demanded = true;               // the program's type checks its result's range
  std::vector<std::uint32_t> pred_start, preds;  // instruction k's predecessors: preds[pred_start[k]..[k+1])
  Liveness out;

  Facts recompute(std::size_t k) const {
    Facts after;
    for (std::int32_t s : cfg.successors[k]) {
      if (s < 0) continue;
      const Facts& f = in[static_cast<std::size_t>(s)];
      after.live |= f.live;
      after.demanded |= f.demanded;
      after.live_slots |= f.live_slots;
      after.demanded_slots |= f.demanded_slots;
    }
    Facts before = transfer(cfg.insns[k], after, cfg.subprog_of(static_cast<std::uint32_t>(k)) != 0, sp[k], sigs[k],
                            result_demanded, demands[k] != 0, conservative);
    before.demanded |= extra[k];
    before.demanded_slots |= extra_slots[k];
    return before;
  }
  void publish(std::size_t k) {
    out.live_regs[k] = in[k].live;
    out.demanded_regs[k] = static_cast<std::uint16_t>(in[k].demanded & in[k].live);
    out.live_slots[k] = in[k].live_slots;
    out.demanded_slots[k] = in[k].demanded_slots & in[k].live_slots;
  }
};

LivenessSolver::LivenessSolver(const Cfg& cfg, const Platform* platform, bool every_branch_demands)
    : impl_(std::make_unique<Impl>(Impl{cfg, platform, stack_pointers(cfg), {}, every_branch_demands, {}, {}, {}, {}, true, {}, {}, {}})) {
  Impl& m = *impl_;
  const std::size_t n = cfg.size();
  m.in.resize(n);
  m.extra.assign(n, 0);
  m.extra_slots.assign(n, 0);
  m.demands.assign(n, every_branch_demands ? 1 : 0);
  m.sigs.assign(n, nullptr);
  m.result_demanded = !platform || platform->return_range().has_value();
  m.pred_start.assign(n + 1, 0);
  for (std::size_t k = 0; k < n; ++k) {
    if (!cfg.starts[k]) continue;
    if (const auto* c = std::get_if<isa::Call>(&cfg.insns[k]);
        c && platform && c->kind == isa::Call::Kind::kHelper && !calls_callback(cfg.insns[k])) {
      m.sigs[k] = platform->helper(c->imm);
    }
    for (std::int32_t s : cfg.successors[k]) {
      if (s >= 0) ++m.pred_start[static_cast<std::size_t>(s) + 1];
    }
  }
  for (std::size_t k = 0; k < n; ++k) m.pred_start[k + 1] += m.pred_start[k];
  m.preds.resize(m.pred_start[n]);
  {
    std::vector<std::uint32_t> fill(m.pred_start.begin(), m.pred_start.end() - 1);
    for (std::size_t k = 0; k < n; ++k) {
      if (!cfg.starts[k]) continue;
      for (std::int32_t s : cfg.successors[k]) {
        if (s >= 0) m.preds[fill[static_cast<std::size_t>(s)]++] = static_cast<std::uint32_t>(k);
      }
    }
  }
  // Backward sweeps from the last instruction: a change flows to predecessors, and a loop sends the
  // sweep back up to its end (the facts only grow, so loops converge).
  std::vector<std::uint8_t> queued(n, 1);
  for (std::size_t k = n; k-- > 0;) {
    if (!queued[k] || !cfg.starts[k]) continue;
    queued[k] = 0;
    const Facts next = m.recompute(k);
    if (next == m.in[k]) continue;
    m.in[k] = next;
    std::size_t back = k;
    for (std::uint32_t i = m.pred_start[k]; i < m.pred_start[k + 1]; ++i) {
      const std::uint32_t p = m.preds[i];
      queued[p] = 1;
      back = std::max<std::size_t>(back, p + 1);
    }
    k = back;  // the loop's --k resumes at the highest predecessor queued above k
  }
  m.out.live_regs.resize(n);
  m.out.demanded_regs.resize(n);
  m.out.live_slots.resize(n);
  m.out.demanded_slots.resize(n);
  for (std::size_t k = 0; k < n; ++k) m.publish(k);
}

LivenessSolver::~LivenessSolver() = default;

const Liveness& LivenessSolver::facts() const { return impl_->out; }


void LivenessSolver::demand_branch(std::uint32_t pc) {
  if (impl_->demands[pc]) return;
  impl_->demands[pc] = 1;
  propagate(pc);
}

void LivenessSolver::demand(std::uint32_t pc, std::uint16_t regs, std::uint64_t slots) {
  Impl& m = *impl_;
  if ((m.extra[pc] | regs) == m.extra[pc] && (m.extra_slots[pc] | slots) == m.extra_slots[pc]) return;
  m.extra[pc] = static_cast<std::uint16_t>(m.extra[pc] | regs);
  m.extra_slots[pc] |= slots;
  propagate(pc);
}

std::optional<std::uint64_t> LivenessSolver::slots_through(std::uint32_t pc, std::uint8_t reg, std::int32_t off,
                                                           int size) const {
  const StackPointers& sp = impl_->sp[pc];
  if (reg == 10) return slots_of(off, size);
  if (!(sp.regs & bit(reg))) return 0;
  if (sp.off[reg] == kVaries) return std::nullopt;
  return slots_of(sp.off[reg] + off, size);
}

void LivenessSolver::propagate(std::uint32_t pc) {
  Impl& m = *impl_;
  // The facts only grow: from the jump backwards, every instruction whose facts change passes the
  // change on to its predecessors.
  std::vector<std::uint32_t> work{pc};
  while (!work.empty()) {
    const std::uint32_t k = work.back();
    work.pop_back();
    const Facts next = m.recompute(k);
    if (next == m.in[k]) continue;
    m.in[k] = next;
    m.publish(k);
    for (std::uint32_t i = m.pred_start[k]; i < m.pred_start[k + 1]; ++i) work.push_back(m.preds[i]);
  }
}

Liveness compute_liveness(const Cfg& cfg, const Platform* platform) {
  return LivenessSolver(cfg, platform, true).facts();
}

}  // namespace bpfvm::verifier
