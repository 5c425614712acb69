// Private to src/cli: the shape every subcommand has, and the exit codes.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/assembler.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the command ran and failed (bad input, program fault)
inline constexpr int kExitUsage = 2;  // the command line itself is wrong

// A usage mistake: main prints the message and the usage text, and exits 2.
struct UsageError {
  std::string message;
};

// A failure of the command: prints "Error: ..." (with the error's context and location) and returns 1.
int fail(const Error& e);

// Arguments after the subcommand, consumed front to back.
class Args {
 public:
  explicit Args(std::span<char*> args) : args_(args.begin(), args.end()) {}
  bool empty() const { return pos_ >= args_.size(); }
  std::string_view peek() const { return empty() ? std::string_view() : args_[pos_]; }
  std::string_view next() { return empty() ? std::string_view() : std::string_view(args_[pos_++]); }
  // The value after an option such as "--syntax"; a UsageError if there is none.
  std::string value_of(std::string_view option);

 private:
  std::vector<std::string_view> args_;
  std::size_t pos_ = 0;
};

// Reads a program: FILE ending in ".bin" is raw little-endian instructions, anything else assembler text
// in `syntax` (when unset, whichever syntax assembles the text).
Result<std::vector<isa::RawInsn>> read_program(const std::string& path, std::optional<isa::AsmSyntax> syntax);
std::optional<isa::AsmSyntax> parse_syntax(std::string_view name);

int cmd_asm(Args& args);
int cmd_disasm(Args& args);
int cmd_exec(Args& args);
// `engine`: the global --jit / --interpret choice; unset, the runtime's default (the JIT on x86-64).
int cmd_prog(Args& args, std::optional<bool> jit);
int prog_dump(Args& args);
int prog_show(Args& args);
int prog_pin(Args& args);
int prog_profile(Args& args);
int cmd_veristat(Args& args);
int cmd_trace(Args& args, std::optional<bool> jit);
int cmd_map(Args& args);
int cmd_btf(Args& args);
int cmd_link(Args& args);
int cmd_perf(Args& args);
int cmd_feature(Args& args);

}  // namespace bpfvm::cli
