// bpfvm run -- CMD ARGS...: runs CMD in scope (the agent preloaded: the registry's links fire in it and
// in everything it starts), with bpfvm serving its bpf() calls (src/interpose). bpfvm becomes CMD (exec), so CMD's exit status and signals are its own.
// bpfvm agent show: the processes in scope, what their agents applied and what failed.
// bpfvm agent enable | disable: the system-wide scope (see scope.hpp).
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "bpfvm/base/process.hpp"
#include "bpfvm/bcc/kernel_headers.hpp"
#include "bpfvm/bcc/python.hpp"
#include "bpfvm/obj/native_elf.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "command.hpp"
#include "json_output.hpp"
#include "object_ref.hpp"
#include "scope.hpp"

namespace bpfvm::cli {

int cmd_run(Args& args) {
  if (args.peek() == "--") args.next();
  std::vector<std::string> command;
  while (!args.empty()) command.emplace_back(args.next());
  if (command.empty()) throw UsageError{"run needs a command: bpfvm run -- CMD ARGS..."};
  runtime::Runtime rt;
  if (!rt.registry()) {
    const auto& why = rt.registry_error();
    fail(why ? *why : make_error(Errc::kNotFound, "no registry at '{}'", rt.pin_root()));
    return kExitTraceFailure;
  }
  // The path execvp would give the kernel (not resolved further: tools show the exec's filename).
  auto path = os::find_command(command[0]);
  if (!path) {
    fail(path.error());
    return path.error().code() == Errc::kNotFound ? kExitCommandNotFound : kExitCannotRun;
  }
  // The agent joins a command through the dynamic loader (LD_PRELOAD): a statically linked program has
  // none, so it would run outside the scope, its bpf() calls going to the kernel. Said, not run.
  if (auto is_static = obj::is_static_executable(*path); is_static && *is_static) {
    fail(make_error(Errc::kNotSupported,
                    "'{}' is statically linked: bpfvm run joins a command through the dynamic loader, which it does "
                    "not have (its bpf() calls would reach the kernel, and its events would not be seen); `bpfvm "
                    "trace PROG -- {}` traces such a program through ptrace", *path, command[0]));
    return kExitCannotRun;
  }
  const char* verbose = std::getenv("BPFVM_AGENT_VERBOSE");
  if (auto r = export_agent_environment(rt.pin_root(), 0, verbose && *verbose == '1'); !r) {
    fail(r.error());
    return kExitTraceFailure;
  }
  // bpfvm is the command's kernel for bpf(), perf_event_open and what goes with them (interpose): an
  // unmodified libbpf application loads, attaches and reads its events here. BPFVM_SERVE=0 in the
  // environment keeps the kernel's (the command in scope, its syscall instructions patched only when a
  // syscall link needs them).
  ::setenv("BPFVM_SERVE", "1", 0);
  // BCC compiles its programs against the kernel's headers, which few machines have: where this one
  // has none (and the user named no tree), BCC finds bpfvm's, made from the kernel's BTF.
  if (!std::getenv("BCC_KERNEL_SOURCE") && !bcc::machine_has_kernel_headers()) {
    if (auto tree = bcc::kernel_headers()) {
      ::setenv("BCC_KERNEL_SOURCE", tree->c_str(), 1);
    } else if (verbose && *verbose == '1') {
      fmt::print(stderr, "bpfvm: no kernel headers for BCC: {}\n", tree.error().to_string());
    }
  }
  // BCC's Python package for whichever python3 the command is (Debian's is for /usr/bin/python3).
  if (const auto folder = bcc::python_package_path()) {
    ::setenv("PYTHONPATH", bcc::with_python_path(std::getenv("PYTHONPATH"), *folder).c_str(), 1);
  }
  std::vector<char*> argv;
  for (auto& a : command) argv.push_back(a.data());
  argv.push_back(nullptr);
  // This execve is the command's first event: no agent runs in bpfvm, so the entry programs of the
  // links that fire here run now (the new image's agent reports its exit and sched_process_exec).
  attach::SyscallProbes probes(true);
  attach_exec_entry_links(rt, probes);
  if (!probes.empty()) run_exec_entry(probes, path->c_str(), argv.data(), environ);
  ::execv(path->c_str(), argv.data());
  fail(make_error(Errc::kAccess, "cannot run '{}': {}", *path, std::strerror(errno)));
  return kExitCannotRun;
}

// bpfvm attach PID / bpfvm detach PID: a running process joins the scope (the agent loaded into it) or
// leaves it (its probes removed; it runs on).
int cmd_attach(Args& args, bool detach) {
  const std::string arg(args.next());
  char* end = nullptr;
  const long pid = std::strtol(arg.c_str(), &end, 10);
  if (arg.empty() || !end || *end || pid <= 0) {
    throw UsageError{fmt::format("{} needs a process id: bpfvm {} PID", detach ? "detach" : "attach", detach ? "detach" : "attach")};
  }
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}'", args.peek())};
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return fail(make_error(Errc::kNotFound, "no process {}", pid));
  runtime::Runtime rt;
  auto registry = open_registry(rt);
  if (!registry) return fail(registry.error());
  const bool joined = (*registry)->find(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(pid)).has_value();
  if (detach) {
    if (!joined) return fail(make_error(Errc::kNotFound, "process {} is not in scope", pid));
    if (auto r = detach_process(static_cast<pid_t>(pid)); !r) return fail(r.error());
    fmt::print("process {} left the scope (its probes removed; it runs on)\n", pid);
    return kExitOk;
  }
  if (joined) {
    fmt::print("process {} is already in scope\n", pid);
    return kExitOk;
  }
  if (auto r = attach_process(static_cast<pid_t>(pid), rt.pin_root()); !r) return fail(r.error());
  fmt::print("process {} joined the scope (registry at {})\n", pid, rt.pin_root());
  return kExitOk;
}

int cmd_agent(Args& args) {
  const std::string_view sub = args.next();
  if (!sub.empty() && sub != "show" && sub != "list" && sub != "enable" && sub != "disable") {
    throw UsageError{fmt::format("unknown agent command '{}'", sub)};
  }
  if (!args.empty()) throw UsageError{fmt::format("unexpected '{}'", args.peek())};
  runtime::Runtime rt;
  if (sub == "enable") {
    if (::geteuid() != 0) return fail(make_error(Errc::kPermission, "the system-wide scope is root's to enable (it edits /etc/ld.so.preload)"));
    // The registry first: the processes that start from now on join it.
    if (auto registry = open_registry(rt); !registry) return fail(registry.error());
    auto lib = enable_system_wide(rt.pin_root());
    if (!lib) return fail(lib.error());
    fmt::print("system-wide scope enabled: {} in /etc/ld.so.preload; processes started from now on join the "
               "registry at {}\n",
               *lib, rt.pin_root());
    return kExitOk;
  }
  if (sub == "disable") {
    auto was = disable_system_wide();
    if (!was) return fail(was.error());
    fmt::print("{}\n", *was ? "system-wide scope disabled: processes started from now on are not in scope "
                              "(those running keep their agent until they exit or exec)"
                            : "the system-wide scope was not enabled");
    return kExitOk;
  }
  if (const std::string lib = system_wide_library(); !lib.empty() && !output_format().json) {
    fmt::print("system-wide scope: enabled ({} in /etc/ld.so.preload)\n", lib);
  }
  auto registry = open_registry(rt);
  if (!registry) return fail(registry.error());
  ojson all = ojson::array();
  for (const auto& r : (*registry)->list(runtime::ObjectKind::kAgent)) {
    if (output_format().json) {
      all.push_back(ojson::parse(r.dump()));
      continue;
    }
    fmt::print("pid {}  comm {}  scope {}\n", r.value("id", 0u), r.value("comm", std::string()), r.value("scope", 0u));
    for (const auto& l : r.value("applied", nlohmann::json::array())) {
      if (l.contains("syscall")) {
        fmt::print("\tlink {}  syscall {}\n", l.value("link", 0u), l.value("syscall", 0));
      } else {
        fmt::print("\tlink {}  at {:#x}{}\n", l.value("link", 0u), l.value("address", std::uint64_t{0}),
                   l.value("int3", false) ? "  (int3)" : "");
      }
    }
    for (const auto& e : r.value("errors", nlohmann::json::array())) {
      fmt::print("\tlink {}  failed: {}\n", e.value("link", 0u), e.value("error", std::string()));
    }
  }
  if (output_format().json) print_json(all);
  return kExitOk;
}

}  // namespace bpfvm::cli
