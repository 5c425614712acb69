// The walk: every path from the entry, forking at conditional jumps whose outcome is not known, pruned
// where a completed state covers the new one (the kernel's do_check and is_state_visited).
#include "explorer.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <bit>

#include "bpfvm/isa/disasm.hpp"

namespace bpfvm::verifier {

namespace {

constexpr std::uint64_t kMaxPacketOff = 0xffff;  // MAX_PACKET_OFF

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

// Pointers the kernel knows are never NULL (reg_not_null): compared with 0, the outcome is known.
bool never_null(const RegState& r) {
  if (r.maybe_null) return false;
  return r.type == RegType::kMapValue || r.type == RegType::kMapKey || r.type == RegType::kMem || is_socket_type(r.type);
}

// A branch side where `pkt` (a packet pointer) is at most data_end (`strict`: below it): every copy of
// that pointer may access the bytes before it (the kernel's find_good_pkt_pointers).
void prove_packet_range(State& s, const RegState& pkt, bool strict) {
  if (pkt.off < 0 || (pkt.off == 0 && strict)) return;
  if (pkt.value.umax > kMaxPacketOff || pkt.value.umax + static_cast<std::uint64_t>(pkt.off) > kMaxPacketOff) return;
  // pkt' <= end: the `off` bytes below pkt'; pkt' < end: one more (as the kernel counts it, except
  // from the packet's start itself).
  const auto range = static_cast<std::uint32_t>(strict ? pkt.off + 1 : pkt.off);
  for (Frame& fr : s.frames) {
    auto widen = [&](RegState& r) {
      if (r.type == pkt.type && r.id == pkt.id) r.range = std::max(r.range, range);
    };
    for (RegState& r : fr.regs) widen(r);
    for (StackSlot& slot : fr.stack) {
      if (slot.bytes[0] == ByteType::kSpill) widen(slot.spilled);
    }
  }
}

}  // namespace

std::uint64_t sign_extend(std::uint64_t v, unsigned bits) {
  if (bits >= 64) return v;
  const std::uint64_t m = 1ull << (bits - 1);
  v &= (1ull << bits) - 1;
  return (v ^ m) - m;
}

Explorer::Explorer(std::span<const isa::RawInsn> program, const Cfg& cfg, const Platform& platform,
                   const VerifierOptions& options)
    : program_(program),
      cfg_(cfg),
      liveness_(cfg, &platform, false),
      platform_(platform), options_(options), prune_point_(cfg.size(), 0) {
  at_pc_.resize(cfg.size());
  for (std::uint32_t i = 0; i < cfg.size(); ++i) {
    if (!cfg.starts[i]) continue;
    if (std::holds_alternative<isa::CondJump>(cfg.insns[i])) prune_point_[i] = 1;
    if (calls_callback(cfg.insns[i])) {
      prune_point_[i] = 2;
      if (!callback_liveness_) callback_liveness_ = std::make_unique<Liveness>(compute_liveness(cfg, &platform));
      per_path_precision_ = false;
    }
    for (std::int32_t s : cfg.successors[i]) {
      if (s >= 0 && static_cast<std::uint32_t>(s) != i + static_cast<std::uint32_t>(isa::slots_of(cfg.insns[i]))) {
        prune_point_[static_cast<std::size_t>(s)] = std::max<std::uint8_t>(prune_point_[static_cast<std::size_t>(s)], 1);
      }
    }
  }
  for (const auto& [from, to] : cfg.back_edges) prune_point_[to] = std::max<std::uint8_t>(prune_point_[to], 1);
  // After every call, a helper's too (the kernel's visit_func_call_insn marks the instruction after
  // any call a prune point).
  for (std::uint32_t i = 0; i < cfg.size(); ++i) {
    const auto* c = std::get_if<isa::Call>(&cfg.insns[i]);
    if (cfg.starts[i] && c && i + 1 < cfg.size()) {
      prune_point_[i + 1] = std::max<std::uint8_t>(prune_point_[i + 1], 1);
    }
  }
  global_.assign(cfg.subprogs.size(), nullptr);
  global_queued_.assign(cfg.subprogs.size(), 0);
  for (std::size_t k = 1; k < cfg.subprogs.size(); ++k) global_[k] = platform.global_function(cfg.subprogs[k].start);
  stack_depth_.assign(cfg.subprogs.size(), 0);
  callees_.resize(cfg.subprogs.size());
  for (std::uint32_t i = 0; i < cfg.size(); ++i) {
    const auto* c = std::get_if<isa::Call>(&cfg.insns[i]);
    if (!cfg.starts[i] || !c || c->kind != isa::Call::Kind::kLocal) continue;
    const std::uint32_t target = i + 1 + static_cast<std::uint32_t>(c->imm);
    callees_[cfg.subprog_of(i)].push_back({i, cfg.subprog_of(target)});
  }
}

Result<void> Explorer::check_map_compatibility() {
  // check_map_prog_compatibility: every map the program names, reached or not. Programs that run in
  // any context (tracing) may not take a spin lock or own a timer; socket filters may not lock.
  const std::string_view type = platform_.prog_type_name();
  const bool tracing = type == "kprobe" || type == "tracepoint" || type == "perf_event" || type == "raw_tracepoint" ||
                       type == "raw_tracepoint_writable";
  for (std::size_t i = 0; i + 1 < program_.size(); ++i) {
    const isa::RawInsn& in = program_[i];
    if (!in.is_lddw()) continue;
    const auto pseudo = static_cast<isa::Pseudo>(in.src);
    if (pseudo == isa::Pseudo::kMapFd || pseudo == isa::Pseudo::kMapValue || pseudo == isa::Pseudo::kMapIdx ||
        pseudo == isa::Pseudo::kMapIdxValue) {
      const auto pc = static_cast<std::uint32_t>(i);
      if (const MapInfo* m = platform_.map(in.imm)) {
        if (m->spin_lock_off >= 0 && (tracing || type == "socket_filter")) {
          return reject(pc, fmt::format("{} progs cannot use bpf_spin_lock yet (map '{}')",
                                        tracing ? "tracing" : "socket filter", m->name),
                        "use the map from another program type, or keep the value without a lock");
        }
        if (m->timer_off >= 0 && tracing) {
          return reject(pc, fmt::format("tracing progs cannot use bpf_timer yet (map '{}')", m->name),
                        "a map with a struct bpf_timer is for networking, fentry/tp_btf and syscall programs");
        }
      }
    }
    ++i;
  }
  return {};
}

Result<VerifierStats> Explorer::run() {
  BPFVM_TRY(check_no_recursion());
  BPFVM_TRY(check_map_compatibility());
  State entry = State::entry();
  if (options_.entry_is_global) {
    const GlobalFunction* g = platform_.global_function(0);
    if (!g) return error(0, "an extension program needs BTF for its function (Program extension requires BTF)");
    if (!g->error.empty()) return error(0, fmt::format("global function {}: {}", g->name, g->error));
    Frame& f = entry.cur();
    for (std::size_t i = 1; i <= 5; ++i) f.regs[i] = RegState{};
    set_global_arguments(f, *g);
  }
  if (options_.memory_arg) {
    // bpfvm exec's convention: r1 points at N bytes the program may read and write, r2 = N.
    Frame& f = entry.cur();
    f.regs[1] = RegState::scalar(Scalar::constant(0));
    if (*options_.memory_arg > 0) {
      f.regs[1] = RegState::pointer(RegType::kMem);
      f.regs[1].mem_size = *options_.memory_arg;
    }
    f.regs[2] = RegState::scalar(Scalar::constant(*options_.memory_arg));
  }
  work_.push_back({std::move(entry), 0, -1});
  // The entry function, then each global function some verified code calls (the kernel validates
  // global functions lazily, each once, on its own).
  for (std::size_t next_global = 1;;) {
    while (!work_.empty()) {
      Path path = std::move(work_.back());
      work_.pop_back();
      auto explored = explore(std::move(path));
      current_ = nullptr;  // that path is gone: later refusals (the stack depth) describe no path
      BPFVM_TRY(std::move(explored));
    }
    while (next_global < cfg_.subprogs.size() && global_queued_[next_global] != 1) ++next_global;
    if (next_global == cfg_.subprogs.size()) break;
    global_queued_[next_global] = 2;
    BPFVM_TRY(verify_global(static_cast<std::uint32_t>(next_global)));
    next_global = 1;
  }
  BPFVM_TRY(check_stack_depth());
  return stats_;
}

Error Explorer::reject(std::uint32_t pc, std::string message, std::string hint, std::uint32_t origin_id,
                       std::optional<std::uint32_t> origin_insn) const {
  if (Rejection* r = options_.rejection) {
    r->insn = pc;
    r->message = message;
    r->hint = std::move(hint);
    r->path.clear();
    r->registers.clear();
    if (current_) {
      for (std::int32_t d = current_->decision; d >= 0; d = decisions_[static_cast<std::size_t>(d)].parent) {
        r->path.emplace_back(decisions_[static_cast<std::size_t>(d)].insn, decisions_[static_cast<std::size_t>(d)].taken);
      }
      std::reverse(r->path.begin(), r->path.end());
      const Frame& f = current_->state.cur();
      for (std::size_t i = 0; i < f.regs.size(); ++i) {
        if (f.regs[i].type == RegType::kNotInit) continue;
        if (!r->registers.empty()) r->registers += ' ';
        r->registers += fmt::format("R{}={}", i, f.regs[i].to_string());
      }
    }
    r->origin = origin_insn;
    if (!origin_insn && origin_id) {
      if (auto it = id_origin_.find(origin_id); it != id_origin_.end()) r->origin = it->second;
    }
  }
  return Error(Errc::kAccess, std::move(message)).at_insn(pc);
}

void Explorer::record_fork(Path& fall, Path& taken, std::uint32_t pc) {
  decisions_.push_back({pc, true, fall.decision});
  taken.decision = static_cast<std::int32_t>(decisions_.size() - 1);
  decisions_.push_back({pc, false, fall.decision});
  fall.decision = static_cast<std::int32_t>(decisions_.size() - 1);
}

Error Explorer::unsupported(std::uint32_t pc, std::string_view what) const {
  return Error(Errc::kNotSupported, fmt::format("{} are not supported by bpfvm's verifier yet", what)).at_insn(pc);
}

void Explorer::finish(std::int32_t cp) {
  while (cp >= 0) {
    if (--checkpoints_[static_cast<std::size_t>(cp)].branches > 0) return;
    cp = checkpoints_[static_cast<std::size_t>(cp)].parent;
  }
}

void Explorer::clear_singular_ids(State& st) {
  std::unordered_map<std::uint32_t, std::uint32_t> uses;
  for_each_reg(st, [&](RegState& r) {
    if (r.type == RegType::kScalar && r.id != 0) ++uses[r.id];
  });
  for_each_reg(st, [&](RegState& r) {
    if (r.type == RegType::kScalar && r.id != 0 && uses[r.id] == 1) r.id = 0;
  });
}

Result<bool> Explorer::visit(Path& path, bool callback_site) {
  std::vector<std::uint32_t>& here = at_pc_[path.pc];
  // The kernel's heuristic: a new state is worth keeping after 2 jumps and 8 instructions since the
  // last one (and always where a helper calls back).
  const bool add_new_state = callback_site || (jumps_since_ >= 2 && insns_since_ >= 8);
  const Frame& now = path.state.cur();
  const Liveness& facts = callback_site ? *callback_liveness_ : liveness_.facts();
  const auto static_demand = static_cast<std::uint16_t>(facts.demanded_regs[path.pc] & facts.live_regs[path.pc]);
  for (std::size_t i = 0; i < here.size();) {
    Checkpoint& c = checkpoints_[here[i]];
    bool same_consts = c.state.frames.size() == path.state.frames.size();
    // The constants the comparison would check first (demanded, or marked precise by the paths below
    // a complete state), tested here without it.
    const auto precise = static_cast<std::uint16_t>(c.branches == 0 && !callback_site ? c.precise_regs : 0);
    const auto check = static_cast<std::uint16_t>(c.const_mask & (static_demand | (precise & facts.live_regs[path.pc])));
    for (std::uint16_t m = check; m && same_consts; m = static_cast<std::uint16_t>(m & (m - 1))) {
      const auto r = static_cast<std::size_t>(std::countr_zero(m));
      same_consts = now.regs[r].type == RegType::kScalar && now.regs[r].value.is_const() &&
                    now.regs[r].value.const_value() == c.consts[r];
    }
    if (!same_consts) {
      // Other constants where they matter (most often another iteration of a loop): no cover either way.
    } else if (c.branches == 0 || callback_site) {
      // A complete state covers every path from a state it includes. At a helper that calls back, a
      // state still being explored covers it too: every call more gives nothing new, and the helper
      // bounds the calls (the kernel's callback fixed point); the first visit explores the rest.
      const bool covers = callback_site ? c.state.includes(path.state, *callback_liveness_, path.pc)
                                        : c.state.includes(path.state, liveness_.facts(), path.pc, c.precise_regs,
                                                           c.precise_slots);
      if (covers) {
        ++c.hits;
        ++stats_.pruned;
        // What decided something below the covering state decides the same below this path: its
        // ancestors learn it (the kernel's propagate_precision).
        if (!callback_site && (c.precise_regs || c.precise_slots) &&
            !mark_precise(path, c.precise_regs, c.precise_slots, false)) {
          liveness_.demand(path.pc, c.precise_regs, c.precise_slots);
        }
        return true;
      }
    } else if (c.state.callback_unroll_depth == path.state.callback_unroll_depth && c.state.includes(path.state) &&
               path.state.includes(c.state)) {
      // The same state again while the first is still being explored: it loops without end (unless a
      // callback was called again in between: a helper's bounded calls, as the kernel's check excepts).
      return reject(path.pc, fmt::format("infinite loop detected at insn {}", path.pc),
                    "the loop comes back to the same state: make its exit depend on a counter that changes");
    }
    // A state that keeps missing will not start matching (an earlier loop iteration): forget it, as
    // the kernel evicts states with more than 3 misses per hit.
    if (add_new_state) ++c.misses;
    if (c.misses > c.hits * 3 + 3) {
      c.state = State{};  // never compared again: its memory goes
      here[i] = here.back();
      here.pop_back();
      --live_states_;
      continue;
    }
    ++i;
  }
  if (callback_site && !here.empty()) {
    // Not covered yet: numbers the callback changes (a counter in its context) would make every call
    // a new state; forget what differs from the last visit so that the calls reach a fixed point.
    const State& last = checkpoints_[here.back()].state;
    if (last.frames.size() == path.state.frames.size()) {
      for (std::size_t fi = 0; fi < last.frames.size(); ++fi) {
        const Frame& o = last.frames[fi];
        Frame& n = path.state.frames[fi];
        for (std::size_t r = 0; r < n.regs.size(); ++r) {
          if (o.regs[r].type == RegType::kScalar && n.regs[r].type == RegType::kScalar && !(o.regs[r] == n.regs[r])) {
            n.regs[r] = RegState::unknown_scalar();
          }
        }
        for (std::size_t k = 0; k < n.stack.size() && k < o.stack.size(); ++k) {
          const StackSlot& os = o.stack[k];
          StackSlot& ns = n.stack[k];
          if (os.bytes[0] == ByteType::kSpill && ns.bytes[0] == ByteType::kSpill && os.spilled.type == RegType::kScalar &&
              ns.spilled.type == RegType::kScalar && !(os.spilled == ns.spilled)) {
            ns.spilled = RegState::unknown_scalar();
          }
          for (std::size_t b = 0; b < 8; ++b) {
            if (ns.bytes[b] == ByteType::kZero && os.bytes[b] == ByteType::kMisc) ns.bytes[b] = ByteType::kMisc;
          }
        }
      }
    }
    for (std::uint32_t k : here) {
      if (checkpoints_[k].state.includes(path.state, *callback_liveness_, path.pc)) {
        ++stats_.pruned;
        return true;
      }
    }
  }
  if (!add_new_state) return false;
  jumps_since_ = insns_since_ = 0;
  Checkpoint kept{path.state, path.pc, path.checkpoint, 1, 0, 0, 0, {}};
  clear_singular_ids(kept.state);
  for (std::size_t r = 0; r < now.regs.size(); ++r) {
    if (now.regs[r].type == RegType::kScalar && now.regs[r].value.is_const()) {
      kept.const_mask = static_cast<std::uint16_t>(kept.const_mask | (1u << r));
      kept.consts[r] = now.regs[r].value.const_value();
    }
  }
  kept.depth = path.state.frames.size();
  kept.trail = std::move(path.trail);
  path.trail.clear();
  checkpoints_.push_back(std::move(kept));
  path.checkpoint = static_cast<std::int32_t>(checkpoints_.size() - 1);
  here.push_back(static_cast<std::uint32_t>(path.checkpoint));
  stats_.max_states_per_insn = std::max(stats_.max_states_per_insn, static_cast<std::uint32_t>(here.size()));
  stats_.states = static_cast<std::uint32_t>(checkpoints_.size());
  ++live_states_;
  stats_.peak_states = std::max(stats_.peak_states, live_states_);
  return false;
}

void Explorer::log_insn(const Path& path, const Frame& before) {
  std::string& log = *options_.log;
  log += fmt::format("{}: {}", path.pc, isa::format_insn(program_.subspan(path.pc), path.pc));
  if (options_.log_level >= 2 && path.state.frames.size() == log_depth_) {
    const Frame& after = path.state.cur();
    std::string changed;
    for (std::size_t i = 0; i < after.regs.size(); ++i) {
      if (after.regs[i] == before.regs[i] || after.regs[i].type == RegType::kNotInit) continue;
      changed += fmt::format(" R{}={}", i, after.regs[i].to_string());
    }
    if (!changed.empty()) log += fmt::format(" ;{}", changed);
  }
  log += '\n';
}

Result<void> Explorer::explore(Path path) {
  current_ = &path;
  const bool logging = options_.log && options_.log_level > 0;
  if (logging) {
    std::string regs;
    for (std::size_t i = 0; i < path.state.cur().regs.size(); ++i) {
      const RegState& r = path.state.cur().regs[i];
      if (r.type != RegType::kNotInit) regs += fmt::format(" R{}={}", i, r.to_string());
    }
    *options_.log += fmt::format("{}:{}\n", path.pc, regs);
  }
  for (;;) {
    if (logging) {
      before_ = path.state.cur();
      log_depth_ = path.state.frames.size();
    }
    const std::uint32_t logged_pc = path.pc;
    struct Flush {
      Explorer& e;
      Path& p;
      std::uint32_t pc;
      bool on;
      ~Flush() {
        if (!on) return;
        const std::uint32_t next = p.pc;
        p.pc = pc;
        e.log_insn(p, e.before_);
        p.pc = next;
      }
    } flush{*this, path, logged_pc, logging};
    ++insns_since_;
    if (++stats_.insns_processed > options_.insn_limit) {
      return reject(path.pc, fmt::format("BPF program is too large. Processed {} insn", stats_.insns_processed),
                    "bound the loops more tightly, or use bpf_loop for long ones");
    }
    if (prune_point_[path.pc] && BPFVM_TRY(visit(path, prune_point_[path.pc] == 2))) {
      finish(path.checkpoint);
      return {};
    }
    const std::uint32_t pc = path.pc;
    const isa::Insn& insn = cfg_.insns[pc];
    if (per_path_precision_) {
      path.trail.push_back(pc);
      record_stack_access(path, pc, insn);
      record_zeros_kept(path, insn);
    }
    Frame& f = path.state.cur();
    // The kernel counts every instruction of the jump classes toward its heuristic: calls and exits
    // too (do_check's jmps_processed).
    if (std::holds_alternative<isa::Exit>(insn) || std::holds_alternative<isa::Call>(insn) ||
        std::holds_alternative<isa::CallReg>(insn)) {
      ++jumps_since_;
    }
    if (std::holds_alternative<isa::Exit>(insn)) {
      if (!BPFVM_TRY(exit(path))) {
        finish(path.checkpoint);
        return {};
      }
      continue;
    }
    if (const auto* c = std::get_if<isa::Call>(&insn)) {
      if (c->kind == isa::Call::Kind::kHelper) {
        BPFVM_TRY(helper_call(path, pc, *c));
        continue;
      }
      if (c->kind == isa::Call::Kind::kKfunc) return unsupported(pc, "kfunc calls");
      // A bpf-to-bpf call: a new frame with the arguments r1-r5 and its own stack.
      if (path.state.frames.size() >= static_cast<std::size_t>(isa::kMaxCallFrames)) {
        return error(pc, fmt::format("the call stack of {} frames is too deep", path.state.frames.size() + 1));
      }
      const std::uint32_t target = pc + 1 + static_cast<std::uint32_t>(c->imm);
      if (const std::uint32_t sub = cfg_.subprog_of(target); global_[sub]) {
        BPFVM_TRY(global_call(path, pc, sub));
        continue;
      }
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

// An exit: back to the caller (true, the path goes on), or the program's end (false).
Result<bool> Explorer::exit(Path& path) {
  const std::uint32_t pc = path.pc;
  Frame& f = path.state.cur();
  const RegState& r0 = f.regs[0];
  if (path.state.frames.size() == 1 && f.subprog == 0 && !f.callback && platform_.return_unread()) {
    return leave_program(path);  // (a void struct_ops member or LSM hook: r0 is nobody's)
  }
  // A static function may return nothing: the caller gets r0 as it is, unset included, and only
  // reading it there is an error (prepare_func_exit). The program's own exit, a global function's and
  // a callback's must set r0 (check_return_code).
  if (r0.type == RegType::kNotInit && (path.state.frames.size() == 1 || f.callback)) {
    return reject(pc, "R0 !read_ok: the function returns without setting r0", "return a value on every path");
  }
  if (path.state.frames.size() > 1) {
    if (r0.type == RegType::kStack) {
      // The kernel refuses any stack pointer as a function's result (prepare_func_exit).
      return reject(pc, "cannot return stack pointer to the caller",
                    "return a number; to give the caller data, write it through a pointer the caller passed");
    }
    const std::uint32_t callsite = f.callsite;
    if (f.callback) {
      // Back into the helper that called: it may call again (the call instruction is visited again
      // with the caller's state), or return. The callback's result must say go on (0) or stop (1).
      if (r0.type != RegType::kScalar || r0.value.umax > 1 || r0.value.smin < 0) {
        return reject(pc, fmt::format("At callback return the register R0 has {} value should have been in [0, 1]",
                                     r0.to_string()),
                      "return 0 to go on or 1 to stop from every path of the callback");
      }
      path.state.frames.pop_back();
      path.pc = callsite;
      return true;
    }
    // prepare_func_exit: r0 is the result, r1-r5 are clobbered.
    const RegState result = r0;
    path.state.frames.pop_back();
    Frame& caller = path.state.cur();
    caller.regs[0] = result;
    for (int r = 1; r <= 5; ++r) caller.regs[static_cast<std::size_t>(r)] = RegState{};
    path.pc = callsite + 1;
    return true;
  }
  if (f.callback) {
    // An async callback's own exit (a timer's): it must return 0 (check_return_code).
    if (r0.type != RegType::kScalar || r0.value.umax != 0) {
      return reject(pc,
                    fmt::format("At async callback return the register R0 has {} should have been in [0, 0]",
                                r0.to_string()),
                    "return 0 from every path of the timer callback");
    }
  }
  if (r0.is_pointer() && !(platform_.return_value_ignored() && f.subprog == 0)) {
    return reject(pc, "R0 leaks addr as return value", "return a number, not a pointer");
  }
  // The program's own exit (not a global function's): the type's return range (check_return_code).
  if (const auto range = platform_.return_range(); range && f.subprog == 0) {
    const bool low = platform_.return_range_32bit();
    const std::int64_t lo = low ? r0.value.s32_min : r0.value.smin, hi = low ? r0.value.s32_max : r0.value.smax;
    if (lo < range->first || hi > range->second) {
      return reject(pc,
                    fmt::format("At program exit the register R0 has {} should have been in [{}, {}]", r0.to_string(),
                                range->first, range->second),
                    fmt::format("{} programs return a value in [{}, {}] on every path", platform_.prog_type_name(),
                                range->first, range->second));
    }
  }
  return leave_program(path);
}

Result<bool> Explorer::leave_program(const Path& path) {
  const std::uint32_t pc = path.pc;
  if (path.state.active_lock) {
    return reject(pc,
                  fmt::format("bpf_spin_unlock is missing: the lock taken at insn {} is still held at exit",
                              path.state.lock_insn),
                  "call bpf_spin_unlock on every path out of the locked region", 0, path.state.lock_insn);
  }
  if (!path.state.refs.empty()) {
    // What the reference holds, and what gives it back.
    const Reference& ref = path.state.refs.front();
    const char* what = ref.socket   ? "the socket looked up there is not released on this path"
                       : ref.kptr   ? "the object bpf_kptr_xchg took out of the map there is not released on this path"
                       : ref.dynptr ? "the dynptr's record reserved there is neither submitted nor discarded on this path"
                                    : "the record reserved there is neither submitted nor discarded on this path";
    const char* hint =
        ref.socket   ? "call bpf_sk_release on the socket on every path where the lookup found one, early returns included"
        : ref.kptr   ? "put it back into a map's kptr with bpf_kptr_xchg (whose own result must then be released), or "
                       "release it with the struct's release kfunc (bpf_task_release...), which bpfvm does not have"
        : ref.dynptr ? "call bpf_ringbuf_submit_dynptr or bpf_ringbuf_discard_dynptr on every path, even when the "
                       "reservation failed"
                     : "call bpf_ringbuf_submit or bpf_ringbuf_discard on every path, early returns included";
    return reject(pc, fmt::format("Unreleased reference id={} alloc_insn={}: {}", ref.id, ref.insn, what), hint, 0,
                  ref.insn);
  }
  return false;
}

Result<const RegState*> Explorer::read(const Frame& f, std::uint32_t pc, std::uint8_t reg) const {
  if (f.regs[reg].type == RegType::kNotInit) {
    return reject(pc, fmt::format("R{} !read_ok: r{} is read before anything is written to it", reg, reg),
                  reg >= 1 && reg <= 5 ? fmt::format("r{} is clobbered by every call: keep values that live across "
                                                     "calls in r6-r9",
                                                     reg)
                                       : fmt::format("give r{} a value on every path to this instruction", reg));
  }
  return &f.regs[reg];
}

Result<void> Explorer::write_check(std::uint32_t pc, std::uint8_t reg) const {
  if (reg == 10) return error(pc, "frame pointer is read only");
  return {};
}

void Explorer::sync_copies(State& s, const RegState& reg) {
  if (reg.type != RegType::kScalar || reg.id == 0) return;
  for_each_reg(s, [&](RegState& r) {
    if (r.type == RegType::kScalar && r.id == reg.id) r.value = reg.value;
  });
}

void Explorer::mark_null_checked(State& s, std::uint32_t id, bool is_null) {
  std::uint32_t released = 0;
  for_each_reg(s, [&](RegState& r) {
    if (!r.is_pointer() || !r.maybe_null || r.id != id) return;
    if (is_null) {
      // Only the acquired pointer itself (its id is its reference's) holds nothing when NULL; a NULL
      // cast of a socket leaves the socket's reference to release (mark_ptr_or_null_regs).
      if (r.ref_id && r.ref_id == r.id) released = r.ref_id;
      r = RegState::scalar(Scalar::constant(0));
      return;
    }
    r.maybe_null = false;
    // mark_ptr_or_null_reg: only a map value's lock needs its id once the check is done.
    if (r.type != RegType::kMapValue) r.id = 0;
    if (r.type == RegType::kMapValue) {
      const MapInfo* m = platform_.map(r.map_index);
      if (m && m->inner >= 0) {
        // A map of maps gives the inner map itself (mark_ptr_or_null_reg).
        r.type = RegType::kMapPtr;
        r.map_index = static_cast<std::uint32_t>(m->inner);
        r.id = 0;
      } else if (!m || m->spin_lock_off < 0) {
        r.id = 0;  // only values with a lock keep the id that names the lock
      }
    }
  });
  if (released) {
    // A NULL record holds nothing to release.
    std::erase_if(s.refs, [&](const Reference& ref) { return ref.id == released; });
  }
}

void Explorer::push(Path p) {
  if (p.checkpoint >= 0) ++checkpoints_[static_cast<std::size_t>(p.checkpoint)].branches;
  work_.push_back(std::move(p));
}

// Comparisons with a pointer: null checks, packet bounds, or nothing learnt (both sides go on). True
// when handled.
bool Explorer::branch_on_pointers(Path& path, const isa::CondJump& j, const RegState& a, const RegState& b) {
  const std::uint32_t pc = path.pc;
  const std::uint32_t target = pc + 1 + static_cast<std::uint32_t>(j.offset);
  const bool eq = j.cond == isa::Cond::kEq, ne = j.cond == isa::Cond::kNe;
  // Null checks compare with an immediate 0: the kernel (6.18) learns nothing from a register that
  // holds 0, and neither does bpfvm, so that both judge the same programs alike.
  if (!j.is32 && (eq || ne) && !j.src.is_reg && is_null_const(b)) {
    if (a.maybe_null && a.id) {
      // The null check: on one side every copy of the pointer is NULL, on the other none is.
      Path other{path.state, target, path.checkpoint, path.decision, path.trail};
      mark_null_checked(other.state, a.id, eq);
      mark_null_checked(path.state, a.id, !eq);
      record_fork(path, other, pc);
      push(std::move(other));
      path.pc = pc + 1;
      return true;
    }
    if (never_null(a)) {
      path.pc = ne ? target : pc + 1;
      return true;
    }
  }
  // data' against data_end (or meta' against data): the side where data' <= data_end proves the
  // bytes below data' readable (try_match_pkt_pointers).
  const auto pkt_pair = [](const RegState& p, const RegState& end) {
    return (p.type == RegType::kPacket && end.type == RegType::kPacketEnd) ||
           (p.type == RegType::kPacketMeta && end.type == RegType::kPacket);
  };
  if (!j.is32) {
    // Normalised as `pkt OP end`: when the packet pointer is the source, the operator turns around.
    const RegState* pkt = nullptr;
    isa::Cond op = j.cond;
    if (pkt_pair(a, b)) {
      pkt = &a;
    } else if (pkt_pair(b, a)) {
      pkt = &b;
      switch (op) {
        case isa::Cond::kGt: op = isa::Cond::kLt; break;
        case isa::Cond::kLt: op = isa::Cond::kGt; break;
        case isa::Cond::kGe: op = isa::Cond::kLe; break;
        case isa::Cond::kLe: op = isa::Cond::kGe; break;
        default: break;
      }
    }
    if (pkt) {
      Path other{path.state, target, path.checkpoint, path.decision, path.trail};
      switch (op) {
        case isa::Cond::kGt: prove_packet_range(path.state, *pkt, false); break;  // fall through: pkt <= end
        case isa::Cond::kLt: prove_packet_range(other.state, *pkt, true); break;  // taken: pkt < end
        case isa::Cond::kGe: prove_packet_range(path.state, *pkt, true); break;   // fall through: pkt < end
        case isa::Cond::kLe: prove_packet_range(other.state, *pkt, false); break; // taken: pkt <= end
        default: break;
      }
      record_fork(path, other, pc);
      push(std::move(other));
      path.pc = pc + 1;
      return true;
    }
  }
  return false;
}

Result<bool> Explorer::branch(Path& path, const isa::CondJump& j) {
  const std::uint32_t pc = path.pc;
  const std::uint32_t target = pc + 1 + static_cast<std::uint32_t>(j.offset);
  Frame& f = path.state.cur();
  const RegState& a = *BPFVM_TRY(read(f, pc, j.dst));
  const RegState imm = j.src.is_reg ? RegState{}
                                    : RegState::scalar(Scalar::constant(sign_extend(static_cast<std::uint32_t>(j.src.imm), 32)));
  const RegState& b = j.src.is_reg ? *BPFVM_TRY(read(f, pc, j.src.reg)) : imm;
  if (a.type != RegType::kScalar || b.type != RegType::kScalar) {
    if (branch_on_pointers(path, j, a, b)) return true;
    // Other comparisons involving pointers teach nothing; both sides go on.
    Path other{path.state, target, path.checkpoint, path.decision, path.trail};
    record_fork(path, other, pc);
    push(std::move(other));
    path.pc = pc + 1;
    return true;
  }
  const CmpOp op = cmp_op(j.cond);
  // The operands decided the path: their values matter back along it, wherever they came from.
  const auto decided = [&] {
    const auto regs = static_cast<std::uint16_t>((1u << j.dst) | (j.src.is_reg ? 1u << j.src.reg : 0u));
    if (!per_path_precision_ || !mark_precise(path, regs, 0, true)) liveness_.demand_branch(pc);
  };
  if (auto known = branch_taken(op, a.value, b.value, j.is32)) {
    decided();
    path.pc = *known ? target : pc + 1;
    return true;
  }
  Scalar ta = a.value, tb = b.value, fa = a.value, fb = b.value;
  const bool taken_possible = refine_branch(op, true, ta, tb, j.is32);
  const bool fall_possible = refine_branch(op, false, fa, fb, j.is32);
  if (!taken_possible || !fall_possible) decided();
  // When the refinement reaches copies of an operand (scalar ids), whatever relies on a copy's
  // narrowed range relies on the link: the trail says which numbers were linked here, and pruning
  // compares the links of the numbers marked precise. Copies the mark cannot name (in a caller's
  // frame), or no per-path marks at all: demanded for every path.
  if ((a.id != 0 || (j.src.is_reg && b.id != 0)) && (!per_path_precision_ || !record_links(path, j, a, b))) {
    liveness_.demand_branch(pc);
  }
  if (!taken_possible && !fall_possible) return false;
  auto apply = [&](State& s, const Scalar& va, const Scalar& vb) {
    Frame& fr = s.cur();
    fr.regs[j.dst].value = va;
    sync_copies(s, fr.regs[j.dst]);
    if (j.src.is_reg) {
      fr.regs[j.src.reg].value = vb;
      sync_copies(s, fr.regs[j.src.reg]);
    }
  };
  if (taken_possible) {
    Path other{path.state, target, path.checkpoint, path.decision, path.trail};
    apply(other.state, ta, tb);
    if (fall_possible) {
      record_fork(path, other, pc);
      push(std::move(other));
    } else {
      path = std::move(other);
      return true;
    }
  }
  apply(path.state, fa, fb);
  path.pc = pc + 1;
  return true;
}

bool Explorer::record_links(Path& path, const isa::CondJump& j, const RegState& a, const RegState& b) {
  const std::uint32_t ida = a.id, idb = j.src.is_reg ? b.id : 0;
  const auto linked = [&](const RegState& r) {
    return r.type == RegType::kScalar && r.id != 0 && (r.id == ida || r.id == idb);
  };
  const std::size_t depth = path.state.frames.size();
  for (std::size_t f = 0; f + 1 < depth; ++f) {
    const Frame& fr = path.state.frames[f];
    for (const RegState& r : fr.regs) {
      if (linked(r)) return false;
    }
    for (const StackSlot& slot : fr.stack) {
      if (slot.bytes[0] == ByteType::kSpill && linked(slot.spilled)) return false;
    }
  }
  const Frame& fr = path.state.cur();
  Link link{static_cast<std::uint16_t>((1u << j.dst) | (j.src.is_reg ? 1u << j.src.reg : 0u)), 0};
  for (std::size_t r = 0; r < 10; ++r) {
    if (linked(fr.regs[r])) link.regs = static_cast<std::uint16_t>(link.regs | (1u << r));
  }
  for (std::size_t k = 0; k < fr.stack.size() && k < 64; ++k) {
    if (fr.stack[k].bytes[0] == ByteType::kSpill && linked(fr.stack[k].spilled)) link.slots |= 1ull << k;
  }
  for (std::size_t k = 64; k < fr.stack.size(); ++k) {
    if (fr.stack[k].bytes[0] == ByteType::kSpill && linked(fr.stack[k].spilled)) return false;
  }
  links_.push_back(link);
  path.trail.push_back(kLinkMark | static_cast<std::uint32_t>(links_.size() - 1));
  return true;
}

void Explorer::record_stack_access(Path& path, std::uint32_t pc, const isa::Insn& insn) {
  std::uint8_t base = 0;
  std::int16_t off = 0;
  isa::Size size{};
  if (const auto* l = std::get_if<isa::Load>(&insn)) {
    base = l->base, off = l->off, size = l->size;
  } else if (const auto* st = std::get_if<isa::Store>(&insn)) {
    base = st->base, off = st->off, size = st->size;
  } else if (const auto* a = std::get_if<isa::Atomic>(&insn)) {
    base = a->base, off = a->off, size = a->size;
  } else {
    return;
  }
  if (liveness_.slots_through(pc, base, off, isa::bytes_of(size))) return;  // known statically
  const RegState& r = path.state.cur().regs[base];
  std::uint64_t touched = 0;
  if (r.type == RegType::kStack) {
    if (r.frame + 1 != path.state.frames.size()) {
      touched = kOtherFrame;
    } else {
      // Every byte from the lowest to the highest address the access may reach (a variable offset
      // reads any slot in its range).
      const std::int64_t lo = r.off + off + r.value.smin;
      const std::int64_t hi = r.off + off + r.value.smax + isa::bytes_of(size);
      for (std::int64_t b = std::max<std::int64_t>(lo, -512); b < std::min<std::int64_t>(hi, 0); b += 1) {
        touched |= 1ull << ((-b - 1) / 8);
      }
    }
  }
  stack_marks_.push_back(touched);
  path.trail.push_back(kStackMark | static_cast<std::uint32_t>(stack_marks_.size() - 1));
}

void Explorer::record_zeros_kept(Path& path, const isa::Insn& insn) {
  const auto* st = std::get_if<isa::Store>(&insn);
  if (!st || st->base != 10 || st->off % 8 != 0 || st->off >= 0 || st->size == isa::Size::kDW) return;
  const Frame& f = path.state.cur();
  const auto index = static_cast<std::size_t>((-st->off - 1) / 8);
  if (index >= f.stack.size()) return;
  const StackSlot& slot = f.stack[index];
  for (auto i = static_cast<std::size_t>(isa::bytes_of(st->size)); i < 8; ++i) {
    if (slot.bytes[i] == ByteType::kZero) {
      path.trail.push_back(kZerosKept);
      return;
    }
  }
}

void Explorer::precise_here(const Path* path, std::uint32_t pc, std::uint16_t regs) {
  if (!per_path_precision_ || !path || !mark_precise(*path, regs, 0, true)) liveness_.demand(pc, regs);
}

bool Explorer::mark_precise(const Path& path, std::uint16_t regs, std::uint64_t slots, bool skip_last) {
  regs &= 0x3ff;  // r10 is always the frame pointer
  auto walk = [&](const std::vector<std::uint32_t>& trail, std::size_t end) {
    std::optional<std::uint64_t> touched;  // from the stack mark after the entry walked next
    bool zeros_kept = false;               // from a kZerosKept mark after it
    for (std::size_t i = end; i-- > 0;) {
      if (trail[i] == kZerosKept) {
        zeros_kept = true;
        continue;
      }
      if (trail[i] & kStackMark) {
        touched = stack_marks_[trail[i] & ~kStackMark];
        continue;
      }
      if (trail[i] & kLinkMark) {
        const Link& l = links_[trail[i] & ~kLinkMark];
        if ((regs & l.regs) || (slots & l.slots)) {
          regs = static_cast<std::uint16_t>(regs | l.regs);
          slots |= l.slots;
        }
        continue;
      }
      if (!backtrack_insn(trail[i], regs, slots, std::exchange(touched, std::nullopt), std::exchange(zeros_kept, false))) {
        return false;
      }
      if (!regs && !slots) break;
    }
    return true;
  };
  if (!walk(path.trail, path.trail.size() - (skip_last && !path.trail.empty() ? 1 : 0))) return false;
  for (std::int32_t cp = path.checkpoint; cp >= 0 && (regs || slots);) {
    Checkpoint& c = checkpoints_[static_cast<std::size_t>(cp)];
    if (c.depth != path.state.frames.size()) return false;
    // What this state already had marked has gone further back before: only the rest goes on.
    const auto fresh_regs = static_cast<std::uint16_t>(regs & ~c.precise_regs);
    const std::uint64_t fresh_slots = slots & ~c.precise_slots;
    c.precise_regs = static_cast<std::uint16_t>(c.precise_regs | regs);
    c.precise_slots |= slots;
    regs = fresh_regs;
    slots = fresh_slots;
    if (!walk(c.trail, c.trail.size())) return false;
    cp = c.parent;
  }
  return true;
}

bool Explorer::backtrack_insn(std::uint32_t pc, std::uint16_t& regs, std::uint64_t& slots,
                              std::optional<std::uint64_t> marked, bool zeros_kept) const {
  const auto bit = [](std::uint8_t r) { return static_cast<std::uint16_t>(1u << r); };
  const isa::Insn& insn = cfg_.insns[pc];
  const auto slots_through = [&](std::uint8_t base, std::int16_t off, isa::Size size) -> std::optional<std::uint64_t> {
    if (marked) return *marked == kOtherFrame ? std::nullopt : marked;
    return liveness_.slots_through(pc, base, off, isa::bytes_of(size));
  };
  return std::visit(
      isa::Overloaded{
          [&](const isa::Alu& a) {
            if (!(regs & bit(a.dst))) return true;
            if (a.op == isa::AluOp::kMov || a.op == isa::AluOp::kMovsx) regs &= static_cast<std::uint16_t>(~bit(a.dst));
            if (a.src.is_reg) regs |= bit(a.src.reg);
            return true;
          },
          [&](const isa::Endian&) { return true; },
          [&](const isa::LoadImm64& l) {
            regs &= static_cast<std::uint16_t>(~bit(l.dst));
            return true;
          },
          [&](const isa::Load& l) {
            if (!(regs & bit(l.dst))) return true;
            regs &= static_cast<std::uint16_t>(~bit(l.dst));
            // From the stack: the slot's value (a spilled number) decides; from other memory, nothing
            // earlier on the path does.
            const auto touched = slots_through(l.base, l.off, l.size);
            if (!touched) return false;
            slots |= *touched;
            return true;
          },
          [&](const isa::Store& st) {
            const auto touched = slots_through(st.base, st.off, st.size);
            if (!touched) return slots == 0;
            if (!(*touched & slots)) return true;
            if (st.src.is_reg) regs |= bit(st.src.reg);
            // A store at a slot's start is a spill whatever its size (a number's low bytes: stack_write,
            // as the kernel's save_register_state since it tracks narrow spills): the slot's value is the
            // register's from here on, its other bytes plain or unwritten (or zero bytes of an older
            // write, which a kZerosKept mark says). The mark moves to the register, as the kernel's
            // backtrack_insn moves it for a spill.
            if (st.base == 10 && st.off % 8 == 0 && !zeros_kept) slots &= ~*touched;
            return true;
          },
          [&](const isa::Atomic& a) {
            const auto touched = slots_through(a.base, a.off, a.size);
            const std::uint8_t fetched = a.op == isa::AtomicOp::kCmpxchg ? 0 : a.src;
            return touched && !(*touched & slots) && !(a.fetch && (regs & bit(fetched)));
          },
          [&](const isa::Call& c) {
            // A helper's result decides nothing earlier; r1-r5 hold nothing after it.
            if (c.kind != isa::Call::Kind::kHelper || calls_callback(insn) || !platform_.helper(c.imm)) return false;
            if (regs & 0x3e) return false;
            regs &= static_cast<std::uint16_t>(~1u);
            return true;
          },
          [&](const isa::CallReg&) { return false; },
          [&](const isa::PacketLoad&) {
            regs &= static_cast<std::uint16_t>(~0x3fu);
            return true;
          },
          [&](const isa::CondJump& j) {
            // One register compared with another bounds each by the other: either precise makes both
            // precise (the kernel's backtrack_insn for BPF_X jumps).
            if (j.src.is_reg && (regs & (bit(j.dst) | bit(j.src.reg)))) regs |= bit(j.dst) | bit(j.src.reg);
            return true;
          },
          [&](const isa::Jump&) { return true; },
          [&](const isa::Exit&) { return false; },
      },
      insn);
}

Result<void> Explorer::load_imm64(Frame& f, std::uint32_t pc, const isa::LoadImm64& l) {
  BPFVM_TRY(write_check(pc, l.dst));
  switch (l.pseudo) {
    case isa::Pseudo::kImm64: f.regs[l.dst] = RegState::scalar(Scalar::constant(l.value())); return {};
    case isa::Pseudo::kMapFd:
    case isa::Pseudo::kMapIdx: {
      if (!platform_.map(l.imm_lo)) return error(pc, fmt::format("fd {} is not pointing to valid bpf_map", l.imm_lo));
      RegState r = RegState::pointer(RegType::kMapPtr);
      r.map_index = static_cast<std::uint32_t>(l.imm_lo);
      f.regs[l.dst] = r;
      return {};
    }
    case isa::Pseudo::kMapValue:
    case isa::Pseudo::kMapIdxValue: {
      const MapInfo* m = platform_.map(l.imm_lo);
      if (!m) return error(pc, fmt::format("fd {} is not pointing to valid bpf_map", l.imm_lo));
      if (!m->direct_value) {
        return error(pc, fmt::format("direct value access on map {} is not allowed: only one-entry arrays "
                                     "(global data) have an address",
                                     l.imm_lo));
      }
      const auto off = static_cast<std::uint32_t>(l.imm_hi);
      if (off >= m->value_size) {
        return error(pc, fmt::format("invalid access to map value pointer, value_size={} off={}", m->value_size, off));
      }
      RegState r = RegState::pointer(RegType::kMapValue, static_cast<std::int32_t>(off));
      r.map_index = static_cast<std::uint32_t>(l.imm_lo);
      f.regs[l.dst] = r;
      return {};
    }
    case isa::Pseudo::kFunc: {
      RegState r = RegState::pointer(RegType::kFunc);
      r.subprog = cfg_.subprog_of(pc + 1 + static_cast<std::uint32_t>(l.imm_lo));
      f.regs[l.dst] = r;
      return {};
    }
    case isa::Pseudo::kBtfId: return unsupported(pc, "BTF object references (ksyms)");
  }
  return unsupported(pc, "this 64-bit immediate load");
}

Result<void> Explorer::step(State& s, std::uint32_t pc, const isa::Insn& insn) {
  Frame& f = s.cur();
  return std::visit(
      isa::Overloaded{
          [&](const isa::Alu& a) -> Result<void> { return alu(f, pc, a); },
          [&](const isa::Endian& e) -> Result<void> {
            const RegState v = *BPFVM_TRY(read(f, pc, e.dst));
            BPFVM_TRY(write_check(pc, e.dst));
            if (v.type != RegType::kScalar) return error(pc, fmt::format("R{} byte swap of a pointer prohibited", e.dst));
            f.regs[e.dst] = RegState::scalar(e.bits == 64 ? Scalar::unknown() : Scalar::range(0, (1ull << e.bits) - 1));
            return {};
          },
          [&](const isa::LoadImm64& l) -> Result<void> { return load_imm64(f, pc, l); },
          [&](const isa::Load& l) -> Result<void> {
            BPFVM_TRY(read(f, pc, l.base));
            BPFVM_TRY(write_check(pc, l.dst));
            const RegState v = BPFVM_TRY(access(s, pc, l.base, l.off, isa::bytes_of(l.size), false, nullptr, l.sign_extend));
            s.cur().regs[l.dst] = v;
            return {};
          },
          [&](const isa::Store& st) -> Result<void> {
            BPFVM_TRY(read(f, pc, st.base));
            const RegState value = st.src.is_reg ? *BPFVM_TRY(read(f, pc, st.src.reg))
                                                 : RegState::scalar(Scalar::constant(
                                                       sign_extend(static_cast<std::uint32_t>(st.src.imm), 32)));
            BPFVM_TRY(access(s, pc, st.base, st.off, isa::bytes_of(st.size), true, &value, false,
                             st.src.is_reg ? MemInsn::kStore : MemInsn::kStoreImm));
            return {};
          },
          [&](const isa::Atomic& a) -> Result<void> { return atomic(s, pc, a); },
          [&](const isa::Call&) -> Result<void> { return {}; },
          [&](const isa::CallReg&) -> Result<void> {
            return error(pc, "callx (a call through a register) is not an instruction the kernel accepts");
          },
          [&](const isa::PacketLoad& p) -> Result<void> { return packet_load(s, pc, p); },
          [&](const isa::Exit&) -> Result<void> { return {}; },
          [&](const isa::Jump&) -> Result<void> { return {}; },
          [&](const isa::CondJump&) -> Result<void> { return {}; },
      },
      insn);
}

Result<void> Explorer::global_call(Path& path, std::uint32_t pc, std::uint32_t sub) {
  const GlobalFunction& g = *global_[sub];
  if (!g.error.empty()) return error(pc, fmt::format("global function {}: {}", g.name, g.error));
  State& s = path.state;
  for (std::size_t i = 0; i < g.params.size() && i < 5; ++i) {
    const auto r = static_cast<std::uint8_t>(i + 1);
    const RegState& v = *BPFVM_TRY(read(s.cur(), pc, r));
    const GlobalFunction::Param& p = g.params[i];
    switch (p.kind) {
      case GlobalFunction::Arg::kScalar:
        if (v.type != RegType::kScalar) {
          return reject(pc, fmt::format("R{} is not a scalar: argument {} of global function {} is a number", r, i + 1, g.name),
                        "pass a number, as the function's prototype says");
        }
        break;
      case GlobalFunction::Arg::kCtx:
        if (v.type != RegType::kCtx || v.off != 0 || !v.value.is_const() || v.value.const_value() != 0) {
          return reject(pc, fmt::format("arg#{} expected pointer to ctx, but got {}", i, reg_type_name(v.type, v.maybe_null)),
                        "pass the context pointer the program received");
        }
        break;
      case GlobalFunction::Arg::kMem: {
        if (v.type == RegType::kScalar && v.value.is_const() && v.value.const_value() == 0) break;  // NULL
        if (!v.is_pointer()) {
          return reject(pc, fmt::format("R{} type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem: argument "
                                        "{} of global function {} points to {} bytes",
                                        r, i + 1, g.name, p.size),
                        "pass a pointer to memory of the parameter's type, or NULL");
        }
        RegState ptr = v;
        ptr.maybe_null = false;  // the function checks for NULL itself; what is there must be readable
        BPFVM_TRY(helper_memory(s, pc, r, ptr, Scalar::constant(p.size), false, false));
        break;
      }
    }
  }
  if (!global_queued_[sub]) global_queued_[sub] = 1;
  // The call returns a number; r1-r5 hold nothing.
  Frame& f = s.cur();
  for (int r = 1; r <= 5; ++r) f.regs[static_cast<std::size_t>(r)] = RegState{};
  f.regs[0] = RegState::unknown_scalar();
  path.pc = pc + 1;
  return {};
}

Result<void> Explorer::verify_global(std::uint32_t sub) {
  const GlobalFunction& g = *global_[sub];
  const std::uint32_t start = cfg_.subprogs[sub].start;
  if (!g.error.empty()) return error(start, fmt::format("global function {}: {}", g.name, g.error));
  State st;
  st.frames.emplace_back();
  Frame& f = st.cur();
  f.subprog = sub;
  f.regs[10] = RegState::pointer(RegType::kStack);
  set_global_arguments(f, g);
  work_.push_back({std::move(st), start, -1});
  return {};
}

void Explorer::set_global_arguments(Frame& f, const GlobalFunction& g) {
  for (std::size_t i = 0; i < g.params.size() && i < 5; ++i) {
    RegState& r = f.regs[i + 1];
    switch (g.params[i].kind) {
      case GlobalFunction::Arg::kScalar: r = RegState::unknown_scalar(); break;
      case GlobalFunction::Arg::kCtx: r = RegState::pointer(RegType::kCtx); break;
      case GlobalFunction::Arg::kMem:
        r = RegState::pointer(RegType::kMem);
        r.maybe_null = true;
        r.id = new_id();
        r.mem_size = g.params[i].size;
        break;
    }
  }
}

// A function may not call itself, directly or not: the kernel refuses recursion before it explores.
Result<void> Explorer::check_no_recursion() const {
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
Result<void> Explorer::check_stack_depth() const {
  auto frame_size = [&](std::uint32_t sub) { return (std::max<std::uint32_t>(stack_depth_[sub], 1) + 31) / 32 * 32; };
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
    if (it.depth > static_cast<std::size_t>(isa::kMaxCallFrames)) break;
    for (const auto& [site, callee] : callees_[it.sub]) {
      stack.push_back({callee, it.depth + 1, it.total + frame_size(callee)});
    }
  }
  return {};
}

namespace {

// No helpers, no maps, a context nothing may be read from: what the bare `verify` checks against.
class BarePlatform final : public Platform {
 public:
  const HelperSignature* helper(std::int32_t) const override { return nullptr; }
  bool helper_allowed(std::int32_t) const override { return false; }
  const MapInfo* map(std::int64_t) const override { return nullptr; }
  CtxField ctx_access(std::int32_t, std::uint32_t, bool) const override {
    return {CtxField::Result::kDenied, "this verification has no program type"};
  }
  std::string_view prog_type_name() const override { return "none"; }
  bool legacy_packet_loads() const override { return false; }
};

}  // namespace

Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const Platform& platform,
                             const VerifierOptions& options) {
  auto cfg = build_cfg(program);
  if (!cfg) {
    if (options.rejection) {
      *options.rejection = Rejection{};
      options.rejection->insn = static_cast<std::uint32_t>(cfg.error().location().insn.value_or(0));
      options.rejection->message = cfg.error().message();
    }
    if (options.log) *options.log += cfg.error().message() + "\n";
    return std::move(cfg).error();
  }
  if (options.call_maps) options.call_maps->assign(program.size(), kNoMap);
  if (options.probe_loads) options.probe_loads->assign(program.size(), false);
  Explorer explorer(program, *cfg, platform, options);
  auto result = explorer.run();
  if (options.stats) *options.stats = result ? *result : explorer.stats();
  if (options.log && options.log_level > 0) {
    if (!result) *options.log += result.error().message() + "\n";
    const VerifierStats st = result ? *result : explorer.stats();
    *options.log += fmt::format("processed {} insns (limit {}) max_states_per_insn {} total_states {} peak_states {} "
                                "mark_read 0\n",
                                st.insns_processed, options.insn_limit, st.max_states_per_insn, st.states,
                                st.peak_states);
  }
  return result;
}

Result<VerifierStats> verify(std::span<const isa::RawInsn> program, const VerifierOptions& options) {
  static const BarePlatform bare;
  return verify(program, bare, options);
}

}  // namespace bpfvm::verifier
