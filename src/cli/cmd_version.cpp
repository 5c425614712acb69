// bpfvm version / -V / --version: what bpftool's `version` says of itself (version, what it was built
// with, optional features), for bpfvm: the version, the build type and compiler, and the engines and
// disassemblers compiled in.
#include <fmt/format.h>

#include "command.hpp"
#include "json_output.hpp"

namespace bpfvm::cli {

namespace {

#if defined(__x86_64__)
constexpr bool kHasJit = true;  // x86-64 code through asmjit; the interpreter everywhere
#else
constexpr bool kHasJit = false;
#endif

}  // namespace

int cmd_version(Args& args) {
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}'", args.peek())};
  const std::string compiler =
#if defined(__clang__)
      fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
      fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
      "unknown";
#endif
  const std::string build_type = BPFVM_BUILD_TYPE;
#if defined(__SANITIZE_ADDRESS__)
  constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  constexpr bool kSanitized = true;
#else
  constexpr bool kSanitized = false;
#endif
#else
  constexpr bool kSanitized = false;
#endif
  if (output_format().json) {
    ojson j;
    j["version"] = BPFVM_VERSION;
    j["build_type"] = build_type;
    j["compiler"] = compiler;
    j["features"] = {{"jit", kHasJit}, {"interpreter", true}, {"jited_disasm", true}, {"sanitizers", kSanitized}};
    print_json(j);
    return kExitOk;
  }
  fmt::print("bpfvm v{}\n", BPFVM_VERSION);
  fmt::print("build: {}, {}{}\n", build_type.empty() ? "default" : build_type, compiler,
             kSanitized ? ", ASan+UBSan" : "");
  // jited_disasm: `prog dump jited` decodes native code with Zydis, where bpftool needs libbfd or LLVM.
  fmt::print("features: {}interpreter, jited_disasm (zydis)\n", kHasJit ? "jit (x86-64, asmjit), " : "");
  return kExitOk;
}

}  // namespace bpfvm::cli
