// Private to src/cli: joining processes to the scope (the agent preloaded into a command).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::cli {

// libbpfvm-agent.so: $BPFVM_AGENT_LIBRARY, else beside this bpfvm (../lib/ from its directory, as built
// and as installed).
Result<std::string> agent_library();

// Sets this process's environment so that a command it starts joins the scope: the agent in
// LD_PRELOAD (before what was there), $BPFVM_AGENT (the pin root), $BPFVM_AGENT_SCOPE (0: every
// process in scope). `verbose`: the agent reports its errors on the command's stderr.
Result<void> export_agent_environment(const std::string& pin_root, std::uint32_t scope, bool verbose);

// Starts `command` (searched in $PATH) with this process's environment; kNotFound / kAccess when it
// cannot be run (checked before forking, so the error is bpfvm's).
// `before_exec`, when given, runs in the child just before its execve (path, argv, envp).
Result<pid_t> spawn(const std::vector<std::string>& command,
                    const std::function<void(const char*, char* const*, char* const*)>& before_exec = {});
// The executable `command` would run (for /proc/self/exe in uprobe sections).
Result<std::string> command_path(const std::string& name);

}  // namespace bpfvm::cli
