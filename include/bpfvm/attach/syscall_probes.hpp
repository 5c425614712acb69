// Programs attached to syscall events, as the kernel's tracepoints run them: each stop of the syscall
// tracer runs the programs attached there with the kernel's record as context, and helpers see the
// traced thread (get_current_pid_tgid/uid_gid/comm give its values, probe_read_user reads its memory).
//
// Attach points, by SEC name (libbpf's spellings):
//   tracepoint/syscalls/sys_enter_<name>, tracepoint/syscalls/sys_exit_<name>   (also tp/...)
//   tracepoint/raw_syscalls/sys_enter, tracepoint/raw_syscalls/sys_exit
//   raw_tracepoint/sys_enter, raw_tracepoint/sys_exit   (also raw_tp/...): args[0] is a struct pt_regs *
//     with the syscall's registers, args[1] the number (sys_enter) or the return value (sys_exit);
//     tp_btf/sys_enter, tp_btf/sys_exit the same for tracing programs (the pointer typed)
//   kprobe/NAME, kretprobe/NAME: a kernel function that is a syscall entry (kernel_functions.hpp), with
//     its struct pt_regs; fentry/NAME, fexit/NAME the same functions for tracing programs, with its
//     arguments as u64 args[] (pointers to kernel structs typed: the wrapper's pt_regs, open_how)
//   tracepoint/sched/sched_process_exec, sched_process_fork, sched_process_exit: the process events,
//     with the running kernel's record layout (its tracefs format when readable, else that of Linux
//     6.18: __data_loc filename/comms, exit's group_dead)
//   tracepoint/signal/signal_generate: a signal a process in scope sends by syscall (kill, tkill, tgkill,
//     rt_(tg)sigqueueinfo, pidfd_send_signal; kill(-1) too), with the receiver's comm and pid
//     and the kernel's result (delivered, ignored, already pending) as the receiver's state says
//   tracepoint/signal/signal_deliver: a signal a thread in scope takes, with the action it meets (see
//     signal_deliver_event in syscall_tracer.hpp for the kernel's ways the reports follow)
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/attach/kernel_functions.hpp"
#include "bpfvm/attach/syscall_tracer.hpp"
#include "bpfvm/runtime/context.hpp"
#include "bpfvm/runtime/runtime.hpp"

namespace bpfvm::attach {

// A syscall event as a SEC name gives it.
struct SyscallPoint {
  enum class Kind { kSyscall, kRawSyscalls, kRawTracepoint, kProcess, kKernelFunction } kind = Kind::kSyscall;
  bool exit = false;
  int nr = -1;  // kSyscall only
  ProcessEvent event = ProcessEvent::kNone;  // kProcess only
  KernelFunction function;  // kKernelFunction only: a kprobe ("kprobe/NAME") or kretprobe (exit)
  // kKernelFunction: fentry/fexit ("fentry/NAME", "fexit/NAME"), whose context is the function's
  // arguments as u64 args[] (`typed_args` of them, fexit's return value after them) instead of a
  // kprobe's struct pt_regs.
  bool typed = false;
  std::uint8_t typed_args = 0;
};
// The syscall event `section` names, for a program of type `prog_type`; the error says why it cannot be
// one (an unknown syscall, a program type that does not fit, an event bpfvm does not produce).
// Tracing programs (BPF_PROG_TYPE_TRACING): "fentry/NAME" and "fexit/NAME" on a kernel function that is
// a syscall entry, with `target_args` the function's argument count (the program's attach_args), and
// "tp_btf/sys_enter", "tp_btf/sys_exit", whose arguments are raw_tracepoint's.
Result<SyscallPoint> parse_syscall_section(std::string_view section, std::uint32_t prog_type,
                                           std::uint32_t target_args = 0);

// The context a program at `point` gets at `stop`, as the kernel's tracepoints give it: the tracepoint
// record (common fields, then the number and the arguments or the return value), or for raw
// tracepoints the args array whose first element points at a pt_regs of the syscall's registers; for a
// kprobe on a kernel function, the struct pt_regs that function has (kernel_functions.hpp).
struct SyscallContext {
  alignas(8) std::uint8_t bytes[runtime::kTracepointRecordMax];
  alignas(8) std::uint8_t regs[168];  // struct pt_regs, for raw tracepoints
  std::size_t size = 0;
};
void make_syscall_context(const SyscallPoint& point, const SyscallStop& stop, SyscallContext& out);
// The record of the process event `stop.event` (sched/sched_process_exec|fork|exit), laid out as the
// running kernel's tracefs format says (read once; Linux 6.18's layout when tracefs is not readable).
void make_process_record(const SyscallStop& stop, std::uint8_t* out, std::size_t size);

class SyscallProbes {
 public:
  // `in_process`: the programs run in the process whose syscalls they see (bpfvm run's own exec), so
  // kprobes on kernel functions may attach (their registers point at this process's memory); the
  // ptrace tracer's run elsewhere.
  explicit SyscallProbes(bool in_process = false) : in_process_(in_process) {}
  // Attaches `program` where its section name says (tracing_point); the error says why it cannot (an
  // unknown syscall, a program type that does not fit the attach point, an event bpfvm does not produce).
  Result<void> attach(std::string_view section, std::shared_ptr<runtime::Program> program);
  bool empty() const { return probes_.empty(); }
  // The syscalls the tracer must stop at.
  SyscallSelection selection() const;
  // Runs the programs attached at `stop`.
  void run(const SyscallStop& stop);

  struct Probe {
    using Kind = SyscallPoint::Kind;
    SyscallPoint point;
    std::string section;
    std::shared_ptr<runtime::Program> program;
    std::uint64_t runs = 0, failures = 0;
    std::string first_failure;
  };
  const std::vector<Probe>& probes() const { return probes_; }

 private:
  void run_one(Probe& probe, const SyscallStop& stop);
  bool in_process_ = false;
  std::vector<Probe> probes_;
  SyscallContext context_{};  // the record being built (one tracer thread)
};

// The event `section` names for `program`: parse_syscall_section with a tracing program's target
// (fentry/fexit/tp_btf), which must be the function or tracepoint the program was verified against.
Result<SyscallPoint> tracing_point(std::string_view section, const runtime::Program& program);

// The link record's kind ("tracepoint", "raw_tracepoint", "kprobe", "kretprobe", "fentry", "fexit",
// "tp_btf": `kind/name` is the section an agent parses) and attach type of a program at `point`.
std::string_view link_kind(const SyscallPoint& point, std::uint32_t prog_type);
// Whether a link record's kind is one of those (an event the syscall hooks make, not a uprobe).
bool is_syscall_link_kind(std::string_view kind);
std::uint32_t link_attach_type(const SyscallPoint& point);

// Whether `section` names a syscall event (so bpfvm trace can tell its programs from helpers it does
// not attach, such as a tail-called program).
bool is_syscall_section(std::string_view section);

}  // namespace bpfvm::attach
