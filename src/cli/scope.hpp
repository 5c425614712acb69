// Private to src/cli: joining processes to the scope (the agent preloaded into a command).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bpfvm/attach/syscall_probes.hpp"
#include "bpfvm/base/result.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::cli {

// libbpfvm-agent.so: $BPFVM_AGENT_LIBRARY, else beside this bpfvm (../lib/ from its directory, as built
// and as installed).
Result<std::string> agent_library();

// Sets this process's environment so that a command it starts joins the scope: the agent in
// LD_PRELOAD (before what was there), $BPFVM_AGENT (the pin root), $BPFVM_AGENT_SCOPE (0: every
// process in scope). `verbose`: the agent reports its errors on the command's stderr.
Result<void> export_agent_environment(const std::string& pin_root, std::uint32_t scope, bool verbose);

// Whether this bpfvm is built with sanitizers (its agent then needs their runtimes loaded first).
bool sanitized_build();

// Joins a running process to the scope (`bpfvm attach PID`): loads the agent into it with a remote
// dlopen and calls its join entry point (registry at `pin_root`, scope 0). `detach_process` removes
// its probes; it runs on, untraced.
Result<void> attach_process(pid_t pid, const std::string& pin_root);
Result<void> detach_process(pid_t pid);

// The opt-in system-wide scope (`bpfvm agent enable | disable`, root only): the agent library in
// /etc/ld.so.preload, so every process the dynamic loader starts has it, and /etc/bpfvm/agent.conf
// naming the pin root whose registry those processes join (the agent reads it when $BPFVM_AGENT is
// not set). Lines of ld.so.preload that are not bpfvm's are kept. `etc`: where those files are (the
// machine's /etc but in tests).
inline constexpr const char* kAgentConf = "bpfvm/agent.conf";
Result<std::string> enable_system_wide(const std::string& pin_root, const std::string& etc = "/etc");
Result<bool> disable_system_wide(const std::string& etc = "/etc");  // false: it was not enabled
// The library named in ld.so.preload, empty when the system-wide scope is off.
std::string system_wide_library(const std::string& etc = "/etc");

// Starts `command` (searched in $PATH) with this process's environment; kNotFound / kAccess when it
// cannot be run (checked before forking, so the error is bpfvm's).
// `before_exec`, when given, runs in the child just before its execve (path, argv, envp).
Result<pid_t> spawn(const std::vector<std::string>& command,
                    const std::function<void(const char*, char* const*, char* const*)>& before_exec = {});
// The executable `command` would run (for /proc/self/exe in uprobe sections).
Result<std::string> command_path(const std::string& name);

// The execve a process makes before any agent runs in it (bpfvm run's, a traced command's): runs the
// entry programs of `probes` there, with this process as the task, as the kernel runs sys_enter in the
// process that calls execve (the exit and sched_process_exec are reported by the new image's agent).
void run_exec_entry(attach::SyscallProbes& probes, const char* path, char* const* argv, char* const* envp);
// The registry's links that fire in this process (scope 0) at the entry of execve (syscalls/
// sys_enter_execve, raw_syscalls/sys_enter, raw_tracepoint/sys_enter), attached to `probes`.
void attach_exec_entry_links(runtime::Runtime& rt, attach::SyscallProbes& probes);

}  // namespace bpfvm::cli
