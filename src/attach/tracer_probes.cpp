// Uprobes placed by the ptrace tracer (see syscall_tracer.hpp): int3 bytes written through
// /proc/PID/mem (which writes read-only code for a tracer, as debuggers do), hits taken at SIGTRAP
// signal-delivery stops whose siginfo says SI_KERNEL (an int3) at one of them.
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "bpfvm/attach/syscall_tracer.hpp"
#include "bpfvm/base/process.hpp"

namespace bpfvm::attach {

namespace {

constexpr std::uint8_t kInt3 = 0xcc;
static_assert(sizeof(user_regs_struct) >= 168);  // its first 21 words are struct pt_regs

bool read_memory(int mem, std::uint64_t address, void* out, std::size_t size) {
  return ::pread(mem, out, size, static_cast<off_t>(address)) == static_cast<ssize_t>(size);
}
bool write_memory(int mem, std::uint64_t address, const void* in, std::size_t size) {
  return ::pwrite(mem, in, size, static_cast<off_t>(address)) == static_cast<ssize_t>(size);
}

// Runs `code` (the original bytes at rip) by changing `regs`, when it is an instruction that begins
// functions or a nop (a USDT site): endbr64, push REG, mov %rsp,%rbp, nops. False: it must be stepped.
bool emulate(const std::uint8_t* code, user_regs_struct& regs, int mem) {
  const std::uint8_t b0 = code[0];
  if (b0 == 0x90) return regs.rip += 1, true;
  if (b0 == 0xf3 && code[1] == 0x0f && code[2] == 0x1e && code[3] == 0xfa) return regs.rip += 4, true;  // endbr64
  if (b0 == 0x48 && code[1] == 0x89 && code[2] == 0xe5) return regs.rbp = regs.rsp, regs.rip += 3, true;
  // nop with a ModRM (0f 1f /0): the usual padding forms, by their length.
  const std::uint8_t* n = b0 == 0x66 ? code + 1 : code;
  if (n[0] == 0x0f && n[1] == 0x1f) {
    const std::size_t prefix = n - code;
    std::size_t len = 0;
    if (n[2] == 0x00) len = 3;
    else if (n[2] == 0x40 && n[3] == 0x00) len = 4;
    else if (n[2] == 0x44 && n[3] == 0x00 && n[4] == 0x00) len = 5;
    else if (n[2] == 0x80 && !n[3] && !n[4] && !n[5] && !n[6]) len = 7;
    else if (n[2] == 0x84 && !n[3] && !n[4] && !n[5] && !n[6] && !n[7]) len = 8;
    if (len) return regs.rip += prefix + len, true;
  }
  // push %reg (50+r, with REX.B 41 for r8-r15)
  const bool rex = b0 == 0x41 && code[1] >= 0x50 && code[1] <= 0x57;
  const std::uint8_t op = rex ? code[1] : b0;
  if (op >= 0x50 && op <= 0x57) {
    static constexpr unsigned long long user_regs_struct::*kLow[8] = {
        &user_regs_struct::rax, &user_regs_struct::rcx, &user_regs_struct::rdx, &user_regs_struct::rbx,
        &user_regs_struct::rsp, &user_regs_struct::rbp, &user_regs_struct::rsi, &user_regs_struct::rdi};
    static constexpr unsigned long long user_regs_struct::*kHigh[8] = {
        &user_regs_struct::r8,  &user_regs_struct::r9,  &user_regs_struct::r10, &user_regs_struct::r11,
        &user_regs_struct::r12, &user_regs_struct::r13, &user_regs_struct::r14, &user_regs_struct::r15};
    const std::uint64_t value = regs.*(rex ? kHigh : kLow)[op - 0x50];
    if (!write_memory(mem, regs.rsp - 8, &value, 8)) return false;
    regs.rsp -= 8;
    regs.rip += rex ? 2 : 1;
    return true;
  }
  return false;
}

}  // namespace

SyscallTracer::Space::~Space() {
  if (mem >= 0) ::close(mem);
}

void SyscallTracer::set_probes(std::vector<TracerProbe> probes, ProbeHandler handler) {
  probes_ = std::move(probes);
  probe_handler_ = std::move(handler);
}

SyscallTracer::Space* SyscallTracer::space_of(std::uint32_t tgid) {
  if (const auto it = spaces_.find(tgid); it != spaces_.end()) return it->second.get();
  auto space = std::make_shared<Space>();
  space->mem = ::open(fmt::format("/proc/{}/mem", tgid).c_str(), O_RDWR | O_CLOEXEC);
  if (space->mem < 0) {
    probe_errors_.push_back(fmt::format("process {}: cannot write its memory: {}", tgid, std::strerror(errno)));
    return nullptr;
  }
  return (spaces_[tgid] = std::move(space)).get();
}

bool SyscallTracer::write_byte(Space& space, std::uint64_t address, std::uint8_t byte) {
  return write_memory(space.mem, address, &byte, 1);
}

void SyscallTracer::place_probes(std::uint32_t tgid) {
  if (probes_.empty()) return;
  Space* space = space_of(tgid);
  if (!space) return;
  const std::vector<os::Mapping> maps = os::read_mappings(static_cast<pid_t>(tgid));
  for (std::size_t i = 0; i < probes_.size(); ++i) {
    if (space->placed.contains(i)) continue;
    const TracerProbe& p = probes_[i];
    std::uint64_t address = 0, semaphore = 0;
    for (const os::Mapping& m : maps) {
      if (m.dev != p.dev || m.inode != p.inode) continue;
      const bool inside = p.offset >= m.offset && p.offset < m.offset + (m.end - m.start);
      if (m.executable() && inside) address = m.start + (p.offset - m.offset);
      if (p.semaphore_offset && m.perms[1] == 'w' && p.semaphore_offset >= m.offset &&
          p.semaphore_offset + 2 <= m.offset + (m.end - m.start)) {
        semaphore = m.start + (p.semaphore_offset - m.offset);
      }
    }
    if (!address) continue;  // not mapped (yet)
    Breakpoint& bp = space->breakpoints[address];
    if (bp.probes.empty() && bp.returns == 0) {
      if (!read_memory(space->mem, address, &bp.original, 1) || !write_byte(*space, address, kInt3)) {
        probe_errors_.push_back(fmt::format("process {}: cannot place a probe at {:#x}: {}", tgid, address, std::strerror(errno)));
        space->breakpoints.erase(address);
        continue;
      }
    }
    bp.probes.push_back(i);
    space->placed.insert(i);
    if (semaphore) {
      std::uint16_t count = 0;
      if (read_memory(space->mem, semaphore, &count, 2)) {
        ++count;
        if (write_memory(space->mem, semaphore, &count, 2)) space->semaphores.push_back(semaphore);
      }
    }
  }
}

bool SyscallTracer::probe_hit(pid_t tid, TaskState& t) {
  const auto it = spaces_.find(t.task.tgid);
  if (it == spaces_.end()) return false;
  Space& space = *it->second;
  siginfo_t info{};
  if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) != 0 || info.si_code != SI_KERNEL) return false;
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) return false;
  const std::uint64_t address = regs.rip - 1;
  const auto found = space.breakpoints.find(address);
  if (found == space.breakpoints.end()) {
    // An int3 taken out after this thread trapped on it (another thread's return finished with it):
    // the original byte is back, and runs again, as the kernel's uprobes do.
    std::uint8_t now = 0;
    if (!space.former.contains(address) || !read_memory(space.mem, address, &now, 1) || now == kInt3) return false;
    regs.rip = address;
    ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs);
    return true;
  }
  regs.rip = address;
  ProbeHit hit;
  hit.task = &t.task;
  hit.address = address;
  std::memcpy(hit.regs, &regs, sizeof hit.regs);
  // A return first (the call in progress that returns here, by its stack pointer; entries above it
  // are frames a longjmp skipped), then the probes at this address as a function's entry.
  Breakpoint& bp = found->second;
  if (bp.returns > 0) {
    for (std::size_t i = t.returns.size(); i-- > 0;) {
      if (t.returns[i].address != address || t.returns[i].rsp != regs.rsp) continue;
      const std::uint64_t func = t.returns[i].func;
      for (std::size_t j = t.returns.size(); j-- > i;) {
        if (auto r = space.breakpoints.find(t.returns[j].address); r != space.breakpoints.end()) --r->second.returns;
      }
      t.returns.resize(i);
      const auto at = space.breakpoints.find(func);
      for (const std::size_t p : at == space.breakpoints.end() ? std::vector<std::size_t>{} : at->second.probes) {
        if (!probes_[p].retprobe) continue;
        hit.probe = p;
        hit.address = func;
        probe_handler_(hit);
      }
      break;
    }
  }
  hit.address = address;
  bool returns_wanted = false;
  for (const std::size_t p : bp.probes) {
    if (probes_[p].retprobe) {
      returns_wanted = true;
      continue;
    }
    hit.probe = p;
    probe_handler_(hit);
  }
  if (returns_wanted) {
    std::uint64_t ret = 0;
    if (read_memory(space.mem, regs.rsp, &ret, 8)) {
      Breakpoint& r = space.breakpoints[ret];
      bool ok = true;
      if (r.probes.empty() && r.returns == 0) {
        ok = read_memory(space.mem, ret, &r.original, 1) && write_byte(space, ret, kInt3);
      }
      if (ok) {
        ++r.returns;
        t.returns.push_back({regs.rsp + 8, ret, address});
      } else {
        space.breakpoints.erase(ret);
      }
    }
  }
  // Return-only int3s no call needs any more go.
  const auto again = space.breakpoints.find(address);
  if (again != space.breakpoints.end() && again->second.probes.empty() && again->second.returns <= 0) {
    write_byte(space, address, again->second.original);
    space.breakpoints.erase(again);
    space.former.insert(address);
    ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs);
    return true;
  }
  step_over(tid, space, address, &regs);
  return true;
}

// Runs the instruction an int3 displaced: emulated when it can be, else stepped in place with the
// int3 out, the process's other traced threads stopped meanwhile (their other stops kept for the loop).
void SyscallTracer::step_over(pid_t tid, Space& space, std::uint64_t address, void* regs_ptr) {
  auto& regs = *static_cast<user_regs_struct*>(regs_ptr);
  const Breakpoint& bp = space.breakpoints.at(address);
  std::uint8_t code[16] = {};
  read_memory(space.mem, address, code, sizeof code);
  code[0] = bp.original;
  if (emulate(code, regs, space.mem)) {
    ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs);
    return;
  }
  std::vector<pid_t> held;
  for (auto& [other, o] : tasks_) {
    if (other == tid || o.listening || !spaces_.contains(o.task.tgid) || spaces_[o.task.tgid].get() != &space) continue;
    // Already stopped, its status taken and waiting in the loop's queue: it runs nothing meanwhile.
    if (std::any_of(deferred_.begin(), deferred_.end(), [&](const auto& d) { return d.first == other; })) continue;
    if (::ptrace(PTRACE_INTERRUPT, other, nullptr, nullptr) != 0) continue;
    int status = 0;
    if (os::wait_task(other, &status) != other) continue;
    if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) held.push_back(other);
    else deferred_.push_back({other, status});  // stopped (or gone) for a reason of its own: the loop's
  }
  write_byte(space, address, bp.original);
  ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs);
  std::vector<siginfo_t> pending;
  for (int tries = 0; tries < 16; ++tries) {
    if (::ptrace(PTRACE_SINGLESTEP, tid, nullptr, nullptr) != 0) break;
    int status = 0;
    if (os::wait_task(tid, &status) != tid) break;
    if (!WIFSTOPPED(status)) {
      deferred_.push_back({tid, status});
      break;
    }
    if (WSTOPSIG(status) == SIGTRAP && (status >> 16) == 0) break;  // the step
    if ((status >> 16) == 0) {  // a signal meanwhile: delivered after the step (its siginfo kept)
      siginfo_t info{};
      if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) != 0) info.si_signo = WSTOPSIG(status);
      pending.push_back(info);
    }
  }
  write_byte(space, address, kInt3);
  if (!pending.empty()) {
    auto& deferred = tasks_[tid].deferred_signals;
    deferred.insert(deferred.end(), pending.begin(), pending.end());
  }
  for (const pid_t other : held) restart(other, tasks_[other], 0);
}

void SyscallTracer::remove_probes() {
  std::set<Space*> done;  // a vfork child shares its parent's
  for (auto& [tgid, space] : spaces_) {
    if (!done.insert(space.get()).second) continue;
    for (auto& [address, bp] : space->breakpoints) write_byte(*space, address, bp.original);
    for (const std::uint64_t s : space->semaphores) {
      std::uint16_t count = 0;
      if (read_memory(space->mem, s, &count, 2) && count > 0) {
        --count;
        write_memory(space->mem, s, &count, 2);
      }
    }
    for (const auto& [address, bp] : space->breakpoints) removed_.insert(address);
    // Return int3s taken out while the trace ran: a thread may have trapped on one just before.
    removed_.insert(space->former.begin(), space->former.end());
    space->breakpoints.clear();
    space->semaphores.clear();
  }
}

bool SyscallTracer::rewind_if_probe(pid_t tid) {
  siginfo_t info{};
  user_regs_struct regs{};
  if (::ptrace(PTRACE_GETSIGINFO, tid, nullptr, &info) != 0 || info.si_code != SI_KERNEL ||
      ::ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0 || !removed_.contains(regs.rip - 1)) {
    return false;
  }
  // The byte there now is the original one, not the program's own int3 (which must kill it as it would).
  errno = 0;
  const long word = ::ptrace(PTRACE_PEEKTEXT, tid, reinterpret_cast<void*>(regs.rip - 1), nullptr);
  if (errno != 0 || static_cast<std::uint8_t>(word & 0xff) == kInt3) return false;
  regs.rip -= 1;  // the original byte is back: it runs again
  return ::ptrace(PTRACE_SETREGS, tid, nullptr, &regs) == 0;
}

void SyscallTracer::forget_returns(const TaskState& t) {
  const auto it = spaces_.find(t.task.tgid);
  if (it == spaces_.end()) return;
  Space& space = *it->second;
  for (const TaskState::Return& r : t.returns) {
    const auto bp = space.breakpoints.find(r.address);
    if (bp == space.breakpoints.end()) continue;
    if (--bp->second.returns <= 0 && bp->second.probes.empty()) {
      write_byte(space, r.address, bp->second.original);
      space.breakpoints.erase(bp);
      space.former.insert(r.address);
    }
  }
}

}  // namespace bpfvm::attach
