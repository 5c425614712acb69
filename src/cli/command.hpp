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

// bpfvm's own commands (asm, disasm, exec, veristat):
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the command ran and failed (bad input, program fault)
inline constexpr int kExitUsage = 2;  // the command line itself is wrong
// bpftool's commands (prog, map, btf, link, perf, feature) exit as bpftool does: main turns kExitError
// and kExitUsage into 255 (bpftool's -1), and a failed map or pin operation exits with exit_errno().
inline constexpr int kExitBpftoolFailure = 255;
// bpfvm trace, a wrapper of a command, exits as the command does; its own failures take the codes of
// timeout(1) and env(1), which no ordinary command uses for itself.
inline constexpr int kExitTraceFailure = 125;      // bpfvm itself failed (program, load, attach, usage)
inline constexpr int kExitCannotRun = 126;         // the command exists but cannot be run
inline constexpr int kExitCommandNotFound = 127;   // the command was not found
// A command returns kExitBySignal + N to end bpfvm by signal N once its objects are cleaned up (main
// re-raises it, as strace does for a command that was killed).
inline constexpr int kExitBySignal = 0x100;

// bpftool's code for a failed bpf() operation: -errno truncated to 8 bits (ENOENT 254, EEXIST 239).
int exit_errno(const Error& e);
// Prints bpftool's "Error: WHAT: strerror(errno)" (a JSON {"error": ...} object under -j) and returns
// exit_errno(e); the message is the kernel's word for the errno, as scripts written for bpftool expect.
int fail_errno(std::string_view what, const Error& e);
// A pin that failed: bpftool's do_pin_fd message, and the errno.
int fail_pin(const std::string& file, const Error& e);

// A usage mistake: main prints the message and the usage text, and exits 2. bpftool's commands print as
// bpftool does: the message alone ("Error: ...", JSON under -j), or for an unknown command (`help`) the
// usage text alone (JSON null under -j); they exit 255.
struct UsageError {
  std::string message;
  bool help = false;
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
int cmd_run(Args& args);
int cmd_agent(Args& args);
int cmd_attach(Args& args, bool detach);
int cmd_map(Args& args);
int cmd_btf(Args& args);
int cmd_link(Args& args);
int cmd_perf(Args& args);
int cmd_feature(Args& args);
int cmd_version(Args& args);

}  // namespace bpfvm::cli
