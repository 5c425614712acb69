// libbpfvm-agent.so: the agent as a preloaded library. `bpfvm run` puts it in LD_PRELOAD with
// $BPFVM_AGENT naming the pin root whose registry the process joins (empty: the user's default root);
// without $BPFVM_AGENT, the system-wide scope's /etc/bpfvm/agent.conf names it (`bpfvm agent enable`);
// with neither the library does nothing. It exports dlopen, which it wraps to apply links on libraries
// loaded later, and the entry points of `bpfvm attach | detach PID`.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bpfvm/agent/agent.hpp"

// The interposition (src/interpose, linked into this library above the agent): serves the process's own
// bpf() and what goes with it. A weak reference, so that the agent's code names no higher layer.
extern "C" int bpfvm_interpose_start(const char* pin_root, int verbose) __attribute__((weak));

namespace {

// The system-wide scope's pin root, from /etc/bpfvm/agent.conf ("pin_root=PATH"), when this library
// came from /etc/ld.so.preload; false when there is none.
bool system_wide_root(char* out, std::size_t size) {
  FILE* f = std::fopen("/etc/bpfvm/agent.conf", "re");
  if (!f) return false;
  char line[4096];
  bool found = false;
  while (!found && std::fgets(line, sizeof line, f)) {
    if (std::strncmp(line, "pin_root=/", 10) != 0) continue;
    line[std::strcspn(line, "\n")] = '\0';
    std::snprintf(out, size, "%s", line + 9);
    found = true;
  }
  std::fclose(f);
  return found;
}

// First of this library's initializers (priority 101; the C++ objects' come after): the record of the
// syscalls made before this library ran is taken over before any of the agent's own could join it.
__attribute__((constructor(101))) void bpfvm_agent_take_early() { bpfvm::agent::take_early_syscalls(); }

__attribute__((constructor)) void bpfvm_agent_init() {
  // A loader (bpfvm itself) is never traced: its own agent stays idle.
  if (dlsym(RTLD_DEFAULT, "bpfvm_loader")) {
    bpfvm::agent::drop_early_syscalls();
    return;
  }
  char conf_root[4096];
  const char* root = std::getenv("BPFVM_AGENT");
  if (!root && system_wide_root(conf_root, sizeof conf_root)) root = conf_root;
  if (!root) {
    bpfvm::agent::drop_early_syscalls();
    return;
  }
  const char* verbose = std::getenv("BPFVM_AGENT_VERBOSE");
  bpfvm::agent::AgentOptions options;
  options.pin_root = root;
  options.verbose = verbose && std::strcmp(verbose, "1") == 0;
  if (const char* traps = std::getenv("BPFVM_AGENT_TRAPS")) options.traps = std::strcmp(traps, "1") == 0;
  if (const char* scope = std::getenv("BPFVM_AGENT_SCOPE")) options.scope = static_cast<std::uint32_t>(std::strtoul(scope, nullptr, 10));
  // `bpfvm run`: bpfvm is this process's kernel for bpf() (an application such as libbpf-tools').
  const char* serve = std::getenv("BPFVM_SERVE");
  options.serve = serve && std::strcmp(serve, "1") == 0 && bpfvm_interpose_start;
  if (auto r = bpfvm::agent::start(options); !r) {
    bpfvm::agent::drop_early_syscalls();
    if (options.verbose) std::fprintf(stderr, "bpfvm agent: %s\n", r.error().to_string().c_str());
    return;
  }
  if (options.serve && bpfvm_interpose_start(root, options.verbose ? 1 : 0) != 0 && options.verbose) {
    std::fprintf(stderr, "bpfvm agent: the bpf() interposition did not start\n");
  }
}

using DlopenFn = void* (*)(const char*, int);

}  // namespace


// `bpfvm attach PID` loads this library into a running process and calls this (through ptrace, on one
// of its threads): the process joins the registry at `pin_root` in scope `scope`. 0, or -1 when the
// agent could not start (the reason on stderr with `verbose`).
extern "C" __attribute__((visibility("default"))) int bpfvm_agent_join(const char* pin_root, unsigned scope,
                                                                       int verbose, int prepare_sites) {
  if (bpfvm::agent::running()) return 0;
  bpfvm::agent::AgentOptions options;
  options.pin_root = pin_root ? pin_root : "";
  options.scope = scope;
  options.verbose = verbose != 0;
  options.prepare_sites = prepare_sites != 0;
  if (auto r = bpfvm::agent::start(options); !r) {
    bpfvm::agent::drop_early_syscalls();
    if (options.verbose) std::fprintf(stderr, "bpfvm agent: %s\n", r.error().to_string().c_str());
    return -1;
  }
  return 0;
}

// `bpfvm attach PID` of a process with threads, every other thread stopped: the syscall sites written
// but where a stopped thread resumes (`positions`: hexadecimal addresses separated by commas). Nothing
// allocated, no lock taken (a stopped thread may hold any). Returns how many were written.
extern "C" __attribute__((visibility("default"))) long bpfvm_agent_commit_sites(const char* positions) {
  std::uint64_t at[1024];
  std::size_t n = 0;
  for (const char* p = positions; p && *p;) {
    if (n == 1024) return -1;  // more threads than it can check: nothing written
    char* end = nullptr;
    at[n++] = std::strtoull(p, &end, 16);
    if (end == p) return -1;
    p = *end == ',' ? end + 1 : end;
  }
  return static_cast<long>(bpfvm::agent::commit_sites(at, n));
}

// The threads running again: the syscall links apply.
extern "C" __attribute__((visibility("default"))) int bpfvm_agent_sites_ready() {
  bpfvm::agent::sites_ready();
  return 0;
}

// `bpfvm detach PID`: every probe removed, the process runs on untraced (the library stays loaded).
extern "C" __attribute__((visibility("default"))) int bpfvm_agent_leave() {
  bpfvm::agent::stop();
  return 0;
}

extern "C" __attribute__((visibility("default"))) void* dlopen(const char* file, int mode) {
  static const auto real = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
  if (!real) return nullptr;
  void* handle = real(file, mode);
  if (handle && bpfvm::agent::running()) bpfvm::agent::sync();
  return handle;
}
