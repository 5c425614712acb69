// bpfvm: the command line. Grammar follows bpftool where a bpftool command exists.
#include <fmt/format.h>

#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "command.hpp"
#include "json_output.hpp"

namespace {

constexpr const char* kUsage =
    "Usage: bpfvm [OPTIONS] OBJECT { COMMAND | help }\n"
    "       bpfvm { version | -V | --version }\n"
    "       OBJECT := { prog | map | btf | link | perf | feature | trace | run | agent | attach | detach | asm | disasm | exec |\n"
    "                   veristat }\n"
    "       OPTIONS := { --jit | --interpret | {-j|--json} [{-p|--pretty}] }\n"
    "\n"
    "bpftool's commands (prog, map, btf, link, perf, feature) work on the objects of every bpfvm process\n"
    "of the same user: ids, names and tags come from a registry under the pin root, $BPFVM_PIN_ROOT or by\n"
    "default root's /run/bpfvm, a user's $XDG_RUNTIME_DIR/bpfvm (else /tmp/bpfvm-UID), private to its owner;\n"
    "pins live there too (/sys/fs/bpf/... paths name the same place). They exit as bpftool does (255, or a\n"
    "failed operation's -errno); trace exits as its command does. Programs run in the x86-64 JIT (--interpret, or\n"
    "BPFVM_JIT=0, picks the interpreter; BPFVM_JIT_HARDEN=1 blinds the JIT's constants).\n"
    "'bpfvm OBJECT help' shows an object's commands.\n";

constexpr const char* kProgUsage =
    "Usage: bpfvm prog { show | list } [PROG]\n"
    "       bpfvm prog dump xlated PROG [{ file FILE | [opcodes] [linum] | visual [--svg FILE] }]\n"
    "       bpfvm prog dump jited  PROG [{ file FILE | [opcodes] [linum] }]\n"
    "       bpfvm prog pin   PROG FILE\n"
    "       bpfvm prog { load | loadall } OBJ PATH [type TYPE] [pinmaps MAP_DIR]\n"
    "       bpfvm prog run PROG [data_in FILE [data_out FILE [data_size_out L]]]\n"
    "                           [ctx_in FILE [ctx_out FILE [ctx_size_out M]]] [repeat N]\n"
    "       bpfvm prog profile PROG [duration DURATION] METRICs\n"
    "       bpfvm prog tracelog\n"
    "       bpfvm prog help\n"
    "\n"
    "       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }\n"
    "       METRIC := { cycles | instructions }\n"
    "\n"
    "load/loadall verify every program of a clang-built object first (a refusal is explained: source line,\n"
    "path, hint); run runs a program as BPF_PROG_TEST_RUN does; profile counts the runs of a program in the\n"
    "process that loaded it; tracelog prints bpf_trace_printk lines until Ctrl-C.\n";

constexpr const char* kMapUsage =
    "Usage: bpfvm map { show | list }   [MAP]\n"
    "       bpfvm map create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \\\n"
    "                                 entries MAX_ENTRIES name NAME [flags FLAGS] [inner_map MAP]\n"
    "       bpfvm map dump       MAP\n"
    "       bpfvm map update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]\n"
    "       bpfvm map lookup     MAP [key DATA]\n"
    "       bpfvm map getnext    MAP [key DATA]\n"
    "       bpfvm map delete     MAP  key DATA\n"
    "       bpfvm map pin        MAP  FILE\n"
    "       bpfvm map peek       MAP\n"
    "       bpfvm map push       MAP value VALUE\n"
    "       bpfvm map pop        MAP\n"
    "       bpfvm map enqueue    MAP value VALUE\n"
    "       bpfvm map dequeue    MAP\n"
    "       bpfvm map freeze     MAP\n"
    "       bpfvm map help\n"
    "\n"
    "       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }\n"
    "       DATA := { [hex] BYTES }\n"
    "       VALUE := { DATA | MAP }\n"
    "       UPDATE_FLAGS := { any | exist | noexist }\n";

constexpr const char* kBtfUsage =
    "Usage: bpfvm btf { show | list } [id BTF_ID]\n"
    "       bpfvm btf dump BTF_SRC [format FORMAT]\n"
    "       bpfvm btf help\n"
    "\n"
    "       BTF_SRC := { id BTF_ID | prog PROG | map MAP | file FILE }\n"
    "       FORMAT := { raw | c }\n";

constexpr const char* kLinkUsage =
    "Usage: bpfvm link { show | list } [id LINK_ID]\n"
    "       bpfvm perf [{ show | list }]\n"
    "       bpfvm feature probe [kernel]\n";

constexpr const char* kTraceUsage =
    "Usage: bpfvm [--jit | --interpret] trace [--ptrace] PROG.bpf.c|PROG.bpf.o [-- CMD ARGS... | -p PID]\n"
    "       bpfvm run -- CMD ARGS...\n"
    "       bpfvm agent { show | list | enable | disable }\n"
    "       bpfvm { attach | detach } PID\n"
    "\n"
    "trace compiles C (clang -target bpf -O2 -g, with libbpf's headers and include/bpf/bpfvm_trace.h),\n"
    "verifies and loads every program and attaches each by its SEC name: syscall events\n"
    "(tracepoint/syscalls/sys_enter_<name>, sys_exit_<name>, tracepoint/raw_syscalls/sys_enter|sys_exit,\n"
    "raw_tracepoint/sys_enter|sys_exit), process events (tracepoint/sched/sched_process_exec|fork|exit)\n"
    "and uprobes (uprobe/PATH:FUNC[+OFF], uretprobe/PATH:FUNC), run by\n"
    "the agent inside the processes in scope: the command's tree, process PID if it runs in scope, or with\n"
    "neither, every process in scope. Syscall events of a statically linked command, of a process not in\n"
    "scope, or with --ptrace are traced by ptrace instead. It prints trace_printk lines and perf/ring\n"
    "buffer records as they come, and the maps when the command exits or on Ctrl-C.\n"
    "run executes CMD in scope (the agent preloaded; its children too): the links of `bpfvm trace PROG`\n"
    "fire in it. agent show lists the processes in scope, the links each applied and why others failed.\n"
    "agent enable (root) puts every process started from then on in scope, through /etc/ld.so.preload\n"
    "(their agents join the registry of the pin root in effect); agent disable undoes it.\n"
    "attach PID loads the agent into a running process (ptrace, a remote dlopen), which then joins the\n"
    "scope; detach PID removes its probes and leaves it running.\n";

constexpr const char* kToolsUsage =
    "Usage: bpfvm asm FILE [--syntax kernel|conformance] -o OUT.bin\n"
    "       bpfvm disasm FILE.bin|FILE.o|FILE.s [opcodes]\n"
    "       bpfvm exec FILE [--syntax kernel|conformance] [--mem-hex HEX | --mem-file F]\n"
    "                       [--interpret | --jit] [--max-insns N]\n"
    "       bpfvm veristat OBJ... [-o table|csv] [-t TYPE] [--btf FILE] [-v] [-l 1|2]\n"
    "\n"
    "FILE ending in .bin holds raw little-endian instructions; any other FILE is assembler text, in the\n"
    "kernel/bpftool syntax (\"r0 = 1\") or the conformance suite's (\"mov %r0, 1\"), detected unless --syntax\n"
    "says which. exec runs the program checked (it is not verified) with r1 = a copy of the memory,\n"
    "r2 = its length, and prints r0. veristat verifies every program of each object without running it,\n"
    "as the kernel's veristat does: verdict, time, processed instructions and states; -v explains each\n"
    "failure and CO-RE relocation, -l prints the verifier's log at level 1 or 2, -t sets the program type.\n"
    "An OBJ may also be a program that embeds its objects (libbpf-tools' opensnoop). CO-RE relocations are\n"
    "applied against --btf FILE (raw BTF or an ELF file with .BTF), else /sys/kernel/btf/vmlinux.\n";

const char* usage_of(std::string_view command) {
  if (command == "prog") return kProgUsage;
  if (command == "map") return kMapUsage;
  if (command == "btf") return kBtfUsage;
  if (command == "link" || command == "perf" || command == "feature") return kLinkUsage;
  if (command == "trace" || command == "run" || command == "agent" || command == "attach" || command == "detach") {
    return kTraceUsage;
  }
  if (command == "asm" || command == "disasm" || command == "exec" || command == "veristat") return kToolsUsage;
  return kUsage;
}

bool is_bpftool_command(std::string_view command) {
  return command == "prog" || command == "map" || command == "btf" || command == "link" || command == "perf" ||
         command == "feature";
}

// Ends the process by `signal` (with core dumps off, so that no core of bpfvm's replaces the traced
// command's); returns 128 + signal for a signal whose default action is not to end a process.
int die_by_signal(int signal) {
  std::fflush(stdout);
  std::fflush(stderr);
  struct rlimit no_core {};
  ::setrlimit(RLIMIT_CORE, &no_core);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  ::sigaction(signal, &dfl, nullptr);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signal);
  ::sigprocmask(SIG_UNBLOCK, &set, nullptr);
  ::raise(signal);
  return 128 + signal;
}

int run_command(std::string_view command, bpfvm::cli::Args& args, std::optional<bool> jit) {
  using namespace bpfvm::cli;
  try {
    if (command == "version") return cmd_version(args);
    if (command == "asm") return cmd_asm(args);
    if (command == "disasm") return cmd_disasm(args);
    if (command == "exec") return cmd_exec(args);
    if (command == "prog") return cmd_prog(args, jit);
    if (command == "veristat") return cmd_veristat(args);
    if (command == "trace") return cmd_trace(args, jit);
    if (command == "run") return cmd_run(args);
    if (command == "agent") return cmd_agent(args);
    if (command == "attach") return cmd_attach(args, false);
    if (command == "detach") return cmd_attach(args, true);
    if (command == "map") return cmd_map(args);
    if (command == "btf") return cmd_btf(args);
    if (command == "link") return cmd_link(args);
    if (command == "perf") return cmd_perf(args);
    if (command == "feature") return cmd_feature(args);
    if (command == "help" || command == "--help" || command == "-h") {
      fmt::print("{}{}{}{}{}{}", kUsage, "\n", kProgUsage, kMapUsage, kBtfUsage, kLinkUsage);
      return kExitOk;
    }
    throw UsageError{fmt::format("unknown command '{}'", command)};
  } catch (const std::exception& e) {
    // Nothing should get here (errors are Results); if something does, it is reported, not a crash.
    fmt::print(stderr, "Error: {}: {}\n", command, e.what());
    return command == "trace" ? kExitTraceFailure : kExitError;
  } catch (const UsageError& e) {
    if (!is_bpftool_command(command)) {
      fmt::print(stderr, "Error: {}\n{}", e.message, usage_of(command));
      return command == "trace" ? kExitTraceFailure : kExitUsage;
    }
    if (!e.help) print_error(e.message);
    else if (output_format().json) print_json(nullptr);
    else fmt::print(stderr, "{}", usage_of(command));
    return kExitUsage;
  }
}

}  // namespace

// Marks this executable as a loader: the agent, preloaded into it (bpfvm run -- bpfvm ..., or the
// system-wide scope), stays idle, so bpfvm never traces itself.
extern "C" __attribute__((visibility("default"), used)) const char bpfvm_loader[] = "bpfvm";

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
  bool version = false;
  while (first < argc) {
    const std::string_view a = argv[first];
    if (a == "-V" || a == "--version") {
      version = true;
    } else if (!global_option(a)) {
      break;
    }
    ++first;
  }
  if (version) {  // bpftool's -V: the version, whatever follows
    Args none({});
    return cmd_version(none);
  }
  if (first >= argc) {
    fmt::print(stderr, "{}", kUsage);
    return kExitUsage;
  }
  const std::string_view command = argv[first];
  // bpftool's commands take the options anywhere (getopt permutes them), as bpftool does.
  std::vector<char*> rest;
  const bool bpftool_grammar = is_bpftool_command(command);
  for (int i = first + 1; i < argc; ++i) {
    if (bpftool_grammar && global_option(argv[i])) continue;
    rest.push_back(argv[i]);
  }
  Args args(std::span<char*>(rest.data(), rest.size()));
  if (args.peek() == "help" && command != "asm" && command != "disasm" && command != "exec") {
    fmt::print("{}", usage_of(command));
    return kExitOk;
  }
  const int rc = run_command(command, args, jit);
  if (rc >= kExitBySignal) return die_by_signal(rc - kExitBySignal);
  // bpftool's exit codes for bpftool's commands: a failed bpf() operation exits with its errno, negated
  // and truncated to 8 bits (the command returns -errno from main), and every other failure, usage
  // errors included, with -1, that is 255 (main.c's usage() and BAD_ARG()). See exit_codes in the README.
  if (bpftool_grammar && (rc == kExitError || rc == kExitUsage)) return kExitBpftoolFailure;
  return rc;
}
