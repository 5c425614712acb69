// bpfvm-conformance [--dispatch threaded|switch] [--unchecked] [--jit [--harden] [--no-bmi2]] [-v] FILE.data|DIR...
// Runs conformance test files through the interpreter or the JIT and prints "<engine>: N passed, N failed".
// Helper 5 returns its first argument, and a program that gets 0 from it ends with r0 = 0 (the suite's
// "unwind" convention).
#include <filesystem>
#include <algorithm>

#include <fmt/format.h>

#include "bpfvm/base/file.hpp"
#include "bpfvm/vm/interpreter.hpp"
#include "bpfvm/vm/jit.hpp"
#include "data_file.hpp"

namespace {

std::uint64_t unwind_helper(std::uint64_t r1, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                            bpfvm::vm::CallContext* ctx) {
  if (r1 == 0) ctx->request_exit();
  return r1;
}

struct Skip {};

// Runs one case; returns the reason it failed, or nothing. Throws Skip for a case this mode cannot run.
struct Engine {
  bpfvm::vm::InterpreterOptions interpreter;
  bool jit = false;
  bpfvm::vm::JitOptions jit_options;
};

std::optional<std::string> run_case(const std::string& path, const Engine& engine) {
  const bpfvm::vm::InterpreterOptions& options = engine.interpreter;
  using namespace bpfvm;
  auto text = os::read_text_file(path);
  if (!text) return text.error().to_string();
  auto c = test::parse_data_file(*text, path);
  if (!c) return c.error().to_string();
  // Unchecked mode trusts the program (the verifier's job); cases that expect a fault need checked mode.
  if (c->error && (!options.checked || engine.jit)) throw Skip{};
  auto program = test::program_of(*c);
  vm::HelperTable helpers;
  helpers.set(5, unwind_helper);
  Result<std::uint64_t> r0 = make_error(Errc::kInvalid, "not run");
  std::vector<std::uint8_t> mem = c->mem;
  vm::MemoryRegion region = vm::MemoryRegion::of(mem.data(), mem.size(), "mem");
  vm::RunContext ctx;
  if (!mem.empty()) {
    ctx.r1 = reinterpret_cast<std::uint64_t>(mem.data());
    ctx.r2 = mem.size();
    ctx.regions = std::span<const vm::MemoryRegion>(&region, 1);
    ctx.packet = mem;
  }
  if (program && engine.jit) {
    auto jit = vm::JitProgram::compile(*program, helpers, engine.jit_options);
    r0 = jit ? jit->run(ctx) : Result<std::uint64_t>(std::move(jit).error());
  } else if (program) {
    auto interp = vm::Interpreter::load(*program, helpers, options);
    r0 = interp ? interp->run(ctx) : Result<std::uint64_t>(std::move(interp).error());
  } else {
    r0 = std::move(program).error();
  }
  if (c->error) {
    if (r0) return fmt::format("expected an error '{}', got r0 = 0x{:x}", *c->error, *r0);
    if (r0.error().to_string().find(*c->error) == std::string::npos) {
      return fmt::format("expected an error containing '{}', got '{}'", *c->error, r0.error().to_string());
    }
    return std::nullopt;
  }
  if (!r0) return r0.error().to_string();
  if (c->result && *r0 != *c->result) return fmt::format("r0 = 0x{:x}, expected 0x{:x}", *r0, *c->result);
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  Engine engine;
  bpfvm::vm::InterpreterOptions& options = engine.interpreter;
  options.checked = true;
  options.max_instructions = 100'000'000;
  bool verbose = false;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dispatch" && i + 1 < argc) {
      std::string d = argv[++i];
      if (d == "switch") {
        options.dispatch = bpfvm::vm::InterpreterOptions::Dispatch::kSwitch;
      } else if (d != "threaded") {
        fmt::print(stderr, "Error: unknown dispatch '{}'\n", d);
        return 2;
      }
    } else if (a == "--unchecked") {
      options.checked = false;
    } else if (a == "--jit") {
      engine.jit = true;
    } else if (a == "--harden") {
      engine.jit_options.harden = true;
    } else if (a == "--no-bmi2") {
      engine.jit_options.bmi2 = false;
    } else if (a == "-v") {
      verbose = true;
    } else if (std::filesystem::is_directory(a)) {
      for (const auto& e : std::filesystem::directory_iterator(a)) {
        if (e.path().extension() == ".data") files.push_back(e.path().string());
      }
    } else if (std::filesystem::exists(a)) {
      files.push_back(a);
    } else {
      fmt::print(stderr, "Error: no such file or directory '{}'\n", a);
      return 2;
    }
  }
  if (files.empty()) {
    fmt::print(stderr, "Usage: bpfvm-conformance [--dispatch threaded|switch] [--unchecked] [--jit [--harden] [--no-bmi2]] [-v] FILE.data|DIR...\n");
    return 2;
  }
  std::sort(files.begin(), files.end());
  int passed = 0, failed = 0, skipped = 0;
  for (const std::string& f : files) {
    std::optional<std::string> why;
    try {
      why = run_case(f, engine);
    } catch (const Skip&) {
      ++skipped;
      continue;
    }
    if (why) {
      ++failed;
      fmt::print("FAIL {}: {}\n", f, *why);
    } else {
      ++passed;
      if (verbose) fmt::print("PASS {}\n", f);
    }
  }
  std::string name = options.dispatch == bpfvm::vm::InterpreterOptions::Dispatch::kSwitch ? "interpreter-switch"
                                                                                            : "interpreter";
  if (!options.checked) name += "-unchecked";
  if (engine.jit) {
    name = "jit";
    if (engine.jit_options.harden) name += "-hardened";
    if (!engine.jit_options.bmi2) name += "-no-bmi2";
  }
  if (skipped) {
    fmt::print("{}: {} passed, {} failed, {} skipped\n", name, passed, failed, skipped);
  } else {
    fmt::print("{}: {} passed, {} failed\n", name, passed, failed);
  }
  return failed == 0 ? 0 : 1;
}
