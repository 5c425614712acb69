// Programs attached to syscall events, as the kernel's tracepoints run them: each stop of the syscall
// tracer runs the programs attached there with the kernel's record as context, and helpers see the
// traced thread (get_current_pid_tgid/uid_gid/comm give its values, probe_read_user reads its memory).
//
// Attach points, by SEC name (libbpf's spellings):
//   tracepoint/syscalls/sys_enter_<name>, tracepoint/syscalls/sys_exit_<name>   (also tp/...)
//   tracepoint/raw_syscalls/sys_enter, tracepoint/raw_syscalls/sys_exit
//   raw_tracepoint/sys_enter, raw_tracepoint/sys_exit   (also raw_tp/...): args[0] is a struct pt_regs *
//     with the syscall's registers, args[1] the number (sys_enter) or the return value (sys_exit)
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/attach/syscall_tracer.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::attach {

class SyscallProbes {
 public:
  // Attaches `program` where its section name says; the error says why it cannot (an unknown syscall,
  // a program type that does not fit the attach point, an event bpfvm does not produce).
  Result<void> attach(std::string_view section, std::shared_ptr<runtime::Program> program);
  bool empty() const { return probes_.empty(); }
  // The syscalls the tracer must stop at.
  SyscallSelection selection() const;
  // Runs the programs attached at `stop`.
  void run(const SyscallStop& stop);

  struct Probe {
    enum class Kind { kSyscall, kRawSyscalls, kRawTracepoint } kind;
    bool exit;
    int nr;  // kSyscall only
    std::string section;
    std::shared_ptr<runtime::Program> program;
    std::uint64_t runs = 0, failures = 0;
    std::string first_failure;
  };
  const std::vector<Probe>& probes() const { return probes_; }

 private:
  void run_one(Probe& probe, const SyscallStop& stop);
  std::vector<Probe> probes_;
};

// Whether `section` names a syscall event (so bpfvm trace can tell its programs from helpers it does
// not attach, such as a tail-called program).
bool is_syscall_section(std::string_view section);

}  // namespace bpfvm::attach
