#include "bpfvm/verifier/ctx_access.hpp"

#include <deque>
#include <map>
#include <optional>

#include "bpfvm/isa/opcode.hpp"

namespace bpfvm::verifier {

namespace {

using isa::RawInsn;

// What a register (or 8-byte stack slot) may hold, as far as the context is concerned.
struct Value {
  enum Kind : std::uint8_t { kOther, kCtx, kStack, kCtxVarOff, kMixed } kind = kOther;
  std::int64_t off = 0;

  friend bool operator==(const Value&, const Value&) = default;
  bool ctx_like() const { return kind == kCtx || kind == kCtxVarOff || kind == kMixed; }
};

Value join(const Value& a, const Value& b) {
  if (a == b) return a;
  if (a.kind == Value::kCtx && b.kind == Value::kCtx) return {Value::kCtxVarOff, 0};
  if (a.kind == Value::kCtxVarOff && b.kind == Value::kCtxVarOff) return a;
  if (a.ctx_like() || b.ctx_like()) return {Value::kMixed, 0};
  return {};  // stack pointers with different offsets, or anything else: not the context
}

struct State {
  Value regs[isa::kNumRegisters];
  std::map<std::int64_t, Value> stack;  // by offset from r10; a missing slot holds kOther

  friend bool operator==(const State&, const State&) = default;
};

State join(const State& a, const State& b) {
  State out;
  for (int r = 0; r < isa::kNumRegisters; ++r) out.regs[r] = join(a.regs[r], b.regs[r]);
  for (const auto& [off, v] : a.stack) {
    auto it = b.stack.find(off);
    const Value j = join(v, it == b.stack.end() ? Value{} : it->second);
    if (j.kind != Value::kOther) out.stack[off] = j;
  }
  for (const auto& [off, v] : b.stack) {
    if (a.stack.count(off)) continue;
    const Value j = join(Value{}, v);
    if (j.kind != Value::kOther) out.stack[off] = j;
  }
  return out;
}

std::uint8_t size_bytes(std::uint8_t opcode) {
  switch (opcode & isa::kSizeMask) {
    case isa::kSizeB: return 1;
    case isa::kSizeH: return 2;
    case isa::kSizeW: return 4;
    default: return 8;
  }
}

void forget_stack_bytes(State& s, std::int64_t off, std::uint8_t size) {
  for (auto it = s.stack.begin(); it != s.stack.end();) {
    if (it->first < off + size && off < it->first + 8) {
      it = s.stack.erase(it);
    } else {
      ++it;
    }
  }
}

class Analysis {
 public:
  explicit Analysis(std::span<const RawInsn> insns) : insns_(insns), in_(insns.size()) {}

  Result<std::vector<CtxAccess>> run();

 private:
  Result<void> flow(std::size_t to, const State& s, std::size_t from);
  Result<void> step(std::size_t pc);

  std::span<const RawInsn> insns_;
  std::vector<std::optional<State>> in_;
  std::deque<std::size_t> work_;
};

Result<void> Analysis::flow(std::size_t to, const State& s, std::size_t from) {
  if (to >= insns_.size()) return make_error(Errc::kInvalid, "jump to {} is out of range", to).at_insn(from);
  State next = in_[to] ? join(*in_[to], s) : s;
  if (in_[to] && *in_[to] == next) return {};
  in_[to] = std::move(next);
  work_.push_back(to);
  return {};
}

Result<void> Analysis::step(std::size_t pc) {
  const RawInsn& insn = insns_[pc];
  State s = *in_[pc];
  const std::uint8_t cls = insn.cls();
  const std::uint8_t op = insn.opcode & 0xf0;
  const auto reg = [&](std::uint8_t r) -> Value& { return s.regs[r < isa::kNumRegisters ? r : 0]; };
  switch (cls) {
    case isa::kClassAlu64: {
      Value& dst = reg(insn.dst);
      const bool x = insn.opcode & 0x08;
      if (op == 0xb0 && x && insn.off == 0) {  // mov64 reg
        dst = reg(insn.src);
      } else if ((op == 0x00 || op == 0x10) && !x && (dst.kind == Value::kCtx || dst.kind == Value::kStack)) {
        dst.off += op == 0x00 ? insn.imm : -static_cast<std::int64_t>(insn.imm);  // add/sub imm
      } else if ((op == 0x00 || op == 0x10) && dst.ctx_like()) {
        dst = {Value::kCtxVarOff, 0};  // a context pointer with a variable offset
      } else if (dst.ctx_like() && !(op == 0xb0)) {
        dst = {Value::kMixed, 0};
      } else {
        dst = {};
      }
      return flow(pc + 1, s, pc);
    }
    case isa::kClassAlu: reg(insn.dst) = {}; return flow(pc + 1, s, pc);
    case isa::kClassLd:
      if (insn.is_lddw()) {
        reg(insn.dst) = {};
        return flow(pc + 2, s, pc);
      }
      // LD_ABS / LD_IND: r0 gets the data, r1-r5 are clobbered as by a call.
      for (int r = 0; r <= 5; ++r) s.regs[r] = {};
      return flow(pc + 1, s, pc);
    case isa::kClassLdx: {
      const Value base = reg(insn.src);
      Value loaded{};
      if (base.kind == Value::kStack && size_bytes(insn.opcode) == 8) {
        auto it = s.stack.find(base.off + insn.off);
        if (it != s.stack.end()) loaded = it->second;
      }
      reg(insn.dst) = loaded;
      return flow(pc + 1, s, pc);
    }
    case isa::kClassSt:
    case isa::kClassStx: {
      const Value base = reg(insn.dst);
      const bool atomic = (insn.opcode & isa::kModeMask) == isa::kModeAtomic;
      if (base.kind == Value::kStack) {
        const std::int64_t off = base.off + insn.off;
        const std::uint8_t size = size_bytes(insn.opcode);
        forget_stack_bytes(s, off, size);
        if (cls == isa::kClassStx && !atomic && size == 8) {
          const Value v = reg(insn.src);
          if (v.kind != Value::kOther) s.stack[off] = v;
        }
      }
      if (atomic) {
        if (insn.imm == isa::kAtomicCmpxchg) s.regs[0] = {};
        else if (insn.imm & isa::kAtomicFetch) reg(insn.src) = {};
      }
      return flow(pc + 1, s, pc);
    }
    case isa::kClassJmp:
    case isa::kClassJmp32: {
      if (cls == isa::kClassJmp && op == 0x90) return {};  // exit
      if (cls == isa::kClassJmp && op == 0x80) {          // call
        if (insn.src == 1) {                              // bpf-to-bpf: the callee starts with r1-r5
          State callee;
          for (int r = 1; r <= 5; ++r) callee.regs[r] = s.regs[r];
          callee.regs[10] = {Value::kStack, 0};
          BPFVM_TRY(flow(static_cast<std::size_t>(static_cast<std::int64_t>(pc) + 1 + insn.imm), callee, pc));
        }
        for (int r = 0; r <= 5; ++r) s.regs[r] = {};
        return flow(pc + 1, s, pc);
      }
      if (op == 0x00) {  // ja / gotol
        const std::int64_t delta = cls == isa::kClassJmp32 ? insn.imm : insn.off;
        return flow(static_cast<std::size_t>(static_cast<std::int64_t>(pc) + 1 + delta), s, pc);
      }
      BPFVM_TRY(flow(pc + 1, s, pc));
      return flow(static_cast<std::size_t>(static_cast<std::int64_t>(pc) + 1 + insn.off), s, pc);
    }
    default: return make_error(Errc::kInvalid, "unknown instruction class").at_insn(pc);
  }
}

Result<std::vector<CtxAccess>> Analysis::run() {
  if (insns_.empty()) return std::vector<CtxAccess>{};
  State entry;
  entry.regs[1] = {Value::kCtx, 0};
  entry.regs[10] = {Value::kStack, 0};
  in_[0] = entry;
  work_.push_back(0);
  while (!work_.empty()) {
    const std::size_t pc = work_.front();
    work_.pop_front();
    BPFVM_TRY(step(pc));
  }
  std::vector<CtxAccess> out;
  for (std::size_t pc = 0; pc < insns_.size(); ++pc) {
    if (!in_[pc]) continue;
    const RawInsn& insn = insns_[pc];
    const std::uint8_t cls = insn.cls();
    const std::uint8_t mode = insn.opcode & isa::kModeMask;
    const bool load = cls == isa::kClassLdx && (mode == isa::kModeMem || mode == isa::kModeMemSx);
    const bool store = (cls == isa::kClassSt || cls == isa::kClassStx);
    if (!load && !store) continue;
    const std::uint8_t base_reg = load ? insn.src : insn.dst;
    if (base_reg >= isa::kNumRegisters) continue;
    const Value base = in_[pc]->regs[base_reg];
    if (base.kind == Value::kMixed) {
      return make_error(Errc::kAccess, "same insn cannot be used with different pointers: r{} may point to the "
                                       "context or to other memory here", base_reg).at_insn(pc);
    }
    if (base.kind == Value::kCtxVarOff) {
      return make_error(Errc::kAccess, "dereference of modified ctx ptr r{}: its offset is not a constant", base_reg)
          .at_insn(pc);
    }
    if (base.kind != Value::kCtx) continue;
    if (mode == isa::kModeAtomic) {
      return make_error(Errc::kAccess, "BPF_ATOMIC stores into R{} ctx is not allowed", base_reg).at_insn(pc);
    }
    if (mode == isa::kModeMemSx) {
      return make_error(Errc::kAccess, "sign-extending loads from the context are not allowed").at_insn(pc);
    }
    out.push_back({pc, static_cast<std::int32_t>(base.off + insn.off), size_bytes(insn.opcode),
                   load ? CtxAccess::Kind::kLoad : CtxAccess::Kind::kStore});
  }
  return out;
}

}  // namespace

Result<std::vector<CtxAccess>> find_ctx_accesses(std::span<const isa::RawInsn> insns) {
  return Analysis(insns).run();
}

}  // namespace bpfvm::verifier
