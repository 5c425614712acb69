// Calls in another process (see include/bpfvm/attach/remote_call.hpp).
#include "bpfvm/attach/remote_call.hpp"

#include <dirent.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "bpfvm/attach/uprobe.hpp"
#include "bpfvm/base/process.hpp"

namespace bpfvm::attach {

namespace {

Error ptrace_error(std::string_view what, pid_t pid) {
  return make_error(errno == EPERM ? Errc::kPermission : Errc::kIo, "{} (process {}): {}", what, pid, std::strerror(errno));
}

// Waits for the thread's next stop; its signal, or an error when it ended.
Result<int> wait_stop(pid_t pid) {
  for (;;) {
    int status = 0;
    if (os::wait_task(pid, &status) < 0) {
      return make_error(Errc::kIo, "waitpid (process {}): {}", pid, std::strerror(errno));
    }
    if (WIFEXITED(status) || WIFSIGNALED(status)) return make_error(Errc::kNotFound, "process {} ended", pid);
    if (WIFSTOPPED(status)) return WSTOPSIG(status) | (status >> 16 << 8);
  }
}

}  // namespace

Result<std::unique_ptr<RemoteCall>> RemoteCall::seize(pid_t pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return make_error(Errc::kNotFound, "no process {}", pid);
  auto rc = std::unique_ptr<RemoteCall>(new RemoteCall(pid));
  if (::ptrace(PTRACE_SEIZE, pid, nullptr, nullptr) != 0) {
    return ptrace_error("cannot trace it (is ptrace allowed here? see kernel.yama.ptrace_scope)", pid);
  }
  rc->seized_ = true;
  if (::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr) != 0) return ptrace_error("PTRACE_INTERRUPT", pid);
  // Its first stop is the interrupt (a signal on its way first: kept pending, delivered after us).
  for (;;) {
    const int stop = BPFVM_TRY(wait_stop(pid));
    if ((stop >> 8) == PTRACE_EVENT_STOP) break;
    // A signal-delivery stop: suppressed now and sent again, so it is delivered once we are done.
    rc->held_.push_back(stop & 0xff);
    if (::ptrace(PTRACE_CONT, pid, nullptr, nullptr) != 0) return ptrace_error("PTRACE_CONT", pid);
    ::ptrace(PTRACE_INTERRUPT, pid, nullptr, nullptr);
  }
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, pid, nullptr, &regs) != 0) return ptrace_error("PTRACE_GETREGS", pid);
  rc->saved_.assign(reinterpret_cast<std::uint8_t*>(&regs), reinterpret_cast<std::uint8_t*>(&regs) + sizeof regs);
  return rc;
}

namespace {

// Where a stopped thread resumes (see stop_others): its rip, and rip - 2 when it is in a syscall that
// returned one of the kernel's restart codes (it goes back to the syscall instruction).
void resume_positions(const user_regs_struct& regs, std::vector<std::uint64_t>& out) {
  out.push_back(regs.rip);
  const auto ret = static_cast<std::int64_t>(regs.rax);
  const bool restart = ret == -512 || ret == -513 || ret == -514 || ret == -516;  // ERESTART*
  if (static_cast<std::int64_t>(regs.orig_rax) >= 0 && restart) out.push_back(regs.rip - 2);
}

}  // namespace

Result<std::vector<std::uint64_t>> RemoteCall::stop_others() {
  std::vector<std::uint64_t> positions;
  user_regs_struct own{};
  std::memcpy(&own, saved_.data(), sizeof own);
  resume_positions(own, positions);
  // Threads made meanwhile are found by reading the list again until it has no new one.
  for (bool found = true; found;) {
    found = false;
    DIR* dir = ::opendir(fmt::format("/proc/{}/task", pid_).c_str());
    if (!dir) return make_error(Errc::kNotFound, "no process {}", pid_);
    std::vector<pid_t> tids;
    while (const dirent* e = ::readdir(dir)) {
      const auto tid = static_cast<pid_t>(std::strtol(e->d_name, nullptr, 10));
      if (tid > 0 && tid != pid_) tids.push_back(tid);
    }
    ::closedir(dir);
    for (const pid_t tid : tids) {
      if (std::any_of(others_.begin(), others_.end(), [&](const auto& o) { return o.first == tid; })) continue;
      if (::ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
        if (errno == ESRCH) continue;  // ended meanwhile
        return ptrace_error("cannot trace a thread", tid);
      }
      others_.push_back({tid, {}});
      found = true;
      ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
      for (;;) {
        auto stop = wait_stop(tid);
        if (!stop) break;  // it ended
        if ((*stop >> 8) == PTRACE_EVENT_STOP) break;
        others_.back().second.push_back(*stop & 0xff);  // a signal on its way: sent again after
        ::ptrace(PTRACE_CONT, tid, nullptr, nullptr);
        ::ptrace(PTRACE_INTERRUPT, tid, nullptr, nullptr);
      }
      user_regs_struct regs{};
      if (::ptrace(PTRACE_GETREGS, tid, nullptr, &regs) == 0) resume_positions(regs, positions);
    }
  }
  return positions;
}

void RemoteCall::resume_others() {
  for (const auto& [tid, held] : others_) {
    ::ptrace(PTRACE_DETACH, tid, nullptr, nullptr);
    for (const int sig : held) ::syscall(SYS_tgkill, pid_, tid, sig);
  }
  others_.clear();
}

RemoteCall::~RemoteCall() {
  resume_others();
  if (!seized_) return;
  if (!saved_.empty()) ::ptrace(PTRACE_SETREGS, pid_, nullptr, saved_.data());
  ::ptrace(PTRACE_DETACH, pid_, nullptr, nullptr);
  for (const int sig : held_) ::kill(pid_, sig);  // the signals that came meanwhile, delivered now
}

Result<std::uint64_t> RemoteCall::call(std::uint64_t address, const std::vector<Arg>& args) {
  if (args.size() > 6) return make_error(Errc::kInvalid, "a remote call takes at most 6 arguments");
  user_regs_struct regs{};
  std::memcpy(&regs, saved_.data(), sizeof regs);
  // Strings below the red zone, then the return address 0, the stack 16-aligned at the call.
  std::uint64_t sp = (regs.rsp - 128 - 4096) & ~std::uint64_t{15};
  std::uint64_t values[6] = {};
  std::vector<std::uint8_t> data;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (const auto* n = std::get_if<std::uint64_t>(&args[i])) {
      values[i] = *n;
      continue;
    }
    const std::string& s = std::get<std::string>(args[i]);
    sp -= (s.size() + 1 + 15) & ~std::size_t{15};
    struct iovec local {const_cast<char*>(s.c_str()), s.size() + 1};
    struct iovec remote {reinterpret_cast<void*>(sp), s.size() + 1};
    if (::process_vm_writev(pid_, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(s.size() + 1)) {
      return make_error(Errc::kIo, "writing an argument into process {}: {}", pid_, std::strerror(errno));
    }
    values[i] = sp;
  }
  sp -= 8;  // the return address: 0, where the function's return faults
  const std::uint64_t zero = 0;
  struct iovec local {const_cast<std::uint64_t*>(&zero), 8};
  struct iovec remote {reinterpret_cast<void*>(sp), 8};
  if (::process_vm_writev(pid_, &local, 1, &remote, 1, 0) != 8) {
    return make_error(Errc::kIo, "writing into process {}: {}", pid_, std::strerror(errno));
  }
  regs.rsp = sp;
  regs.rip = address;
  regs.rdi = values[0], regs.rsi = values[1], regs.rdx = values[2];
  regs.rcx = values[3], regs.r8 = values[4], regs.r9 = values[5];
  regs.rax = 0;
  regs.orig_rax = ~0ull;  // not in a syscall: no restart of the one it was in while we call
  if (::ptrace(PTRACE_SETREGS, pid_, nullptr, &regs) != 0) return ptrace_error("PTRACE_SETREGS", pid_);
  if (::ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) return ptrace_error("PTRACE_CONT", pid_);
  for (;;) {
    const int stop = BPFVM_TRY(wait_stop(pid_));
    const int sig = stop & 0xff;
    if (::ptrace(PTRACE_GETREGS, pid_, nullptr, &regs) != 0) return ptrace_error("PTRACE_GETREGS", pid_);
    if (sig == SIGSEGV && regs.rip == 0) return static_cast<std::uint64_t>(regs.rax);
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGILL || sig == SIGFPE) {
      return make_error(Errc::kFault, "the call at {:#x} in process {} faulted (signal {}) at {:#x}; its state is "
                                      "restored", address, pid_, sig, static_cast<std::uint64_t>(regs.rip));
    }
    // Another signal, or a group stop: held back (sent again once detached), the call goes on.
    if ((stop >> 8) == 0) held_.push_back(sig);
    if (::ptrace(PTRACE_CONT, pid_, nullptr, nullptr) != 0) return ptrace_error("PTRACE_CONT", pid_);
  }
}

Result<std::uint64_t> RemoteCall::function_address(const std::string& file, const std::string& function) const {
  const std::vector<os::Mapping> maps = os::read_mappings(pid_);
  if (maps.empty()) return make_error(Errc::kNotFound, "no process {}", pid_);
  std::string path;
  for (const os::Mapping& m : maps) {
    if (m.path.ends_with(file)) {
      path = m.path;
      break;
    }
  }
  if (path.empty()) return std::uint64_t{0};
  UprobeSpec spec;
  spec.path = fmt::format("/proc/{}/root{}", pid_, path);
  spec.function = function;
  auto point = resolve_uprobe(spec);
  if (!point) return std::uint64_t{0};
  for (const os::Mapping& m : maps) {
    if (m.path == path && point->file_offset >= m.offset && point->file_offset < m.offset + (m.end - m.start)) {
      return m.start + (point->file_offset - m.offset);
    }
  }
  return std::uint64_t{0};
}

}  // namespace bpfvm::attach
