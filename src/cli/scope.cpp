#include "scope.hpp"

#include <link.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>

#include "bpfvm/base/process.hpp"

namespace bpfvm::cli {

Result<std::string> agent_library() {
  if (const char* env = std::getenv("BPFVM_AGENT_LIBRARY"); env && *env) {
    if (::access(env, R_OK) != 0) return make_error(Errc::kNotFound, "$BPFVM_AGENT_LIBRARY '{}': {}", env, std::strerror(errno));
    return std::string(env);
  }
  char self[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return make_error(Errc::kNotFound, "cannot find bpfvm's own executable to find the agent library");
  self[n] = '\0';
  std::string dir(self);
  dir.resize(dir.rfind('/'));
  for (const std::string& candidate : {dir + "/../lib/libbpfvm-agent.so", dir + "/libbpfvm-agent.so",
                                      dir + "/../lib/bpfvm/libbpfvm-agent.so"}) {
    char real[PATH_MAX];
    if (::realpath(candidate.c_str(), real)) return std::string(real);
  }
  return make_error(Errc::kNotFound, "the agent library libbpfvm-agent.so is not beside '{}' (set $BPFVM_AGENT_LIBRARY)", self);
}

namespace {

#if defined(__SANITIZE_ADDRESS__)
// A sanitized build's agent needs the sanitizer runtimes loaded first in programs built without them
// (ASan refuses to start otherwise): the ones this bpfvm runs with, ahead of the agent. Leak reports
// are off in those programs: the agent keeps its state for the process's life on purpose.
std::string sanitizer_runtimes() {
  std::string out;
  dl_iterate_phdr(
      [](dl_phdr_info* info, std::size_t, void* data) {
        const std::string_view name = info->dlpi_name ? info->dlpi_name : "";
        if (name.find("libasan.so") != std::string_view::npos || name.find("libubsan.so") != std::string_view::npos) {
          auto& list = *static_cast<std::string*>(data);
          list += std::string(name) + ":";
        }
        return 0;
      },
      &out);
  ::setenv("ASAN_OPTIONS", "detect_leaks=0:verify_asan_link_order=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:handle_abort=0:handle_sigill=0", 1);
  return out;
}
#else
std::string sanitizer_runtimes() { return {}; }
#endif

}  // namespace

Result<void> export_agent_environment(const std::string& pin_root, std::uint32_t scope, bool verbose) {
  const std::string lib = sanitizer_runtimes() + BPFVM_TRY(agent_library());
  const char* old = std::getenv("LD_PRELOAD");
  std::string preload = lib;
  if (old && *old && std::string_view(old).find(lib) == std::string_view::npos) preload += std::string(":") + old;
  else if (old && *old) preload = old;
  ::setenv("LD_PRELOAD", preload.c_str(), 1);
  ::setenv("BPFVM_AGENT", pin_root.c_str(), 1);
  ::setenv("BPFVM_AGENT_SCOPE", std::to_string(scope).c_str(), 1);
  if (verbose) ::setenv("BPFVM_AGENT_VERBOSE", "1", 1);
  return {};
}

Result<std::string> command_path(const std::string& name) {
  const std::string path = BPFVM_TRY(os::find_command(name));
  char real[PATH_MAX];
  return std::string(::realpath(path.c_str(), real) ? real : path.c_str());
}

Result<pid_t> spawn(const std::vector<std::string>& command,
                    const std::function<void(const char*, char* const*, char* const*)>& before_exec) {
  const std::string path = BPFVM_TRY(os::find_command(command.at(0)));
  std::vector<char*> argv;
  for (const auto& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return make_error(Errc::kNoMemory, "fork: {}", std::strerror(errno));
  if (pid == 0) {
    if (before_exec) before_exec(path.c_str(), argv.data(), environ);
    ::execv(path.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

}  // namespace bpfvm::cli
