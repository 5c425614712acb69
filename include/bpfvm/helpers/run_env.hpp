// What helpers know of the run that calls them: the task the program runs for, whose memory
// probe_read_user reads, the execution slot ("CPU"), and attach data. The runtime passes one as the
// interpreter's RunContext::user; the syscall tracer (attach) fills in the traced task.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <span>

#include "bpfvm/base/result.hpp"

namespace bpfvm::maps {
class RingBuffer;
}

namespace bpfvm::helpers {

struct Task {
  std::uint32_t pid = 0;   // thread id (the kernel's task pid)
  std::uint32_t tgid = 0;  // process id
  std::uint32_t uid = 0, gid = 0;
  char comm[16] = {};
  // At sched_process_exit: the kernel's task->exit_code, a wait status ((code & 0xff) << 8 for an
  // exit, the signal (| 0x80 with a core dump) for a death by signal).
  std::int32_t exit_code = 0;
};

// The kernel objects programs reach from bpf_get_current_task (35): a task_struct and what it points to
// (parent, group leader, cred, nsproxy and namespaces, mm, pid), laid out as the running kernel's BTF
// says and filled from what bpfvm knows of the task, at addresses in the kernel's half of the address
// space. bpf_probe_read_kernel (and the legacy bpf_probe_read) of such an address reads them. The runtime
// provides it (runtime/kernel_tasks.hpp).
class KernelMemory {
 public:
  // The address of `current`'s task_struct, its fields brought up to date; 0 when the kernel's layout
  // is unknown (no /sys/kernel/btf/vmlinux).
  virtual std::uint64_t current_task(const Task& current) = 0;
  // Whether `addr` is in the emulated objects' part of the address space.
  virtual bool contains(std::uint64_t addr) const = 0;
  // Copies [addr, addr + size) of the objects: false (nothing copied) when any of it is outside them.
  virtual bool read(std::uint64_t addr, void* dst, std::size_t size) = 0;
  // The tid whose task_struct starts at `addr` (what current_task gave), 0 when none does.
  virtual std::uint32_t task_at(std::uint64_t addr) const = 0;
  // The vm_area_struct of the memory area of task `task` (a task_struct's address) that holds `addr`,
  // as the kernel's find_vma finds it; 0 when none does, or the task has no memory (bpf_find_vma).
  virtual std::uint64_t find_vma(std::uint64_t task, std::uint64_t addr) {
    (void)task, (void)addr;
    return 0;
  }

 protected:
  ~KernelMemory() = default;
};

// A syscall program's bpf() and close() (bpf_sys_bpf, bpf_sys_close: the caller's runtime, `self`) and
// the running kernel's types (bpf_btf_find_by_name_kind). Each gives a result or -errno.
struct SyscallServices {
  void* self = nullptr;
  long (*bpf)(void* self, int cmd, void* attr, std::uint32_t size) = nullptr;
  long (*close)(void* self, int fd) = nullptr;
  long (*find_kernel_type)(const char* name, std::uint32_t kind) = nullptr;
};

class TimerProgram;

struct RunEnv {
  Task task;
  pid_t memory_pid = 0;  // whose user memory probe_read_user reads; 0 = this process
  // When set (the agent, inside the traced process): reads this process's memory (memory_pid's, and
  // the "kernel" memory of probe_read_kernel) without faulting, in place of process_vm_readv; `pid`
  // is memory_pid (which a vfork child must not take from its parent).
  bool (*read_user)(pid_t pid, void* dst, std::uint64_t src, std::size_t size) = nullptr;
  std::uint32_t cpu = 0;
  // What a syscall program's helpers ask of the runtime that runs it; null elsewhere.
  const SyscallServices* syscall = nullptr;
  KernelMemory* kernel = nullptr;  // null: no kernel objects (bpf_get_current_task returns 0)
  std::uint64_t func_ip = 0;
  std::uint64_t attach_cookie = 0;
  // The task's user-mode registers as struct pt_regs (what the kernel's task_pt_regs holds: at a syscall,
  // the registers it was made with; at a uprobe, the probed thread's), for bpf_get_stack's user stacks.
  // Null where the event source has none.
  const void* user_regs = nullptr;
  // The program's type and, for packet programs, the packet from skb->data (xdp->data) on: what
  // bpf_perf_event_output appends with BPF_F_CTXLEN_MASK.
  std::uint32_t prog_type = 0;
  std::span<const std::uint8_t> packet;
  // XDP programs: where the runtime keeps the packet's pointers and where its buffer (the headroom)
  // starts; bpf_xdp_adjust_head moves data and data_meta.
  struct XdpPointers {
    std::uint64_t* data = nullptr;
    std::uint64_t* data_end = nullptr;
    std::uint64_t* data_meta = nullptr;
    std::uint64_t hard_start = 0;
  } xdp;
  // Where bpf_trace_printk lines go (the runtime's trace pipe); null drops them.
  maps::RingBuffer* trace_pipe = nullptr;
  // The bpf_spin_lock the program holds (at most one); the runtime releases one left held at exit.
  std::atomic<std::uint32_t>* held_lock = nullptr;
  // bpf_tail_call: runs `program` (a slot of a program array) on the same context in place of the
  // caller and returns its r0. Provided by the runtime; tail_calls counts the chain (33 at most).
  using TailCall = Result<std::uint64_t> (*)(const void* self, const void* program, RunEnv& env);
  TailCall tail_call = nullptr;
  const void* tail_call_self = nullptr;
  std::uint32_t tail_calls = 0;
  // bpf_get_local_storage: the program's cgroup storage (shared, and per-CPU with `percpu_stride` bytes
  // per slot), which the kernel's test runs allocate zeroed for each run (bpf_cgroup_storages_alloc).
  std::uint8_t* cgroup_storage = nullptr;
  std::uint8_t* percpu_cgroup_storage = nullptr;
  std::size_t percpu_stride = 0;
  // bpf_sk_storage_get: the one socket a test run's program holds (its packet's dummy socket, as the
  // kernel's bpf_prog_test_run_skb makes one) and its identity as a storage owner for that run.
  std::uint64_t test_socket = 0;
  std::uint64_t test_socket_owner = 0;
  // fentry/fexit programs (bpf_get_func_arg, _ret, _arg_cnt): how many arguments their target has, and
  // whether the context holds its return value after them (fexit).
  std::uint32_t func_args = 0;
  bool func_returned = false;
  // The program that runs (a tail call's, after the call): whose functions bpf_timer_set_callback
  // names. Null where no runtime program runs (a bare interpreter): the timer helpers then fail.
  const TimerProgram* program = nullptr;
};

// The calling thread as the task: what a program sees when this process runs it (as BPF_PROG_TEST_RUN
// runs a program in the caller's context).
const RunEnv& current_thread_env();

}  // namespace bpfvm::helpers
