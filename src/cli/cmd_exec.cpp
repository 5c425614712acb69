// bpfvm exec FILE [--syntax kernel|conformance] [--mem-hex HEX | --mem-file F] [--interpret|--jit]
//                 [--max-insns N]
// Runs a raw program in the interpreter's checked mode (it has not been verified): r1 = a private copy
// of the memory, r2 = its length, r10 = the stack. Prints r0 as the last line.
#include "bpfvm/base/file.hpp"
#include "bpfvm/base/hex.hpp"
#include "bpfvm/vm/interpreter.hpp"
#include "command.hpp"

namespace bpfvm::cli {

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
  if (jit) {
    fmt::print(stderr, "Error: --jit: exec runs programs no verifier has proven safe, which only the interpreter's "
                       "checked mode runs safely; load the program with 'prog load' to run it in the JIT\n");
    return kExitError;
  }
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
