// The records of the process events (see syscall_probes.hpp): the scheduler's sched_process_exec, _fork
// and _exit tracepoints, as the running kernel lays them out. The layout changed over time (Linux 6.10
// made fork's comms __data_loc strings; exit gained group_dead), so it is read from tracefs's format
// file when bpfvm can read it, by field name, and otherwise is this kernel generation's.
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "bpfvm/attach/syscall_probes.hpp"
#include "bpfvm/base/process.hpp"

namespace bpfvm::attach {

namespace {

struct Field {
  std::string name;
  std::uint32_t offset = 0, size = 0;
  bool data_loc = false;  // a __data_loc string: (length << 16 | offset) here, the bytes after the fields
};
struct Format {
  std::uint16_t id = 0;
  std::vector<Field> fields;  // but the common_ ones
  std::uint32_t end = 0;      // where the strings go
};

// Linux 6.18's layouts (/sys/kernel/tracing/events/sched/*/format).
Format builtin(ProcessEvent e) {
  Format f;
  switch (e) {
    case ProcessEvent::kExec:
      f.fields = {{"filename", 8, 4, true}, {"pid", 12, 4, false}, {"old_pid", 16, 4, false}};
      break;
    case ProcessEvent::kFork:
      f.fields = {{"parent_comm", 8, 4, true}, {"parent_pid", 12, 4, false}, {"child_comm", 16, 4, true},
                  {"child_pid", 20, 4, false}};
      break;
    case ProcessEvent::kExit:
      f.fields = {{"comm", 8, 16, false}, {"pid", 24, 4, false}, {"prio", 28, 4, false}, {"group_dead", 32, 1, false}};
      break;
    case ProcessEvent::kSignalGenerate:
      f.fields = {{"sig", 8, 4, false},   {"errno", 12, 4, false}, {"code", 16, 4, false}, {"comm", 20, 16, false},
                  {"pid", 36, 4, false},  {"group", 40, 4, false}, {"result", 44, 4, false}};
      break;
    case ProcessEvent::kSignalDeliver:
      f.fields = {{"sig", 8, 4, false}, {"errno", 12, 4, false}, {"code", 16, 4, false}, {"sa_handler", 24, 8, false},
                  {"sa_flags", 32, 8, false}};
      break;
    case ProcessEvent::kNone: break;
  }
  for (const Field& x : f.fields) f.end = std::max(f.end, x.offset + x.size);
  return f;
}

// "\tfield:__data_loc char[] filename;\toffset:8;\tsize:4;\tsigned:0;"
bool parse_field(std::string_view line, Field& out) {
  const std::size_t field = line.find("field:");
  const std::size_t semi = line.find(';');
  if (field == std::string_view::npos || semi == std::string_view::npos || semi < field) return false;
  std::string_view decl = line.substr(field + 6, semi - field - 6);
  out.data_loc = decl.starts_with("__data_loc");
  std::string_view name = decl.substr(decl.rfind(' ') + 1);
  if (const std::size_t bracket = name.find('['); bracket != std::string_view::npos) name = name.substr(0, bracket);
  out.name = std::string(name);
  unsigned offset = 0, size = 0;
  const std::size_t o = line.find("offset:"), z = line.find("size:");
  if (o == std::string_view::npos || z == std::string_view::npos) return false;
  if (std::sscanf(std::string(line.substr(o)).c_str(), "offset:%u", &offset) != 1) return false;
  if (std::sscanf(std::string(line.substr(z)).c_str(), "size:%u", &size) != 1) return false;
  out.offset = offset;
  out.size = size;
  return true;
}

Format from_tracefs(ProcessEvent e) {
  const char* name = e == ProcessEvent::kExec ? "sched/sched_process_exec"
                     : e == ProcessEvent::kFork ? "sched/sched_process_fork"
                     : e == ProcessEvent::kExit ? "sched/sched_process_exit"
                     : e == ProcessEvent::kSignalGenerate ? "signal/signal_generate"
                                                          : "signal/signal_deliver";
  for (const char* root : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
    const std::string path = std::string(root) + "/events/" + name + "/format";
    FILE* file = std::fopen(path.c_str(), "re");
    if (!file) continue;
    Format f;
    char buf[512];
    bool ok = true;
    while (std::fgets(buf, sizeof buf, file)) {
      const std::string_view line(buf);
      unsigned id = 0;
      if (std::sscanf(buf, "ID: %u", &id) == 1) f.id = static_cast<std::uint16_t>(id);
      if (line.find("field:") == std::string_view::npos) continue;
      Field x;
      if (!parse_field(line, x)) {
        ok = false;
        break;
      }
      if (x.name.starts_with("common_")) continue;
      if (x.offset + x.size > runtime::kTracepointRecordMax / 2) ok = false;
      f.end = std::max(f.end, x.offset + x.size);
      f.fields.push_back(std::move(x));
    }
    std::fclose(file);
    if (ok && !f.fields.empty()) return f;
  }
  return builtin(e);
}

// Kept for the process's life, never destroyed: an exit event comes after static destructors ran.
const Format& format_of(ProcessEvent e) {
  static std::once_flag once[kProcessEvents];
  static Format* const formats = new Format[kProcessEvents];
  const auto i = static_cast<std::size_t>(e);
  std::call_once(once[i], [&] { formats[i] = from_tracefs(e); });
  return formats[i];
}

}  // namespace

void make_process_record(const SyscallStop& stop, std::uint8_t* out, std::size_t size) {
  const Format& f = format_of(stop.event);
  std::memset(out, 0, std::min<std::size_t>(size, 512));
  const helpers::Task& task = *stop.task;
  std::memcpy(out, &f.id, 2);
  const auto common_pid = static_cast<std::int32_t>(task.pid);
  std::memcpy(out + 4, &common_pid, 4);
  std::uint32_t dyn = f.end;
  for (const Field& x : f.fields) {
    // The value of each field by its name, as the kernel's TP_fast_assign sets it.
    std::string_view text;
    bool is_text = true;
    std::int64_t number = 0;
    const bool signal = stop.event == ProcessEvent::kSignalGenerate;
    const bool deliver = stop.event == ProcessEvent::kSignalDeliver;
    if (deliver) {
      is_text = false;
      number = x.name == "sig" ? stop.signal : x.name == "errno" ? stop.sig_errno : x.name == "code" ? stop.sig_code
               : x.name == "sa_handler" ? static_cast<std::int64_t>(stop.action_handler)
               : x.name == "sa_flags"   ? static_cast<std::int64_t>(stop.action_flags)
                                        : 0;
    } else if (signal && x.name == "comm") {  // the receiver's
      text = stop.target ? std::string_view(stop.target->comm, strnlen(stop.target->comm, sizeof stop.target->comm)) : "";
    } else if (signal && (x.name == "pid" || x.name == "sig" || x.name == "errno" || x.name == "code" ||
                          x.name == "group" || x.name == "result")) {
      is_text = false;
      number = x.name == "pid" ? std::int64_t{stop.target ? stop.target->pid : 0u} : x.name == "sig" ? stop.signal
               : x.name == "errno" ? stop.sig_errno : x.name == "code" ? stop.sig_code
               : x.name == "group" ? stop.sig_group : stop.sig_result;
    } else if (x.name == "filename") text = stop.filename ? stop.filename : "";
    else if (x.name == "comm" || x.name == "parent_comm") text = std::string_view(task.comm, strnlen(task.comm, sizeof task.comm));
    else if (x.name == "child_comm" && stop.child) text = std::string_view(stop.child->comm, strnlen(stop.child->comm, sizeof stop.child->comm));
    else {
      is_text = false;
      if (x.name == "pid" || x.name == "parent_pid") number = task.pid;
      else if (x.name == "old_pid") number = stop.old_pid;
      else if (x.name == "child_pid" && stop.child) number = stop.child->pid;
      else if (x.name == "prio") number = stop.prio;
      else if (x.name == "group_dead") number = stop.group_dead;
    }
    if (x.offset + x.size > size) continue;
    if (is_text && x.data_loc) {
      const std::size_t len = std::min<std::size_t>(text.size() + 1, 4096);
      if (dyn + len > size || x.size != 4) continue;
      std::memcpy(out + dyn, text.data(), len - 1);
      out[dyn + len - 1] = 0;
      const std::uint32_t loc = static_cast<std::uint32_t>(len) << 16 | dyn;
      std::memcpy(out + x.offset, &loc, 4);
      dyn += static_cast<std::uint32_t>(len);
    } else if (is_text) {
      std::memcpy(out + x.offset, text.data(), std::min<std::size_t>(text.size(), x.size - 1));
    } else if (x.size <= 8) {
      std::memcpy(out + x.offset, &number, x.size);  // little-endian: the low bytes
    }
  }
}

// ---- signal_generate ------------------------------------------------------------------------------

namespace {

// A task's /proc status, the lines signal delivery depends on.
struct TaskStatus {
  bool ok = false;
  std::uint32_t tgid = 0;
  std::uint32_t uid[4] = {};  // real, effective, saved, fs
  std::uint64_t sig_pnd = 0, shd_pnd = 0, sig_blk = 0, sig_ign = 0, sig_cgt = 0;
  std::uint32_t ppid = 0;
};

// A small /proc file into `buf` (NUL-terminated), by open and read: nothing allocated, so that the
// agent may call it from a signal handler (exit_signal for a process a signal ends).
bool read_proc(const char* path, char* buf, std::size_t size) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::size_t used = 0;
  for (ssize_t n; used + 1 < size && (n = ::read(fd, buf + used, size - 1 - used)) > 0;) used += static_cast<std::size_t>(n);
  ::close(fd);
  buf[used] = '\0';
  return used > 0;
}

TaskStatus read_status(std::uint32_t tgid, std::uint32_t tid) {
  TaskStatus st;
  char path[64];
  if (tgid) std::snprintf(path, sizeof path, "/proc/%u/task/%u/status", tgid, tid);
  else std::snprintf(path, sizeof path, "/proc/%u/status", tid);
  char text[4096];
  if (!read_proc(path, text, sizeof text)) return st;
  for (char* line = text; line && *line;) {
    char* eol = std::strchr(line, '\n');
    if (eol) *eol = '\0';
    unsigned long long v = 0;
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (std::sscanf(line, "Tgid: %u", &a) == 1) st.tgid = a;
    else if (std::sscanf(line, "Uid: %u %u %u %u", &a, &b, &c, &d) == 4) st.uid[0] = a, st.uid[1] = b, st.uid[2] = c, st.uid[3] = d;
    else if (std::sscanf(line, "SigPnd: %llx", &v) == 1) st.sig_pnd = v;
    else if (std::sscanf(line, "ShdPnd: %llx", &v) == 1) st.shd_pnd = v;
    else if (std::sscanf(line, "SigBlk: %llx", &v) == 1) st.sig_blk = v;
    else if (std::sscanf(line, "SigIgn: %llx", &v) == 1) st.sig_ign = v;
    else if (std::sscanf(line, "SigCgt: %llx", &v) == 1) st.sig_cgt = v;
    else if (std::sscanf(line, "PPid: %u", &a) == 1) st.ppid = a;
    line = eol ? eol + 1 : nullptr;
  }
  st.ok = st.tgid != 0;
  return st;
}

void read_comm(std::uint32_t tgid, std::uint32_t tid, char (&comm)[16]) {
  std::memset(comm, 0, sizeof comm);
  char path[64], text[32];
  std::snprintf(path, sizeof path, "/proc/%u/task/%u/comm", tgid, tid);
  if (read_proc(path, text, sizeof text)) {
    const std::size_t len = std::min(std::strcspn(text, "\n"), sizeof comm - 1);
    std::memcpy(comm, text, len);
  }
}

// si_errno and si_code of a siginfo in the sender's memory (rt_sigqueueinfo and friends).
bool read_siginfo(pid_t pid, std::uint64_t address, int& err, int& code) {
  std::int32_t head[3] = {};  // si_signo, si_errno, si_code
  iovec local{head, sizeof head}, remote{reinterpret_cast<void*>(address), sizeof head};
  if (!address || ::process_vm_readv(pid, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(sizeof head)) return false;
  err = head[1];
  code = head[2];
  return true;
}

// The process a pidfd of `pid` refers to (its fdinfo's Pid line), 0 if none.
std::uint32_t pidfd_target(std::uint32_t pid, std::uint64_t fd) {
  FILE* f = std::fopen(fmt::format("/proc/{}/fdinfo/{}", pid, fd).c_str(), "re");
  if (!f) return 0;
  char line[128];
  int target = 0;
  while (std::fgets(line, sizeof line, f)) {
    if (std::sscanf(line, "Pid: %d", &target) == 1) break;
  }
  std::fclose(f);
  return target > 0 ? static_cast<std::uint32_t>(target) : 0;
}

// The process group of process `pid`, 0 if none.
std::uint32_t process_group(std::uint32_t pid) {
  os::TaskFacts stat;
  return os::read_task_stat(pid, stat) ? stat.pgrp : 0;
}

// The processes of process group `group`, by a walk of /proc.
std::vector<std::uint32_t> group_members(std::uint32_t group) {
  std::vector<std::uint32_t> out;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (const dirent* e = ::readdir(d)) {
    const long pid = std::strtol(e->d_name, nullptr, 10);
    if (pid > 0 && process_group(static_cast<std::uint32_t>(pid)) == group) out.push_back(static_cast<std::uint32_t>(pid));
  }
  ::closedir(d);
  return out;
}

void add_receiver(const SyscallStop& entry, SentSignal s, std::uint32_t tgid, std::uint32_t tid, std::vector<SentSignal>& out);

}  // namespace

bool is_signal_syscall(int nr) {
  return nr == SYS_kill || nr == SYS_tkill || nr == SYS_tgkill || nr == SYS_rt_sigqueueinfo ||
         nr == SYS_rt_tgsigqueueinfo || nr == SYS_pidfd_send_signal;
}

std::vector<SentSignal> signals_sent(const SyscallStop& entry) {
  std::vector<SentSignal> out;
  if (!entry.task || !is_signal_syscall(entry.nr)) return out;
  const auto& a = entry.args;
  SentSignal s;
  std::uint32_t tgid = 0, tid = 0;
  std::uint64_t info = 0;
  constexpr int kSiUser = 0, kSiTkill = -6;
  switch (entry.nr) {
    case SYS_kill:
      tgid = tid = static_cast<std::uint32_t>(a[0]), s.signal = static_cast<int>(a[1]), s.group = true, s.sig_code = kSiUser;
      if (static_cast<std::int32_t>(a[0]) == -1) {
        // Every process the sender may signal but init and its own (kill_something_info), in pid order.
        if (s.signal < 1 || s.signal > 64) return out;
        std::vector<std::uint32_t> pids;
        if (DIR* d = ::opendir("/proc")) {
          while (const dirent* e = ::readdir(d)) {
            const long pid = std::strtol(e->d_name, nullptr, 10);
            if (pid > 1 && static_cast<std::uint32_t>(pid) != entry.task->tgid) pids.push_back(static_cast<std::uint32_t>(pid));
          }
          ::closedir(d);
        }
        std::sort(pids.begin(), pids.end());
        for (const std::uint32_t pid : pids) add_receiver(entry, s, pid, pid, out);
        return out;
      }
      if (static_cast<std::int32_t>(a[0]) <= 0) {  // a process group: its own (0) or -pid's
        const std::uint32_t group = a[0] == 0 ? process_group(entry.task->tgid) : static_cast<std::uint32_t>(-static_cast<std::int32_t>(a[0]));
        if (s.signal < 1 || s.signal > 64 || group == 0) return out;
        for (const std::uint32_t member : group_members(group)) add_receiver(entry, s, member, member, out);
        return out;
      }
      break;
    case SYS_tkill:
      tid = static_cast<std::uint32_t>(a[0]), s.signal = static_cast<int>(a[1]), s.sig_code = kSiTkill;
      break;
    case SYS_tgkill:
      tgid = static_cast<std::uint32_t>(a[0]), tid = static_cast<std::uint32_t>(a[1]), s.signal = static_cast<int>(a[2]);
      s.sig_code = kSiTkill;
      break;
    case SYS_rt_sigqueueinfo:
      tgid = tid = static_cast<std::uint32_t>(a[0]), s.signal = static_cast<int>(a[1]), s.group = true, info = a[2];
      break;
    case SYS_rt_tgsigqueueinfo:
      tgid = static_cast<std::uint32_t>(a[0]), tid = static_cast<std::uint32_t>(a[1]), s.signal = static_cast<int>(a[2]);
      info = a[3];
      break;
    case SYS_pidfd_send_signal:
      tgid = tid = pidfd_target(entry.task->tgid, a[0]), s.signal = static_cast<int>(a[1]), info = a[2];
      s.group = (a[3] & 1) == 0;  // PIDFD_SIGNAL_THREAD aside
      s.sig_code = kSiUser;
      break;
    default: return out;
  }
  if (s.signal < 1 || s.signal > 64 || tid == 0) return out;  // signal 0 checks, sends nothing
  if (info && !read_siginfo(static_cast<pid_t>(entry.task->tgid), info, s.sig_errno, s.sig_code)) return out;  // EFAULT
  add_receiver(entry, s, tgid, tid, out);
  return out;
}

namespace {

void add_receiver(const SyscallStop& entry, SentSignal s, std::uint32_t tgid, std::uint32_t tid, std::vector<SentSignal>& out) {
  const TaskStatus target = read_status(tgid, tid);
  if (!target.ok || (tgid && target.tgid != tgid)) return;  // ESRCH
  // kill_ok_by_cred: the sender's real or effective uid is the receiver's real or saved one (or root).
  const TaskStatus sender = read_status(entry.task->tgid, entry.task->pid);
  if (sender.ok && sender.uid[1] != 0) {
    const bool ok = sender.uid[1] == target.uid[2] || sender.uid[1] == target.uid[0] ||
                    sender.uid[0] == target.uid[2] || sender.uid[0] == target.uid[0];
    if (!ok) return;  // EPERM
  }
  // prepare_signal's sig_ignored, then legacy_queue (kernel/signal.c): ignored unless blocked, by
  // SIG_IGN or by a default action of ignoring (SIGCHLD, SIGCONT, SIGWINCH, SIGURG); a standard signal
  // already pending is not queued again.
  const std::uint64_t bit = std::uint64_t{1} << (s.signal - 1);
  const bool default_ignore = s.signal == SIGCHLD || s.signal == SIGCONT || s.signal == SIGWINCH || s.signal == SIGURG;
  const bool ignored = s.signal != SIGKILL && s.signal != SIGSTOP && !(target.sig_blk & bit) &&
                       ((target.sig_ign & bit) || (default_ignore && !(target.sig_cgt & bit)));
  const bool pending = s.signal < 32 && ((s.group ? target.shd_pnd : target.sig_pnd) & bit);
  s.result = ignored ? 1 : pending ? 2 : 0;
  s.target.tgid = target.tgid;
  s.target.pid = tid;
  read_comm(target.tgid, tid, s.target.comm);
  out.push_back(s);
}

}  // namespace

std::optional<SentSignal> exit_signal(const helpers::Task& task, int wait_status) {
  const std::uint32_t parent = read_status(0, task.tgid).ppid;
  if (parent == 0) return std::nullopt;
  const TaskStatus st = read_status(0, parent);
  if (!st.ok) return std::nullopt;
  SentSignal s;
  s.signal = SIGCHLD;
  s.group = true;
  constexpr int kCldExited = 1, kCldKilled = 2, kCldDumped = 3;
  s.sig_code = WIFSIGNALED(wait_status) ? (WCOREDUMP(wait_status) ? kCldDumped : kCldKilled) : kCldExited;
  const std::uint64_t bit = std::uint64_t{1} << (SIGCHLD - 1);
  const bool ignored = !(st.sig_blk & bit) && ((st.sig_ign & bit) || !(st.sig_cgt & bit));  // SIGCHLD's default: ignore
  const bool pending = (st.shd_pnd & bit) != 0;
  s.result = ignored ? 1 : pending ? 2 : 0;
  s.target.tgid = st.tgid;
  s.target.pid = parent;
  read_comm(st.tgid, parent, s.target.comm);
  return s;
}

bool signal_discarded(int sig, std::uint64_t handler) {
  if (handler == reinterpret_cast<std::uint64_t>(SIG_IGN)) return true;
  return handler == reinterpret_cast<std::uint64_t>(SIG_DFL) &&
         (sig == SIGCHLD || sig == SIGCONT || sig == SIGURG || sig == SIGWINCH);
}

bool default_is_fatal(int sig) {
  switch (sig) {
    case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:                  // ignored
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU: return false;    // stop
    default: return sig >= 1 && sig <= 64;
  }
}

bool is_synchronous_fault(int sig, int si_code) {
  const bool fault = sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE || sig == SIGTRAP || sig == SIGSYS;
  return fault && (si_code > 0 || si_code == SI_KERNEL);
}

bool kills_as_sigkill(int sig, std::uint64_t handler) {
  if (handler != reinterpret_cast<std::uint64_t>(SIG_DFL) || !default_is_fatal(sig)) return false;
  switch (sig) {  // SIG_KERNEL_COREDUMP_MASK: delivered as themselves, to dump core
    case SIGQUIT: case SIGILL: case SIGTRAP: case SIGABRT: case SIGFPE: case SIGSEGV: case SIGBUS: case SIGSYS:
    case SIGXCPU: case SIGXFSZ: return false;
    default: return true;
  }
}

SyscallStop signal_deliver_event(const helpers::Task* task, int sig, int sig_errno, int sig_code, std::uint64_t handler,
                                 std::uint64_t flags) {
  SyscallStop ev;
  ev.task = task;
  ev.event = ProcessEvent::kSignalDeliver;
  ev.signal = sig;
  ev.sig_errno = sig_errno;
  ev.sig_code = sig_code;
  ev.action_handler = handler;
  ev.action_flags = flags;
  return ev;
}

SyscallStop signal_generate_event(const helpers::Task* sender, const SentSignal& sent) {
  SyscallStop ev;
  ev.task = sender;
  ev.event = ProcessEvent::kSignalGenerate;
  ev.signal = sent.signal;
  ev.sig_errno = sent.sig_errno;
  ev.sig_code = sent.sig_code;
  ev.sig_result = sent.result;
  ev.sig_group = sent.group;
  ev.target = &sent.target;
  return ev;
}

}  // namespace bpfvm::attach
