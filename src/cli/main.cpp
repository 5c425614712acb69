// bpfvm: the command line. Grammar follows bpftool where a bpftool command exists.
#include <fmt/format.h>

#include <cstring>

#include "command.hpp"
#include "json_output.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: bpfvm asm FILE [--syntax kernel|conformance] -o OUT.bin\n"
    "       bpfvm disasm FILE.bin|FILE.o|FILE.s [opcodes]\n"
    "       bpfvm exec FILE [--syntax kernel|conformance] [--mem-hex HEX | --mem-file F]\n"
    "                       [--interpret | --jit] [--max-insns N]\n"
    "       bpfvm [--jit | --interpret] prog load|loadall OBJ PATH [type TYPE] [pinmaps MAP_DIR]\n"
    "       bpfvm prog run pinned PATH [data_in FILE] [data_out FILE [data_size_out L]]\n"
    "                       [ctx_in FILE] [ctx_out FILE [ctx_size_out M]] [repeat N]\n"
    "       bpfvm prog dump xlated|jited pinned PATH [{file FILE | [opcodes] [linum]}]\n"
    "       bpfvm prog tracelog\n"
    "       bpfvm [--jit | --interpret] trace PROG.bpf.c|PROG.bpf.o {-- CMD ARGS... | -p PID}\n"
    "       bpfvm veristat OBJ... [-o table|csv] [-t TYPE] [-v] [-l 1|2]\n"
    "       bpfvm help\n"
    "\n"
    "FILE ending in .bin holds raw little-endian instructions; any other FILE is assembler text, in the\n"
    "kernel/bpftool syntax (\"r0 = 1\") or the conformance suite's (\"mov %r0, 1\"), detected unless --syntax\n"
    "says which. exec runs the program checked (it is not verified) with r1 = a copy of the memory,\n"
    "r2 = its length, and prints r0.\n"
    "\n"
    "prog loadall loads every program of a clang-built BPF object and pins each as PATH/<name> (maps too,\n"
    "under MAP_DIR, with pinmaps); prog load loads them all and pins the first at PATH. Each program is\n"
    "verified first; a refusal is explained (source line, path, hint). prog run runs a pinned program as BPF_PROG_TEST_RUN does. Pins live\n"
    "under $BPFVM_PIN_ROOT (default /run/bpfvm); /sys/fs/bpf/... paths name the same place. Programs run\n"
    "in the x86-64 JIT (--interpret, or BPFVM_JIT=0, picks the interpreter; BPFVM_JIT_HARDEN=1 blinds the\n"
    "JIT's constants). prog dump jited prints a program's native code, each BPF instruction above the code it\n"
    "became. prog tracelog prints bpf_trace_printk lines until Ctrl-C.\n"
    "\n"
    "veristat verifies every program of each object without running it, as the kernel's veristat does:\n"
    "verdict, time, processed instructions and states; -v explains each failure (source line, path, hint),\n"
    "-l prints the verifier's log at level 1 or 2, -t sets the program type for non-standard SEC names.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace bpfvm::cli;
  if (argc < 2) {
    fmt::print(stderr, "{}", kUsage);
    return kExitUsage;
  }
  // Global options before the command: the engine, and bpftool's -j/--json and -p/--pretty.
  int first = 1;
  std::optional<bool> jit;
  const auto global_option = [&](std::string_view a) {
    if (a == "--jit" || a == "--interpret") {
      jit = a == "--jit";
    } else if (a == "-j" || a == "--json") {
      output_format().json = true;
    } else if (a == "-p" || a == "--pretty") {
      output_format().json = output_format().pretty = true;
    } else {
      return false;
    }
    return true;
  };
  while (first < argc && global_option(argv[first])) ++first;
  if (first >= argc) {
    fmt::print(stderr, "{}", kUsage);
    return kExitUsage;
  }
  const std::string_view command = argv[first];
  // bpftool's commands take the options anywhere (getopt permutes them), as bpftool does.
  std::vector<char*> rest;
  const bool bpftool_grammar = command == "prog" || command == "map" || command == "btf" || command == "link" ||
                               command == "perf" || command == "feature";
  for (int i = first + 1; i < argc; ++i) {
    if (bpftool_grammar && global_option(argv[i])) continue;
    rest.push_back(argv[i]);
  }
  Args args(std::span<char*>(rest.data(), rest.size()));
  try {
    if (command == "asm") return cmd_asm(args);
    if (command == "disasm") return cmd_disasm(args);
    if (command == "exec") return cmd_exec(args);
    if (command == "prog") return cmd_prog(args, jit);
    if (command == "veristat") return cmd_veristat(args);
    if (command == "trace") return cmd_trace(args, jit);
    if (command == "map") return cmd_map(args);
    if (command == "help" || command == "--help" || command == "-h") {
      fmt::print("{}", kUsage);
      return kExitOk;
    }
    throw UsageError{fmt::format("unknown command '{}'", command)};
  } catch (const UsageError& e) {
    fmt::print(stderr, "Error: {}\n{}", e.message, kUsage);
    return kExitUsage;
  }
}
