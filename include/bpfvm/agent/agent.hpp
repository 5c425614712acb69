// The agent: bpfvm inside a traced process. Preloaded (libbpfvm-agent.so, by `bpfvm run`) or loaded
// into a running process, it makes the process part of the scope: the registry's links fire here.
//
// It applies the registry's uprobe and uretprobe links whose file this process maps (the program is
// opened from the registry: same id, same shared maps, JIT-compiled here), patches the probed code
// (agent/hook.hpp) and runs the programs on the probed thread with pt_regs as their context and the
// thread as the current task (ids, comm and memory from the process itself, no /proc read per event).
// A thread waits on the registry's link counter (a futex in shared memory) and applies changes within
// a millisecond of a link's creation or removal. Links a process made itself do not fire in it unless
// their record says `self`.
//
// Failing open: an error (a program that cannot be opened, code that cannot be patched) leaves that
// link unapplied and is kept in the process's agent record (`bpfvm agent show`) and, with
// $BPFVM_AGENT_VERBOSE=1, printed to stderr; the process runs on as if untraced. A program that fails a
// run is counted, never stops the probed thread. A probe firing inside a probe (a program's helper
// calling a probed function, a signal handler) is skipped and counted as a miss, as the kernel counts
// bpf_prog_active recursion.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::agent {

struct AgentOptions {
  std::string pin_root;  // empty: runtime::default_pin_root()
  bool verbose = false;  // errors to stderr too
  bool watch = true;     // a thread that follows the registry (tests may drive sync() by hand)
  std::uint32_t scope = 0;  // links of this scope fire here, and those of scope 0 ($BPFVM_AGENT_SCOPE)
  bool traps = false;      // every probe an int3, also where a jump fits ($BPFVM_AGENT_TRAPS=1)
  // Joined by `bpfvm attach` while other threads run: the syscall sites are prepared now and patched by
  // commit_sites while the attaching tracer holds every other thread stopped.
  bool prepare_sites = false;
  // A syscall server will answer some of the process's own syscalls (`bpfvm run`: interpose serves
  // bpf() and what goes with it): the syscall instructions are patched at start, links or not.
  bool serve = false;
};

struct LinkStatus {
  std::uint32_t link_id = 0;
  std::uintptr_t address = 0;  // where it is applied (0: not applied)
  std::string error;           // why not, when it failed
};

// Starts the process's agent (once; later calls return the same one). Never throws.
// A preloaded agent's first act, before anything of its own makes a syscall: takes over the record
// libbpfvm-early.so (an LD_AUDIT module `bpfvm run` adds) kept of the process's syscalls until now, the
// dynamic loader's among them; start() reports them to the syscall links, after the exec events, as the
// kernel reported them. drop_early_syscalls(): the agent does not start here; the record goes.
void take_early_syscalls();
void drop_early_syscalls();

Result<void> start(const AgentOptions& options);
bool running();
// Applies the registry's links now (the watching thread does this on every change).
void sync();
// Removes every probe of this process (`bpfvm detach`): the process runs on untraced.
void stop();
std::vector<LinkStatus> status();
// With every other thread stopped (by the attaching ptrace tracer), writes the prepared syscall sites
// but those where a stopped thread resumes inside (`positions`); allocates nothing, takes no lock.
// Returns how many were written.
std::size_t commit_sites(const std::uint64_t* positions, std::size_t count);
// The threads running again: the sites are in place, and the syscall links apply.
void sites_ready();
// A syscall server (an upper layer: interpose) answers some of the process's own syscalls in place of the
// kernel. It is called for the numbers given to serve_syscall, on the calling thread, between the
// syscall's entry and exit programs (tracepoints see a served syscall as the kernel's), with the agent's
// guard up (its own syscalls go to the kernel), errno saved. It returns true when it answered (`rax`:
// the result, -errno for an error), false to let the kernel have the syscall. It must not block.
using SyscallServer = bool (*)(std::uint64_t nr, const std::uint64_t* args, std::int64_t* rax);
void set_syscall_server(SyscallServer server);
void serve_syscall(int nr);
// The calling thread is bpfvm's own (a server's helper thread): its syscalls are never traced or served.
void mark_own_thread();
// Copies `n` bytes of this process's memory from `src`, false (nothing copied in part) where they are not
// all readable: the reads probe_read_user makes here, a memcpy where the pages are known to be mapped
// (see src/agent/user_memory.hpp), else process_vm_readv.
bool read_own_memory(void* dst, const void* src, std::size_t n);
// While one lives, the calling thread's syscalls are bpfvm's own (a server starting up in a constructor).
class OwnSyscalls {
 public:
  OwnSyscalls();
  ~OwnSyscalls();
  OwnSyscalls(const OwnSyscalls&) = delete;
  OwnSyscalls& operator=(const OwnSyscalls&) = delete;

 private:
  bool saved_;
};

// Runs of probes that found a probe already running on their thread (skipped, as the kernel's misses).
std::uint64_t misses();

}  // namespace bpfvm::agent
