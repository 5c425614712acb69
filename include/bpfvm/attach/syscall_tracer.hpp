// Syscall events of a process tree, from user space: a ptrace tracer that follows fork, vfork, clone
// and exec. A command it launches gets a seccomp filter before exec that stops only the syscalls
// someone asked for (SECCOMP_RET_TRACE; every other syscall runs at full speed), as
// `strace --seccomp-bpf` does; a process it attaches to (-p PID) stops at every syscall, as a filter
// cannot be added to a running process, and the tracer picks the wanted ones.
//
// A launched tree is killed if the tracer goes (PTRACE_O_EXITKILL); an attached process is detached,
// untouched, when tracing stops.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/helpers/run_env.hpp"

namespace bpfvm::attach {

// The process events reported beside syscalls (the kernel's sched/sched_process_* tracepoints,
// signal/signal_generate for the signals a traced thread sends and signal/signal_deliver for those it
// receives).
enum class ProcessEvent : std::uint8_t { kNone, kExec, kFork, kExit, kSignalGenerate, kSignalDeliver };
constexpr int kProcessEvents = 6;

// Which syscalls stop, at entry and at exit, and which process events are reported.
struct SyscallSelection {
  std::set<int> enter, exit;
  bool all_enter = false, all_exit = false;
  std::uint8_t events = 0;  // bit 1 << ProcessEvent

  bool wants_enter(int nr) const { return all_enter || enter.contains(nr); }
  bool wants_exit(int nr) const { return all_exit || exit.contains(nr); }
  bool wants(ProcessEvent e) const { return (events >> static_cast<unsigned>(e)) & 1; }
  bool empty() const { return !all_enter && !all_exit && enter.empty() && exit.empty() && events == 0; }
};

struct SyscallStop {
  bool exit = false;        // false: at entry, before the syscall runs; true: after it returned
  const helpers::Task* task = nullptr;  // the calling thread: ids, uid/gid, comm
  int nr = 0;
  std::array<std::uint64_t, 6> args{};  // as passed (at exit too)
  std::int64_t ret = 0;                 // at exit
  std::uint64_t ip = 0, sp = 0;         // the user instruction and stack pointers
  const void* user_regs = nullptr;      // all of them as struct pt_regs, where the source has them (the agent)
  // A process event instead of a syscall (task: the thread it happens in, as the kernel's current):
  ProcessEvent event = ProcessEvent::kNone;
  const char* filename = nullptr;       // exec: the path execve was given
  std::uint32_t old_pid = 0;            // exec: the thread's id before (a non-leader's that exec'd)
  const helpers::Task* child = nullptr;  // fork: the new task (task is the parent)
  bool group_dead = false;              // exit: the last thread of its process
  int prio = 120;                       // exit: the kernel's prio (120 for nice 0)
  // signal_generate (task: the sender): the signal, its siginfo's errno and code, the receiving task
  // (`target`: its pid and comm), whether it is sent to the whole process, and the kernel's result
  // (0 delivered, 1 ignored, 2 already pending).
  int signal = 0, sig_errno = 0, sig_code = 0, sig_result = 0;
  bool sig_group = false;
  const helpers::Task* target = nullptr;
  // signal_deliver (task: the receiving thread): signal, sig_errno, sig_code as above, and the action
  // the signal meets (its handler, SIG_DFL 0 or SIG_IGN 1, and its sa_flags).
  std::uint64_t action_handler = 0, action_flags = 0;
};

// The signals a thread is about to send with the syscall at `entry` (kill, tkill, tgkill,
// rt_sigqueueinfo, rt_tgsigqueueinfo, pidfd_send_signal), one per receiving task, as the kernel's
// signal_generate reports them, with the result each would have as the receiver's state is now (its
// /proc status: ignored, blocked, pending). None for a signal 0, a target that does not exist or that
// the sender may not signal (the syscall fails). A process group (kill with pid 0 or -PGID) gives one
// per process of the group, kill(-1) one per process the sender may signal (but init and itself).
struct SentSignal {
  helpers::Task target;
  int signal = 0, sig_errno = 0, sig_code = 0, result = 0;
  bool group = false;
};
bool is_signal_syscall(int nr);
std::vector<SentSignal> signals_sent(const SyscallStop& entry);
// The SIGCHLD the kernel sends a process's parent when the last thread of `task`'s process ends with
// `wait_status` (exited or killed, as waitpid says it), as its signal_generate reports it: sent by the
// exiting task, code CLD_EXITED / CLD_KILLED / CLD_DUMPED. None when the parent cannot be read.
// Allocates nothing (the agent calls it in a signal handler, for a process a signal ends).
std::optional<SentSignal> exit_signal(const helpers::Task& task, int wait_status);
// The signal_generate event of `sent` by `sender` (`sent` must outlive it).
SyscallStop signal_generate_event(const helpers::Task* sender, const SentSignal& sent);

// signal_deliver: the kernel reports a signal when a thread takes it (get_signal, after a tracer saw it,
// before the handler or the default action runs), with the action it meets. A signal whose action
// ignores it (SIG_IGN, or SIG_DFL of SIGCHLD, SIGCONT, SIGURG, SIGWINCH) is discarded when sent and
// never delivered (unless it was blocked then; bpfvm cannot tell).
bool signal_discarded(int sig, std::uint64_t handler);
// A signal whose default action ends the process without a core dump, taken with SIG_DFL by a process
// nobody traces, is made a SIGKILL of the whole group when sent (the kernel's complete_signal): each of
// its threads then reports signal_deliver of SIGKILL (code SI_USER), not of the signal sent.
bool kills_as_sigkill(int sig, std::uint64_t handler);
// A signal whose default action ends the process (with or without a core dump).
bool default_is_fatal(int sig);
// A signal the kernel sends a thread for what it did (a fault, an int3, a bad syscall: si_code > 0 or
// SI_KERNEL), which signal_generate reports on that thread just before it takes it (group 0, result 0).
bool is_synchronous_fault(int sig, int si_code);
SyscallStop signal_deliver_event(const helpers::Task* task, int sig, int sig_errno, int sig_code, std::uint64_t handler,
                                 std::uint64_t flags);

// How the traced process ended: its exit code, or the signal that killed it (code is then 128 + signal,
// as a shell's $? says).
struct TraceeExit {
  int code = 0;
  int signal = 0;
};

// Uprobes placed by the tracer (static binaries, processes the agent is not in): an int3 at the probed
// byte of each traced process that maps it (at exec, at attach, after each executable mmap), as the
// kernel's uprobes do; a hit runs the handler with the thread's registers as the kernel's pt_regs, then
// the displaced instruction runs (emulated when it is one of a function's usual first instructions or a
// nop, else single-stepped in place with the process's other threads stopped). A return probe puts an
// int3 at the caller's return address for the call in progress (matched by the stack pointer, so a
// recursive call or another thread passing there is not taken for it; frames a longjmp skipped are
// dropped at the next return below them). On detach (-p) the code and the USDT semaphores are put back.
struct TracerProbe {
  std::uint64_t dev = 0, inode = 0, offset = 0;  // the probed byte: file offset in the file (dev, inode)
  bool retprobe = false;
  std::uint64_t semaphore_offset = 0;  // a USDT semaphore's file offset, counted up in each process (0: none)
};
struct ProbeHit {
  std::size_t probe = 0;                  // the index in the probes given
  const helpers::Task* task = nullptr;   // the thread
  alignas(8) std::uint8_t regs[168] = {};  // struct pt_regs: for a return, rax the result, rip where it returns
  std::uint64_t address = 0;             // the probed instruction (func_ip)
};

class SyscallTracer {
 public:
  using Handler = std::function<void(const SyscallStop&)>;
  using ProbeHandler = std::function<void(const ProbeHit&)>;

  // Runs `argv` (argv[0] searched in $PATH) as a traced child. It starts only when run() is called.
  static Result<std::unique_ptr<SyscallTracer>> launch(const std::vector<std::string>& argv,
                                                       const SyscallSelection& selection);
  // Traces every thread of a running process (and what it forks from now on).
  static Result<std::unique_ptr<SyscallTracer>> attach(pid_t pid, const SyscallSelection& selection);
  ~SyscallTracer();
  SyscallTracer(const SyscallTracer&) = delete;
  SyscallTracer& operator=(const SyscallTracer&) = delete;

  pid_t pid() const { return main_pid_; }
  // Calls `handler` at each selected stop until every traced task has exited, or `stop` is set (a
  // signal handler may set it; the wait is interrupted). Returns how the main process ended: after a stop
  // request, a launched tree is killed (SIGKILL) and an attached process detached (result 0).
  // `idle`, when given, runs whenever no tracee is waiting, before the tracer blocks (a place to flush
  // output without paying a write per event).
  Result<TraceeExit> run(const Handler& handler, const std::atomic<bool>& stop, const std::function<void()>& idle = {});

  // The number of tracees that stopped for nothing the handler wanted (syscalls of a -p process).
  std::uint64_t unwanted_stops() const { return unwanted_stops_; }

  // Uprobes to place (before run(); the selection given must include mmap's exit, for the code mapped
  // later). `handler` runs at each hit, on the tracer's thread.
  void set_probes(std::vector<TracerProbe> probes, ProbeHandler handler);
  // Where probes could not be placed, and why (a process whose memory could not be written).
  const std::vector<std::string>& probe_errors() const { return probe_errors_; }

 private:
  struct TaskState {
    helpers::Task task;
    bool in_syscall = false;  // -p mode: between the entry and exit stops
    bool await_exit = false;  // an exit stop is wanted for the syscall in progress
    int nr = -1;
    std::array<std::uint64_t, 6> args{};
    std::string exec_filename;  // the path of the execve in progress (exec events)
    bool exiting = false;       // reported its exit (exit events)
    bool fatal_reported = false;  // reported the delivery of the signal that ends it (signal_deliver)
    bool listening = false;       // in a group-stop (PTRACE_LISTEN)
    // Signals that came during a probe's single step (their siginfo), delivered after it: the first
    // as the thread resumes from the probe, with its siginfo; any more sent to it again.
    std::vector<siginfo_t> deferred_signals;
    struct Return {
      std::uint64_t rsp;      // the stack pointer once the call returned
      std::uint64_t address;  // where it returns
      std::uint64_t func;     // the probed function
    };
    std::vector<Return> returns;  // return probes of calls in progress, innermost last
  };
  // An address space (a process; its threads and a vfork child share their parent's) and its int3s.
  struct Breakpoint {
    std::uint8_t original = 0;
    std::vector<std::size_t> probes;  // placed at entry (indices)
    int returns = 0;                  // calls in progress that return here
  };
  struct Space {
    int mem = -1;  // /proc/PID/mem
    std::map<std::uint64_t, Breakpoint> breakpoints;
    std::set<std::size_t> placed;  // probes placed (their semaphores counted)
    std::vector<std::uint64_t> semaphores;
    std::set<std::uint64_t> former;  // int3s taken out: a thread may have trapped on one just before
    ~Space();
  };
  // A process's signal actions as far as the tracer knows them (signal_deliver reports the action a
  // signal meets): from /proc at first (SIG_IGN or SIG_DFL; a handler set before the tracer came is
  // known only as caught, address 0), then from each rt_sigaction that succeeds, reset by exec, copied
  // by fork.
  struct Action {
    std::uint64_t handler = 0, flags = 0;
  };
  using Actions = std::array<Action, 64>;
  SyscallTracer(pid_t pid, bool launched, SyscallSelection selection, int go_fd);
  TaskState& state_of(pid_t tid);
  Actions& actions_of(std::uint32_t tgid);
  void report_delivery(pid_t tid, TaskState& t, int sig, const Handler& handler);
  // Probes: placed in the process of `tgid` (those not placed yet); a SIGTRAP stop that is a probe's
  // (handled: true); the displaced instruction run; everything put back (detach).
  Space* space_of(std::uint32_t tgid);
  void place_probes(std::uint32_t tgid);
  bool probe_hit(pid_t tid, TaskState& t);
  void step_over(pid_t tid, Space& space, std::uint64_t address, void* regs);
  void remove_probes();
  bool rewind_if_probe(pid_t tid);  // a thread stopped at an int3 remove_probes took out: runs the byte again
  void forget_returns(const TaskState& t);
  bool write_byte(Space& space, std::uint64_t address, std::uint8_t byte);
  void handle_syscall_info(pid_t tid, TaskState& t, const Handler& handler);
  void restart(pid_t tid, const TaskState& t, int signal);
  void finish(bool kill_tree);
  // A task that exited or was killed: forgets it (noting the main process's status); false otherwise.
  bool reaped(pid_t tid, int status);

  pid_t main_pid_;
  bool launched_;
  SyscallSelection selection_;
  int go_fd_;  // the launched child waits on this pipe until it is seized
  std::map<pid_t, TaskState> tasks_;
  std::map<std::uint32_t, Actions> actions_;  // by process (tgid), when signal_deliver is wanted
  std::vector<TracerProbe> probes_;
  ProbeHandler probe_handler_;
  std::map<std::uint32_t, std::shared_ptr<Space>> spaces_;  // by tgid
  std::vector<std::pair<pid_t, int>> deferred_;  // statuses taken while stopping threads for a step
  std::vector<std::string> probe_errors_;
  std::set<std::uint64_t> removed_;  // int3s remove_probes took out, and those taken out before (former)
  TraceeExit main_exit_;
  bool main_exited_ = false;
  std::uint64_t unwanted_stops_ = 0;
};

// The task (ids, real uid/gid, comm) of a thread, from /proc/<tid>/status.
Result<helpers::Task> read_task(pid_t tid);

}  // namespace bpfvm::attach
