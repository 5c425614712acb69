// libbpfvm-agent.so: the agent as a preloaded library. `bpfvm run` puts it in LD_PRELOAD with
// $BPFVM_AGENT naming the pin root whose registry the process joins (empty: the user's default root);
// without $BPFVM_AGENT the library does nothing. It exports nothing else but dlopen, which it wraps to
// apply links on libraries loaded later.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "bpfvm/agent/agent.hpp"

namespace {

__attribute__((constructor)) void bpfvm_agent_init() {
  const char* root = std::getenv("BPFVM_AGENT");
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
