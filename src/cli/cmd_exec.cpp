// bpfvm exec FILE [--syntax kernel|conformance] [--mem-hex HEX | --mem-file F] [--interpret|--jit]
//                 [--max-insns N]
// Runs a raw program with r1 = a private copy of the memory, r2 = its length, r10 = the stack, and
// prints r0 as the last line. By default in the interpreter's checked mode (the program has not been
// verified: every access is confined and the run has a budget); with --jit the verifier checks it first,
// as a program whose r1 points at that many bytes, and the JIT runs it only if the verifier accepts it
// (a refusal is explained).
#include "bpfvm/base/file.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/verifier/verifier.hpp"
#include "bpfvm/vm/interpreter.hpp"
#include "bpfvm/vm/jit.hpp"
#include "command.hpp"

namespace bpfvm::cli {

namespace {

// Native code runs only what the verifier proved safe for this memory.
int exec_jit(const std::string& input, std::span<const isa::RawInsn> program, std::vector<std::uint8_t>& mem) {
  if (!vm::JitProgram::available()) return fail(make_error(Errc::kNotSupported, "--jit: no JIT for this host"));
  verifier::Rejection rejection;
  verifier::VerifierOptions vopts;
  vopts.memory_arg = static_cast<std::uint32_t>(mem.size());
  vopts.rejection = &rejection;
  if (auto verdict = verifier::verify(program, vopts); !verdict) {
    fmt::print(stderr, "Error: --jit: '{}' is refused by the verifier (r1 = {} bytes of memory, r2 = {}), so it "
                       "does not run natively; without --jit the interpreter runs it checked:\n{}",
               input, mem.size(), mem.size(), verifier::explain(rejection, program));
    return kExitError;
  }
  auto native = vm::JitProgram::compile(program, vm::HelperTable{});
  if (!native) return fail(std::move(native).error().with_context(fmt::format("compile '{}'", input)));
  vm::RunContext ctx;
  ctx.r1 = mem.empty() ? 0 : reinterpret_cast<std::uint64_t>(mem.data());
  ctx.r2 = mem.size();
  ctx.packet = mem;
  auto r0 = native->run(ctx);
  if (!r0) return fail(std::move(r0).error().with_context(fmt::format("run '{}'", input)));
  fmt::print("0x{:x}\n", *r0);
  return kExitOk;
}

}  // namespace

int cmd_exec(Args& args) {
  std::string input;
  std::optional<isa::AsmSyntax> syntax;
  std::optional<std::string> mem_hex, mem_file;
  bool jit = false;
  // Unverified code runs with a budget so that a loop cannot hang the command; about a second of work.
  std::uint64_t max_insns = 1'000'000'000;
  while (!args.empty()) {
    std::string_view a = args.next();
    if (a == "--syntax") {
      std::string s = args.value_of(a);
      syntax = parse_syntax(s);
      if (!syntax) throw UsageError{fmt::format("unknown syntax '{}' (kernel or conformance)", s)};
    } else if (a == "--mem-hex") {
      mem_hex = args.value_of(a);
    } else if (a == "--mem-file") {
      mem_file = args.value_of(a);
    } else if (a == "--interpret") {
      jit = false;
    } else if (a == "--jit") {
      jit = true;
    } else if (a == "--max-insns") {
      std::string v = args.value_of(a);
      char* end = nullptr;
      errno = 0;
      max_insns = std::strtoull(v.c_str(), &end, 0);
      if (errno != 0 || end == v.c_str() || *end != '\0' || v.starts_with("-")) {
        throw UsageError{fmt::format("--max-insns takes a count, not '{}'", v)};
      }
    } else if (input.empty() && !a.starts_with("-")) {
      input = a;
    } else {
      throw UsageError{fmt::format("unexpected argument '{}'", a)};
    }
  }
  if (input.empty()) throw UsageError{"exec needs a FILE"};
  if (mem_hex && mem_file) throw UsageError{"give --mem-hex or --mem-file, not both"};
  std::vector<std::uint8_t> mem;
  if (mem_hex) {
    auto parsed = parse_hex_bytes(*mem_hex);
    if (!parsed) {
      fmt::print(stderr, "Error: --mem-hex: {}\n", parsed.error().to_string());
      return kExitError;
    }
    mem = std::move(*parsed);
  } else if (mem_file) {
    auto read = os::read_file(*mem_file);
    if (!read) {
      fmt::print(stderr, "Error: {}\n", read.error().to_string());
      return kExitError;
    }
    mem = std::move(*read);
  }
  auto program = read_program(input, syntax);
  if (!program) {
    fmt::print(stderr, "Error: {}\n", program.error().to_string());
    return kExitError;
  }
  if (jit) return exec_jit(input, *program, mem);
  vm::InterpreterOptions options;
  options.checked = true;
  options.max_instructions = max_insns;
  auto interp = vm::Interpreter::load(*program, vm::HelperTable{}, options);
  if (!interp) {
    fmt::print(stderr, "Error: load '{}': {}\n", input, interp.error().to_string());
    return kExitError;
  }
  vm::RunContext ctx;
  vm::MemoryRegion region = vm::MemoryRegion::of(mem.data(), mem.size(), "mem");
  if (!mem.empty()) {
    ctx.r1 = reinterpret_cast<std::uint64_t>(mem.data());
    ctx.r2 = mem.size();
    ctx.regions = std::span<const vm::MemoryRegion>(&region, 1);
    ctx.packet = mem;
  }
  auto r0 = interp->run(ctx);
  if (!r0) {
    fmt::print(stderr, "Error: run '{}': {}\n", input, r0.error().to_string());
    return kExitError;
  }
  fmt::print("0x{:x}\n", *r0);
  return kExitOk;
}

}  // namespace bpfvm::cli
