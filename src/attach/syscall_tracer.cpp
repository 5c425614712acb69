// The ptrace loop. Every tracee is seized (PTRACE_SEIZE), so group-stops, signal-delivery-stops and
// event stops are told apart by the status alone (ptrace(2), "PTRACE_SEIZE"); syscall stops are read
// with PTRACE_GET_SYSCALL_INFO (Linux 5.3), which says which kind of stop it is.
//
// Launched tracees stop at PTRACE_EVENT_SECCOMP for the filtered syscalls only. Since Linux 4.8 that stop
// comes before the syscall runs and before any syscall-entry-stop; restarting it with PTRACE_SYSCALL
// (when the exit is wanted) gives the syscall-exit-stop next, and PTRACE_CONT lets the syscall run
// untraced to its end.
#include "bpfvm/attach/syscall_tracer.hpp"
#include "bpfvm/base/process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/seccomp.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <iterator>
#include <optional>
#include <sstream>
#include <utility>

#include "seccomp_filter.hpp"

namespace bpfvm::attach {

namespace {

Error os_error(std::string_view what) {
  return make_error(Errc::kIo, "{}: {}", what, std::strerror(errno));
}

constexpr long kOptions = PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
                          PTRACE_O_TRACEEXEC;

bool is_stop_signal(int sig) { return sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU; }

long options_for(const SyscallSelection& selection) {
  const bool exits = selection.wants(ProcessEvent::kExit) || selection.wants(ProcessEvent::kSignalGenerate) ||
                     selection.wants(ProcessEvent::kSignalDeliver);
  return kOptions | (exits ? PTRACE_O_TRACEEXIT : 0);
}

// A NUL-terminated string of a tracee's memory (at most PATH_MAX), empty when unreadable.
std::string read_tracee_string(pid_t tid, std::uint64_t address) {
  std::string out;
  char buf[256];
  while (out.size() < 4096) {
    const std::uint64_t at = address + out.size();
    const std::size_t chunk = std::min<std::size_t>(sizeof buf, 4096 - at % 4096);
    struct iovec local {buf, chunk};
    struct iovec remote {reinterpret_cast<void*>(at), chunk};
    const ssize_t n = ::process_vm_readv(tid, &local, 1, &remote, 1, 0);
    if (n <= 0) break;
    const std::size_t len = ::strnlen(buf, static_cast<std::size_t>(n));
    out.append(buf, len);
    if (len < static_cast<std::size_t>(n)) break;
  }
  return out;
}

// The kernel's prio of a thread (/proc/TID/stat's priority is prio - 100).
int read_prio(pid_t tid) {
  os::TaskFacts stat;
  return tid > 0 && os::read_task_stat(static_cast<std::uint32_t>(tid), stat) ? 100 + stat.prio : 120;
}

}  // namespace

Result<helpers::Task> read_task(pid_t tid) {
  std::ifstream in(fmt::format("/proc/{}/status", tid));
  if (!in) return make_error(Errc::kNotFound, "no task {}", tid);
  helpers::Task t;
  t.pid = static_cast<std::uint32_t>(tid);
  t.tgid = t.pid;
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("Name:\t")) {
      std::strncpy(t.comm, line.c_str() + 6, sizeof t.comm - 1);
    } else if (line.starts_with("Tgid:")) {
      t.tgid = static_cast<std::uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
    } else if (line.starts_with("Uid:")) {
      t.uid = static_cast<std::uint32_t>(std::strtoul(line.c_str() + 4, nullptr, 10));  // the real id first
    } else if (line.starts_with("Gid:")) {
      t.gid = static_cast<std::uint32_t>(std::strtoul(line.c_str() + 4, nullptr, 10));
    }
  }
  return t;
}

SyscallTracer::SyscallTracer(pid_t pid, bool launched, SyscallSelection selection, int go_fd)
    : main_pid_(pid), launched_(launched), selection_(std::move(selection)), go_fd_(go_fd) {}

SyscallTracer::~SyscallTracer() {
  if (go_fd_ >= 0) ::close(go_fd_);  // a launched child that never started exits
  if (!tasks_.empty()) finish(launched_);
}

Result<std::unique_ptr<SyscallTracer>> SyscallTracer::launch(const std::vector<std::string>& argv,
                                                             const SyscallSelection& selection) {
  if (argv.empty()) return make_error(Errc::kInvalid, "no command to run");
  auto found = os::find_command(argv[0]);
  if (!found) return std::move(found).error();
  const std::string file = std::move(*found);
  const std::vector<sock_filter> filter = seccomp_filter(selection);
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return os_error("pipe");
  const pid_t child = ::fork();
  if (child < 0) return os_error("fork");
  if (child == 0) {
    // The child: wait until the tracer has seized it, install the filter, become the command. Only
    // async-signal-safe calls from here on.
    ::close(go[1]);
    char byte;
    if (::read(go[0], &byte, 1) != 1) ::_exit(127);
    sock_fprog prog{static_cast<unsigned short>(filter.size()), const_cast<sock_filter*>(filter.data())};
    // Root (CAP_SYS_ADMIN) installs a filter as is; others must give up privilege gains first, as
    // strace --seccomp-bpf does.
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        ::_exit(126);
      }
    }
    ::execv(file.c_str(), cargv.data());
    ::_exit(127);
  }
  ::close(go[0]);
  if (::ptrace(PTRACE_SEIZE, child, nullptr, options_for(selection) | PTRACE_O_TRACESECCOMP | PTRACE_O_EXITKILL) != 0) {
    Error e = os_error("ptrace(PTRACE_SEIZE)");
    ::close(go[1]);
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    return std::move(e).with_context("cannot trace the command (is ptrace allowed here? see kernel.yama.ptrace_scope)");
  }
  auto tracer = std::unique_ptr<SyscallTracer>(new SyscallTracer(child, true, selection, go[1]));
  tracer->tasks_[child].task.pid = 0;  // filled in at its first stop
  return tracer;
}

Result<std::unique_ptr<SyscallTracer>> SyscallTracer::attach(pid_t pid, const SyscallSelection& selection) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return make_error(Errc::kNotFound, "no process {}", pid);
  auto tracer = std::unique_ptr<SyscallTracer>(new SyscallTracer(pid, false, selection, -1));
  // Every thread; threads started meanwhile are followed through PTRACE_O_TRACECLONE of the others.
  DIR* dir = ::opendir(fmt::format("/proc/{}/task", pid).c_str());
  if (!dir) return make_error(Errc::kNotFound, "no process {}", pid);
  while (const dirent* e = ::readdir(dir)) {
    const pid_t tid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
    if (tid <= 0) continue;
    if (::ptrace(PTRACE_SEIZE, tid, nullptr, options_for(selection)) != 0) {
      if (errno == ESRCH) continue;  // the thread just ended
      const Error err = os_error(fmt::format("ptrace(PTRACE_SEIZE, {})", tid));
      ::closedir(dir);
      tracer->finish(false);
      return err;
    }
    tracer->tasks_[tid];
    ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);  // stops it, so it restarts with PTRACE_SYSCALL
  }
  ::closedir(dir);
  return tracer;
}

SyscallTracer::TaskState& SyscallTracer::state_of(pid_t tid) {
  TaskState& t = tasks_[tid];
  if (t.task.pid == 0) {
    if (auto task = read_task(tid)) t.task = *task;
    else t.task.pid = t.task.tgid = static_cast<std::uint32_t>(tid);
  }
  return t;
}

void SyscallTracer::restart(pid_t tid, const TaskState& t, int signal) {
  const bool syscall_stops = !launched_ || t.await_exit;
  ::ptrace(syscall_stops ? PTRACE_SYSCALL : PTRACE_CONT, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(signal)));
}

// Whether thread `tid` has a SIGTRAP pending for itself (its /proc status's SigPnd).
static bool trap_pending(pid_t tid) {
  std::ifstream in(fmt::format("/proc/{}/status", tid));
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("SigPnd:")) return (std::strtoull(line.c_str() + 7, nullptr, 16) >> (SIGTRAP - 1)) & 1;
  }
  return false;
}

SyscallTracer::Actions& SyscallTracer::actions_of(std::uint32_t tgid) {
  if (const auto it = actions_.find(tgid); it != actions_.end()) return it->second;
  Actions& a = actions_[tgid];
  std::ifstream in(fmt::format("/proc/{}/status", tgid));
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("SigIgn:")) continue;
    const std::uint64_t ignored = std::strtoull(line.c_str() + 7, nullptr, 16);
    for (int i = 0; i < 64; ++i) {
      if ((ignored >> i) & 1) a[i].handler = reinterpret_cast<std::uint64_t>(SIG_IGN);
    }
  }
  return a;
}

// A signal-delivery-stop: the signal is about to be taken with the action it meets, as the kernel's
// get_signal reports it after the tracer (the siginfo says its errno and code).
void SyscallTracer::report_delivery(pid_t tid, TaskState& t, int sig, const Handler& handler) {
  if (sig < 1 || sig > 64) return;
  const Action action = actions_of(t.task.tgid)[sig - 1];
  if (signal_discarded(sig, action.handler)) return;  // without a tracer it would not have been queued
  if (action.handler == reinterpret_cast<std::uint64_t>(SIG_DFL) && default_is_fatal(sig)) {
    t.fatal_reported = true;  // its other threads report SIGKILL at their exit (see below)
    if (kills_as_sigkill(sig, action.handler)) {
      handler(signal_deliver_event(&t.task, SIGKILL, 0, SI_USER, 0, 0));
      return;
    }
  }
  siginfo_t info{};
  ::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info);
  handler(signal_deliver_event(&t.task, sig, info.si_errno, info.si_code, action.handler, action.flags));
}

void SyscallTracer::handle_syscall_info(pid_t tid, TaskState& t, const Handler& handler) {
  __ptrace_syscall_info info{};
  if (::ptrace(PTRACE_GET_SYSCALL_INFO, tid, reinterpret_cast<void*>(sizeof info), &info) <= 0) return;
  SyscallStop stop;
  stop.task = &t.task;
  stop.ip = info.instruction_pointer;
  stop.sp = info.stack_pointer;
  switch (info.op) {
    case PTRACE_SYSCALL_INFO_SECCOMP:
    case PTRACE_SYSCALL_INFO_ENTRY: {
      const bool seccomp = info.op == PTRACE_SYSCALL_INFO_SECCOMP;
      if (launched_ && !seccomp) return;  // an entry stop after a seccomp stop (kernels before 4.8)
      t.nr = static_cast<int>(seccomp ? info.seccomp.nr : info.entry.nr);
      for (int i = 0; i < 6; ++i) t.args[i] = seccomp ? info.seccomp.args[i] : info.entry.args[i];
      t.in_syscall = true;
      t.await_exit = selection_.wants_exit(t.nr);
      if (info.arch != AUDIT_ARCH_X86_64) {  // another ABI's numbers: nothing attached there
        t.await_exit = false;
        return;
      }
      if (selection_.wants(ProcessEvent::kExec) && (t.nr == SYS_execve || t.nr == SYS_execveat)) {
        t.exec_filename = read_tracee_string(tid, t.nr == SYS_execve ? t.args[0] : t.args[1]);
      }
      if (!selection_.wants_enter(t.nr)) {
        if (!t.await_exit) ++unwanted_stops_;
        return;
      }
      stop.nr = t.nr;
      stop.args = t.args;
      handler(stop);
      // The signals it sends, as the kernel reports them from inside the syscall (after its entry).
      if (selection_.wants(ProcessEvent::kSignalGenerate) && is_signal_syscall(t.nr)) {
        for (const SentSignal& sent : signals_sent(stop)) handler(signal_generate_event(&t.task, sent));
      }
      return;
    }
    case PTRACE_SYSCALL_INFO_EXIT: {
      const bool wanted = t.in_syscall && t.await_exit;
      t.in_syscall = false;
      t.await_exit = false;
      if (!wanted) {
        if (!launched_) ++unwanted_stops_;
        return;
      }
      stop.exit = true;
      stop.nr = t.nr;
      stop.args = t.args;
      stop.ret = info.exit.rval;
      if (t.nr == SYS_mmap && !probes_.empty() && (t.args[2] & PROT_EXEC) && stop.ret > 0) {
        place_probes(t.task.tgid);  // code mapped (a library the dynamic loader or dlopen maps)
      }
      if (t.nr == SYS_rt_sigaction && stop.ret == 0 && t.args[1] != 0 && t.args[0] >= 1 && t.args[0] <= 64 &&
          selection_.wants(ProcessEvent::kSignalDeliver)) {
        // The new action took effect (struct kernel_sigaction: handler, flags, restorer, mask).
        std::uint64_t act[2] = {};
        struct iovec local {act, sizeof act};
        struct iovec remote {reinterpret_cast<void*>(t.args[1]), sizeof act};
        if (::process_vm_readv(tid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(sizeof act)) {
          actions_of(t.task.tgid)[t.args[0] - 1] = {act[0], act[1]};
        }
      }
      handler(stop);
      return;
    }
    default: return;
  }
}

Result<TraceeExit> SyscallTracer::run(const Handler& handler, const std::atomic<bool>& stop,
                               const std::function<void()>& idle) {
  if (!launched_ && !probes_.empty()) place_probes(static_cast<std::uint32_t>(main_pid_));
  if (go_fd_ >= 0) {
    const char byte = 1;
    if (::write(go_fd_, &byte, 1) != 1) return os_error("starting the command");
    ::close(go_fd_);
    go_fd_ = -1;
  }
  while (!tasks_.empty()) {
    if (stop.load()) {
      finish(launched_);
      break;
    }
    int status = 0;
    pid_t tid = 0;
    if (!deferred_.empty()) {  // statuses taken while a probe's step stopped the other threads
      tid = deferred_.front().first;
      status = deferred_.front().second;
      deferred_.erase(deferred_.begin());
    } else {
      tid = ::waitpid(-1, &status, __WALL | (idle ? WNOHANG : 0));
    }
    if (tid == 0) {  // nobody waiting: the caller's idle work, then block
      idle();
      tid = ::waitpid(-1, &status, __WALL);
    }
    if (tid < 0) {
      if (errno == EINTR) continue;
      if (errno == ECHILD) break;
      return os_error("waitpid");
    }
    if (reaped(tid, status)) continue;
    if (!WIFSTOPPED(status)) continue;
    TaskState& t = state_of(tid);
    t.listening = false;
    const int sig = WSTOPSIG(status);
    const int event = status >> 16;
    int inject = 0;
    if (sig == (SIGTRAP | 0x80)) {
      handle_syscall_info(tid, t, handler);
    } else if (sig == SIGTRAP && event == PTRACE_EVENT_SECCOMP) {
      handle_syscall_info(tid, t, handler);
    } else if (sig == SIGTRAP && event == PTRACE_EVENT_EXEC) {
      // A new program: a new comm (and maybe ids, for set-id programs). A non-leader thread that execs
      // takes the leader's id; its old id is gone without an exit report.
      unsigned long former = 0;
      ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &former);
      if (static_cast<pid_t>(former) != tid && tasks_.contains(static_cast<pid_t>(former))) {
        const TaskState moved = tasks_[static_cast<pid_t>(former)];
        tasks_.erase(static_cast<pid_t>(former));
        tasks_[tid].await_exit = moved.await_exit;
        tasks_[tid].in_syscall = moved.in_syscall;
        tasks_[tid].nr = moved.nr;
        tasks_[tid].args = moved.args;
      }
      std::string filename = std::move(tasks_[tid].exec_filename);
      if (static_cast<pid_t>(former) != tid && filename.empty() && tasks_.contains(static_cast<pid_t>(former))) {
        filename = std::move(tasks_[static_cast<pid_t>(former)].exec_filename);
      }
      TaskState& now = tasks_[tid];
      if (auto task = read_task(tid)) now.task = *task;
      if (!probes_.empty()) {  // a new image: its own int3s
        now.returns.clear();
        spaces_.erase(now.task.tgid);
        place_probes(now.task.tgid);
      }
      if (const auto it = actions_.find(now.task.tgid); it != actions_.end()) {
        // A new program: handlers are reset to SIG_DFL, ignored signals stay ignored, flags cleared.
        for (Action& a : it->second) {
          a = a.handler == reinterpret_cast<std::uint64_t>(SIG_IGN) ? Action{a.handler, 0} : Action{};
        }
      }
      if (selection_.wants(ProcessEvent::kExec)) {
        if (filename.empty()) {  // an execve it did not see (traced from the middle of it)
          char exe[4096];
          const ssize_t n = ::readlink(fmt::format("/proc/{}/exe", tid).c_str(), exe, sizeof exe - 1);
          filename.assign(exe, n > 0 ? static_cast<std::size_t>(n) : 0);
        }
        SyscallStop ev;
        ev.task = &now.task;
        ev.event = ProcessEvent::kExec;
        ev.filename = filename.c_str();
        ev.old_pid = static_cast<std::uint32_t>(former);
        handler(ev);
      }
      restart(tid, now, 0);
      continue;
    } else if (event == PTRACE_EVENT_STOP) {
      if (is_stop_signal(sig)) {  // group-stop: stay stopped, but keep reporting (PTRACE_LISTEN)
        t.listening = true;
        ::ptrace(PTRACE_LISTEN, tid, nullptr, nullptr);
        continue;
      }
      // Otherwise a new child's first stop, or our PTRACE_INTERRUPT: nothing to do.
    } else if (sig == SIGTRAP && (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE)) {
      // The child reports by itself; the parent reports the fork event (threads too, as the kernel's
      // sched_process_fork does), with the child's ids.
      unsigned long child = 0;
      if (!probes_.empty() && event != PTRACE_EVENT_CLONE && ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child) == 0 &&
          child && spaces_.contains(t.task.tgid)) {
        // A new process: the parent's int3s came with its memory (a vfork child shares that memory),
        // and the calls in progress on the forking thread return in the child too.
        const auto& parent = spaces_.at(t.task.tgid);
        if (event == PTRACE_EVENT_VFORK) {
          spaces_[static_cast<std::uint32_t>(child)] = parent;
        } else {
          auto copy = std::make_shared<Space>();
          copy->mem = ::open(fmt::format("/proc/{}/mem", child).c_str(), O_RDWR | O_CLOEXEC);
          copy->breakpoints = parent->breakpoints;
          copy->placed = parent->placed;
          copy->semaphores = parent->semaphores;
          spaces_[static_cast<std::uint32_t>(child)] = std::move(copy);
        }
        TaskState& born = tasks_[static_cast<pid_t>(child)];
        born.returns = t.returns;
        if (born.task.pid == 0) born.task.pid = born.task.tgid = static_cast<std::uint32_t>(child);
      }
      if (selection_.wants(ProcessEvent::kSignalDeliver) && event != PTRACE_EVENT_CLONE &&
          ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child) == 0 && child) {
        actions_[static_cast<std::uint32_t>(child)] = actions_of(t.task.tgid);  // a new process: a copy
      }
      if (selection_.wants(ProcessEvent::kFork) && ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &child) == 0 && child) {
        helpers::Task born = t.task;
        born.pid = static_cast<std::uint32_t>(child);
        born.tgid = event == PTRACE_EVENT_CLONE ? t.task.tgid : born.pid;
        if (auto task = read_task(static_cast<pid_t>(child))) born.tgid = task->tgid;
        SyscallStop ev;
        ev.task = &t.task;
        ev.event = ProcessEvent::kFork;
        ev.child = &born;
        handler(ev);
      }
    } else if (sig == SIGTRAP && event == PTRACE_EVENT_EXIT) {
      // Before the thread is gone: the last of its process to go ends the group.
      unsigned long status_now = 0;
      if (selection_.wants(ProcessEvent::kSignalDeliver) && !t.fatal_reported && !t.exiting &&
          ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &status_now) == 0 && WIFSIGNALED(static_cast<int>(status_now))) {
        // Killed without a delivery stop of its own: by SIGKILL, or a thread of a process another thread
        // ends by a signal (the kernel sends each a SIGKILL, which each reports).
        t.fatal_reported = true;
        handler(signal_deliver_event(&t.task, SIGKILL, 0, SI_USER, 0, 0));
      }
      if (!t.exiting) {
        t.exiting = true;
        bool last = true;
        for (const auto& [other, o] : tasks_) {
          if (other != tid && o.task.tgid == t.task.tgid && !o.exiting) last = false;
        }
        if (selection_.wants(ProcessEvent::kExit)) {
          // The kernel's task->exit_code is the wait status the event message holds.
          if (unsigned long wait_status = 0; ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &wait_status) == 0) {
            t.task.exit_code = static_cast<std::int32_t>(wait_status);
          }
          SyscallStop ev;
          ev.task = &t.task;
          ev.event = ProcessEvent::kExit;
          ev.group_dead = last;
          ev.prio = read_prio(tid);
          handler(ev);
        }
        // The process's end tells its parent (SIGCHLD), after the exit event, as the kernel's exit_notify.
        unsigned long ended = 0;
        if (last && selection_.wants(ProcessEvent::kSignalGenerate) &&
            ::ptrace(PTRACE_GETEVENTMSG, tid, nullptr, &ended) == 0) {
          if (const auto sent = exit_signal(t.task, static_cast<int>(ended))) handler(signal_generate_event(&t.task, *sent));
        }
      }
    } else if (sig == SIGTRAP && event != 0) {
      // Other events: nothing to do.
    } else if (sig == SIGTRAP && !probes_.empty() && probe_hit(tid, t)) {
      // A probe's int3: handled, the displaced instruction run; nothing is delivered, but a signal that
      // came during its step: now, with its own siginfo (the kernel keeps the tracer's injected signal's
      // siginfo when it names that signal), reported as delivered as any other. More than one: the
      // others sent to the thread again (the siginfo of a signal from the tracer), each delivered then.
      if (!t.deferred_signals.empty()) {
        siginfo_t info = t.deferred_signals.front();
        for (std::size_t i = 1; i < t.deferred_signals.size(); ++i) {
          ::syscall(SYS_tgkill, t.task.tgid, tid, t.deferred_signals[i].si_signo);
        }
        t.deferred_signals.clear();
        if (::ptrace(PTRACE_SETSIGINFO, tid, nullptr, &info) == 0) {
          inject = info.si_signo;
          if (selection_.wants(ProcessEvent::kSignalDeliver)) report_delivery(tid, t, inject, handler);
        } else {
          ::syscall(SYS_tgkill, t.task.tgid, tid, info.si_signo);
        }
      }
    } else {
      inject = sig;  // a signal on its way to the tracee: deliver it
      if (selection_.wants(ProcessEvent::kSignalGenerate)) {
        // A fault's signal is generated on the thread as it is taken (force_sig_fault).
        siginfo_t info{};
        if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) == 0 && is_synchronous_fault(sig, info.si_code)) {
          SentSignal sent;
          sent.target = t.task;
          sent.signal = sig;
          sent.sig_errno = info.si_errno;
          sent.sig_code = info.si_code;
          handler(signal_generate_event(&t.task, sent));
        }
      }
      if (selection_.wants(ProcessEvent::kSignalDeliver)) report_delivery(tid, t, sig, handler);
    }
    restart(tid, t, inject);
  }
  if (!main_exited_) return launched_ ? TraceeExit{128 + SIGINT, SIGINT} : TraceeExit{};
  return main_exit_;
}

bool SyscallTracer::reaped(pid_t tid, int status) {
  if (!WIFEXITED(status) && !WIFSIGNALED(status)) return false;
  if (tid == main_pid_) {
    main_exited_ = true;
    main_exit_ = WIFEXITED(status) ? TraceeExit{WEXITSTATUS(status), 0}
                                   : TraceeExit{128 + WTERMSIG(status), WTERMSIG(status)};
  }
  if (const auto it = tasks_.find(tid); it != tasks_.end() && !it->second.returns.empty()) forget_returns(it->second);
  tasks_.erase(tid);
  // A process's state goes with its last thread (a leader that called pthread_exit goes first).
  const auto key = static_cast<std::uint32_t>(tid);
  if (std::none_of(tasks_.begin(), tasks_.end(), [&](const auto& e) { return e.second.task.tgid == key; })) {
    actions_.erase(key);
    spaces_.erase(key);
  }
  return true;
}

void SyscallTracer::finish(bool kill_tree) {
  if (kill_tree) {
    for (const auto& [tid, st] : deferred_) reaped(tid, st);  // ends already taken from waitpid
    deferred_.clear();
    for (const auto& [tid, t] : tasks_) ::kill(tid, SIGKILL);
    int status = 0;
    for (pid_t tid; !tasks_.empty() && (tid = os::wait_task(-1, &status)) > 0;) reaped(tid, status);
    tasks_.clear();
    return;
  }
  // Detach: stop each thread (PTRACE_INTERRUPT); with every thread stopped, put the probed code back;
  // then let each go with any signal it was receiving (but a probe's trap: its byte runs again).
  for (const auto& [tid, t] : tasks_) ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
  std::vector<std::pair<pid_t, int>> stopped;
  int status = 0;
  for (const auto& d : deferred_) {
    if (WIFSTOPPED(d.second)) stopped.push_back(d);
    tasks_.erase(d.first);
  }
  deferred_.clear();
  for (pid_t tid; !tasks_.empty() && (tid = os::wait_task(-1, &status)) > 0;) {
    if (WIFSTOPPED(status)) stopped.push_back({tid, status});
    tasks_.erase(tid);
  }
  tasks_.clear();
  remove_probes();
  if (!removed_.empty()) {
    // A thread that executed an int3 just before it stopped has the SIGTRAP pending, to be taken after
    // the stop: it is let run to that signal's stop here, so that the trap is a probe's, not a death.
    for (auto& [tid, st] : stopped) {
      if (WSTOPSIG(st) == SIGTRAP && (st >> 16) == 0) continue;
      for (int tries = 0; tries < 4 && trap_pending(tid); ++tries) {
        int next = 0;
        if (::ptrace(PTRACE_CONT, tid, nullptr, nullptr) != 0 || os::wait_task(tid, &next) != tid || !WIFSTOPPED(next)) break;
        st = next;
        if (WSTOPSIG(next) == SIGTRAP && (next >> 16) == 0) break;
      }
    }
  }
  for (const auto& [tid, st] : stopped) {
    const int sig = WSTOPSIG(st);
    const int event = st >> 16;
    int pass = (event == 0 && sig != (SIGTRAP | 0x80)) ? sig : 0;
    if (pass == SIGTRAP && rewind_if_probe(tid)) pass = 0;
    ::ptrace(PTRACE_DETACH, tid, nullptr, reinterpret_cast<void*>(static_cast<long>(pass)));
  }
}

}  // namespace bpfvm::attach
