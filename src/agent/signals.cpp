// The process's signal actions behind the agent's dispatcher (see signals.hpp).
#include "signals.hpp"

#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "bpfvm/agent/syscall_sites.hpp"
#include "bpfvm/attach/syscall_tracer.hpp"
#include "user_memory.hpp"
#include "forked.hpp"

// The restorer the dispatcher's frames return through where the process set none (a default action):
// rt_sigreturn, encoded as glibc's __restore_rt (`mov $15, %rax; syscall`), the bytes unwinders and
// debuggers recognise as a signal frame.
extern "C" void bpfvm_agent_restore_rt();
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".hidden bpfvm_agent_restore_rt\n"
    ".type bpfvm_agent_restore_rt, @function\n"
    "bpfvm_agent_restore_rt:\n"
    "  .byte 0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00\n"  // mov $15, %rax
    "  syscall\n"
    ".size bpfvm_agent_restore_rt, .-bpfvm_agent_restore_rt\n");

namespace bpfvm::agent::detail {

namespace {

// struct kernel_sigaction on x86-64, as rt_sigaction takes it (sigsetsize 8).
struct KernelAction {
  std::uint64_t handler = 0, flags = 0, restorer = 0, mask = 0;
};
constexpr std::uint64_t kRestorer = 0x04000000;  // SA_RESTORER

// Each signal's action as the process set it: two copies, the current one named by an index, so that
// the dispatcher (in a signal handler, on any thread) reads one that no writer is changing.
struct Entry {
  KernelAction copies[2];
  std::atomic<int> current{0};
};
Entry g_actions[65];
std::atomic<bool> g_interposed{false};
std::atomic<DeliverFn> g_deliver{nullptr};
BPFVM_AGENT_FORKED std::atomic<pid_t> g_owner{0};       // the process whose table this is (a vfork child's is not)
std::atomic<pid_t> g_writer{0};        // the thread changing the table (writers take turns)


bool managed(int sig) {
  return sig >= 1 && sig <= 64 && sig != SIGKILL && sig != SIGSTOP && sig != 32 && sig != 33 &&
         (sig != SIGTRAP || !trap_action(nullptr, nullptr));
}

void dispatch(int sig, siginfo_t* info, void* context);

// The kernel's action for the process's `action` of `sig`: the dispatcher where a signal meets a
// handler or a fatal default action, else the action itself.
KernelAction kernel_action(int sig, const KernelAction& action) {
  const bool handler = action.handler != reinterpret_cast<std::uint64_t>(SIG_DFL) &&
                       action.handler != reinterpret_cast<std::uint64_t>(SIG_IGN);
  const bool fatal = action.handler == reinterpret_cast<std::uint64_t>(SIG_DFL) && attach::default_is_fatal(sig);
  if (!managed(sig) || (!handler && !fatal)) return action;
  KernelAction k = action;
  k.handler = reinterpret_cast<std::uint64_t>(&dispatch);
  k.flags |= SA_SIGINFO | kRestorer;
  if (!(action.flags & kRestorer)) k.restorer = reinterpret_cast<std::uint64_t>(&bpfvm_agent_restore_rt);
  return k;
}

KernelAction read_action(int sig) {
  const Entry& e = g_actions[sig];
  return e.copies[e.current.load(std::memory_order_acquire)];
}

void write_action(int sig, const KernelAction& action) {
  Entry& e = g_actions[sig];
  const int next = 1 - e.current.load(std::memory_order_relaxed);
  e.copies[next] = action;
  e.current.store(next, std::memory_order_release);
}

// Writers take turns; a writer interrupted by a signal whose handler sets an action (the same thread)
// goes on without waiting for itself.
struct WriterTurn {
  bool held = false;
  WriterTurn() {
    const auto self = static_cast<pid_t>(sys(SYS_gettid));
    if (g_writer.load(std::memory_order_acquire) == self) return;
    pid_t none = 0;
    while (!g_writer.compare_exchange_weak(none, self, std::memory_order_acquire)) {
      none = 0;
      sys(SYS_sched_yield);
    }
    held = true;
  }
  ~WriterTurn() {
    if (held) g_writer.store(0, std::memory_order_release);
  }
};

void dispatch(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const KernelAction action = read_action(sig);
  const DeliverFn deliver = g_deliver.load(std::memory_order_acquire);
  if (deliver && !deliver(sig, info, {action.handler, action.flags}, true)) {
    // Held, to come again when the agent's work on this thread ends: the process's action is not taken
    // now. One the kernel reset as it delivered this one (SA_RESETHAND) is put back as it stands.
    if (action.flags & SA_RESETHAND) {
      WriterTurn turn;
      const KernelAction k = kernel_action(sig, read_action(sig));
      sys(SYS_rt_sigaction, static_cast<std::uint64_t>(sig), reinterpret_cast<std::uint64_t>(&k), 0, 8);
    }
    errno = saved_errno;
    return;
  }
  if (action.flags & SA_RESETHAND) {
    // The kernel put SIG_DFL back as it delivered this one (the dispatcher carries the process's flags).
    WriterTurn turn;
    write_action(sig, KernelAction{});
  }
  errno = saved_errno;
  if (action.handler == reinterpret_cast<std::uint64_t>(SIG_IGN)) return;  // changed meanwhile
  if (action.handler == reinterpret_cast<std::uint64_t>(SIG_DFL)) {
    // The default action: SIG_DFL in the kernel, and the signal again (blocked until this handler
    // returns), to end the process as it would have. A fault comes back anyway on the return.
    {
      WriterTurn turn;
      const KernelAction dfl{};
      sys(SYS_rt_sigaction, static_cast<std::uint64_t>(sig), reinterpret_cast<std::uint64_t>(&dfl), 0, 8);
      write_action(sig, dfl);
    }
    const std::int64_t tgid = sys(SYS_getpid), tid = sys(SYS_gettid);
    if (sys(SYS_rt_tgsigqueueinfo, static_cast<std::uint64_t>(tgid), static_cast<std::uint64_t>(tid),
            static_cast<std::uint64_t>(sig), reinterpret_cast<std::uint64_t>(info)) != 0) {
      sys(SYS_tgkill, static_cast<std::uint64_t>(tgid), static_cast<std::uint64_t>(tid), static_cast<std::uint64_t>(sig));
    }
    errno = saved_errno;
    return;
  }
  if (action.flags & SA_SIGINFO) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(action.handler)(sig, info, context);
  } else {
    reinterpret_cast<void (*)(int)>(action.handler)(sig);
  }
}

}  // namespace

void interpose_signals(DeliverFn deliver) {
  g_deliver.store(deliver, std::memory_order_release);
  if (g_interposed.load(std::memory_order_acquire)) return;
  WriterTurn turn;
  if (g_interposed.load(std::memory_order_acquire)) return;
  g_owner.store(static_cast<pid_t>(sys(SYS_getpid)), std::memory_order_release);
  for (int sig = 1; sig <= 64; ++sig) {
    if (!managed(sig)) continue;
    KernelAction now;
    if (sys(SYS_rt_sigaction, static_cast<std::uint64_t>(sig), 0, reinterpret_cast<std::uint64_t>(&now), 8) != 0) continue;
    write_action(sig, now);
    const KernelAction k = kernel_action(sig, now);
    if (k.handler != now.handler) {
      sys(SYS_rt_sigaction, static_cast<std::uint64_t>(sig), reinterpret_cast<std::uint64_t>(&k), 0, 8);
    }
  }
  g_interposed.store(true, std::memory_order_release);
}

namespace {
std::atomic<std::uint64_t> g_setxid_handler{0}, g_setxid_flags{0};
std::atomic<void (*)()> g_setxid_before{nullptr}, g_setxid_after{nullptr};

void setxid_chain(int sig, siginfo_t* info, void* context) {
  if (auto before = g_setxid_before.load(std::memory_order_acquire)) before();
  const std::uint64_t handler = g_setxid_handler.load(std::memory_order_acquire);
  if (g_setxid_flags.load(std::memory_order_acquire) & SA_SIGINFO) {
    reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handler)(sig, info, context);
  } else {
    reinterpret_cast<void (*)(int)>(handler)(sig);
  }
  if (auto after = g_setxid_after.load(std::memory_order_acquire)) after();
}
}  // namespace

bool chain_setxid(void (*before)(), void (*after)()) {
  constexpr int kSetxid = 33;
  g_setxid_before.store(before, std::memory_order_release);
  g_setxid_after.store(after, std::memory_order_release);
  if (g_setxid_handler.load(std::memory_order_acquire) != 0) return true;
  KernelAction now;
  if (sys(SYS_rt_sigaction, kSetxid, 0, reinterpret_cast<std::uint64_t>(&now), 8) != 0) return false;
  if (now.handler == reinterpret_cast<std::uint64_t>(SIG_DFL) || now.handler == reinterpret_cast<std::uint64_t>(SIG_IGN)) {
    return false;
  }
  g_setxid_flags.store(now.flags, std::memory_order_release);
  g_setxid_handler.store(now.handler, std::memory_order_release);
  KernelAction chained = now;
  chained.handler = reinterpret_cast<std::uint64_t>(&setxid_chain);
  chained.flags |= SA_SIGINFO;
  return sys(SYS_rt_sigaction, kSetxid, reinterpret_cast<std::uint64_t>(&chained), 0, 8) == 0;
}

bool in_signal_handler(std::uint64_t sp) {
  // x86-64's struct rt_sigframe (arch/x86/include/asm/sigframe.h), by byte offset: pretcode 0, then
  // struct ucontext: uc_flags 8, uc_link 16, uc_stack 24 (24 bytes), uc_mcontext 48 (struct sigcontext:
  // r8-r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, then cs gs fs ss as u16 at 192-199,
  // err, trapno, oldmask, cr2, fpstate at 232). The frame starts 8 bytes past a 16-byte boundary (the
  // handler's entry alignment; get_sigframe).
  constexpr std::size_t kSpan = 64 * 1024, kChunk = 2048, kFrame = 240;
  constexpr std::uint64_t kUcSigcontextSs = 0x2, kUserCs = 0x33, kUserDs = 0x2b;
  const auto pid = static_cast<pid_t>(sys(SYS_getpid));
  // Candidates 8 bytes past a 16-byte boundary, a chunk at a time (on the caller's stack, which may be
  // small), each chunk with the frame's length past its end.
  std::uint64_t at = ((sp + 15) & ~std::uint64_t{15}) - 8;
  if (at < sp) at += 16;
  const auto is_frame = [](const std::uint8_t* p, std::uint64_t addr) {
    std::uint64_t w[30];  // pretcode, uc_flags, uc_link, ..., fpstate (232)
    std::memcpy(w, p, sizeof w);
    std::uint16_t cs, ss;
    std::memcpy(&cs, p + 192, 2);
    std::memcpy(&ss, p + 198, 2);
    return w[0] != 0 && w[1] <= 7 && (w[1] & kUcSigcontextSs) && w[2] == 0 && cs == kUserCs && ss == kUserDs &&
           w[29] > addr && w[29] - addr < kSpan;
  };
  std::uint8_t window[kChunk + kFrame];
  for (const std::uint64_t end = sp + kSpan; at < end; at += kChunk) {
    std::size_t n = sizeof window;
    if (!read(pid, window, at, n)) {  // the stack ends within reach: what there is before its end
      n = 0;
      while (n + 16 <= sizeof window && read(pid, window + n, at + n, 16)) n += 16;
    }
    for (std::size_t off = 0; off < kChunk && off + kFrame <= n; off += 16) {
      if (is_frame(window + off, at + off)) return true;
    }
    if (n < sizeof window) return false;
  }
  return false;
}

bool signals_interposed() { return g_interposed.load(std::memory_order_acquire); }

void signals_forked() {
  g_owner.store(static_cast<pid_t>(sys(SYS_getpid)), std::memory_order_release);
  store_if_changed(g_writer, 0, std::memory_order_release);  // a writer of the parent's did not come along
}

void process_action(int sig, std::uint64_t (&words)[4]) {
  if (sig < 1 || sig > 64 || words[0] != reinterpret_cast<std::uint64_t>(&dispatch)) return;
  const KernelAction own = read_action(sig);
  words[0] = own.handler, words[1] = own.flags, words[2] = own.restorer, words[3] = own.mask;
}

std::int64_t set_kernel_action(int sig, std::uint64_t handler, std::uint64_t flags, std::uint64_t (&old)[4]) {
  const KernelAction k{handler, flags | kRestorer, reinterpret_cast<std::uint64_t>(&bpfvm_agent_restore_rt), 0};
  KernelAction was;
  const std::int64_t r = sys(SYS_rt_sigaction, static_cast<std::uint64_t>(sig), reinterpret_cast<std::uint64_t>(&k),
                             reinterpret_cast<std::uint64_t>(&was), 8);
  old[0] = was.handler, old[1] = was.flags, old[2] = was.restorer, old[3] = was.mask;
  return r;
}

void report_delivery(int sig, const siginfo_t* info, SignalAction action) {
  if (const DeliverFn deliver = g_deliver.load(std::memory_order_acquire)) deliver(sig, info, action, false);
}

namespace {

// Copies `action` to the process's `address` (which the kernel did not check): false when unwritable.
bool write_out(pid_t pid, std::uint64_t address, const KernelAction& action) {
  iovec local{const_cast<KernelAction*>(&action), sizeof action}, remote{reinterpret_cast<void*>(address), sizeof action};
  return sys(SYS_process_vm_writev, static_cast<std::uint64_t>(pid), reinterpret_cast<std::uint64_t>(&local), 1,
             reinterpret_cast<std::uint64_t>(&remote), 1) == static_cast<std::int64_t>(sizeof action);
}

}  // namespace

void signal_action_syscall(PtRegs* regs) {
  const int sig = static_cast<int>(regs->rdi);
  const std::uint64_t act = regs->rsi, old = regs->rdx, size = regs->r10;
  regs->rcx = 1;
  const auto pid = static_cast<pid_t>(sys(SYS_getpid));
  KernelAction wanted;
  if (sig == SIGTRAP && size == 8 && trap_action(nullptr, nullptr)) {
    if (act && !read(pid, &wanted, act, sizeof wanted)) {
      regs->rax = static_cast<std::uint64_t>(-EFAULT);
      return;
    }
    KernelAction was;
    trap_action(act ? reinterpret_cast<const std::uint64_t*>(&wanted) : nullptr, reinterpret_cast<std::uint64_t*>(&was));
    regs->rax = old && !write_out(pid, old, was) ? static_cast<std::uint64_t>(-EFAULT) : 0;
    return;
  }
  if (!g_interposed.load(std::memory_order_acquire) || !managed(sig) || size != 8) {
    regs->rax = static_cast<std::uint64_t>(sys(SYS_rt_sigaction, regs->rdi, act, old, size));
    return;
  }
  if (act && !read(pid, &wanted, act, sizeof wanted)) {
    regs->rax = static_cast<std::uint64_t>(-EFAULT);
    return;
  }
  // A vfork child runs on its parent's table: its actions go to the kernel as they are, the table stays.
  const bool own = g_owner.load(std::memory_order_acquire) == pid;
  WriterTurn turn;
  const KernelAction before = read_action(sig);
  const KernelAction k = own ? kernel_action(sig, wanted) : wanted;
  KernelAction was;
  const std::int64_t r = sys(SYS_rt_sigaction, static_cast<std::uint64_t>(sig), act ? reinterpret_cast<std::uint64_t>(&k) : 0,
                             reinterpret_cast<std::uint64_t>(&was), 8);
  if (r != 0) {
    regs->rax = static_cast<std::uint64_t>(r);
    return;
  }
  if (was.handler == reinterpret_cast<std::uint64_t>(&dispatch)) was = before;  // as the process set it
  if (act && own) write_action(sig, wanted);
  // An unwritable `old` fails as the kernel's does: after the new action took effect.
  regs->rax = old && !write_out(pid, old, was) ? static_cast<std::uint64_t>(-EFAULT) : 0;
}

}  // namespace bpfvm::agent::detail
