// libbpfvm-agent.so: the agent as a preloaded library. `bpfvm run` puts it in LD_PRELOAD with
// $BPFVM_AGENT naming the pin root whose registry the process joins (empty: the user's default root);
// without $BPFVM_AGENT, the system-wide scope's /etc/bpfvm/agent.conf names it (`bpfvm agent enable`);
// with neither the library does nothing. It exports nothing else but dlopen, which it wraps to
// apply links on libraries loaded later.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bpfvm/agent/agent.hpp"

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

__attribute__((constructor)) void bpfvm_agent_init() {
  // A loader (bpfvm itself) is never traced: its own agent stays idle.
  if (dlsym(RTLD_DEFAULT, "bpfvm_loader")) return;
  char conf_root[4096];
  const char* root = std::getenv("BPFVM_AGENT");
  if (!root && system_wide_root(conf_root, sizeof conf_root)) root = conf_root;
  if (!root) return;
  const char* verbose = std::getenv("BPFVM_AGENT_VERBOSE");
  bpfvm::agent::AgentOptions options;
  options.pin_root = root;
  options.verbose = verbose && std::strcmp(verbose, "1") == 0;
  if (const char* scope = std::getenv("BPFVM_AGENT_SCOPE")) options.scope = static_cast<std::uint32_t>(std::strtoul(scope, nullptr, 10));
  if (auto r = bpfvm::agent::start(options); !r && options.verbose) {
    std::fprintf(stderr, "bpfvm agent: %s\n", r.error().to_string().c_str());
  }
}

using DlopenFn = void* (*)(const char*, int);

}  // namespace

extern "C" __attribute__((visibility("default"))) void* dlopen(const char* file, int mode) {
  static const auto real = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
  if (!real) return nullptr;
  void* handle = real(file, mode);
  if (handle && bpfvm::agent::running()) bpfvm::agent::sync();
  return handle;
}
