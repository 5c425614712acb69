#include "bpfvm/vm/jit.hpp"

#include "compiler.hpp"
#include "run_state.hpp"

namespace bpfvm::vm {

struct JitProgram::Code {
  jit::NativeCode native;
  std::vector<HelperFn> callx_table;  // helper id -> function, for callx
  std::size_t slots = 0;
  std::vector<std::uint8_t> starts;   // 1 where a slot begins an instruction (a possible entry)
};

namespace {

// What JIT code sees of a run (r12 points at `state`) and the CallContext its helpers get.
struct Run {
  explicit Run(void* user) : call(user) {}
  jit::RunState state;
  CallContext call;
};

jit::ContextLayout context_layout() {
  static const jit::ContextLayout layout = [] {
    static const Run probe(nullptr);  // static: a local one's inlined destructor trips GCC's -Wmaybe-uninitialized
    const auto* base = reinterpret_cast<const char*>(&probe.state);
    jit::ContextLayout l;
    l.call = static_cast<std::int32_t>(reinterpret_cast<const char*>(&probe.call) - base);
    l.exit_flag = static_cast<std::int32_t>(reinterpret_cast<const char*>(probe.call.exit_flag()) - base);
    l.user = static_cast<std::int32_t>(reinterpret_cast<const char*>(probe.call.user_slot()) - base);
    return l;
  }();
  return layout;
}

// The native entry (the trampoline) and where instruction `entry` starts.
jit::Entry entry_of(const JitProgram::Code& code) {
  return reinterpret_cast<jit::Entry>(const_cast<std::uint8_t*>(code.native.memory.data()));
}
const void* target_of(const JitProgram::Code& code, std::size_t entry) {
  return code.native.memory.data() + code.native.insn_offsets[entry];
}

// How a run that stopped early (a helper's failure, a fault) ended, as an error. Out of line: a run's
// fast path is the call and a test.
[[gnu::noinline, gnu::cold]] Result<std::uint64_t> stopped(Run& run, std::uint64_t r0) {
  if (run.call.failed()) return run.call.take_failure();
  switch (static_cast<jit::Fault>(run.state.fault)) {
    case jit::Fault::kNone: return r0;
    case jit::Fault::kCallDepth:
      return make_error(Errc::kLimit, "call exceeds the limit of {} call frames", isa::kMaxCallFrames)
          .at_insn(run.state.fault_pc);
    case jit::Fault::kCallx:
      return make_error(Errc::kNotSupported, "callx to helper id {}, which is not available here",
                        run.state.fault_value)
          .at_insn(run.state.fault_pc);
    case jit::Fault::kNoCode:
      return make_error(Errc::kInvalid, "executed the second half of a 64-bit immediate load")
          .at_insn(run.state.fault_pc);
  }
  return make_error(Errc::kInvalid, "JIT code stopped with an unknown fault {}", run.state.fault);
}

// Enters the code with `args` and the stack ending at `stack_top`: shared by single runs and Runners.
inline Result<std::uint64_t> enter(jit::Entry fn, const void* target, Run& run, const std::uint64_t (&args)[5],
                                   std::uint64_t stack_top) {
  const std::uint64_t r0 = fn(&run.state, args, stack_top, target);
  if (run.state.fault != 0 || run.call.failed()) [[unlikely]] return stopped(run, r0);
  return r0;
}

Result<std::uint64_t> execute(const JitProgram::Code& code, const RunContext& ctx);

// Callbacks run as a nested run from their first instruction, on a stack of their own; they reach the
// caller's stack through the pointers they are given.
struct Callbacks {
  const JitProgram::Code* code;
  const RunContext* ctx;
  static Result<std::uint64_t> invoke(const void* self, std::uint64_t pc, const std::uint64_t (&args)[5]) {
    const auto* c = static_cast<const Callbacks*>(self);
    return execute(*c->code, BPFVM_TRY(c->ctx->callback(pc, args, c->code->slots)));
  }
};

void prepare(Run& run, const RunContext& ctx, std::uint64_t stack_lo, const Callbacks& callbacks) {
  run.state.frame_floor = stack_lo + 2 * isa::kStackSize;
  run.state.packet = reinterpret_cast<std::uint64_t>(ctx.packet.data());
  run.state.packet_size = ctx.packet.size();
  run.call.set_invoker(&Callbacks::invoke, &callbacks);
}

Result<void> check_entry(const JitProgram::Code& code, std::size_t entry) {
  if (entry >= code.slots || !code.starts[entry]) return make_error(Errc::kInvalid, "no instruction starts at {}", entry);
  return {};
}

Result<std::uint64_t> execute(const JitProgram::Code& code, const RunContext& ctx) {
  BPFVM_TRY(check_entry(code, ctx.entry));
  alignas(16) std::uint8_t stack[isa::kMaxCallFrames * isa::kStackSize];
  const auto stack_lo = reinterpret_cast<std::uint64_t>(stack);
  Run run(ctx.user);
  const Callbacks callbacks{&code, &ctx};
  prepare(run, ctx, stack_lo, callbacks);
  const std::uint64_t args[5] = {ctx.r1, ctx.r2, ctx.r3, ctx.r4, ctx.r5};
  return enter(entry_of(code), target_of(code, ctx.entry), run, args, stack_lo + sizeof stack);
}

}  // namespace

bool JitProgram::available() {
#if defined(__x86_64__)
  return true;
#else
  return false;
#endif
}

Result<JitProgram> JitProgram::compile(std::span<const isa::RawInsn> program, const HelperTable& helpers,
                                       JitOptions options) {
  if (!available()) return make_error(Errc::kNotSupported, "the JIT needs an x86-64 host");
  auto ops = BPFVM_TRY(detail::predecode(program, helpers, options.probe_loads));
  auto code = std::make_unique<Code>();
  code->callx_table.assign(helpers.all().begin(), helpers.all().end());
  if (options.bmi2) options.bmi2 = __builtin_cpu_supports("bmi2");
  code->native = BPFVM_TRY(jit::compile_native(ops, code->callx_table, options, context_layout()));
  code->slots = ops.size();
  code->starts.resize(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) code->starts[i] = ops[i].code != detail::IOp::FILLER;
  return JitProgram(std::move(code), options);
}

Result<std::uint64_t> JitProgram::run(const RunContext& ctx) const { return execute(*code_, ctx); }

struct JitProgram::Runner::State {
  State(const Code& c, const RunContext& context) : code(c), ctx(context), run(context.user), callbacks{&code, &ctx} {}
  const Code& code;
  const RunContext ctx;
  Run run;
  const Callbacks callbacks;
  Result<void> entry_ok = ok();
  jit::Entry fn = nullptr;      // what run() enters, computed once
  const void* target = nullptr;
  std::uint64_t stack_top = 0;
  alignas(16) std::uint8_t stack[isa::kMaxCallFrames * isa::kStackSize];
};

JitProgram::Runner::Runner(const JitProgram& program, const RunContext& ctx) {
  static_assert(sizeof(State) <= sizeof(storage_) && alignof(State) <= 64, "JitProgram::Runner's storage is too small");
  State* s = new (storage_) State(*program.code_, ctx);
  s->entry_ok = check_entry(s->code, ctx.entry);
  prepare(s->run, s->ctx, reinterpret_cast<std::uint64_t>(s->stack), s->callbacks);
  if (s->entry_ok) {
    s->fn = entry_of(s->code);
    s->target = target_of(s->code, ctx.entry);
  }
  s->stack_top = reinterpret_cast<std::uint64_t>(s->stack) + sizeof s->stack;
}

JitProgram::Runner::~Runner() { state().~State(); }

Result<std::uint64_t> JitProgram::Runner::run(std::uint64_t r1) {
  State& s = state();
  if (!s.fn) [[unlikely]] return s.entry_ok.error();
  // What a run may have changed: the fault and the exit request (a failure is taken when reported).
  s.run.state.fault = 0;
  s.run.call.begin_call();
  const std::uint64_t args[5] = {r1, s.ctx.r2, s.ctx.r3, s.ctx.r4, s.ctx.r5};
  return enter(s.fn, s.target, s.run, args, s.stack_top);
}

std::span<const std::uint8_t> JitProgram::code() const { return {code_->native.memory.data(), code_->native.size}; }
std::uint64_t JitProgram::code_address() const { return reinterpret_cast<std::uint64_t>(code_->native.memory.data()); }
std::span<const std::uint32_t> JitProgram::insn_offsets() const { return code_->native.insn_offsets; }

JitProgram::JitProgram(std::unique_ptr<Code> code, JitOptions options) : code_(std::move(code)), options_(options) {}
JitProgram::JitProgram(JitProgram&&) noexcept = default;
JitProgram& JitProgram::operator=(JitProgram&&) noexcept = default;
JitProgram::~JitProgram() = default;

}  // namespace bpfvm::vm
