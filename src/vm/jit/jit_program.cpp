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
    return l;
  }();
  return layout;
}

Result<std::uint64_t> execute(const JitProgram::Code& code, const RunContext& ctx) {
  if (ctx.entry >= code.slots || !code.starts[ctx.entry]) {
    return make_error(Errc::kInvalid, "no instruction starts at {}", ctx.entry);
  }
  alignas(16) std::uint8_t stack[isa::kMaxCallFrames * isa::kStackSize];
  const auto stack_lo = reinterpret_cast<std::uint64_t>(stack);
  Run run(ctx.user);
  run.state.frame_floor = stack_lo + 2 * isa::kStackSize;
  run.state.packet = reinterpret_cast<std::uint64_t>(ctx.packet.data());
  run.state.packet_size = ctx.packet.size();
  // Callbacks run as a nested run from their first instruction, on a stack of their own; they reach
  // the caller's stack through the pointers they are given.
  auto invoke = [&](std::uint64_t pc, const std::uint64_t (&args)[5]) -> Result<std::uint64_t> {
    return execute(code, BPFVM_TRY(ctx.callback(pc, args, code.slots)));
  };
  run.call.set_invoker(
      [](const void* self, std::uint64_t pc, const std::uint64_t (&args)[5]) {
        return (*static_cast<const decltype(invoke)*>(self))(pc, args);
      },
      &invoke);
  const std::uint64_t args[5] = {ctx.r1, ctx.r2, ctx.r3, ctx.r4, ctx.r5};
  const std::uint8_t* base = code.native.memory.data();
  const auto entry = reinterpret_cast<jit::Entry>(const_cast<std::uint8_t*>(base));
  const std::uint64_t r0 = entry(&run.state, args, stack_lo + sizeof stack, base + code.native.insn_offsets[ctx.entry]);
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
  auto ops = BPFVM_TRY(detail::predecode(program, helpers));
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

std::span<const std::uint8_t> JitProgram::code() const { return {code_->native.memory.data(), code_->native.size}; }
std::uint64_t JitProgram::code_address() const { return reinterpret_cast<std::uint64_t>(code_->native.memory.data()); }
std::span<const std::uint32_t> JitProgram::insn_offsets() const { return code_->native.insn_offsets; }

JitProgram::JitProgram(std::unique_ptr<Code> code, JitOptions options) : code_(std::move(code)), options_(options) {}
JitProgram::JitProgram(JitProgram&&) noexcept = default;
JitProgram& JitProgram::operator=(JitProgram&&) noexcept = default;
JitProgram::~JitProgram() = default;

}  // namespace bpfvm::vm
