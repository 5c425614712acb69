// The agent's core (see include/bpfvm/agent/agent.hpp).
#include "bpfvm/agent/agent.hpp"

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "bpfvm/agent/hook.hpp"
#include "bpfvm/agent/syscall_sites.hpp"
#include "bpfvm/base/file.hpp"
#include "bpfvm/base/process.hpp"
#include "bpfvm/base/wakeup.hpp"
#include "bpfvm/helpers/timers.hpp"
#include "bpfvm/attach/syscall_probes.hpp"
#include "bpfvm/runtime/runtime.hpp"
#include "patching.hpp"
#include "bpfvm/attach/kernel_functions.hpp"
#include "bpfvm/runtime/broker.hpp"
#include "early.hpp"
#include "forked.hpp"
#include "signals.hpp"
#include "user_memory.hpp"

namespace bpfvm::agent {

namespace {

using nlohmann::json;

// One link applied at a site. Entries are immutable once published: a site swaps in a new array when
// its links change, and old arrays stay (a thread may still be reading one).
struct Entry {
  std::uint32_t link_id;
  runtime::Program* program;
  std::uint64_t cookie;
  std::uint64_t address;
  std::atomic<std::uint64_t>* failures;
};
struct Entries {
  std::vector<Entry> on_entry, on_return;
};

// The syscall events' programs, by number (x86-64 numbers are below 512), and those of every syscall.
constexpr std::size_t kMaxSyscall = 512;
// signal_deliver's programs run in a signal handler, where nothing may be allocated (the thread may be
// inside malloc): each link has runners made beforehand, taken and given back with one atomic each.
struct SignalRunners {
  static constexpr std::size_t kCount = 8;  // signal handlers running one of its programs at once
  std::atomic<bool> taken[kCount] = {};
  std::unique_ptr<runtime::Program::Runner> runners[kCount];
  attach::SyscallContext contexts[kCount];
};
struct SyscallEntry {
  Entry entry;
  attach::SyscallPoint point;
  SignalRunners* signal_runners = nullptr;  // programs the signal dispatcher runs (process events)
};
struct SyscallEntries {
  std::vector<SyscallEntry> enter[kMaxSyscall], exit[kMaxSyscall];
  std::vector<SyscallEntry> all_enter, all_exit;
  std::vector<SyscallEntry> events[attach::kProcessEvents];  // by attach::ProcessEvent
  const std::vector<SyscallEntry>& of(attach::ProcessEvent e) const { return events[static_cast<int>(e)]; }
};
struct SyscallApplied {
  attach::SyscallPoint point;
  std::uint64_t cookie;
  std::shared_ptr<runtime::Program> program;
  SignalRunners* signal_runners = nullptr;  // process events (kept for the process's life)
};

struct Site {
  std::unique_ptr<Hook> hook;
  std::atomic<const Entries*> entries{nullptr};
  std::set<std::uint32_t> links;
};

struct Applied {
  std::uintptr_t address;
  bool retprobe;
  std::uint64_t cookie;
  std::shared_ptr<runtime::Program> program;
  std::uintptr_t semaphore = 0;  // a USDT semaphore this link counted up (0: none)
};

struct State {
  AgentOptions options;
  std::unique_ptr<runtime::Runtime> rt;
  std::shared_ptr<runtime::Registry> registry;
  std::map<std::uintptr_t, std::unique_ptr<Site>> sites;
  std::map<std::uint32_t, Applied> applied;               // by link id
  std::map<std::uint32_t, std::string> failed;            // by link id
  std::map<std::uint32_t, std::shared_ptr<runtime::Program>> programs;  // by program id, kept for life
  std::vector<std::unique_ptr<Entries>> retired;          // never freed: a thread may still read one
  std::map<std::uint32_t, SyscallApplied> syscalls;       // syscall links, by link id
  std::vector<std::unique_ptr<SyscallEntries>> retired_syscalls;
  std::vector<std::unique_ptr<SignalRunners>> signal_runners;  // never freed: a handler may be using one
  bool sites_hooked = false;
  // Sites prepared for a commit while other threads are stopped (bpfvm attach; see prepare_sites).
  std::vector<PreparedSite> prepared;
  bool prepared_made = false;
  std::size_t prepared_left = 0, committed = 0;
  std::set<std::pair<std::uintptr_t, std::uintptr_t>> code_seen;  // executable mappings swept
  std::size_t syscall_sites = 0;
  std::vector<std::string> sites_left;
  std::atomic<std::uint64_t> failures{0}, misses{0};
  bool stopped = false;
  bool exiting = false;  // the process calls exit(): its static objects go, the watcher syncs no more
};

State* g_state = nullptr;  // made once, never destroyed: probes may fire during exit
// The state's lock, which the atfork handlers hold across a fork (on the forked page: forked.hpp).
BPFVM_AGENT_FORKED std::mutex g_state_mutex;
std::atomic<const SyscallEntries*> g_syscalls{nullptr};
std::atomic<SyscallServer> g_server{nullptr};
std::uint8_t g_served[kMaxSyscall] = {};  // the numbers the server answers
__attribute__((tls_model("initial-exec"))) thread_local bool t_agent_thread = false;  // the watcher: its syscalls are the agent's, not the process's
// A thread of the agent's own (the watcher, a server's helpers), for good; t_agent_thread may also be set
// for a while on a thread of the process doing the agent's work.
__attribute__((tls_model("initial-exec"))) thread_local bool t_own_thread = false;
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_syscall_handler = false;  // a syscall of the handler itself (malloc's first openat...)
std::atomic<pid_t> g_watcher_creator{0};
std::atomic<pid_t> g_watcher_tid{0};  // the watcher thread's id (0: none yet)
// The watcher's own stack (start_watcher): a syscall made on it is the watcher's, from its first (glibc's
// thread start, before it can mark itself as the agent's) on.
std::atomic<std::uintptr_t> g_watcher_stack{0};
constexpr std::size_t kWatcherStack = std::size_t{8} << 20;
BPFVM_AGENT_FORKED std::atomic<std::uint32_t> g_fork_generation{0};
// A forked child's watcher waits for the child's first syscall that is not on its way to exit or exec
// (see after_fork_child): until then, those numbers come to the handler marked by this bit in the table.
BPFVM_AGENT_FORKED std::atomic<bool> g_watcher_deferred{false};
BPFVM_AGENT_FORKED std::uint32_t g_deferred_generation = 0;  // the links generation the child was forked at
BPFVM_AGENT_FORKED pid_t g_deferred_pid = 0;                  // the child's pid
constexpr std::uint8_t kStartsWatcher = 2;

void report(const std::string& what) {
  if (g_state && g_state->options.verbose) std::fprintf(stderr, "bpfvm agent[%d]: %s\n", ::getpid(), what.c_str());
}

// ---- the probed thread's side ----------------------------------------------------------------------

// The probed thread's memory of the agent (its state, its runners) is mapped by raw mmap, never taken
// from malloc: a syscall or probe can fire while the thread is inside malloc holding its arena lock
// (sysmalloc's brk and mmap), and the first event of a thread, or of a link on it, would then wait for
// that lock forever. Unmapped through memory_syscall, as the process's own munmap (user_memory.hpp).
void* raw_map(std::size_t size) {
  const std::int64_t r = sys(SYS_mmap, 0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ull, 0);
  return r < 0 && r > -4096 ? nullptr : reinterpret_cast<void*>(r);
}
void raw_unmap(void* p, std::size_t size) {
  const std::uint64_t args[6] = {reinterpret_cast<std::uint64_t>(p), size};
  detail::memory_syscall(SYS_munmap, args);
}
template <typename T, typename... Args>
T* raw_new(Args&&... args) {
  void* p = raw_map(sizeof(T));
  return p ? new (p) T(std::forward<Args>(args)...) : nullptr;
}
template <typename T>
void raw_delete(T* p) {
  if (!p) return;
  p->~T();
  raw_unmap(p, sizeof(T));
}

// A thread's runners, one per entry that ran on it.
class ThreadRunners {
 public:
  struct Item {
    const Entry* entry;
    runtime::Program::Runner* runner;
  };
  ThreadRunners() = default;
  ThreadRunners(const ThreadRunners&) = delete;
  ThreadRunners& operator=(const ThreadRunners&) = delete;
  ~ThreadRunners() {
    clear();
    if (items_) raw_unmap(items_, capacity_ * sizeof(Item));
  }
  Item* begin() { return items_; }
  Item* end() { return items_ + size_; }
  // False (nothing kept) when no memory could be mapped.
  bool add(const Entry* entry, runtime::Program::Runner* runner) {
    if (size_ == capacity_) {
      const std::size_t more = capacity_ ? capacity_ * 2 : 4096 / sizeof(Item);
      auto* grown = static_cast<Item*>(raw_map(more * sizeof(Item)));
      if (!grown) return false;
      if (items_) {
        std::memcpy(grown, items_, size_ * sizeof(Item));
        raw_unmap(items_, capacity_ * sizeof(Item));
      }
      items_ = grown;
      capacity_ = more;
    }
    items_[size_++] = {entry, runner};
    return true;
  }
  void clear() {
    for (Item& i : *this) raw_delete(i.runner);
    size_ = 0;
  }

 private:
  Item* items_ = nullptr;
  std::size_t size_ = 0, capacity_ = 0;
};

struct ThreadState {
  bool busy = false;
  bool ids_stale = false;  // a vfork child on its parent's thread-locals, or that parent after it
  bool creds_stale = false;  // the thread changed its user or group ids (set*id): read them again
  std::uint32_t generation = ~0u;
  helpers::RunEnv env;
  ThreadRunners runners;
  attach::SyscallContext context{};  // here, not thread_local: every thread of the process would carry it
};

// Each thread's state is mapped (above), reached through a trivially destructible thread-local pointer:
// probes keep firing after the thread's C++ thread-locals are destroyed (exit runs them before atexit
// handlers, which still make syscalls: cat's close(1)). A key destructor frees it when a thread ends;
// the main thread's lives as long as the process.
__attribute__((tls_model("initial-exec"))) thread_local ThreadState* t_state = nullptr;
pthread_key_t g_state_key;

void free_thread_state(void* p) {
  t_state = nullptr;
  raw_delete(static_cast<ThreadState*>(p));
}

// Set while a thread's state is made: the calls it makes (malloc, getpid...) may be probed functions,
// whose probes then do nothing rather than make it again.
__attribute__((tls_model("initial-exec"))) thread_local bool t_making_state = false;

// In the signal handler (see signals.hpp): nothing allocated, no lock, only the agent's own syscalls.
__attribute__((tls_model("initial-exec"))) thread_local bool t_in_signal_program = false;

// ---- signals that come during the agent's work ------------------------------------------------------
// The kernel delivers a signal on a thread's way back to user space: never inside a program, a
// syscall's entry or exit work, or the kernel's own work. A signal that comes while a thread of the
// process does the agent's work (runs programs, handles a syscall, makes its state, starts the watcher
// after a fork) is held: the dispatcher takes neither the process's action nor reports it, and the agent
// sends it to the thread again, with its siginfo, when that work ends. It is then delivered, or stays
// pending if the process blocked it meanwhile, as the kernel's would. Faults are never held (they come
// from the instruction that runs), nor are signals on the agent's own threads.
struct HeldSignal {
  std::atomic<pid_t> tid{0};  // the thread it came to; 0: a free slot
  siginfo_t info{};
};
constexpr std::size_t kHeldSlots = 32;
HeldSignal g_held[kHeldSlots];
__attribute__((tls_model("initial-exec"))) thread_local std::uint32_t t_held = 0;  // this thread's slots in use

bool in_agent_work() {
  return t_making_state || t_in_signal_program || t_agent_thread || t_in_syscall_handler || (t_state && t_state->busy);
}

// False when every slot is taken (the signal is then taken at once, as before the agent held any).
bool hold_signal(const siginfo_t* info) {
  const auto tid = static_cast<pid_t>(sys(SYS_gettid));
  for (HeldSignal& h : g_held) {
    pid_t none = 0;
    if (h.tid.load(std::memory_order_relaxed) == 0 && h.tid.compare_exchange_strong(none, -tid, std::memory_order_acquire)) {
      h.info = *info;
      h.tid.store(tid, std::memory_order_release);  // (negative while its siginfo is written)
      ++t_held;
      return true;
    }
  }
  return false;
}

// Where the agent's work on this thread may have ended: its held signals are sent to it again.
[[gnu::noinline]] void send_held_again() {
  if (in_agent_work()) return;
  t_held = 0;  // before sending: each may be delivered at once, and its handler may come back here
  const auto tid = static_cast<pid_t>(sys(SYS_gettid));
  const auto tgid = static_cast<pid_t>(sys(SYS_getpid));
  for (HeldSignal& h : g_held) {
    if (h.tid.load(std::memory_order_acquire) != tid) continue;
    siginfo_t info = h.info;
    h.tid.store(0, std::memory_order_release);
    sys(SYS_rt_tgsigqueueinfo, static_cast<std::uint64_t>(tgid), static_cast<std::uint64_t>(tid),
        static_cast<std::uint64_t>(info.si_signo), reinterpret_cast<std::uint64_t>(&info));
  }
}

inline void release_held() {
  if (t_held != 0) [[unlikely]] send_held_again();  // (one thread-local read on every syscall's way out)
}

// Whether a thread of this process (from /proc/self/task) is the agent's watcher: by the id start_watcher
// learns before the thread runs, or by the name it gives itself.
bool is_watcher(long tid, const char* comm) {
  return tid == g_watcher_tid.load(std::memory_order_acquire) || std::strncmp(comm, "bpfvm-agent", 11) == 0;
}

// A forked child: signals held for its parent's threads are not its own (the kernel's child starts with
// none pending).
void forget_held() {
  detail::store_if_changed(t_held, 0);  // (each of these usually holds 0 already: forked.hpp)
  for (HeldSignal& h : g_held) detail::store_if_changed(h.tid, 0, std::memory_order_relaxed);
}

ThreadState& thread_state() {
  if (!t_state) [[unlikely]] {
    static const bool keyed = pthread_key_create(&g_state_key, free_thread_state) == 0;
    t_making_state = true;
    t_state = raw_new<ThreadState>();
    if (t_state) {
      if (keyed) pthread_setspecific(g_state_key, t_state);
    } else [[unlikely]] {  // no memory left to map: this thread's events are missed (counted as such)
      static ThreadState spare;
      spare.busy = true;
      t_state = &spare;
    }
    t_making_state = false;
  }
  ThreadState& t = *t_state;
  const std::uint32_t gen = g_fork_generation.load(std::memory_order_relaxed);
  if (t.ids_stale) [[unlikely]] {
    // The ids only: nothing allocated or freed (a vfork child shares its parent's heap and locks).
    t.ids_stale = false;
    static constexpr std::uint64_t kNoArgs[6] = {};
    t.env.task.pid = static_cast<std::uint32_t>(raw_syscall(SYS_gettid, kNoArgs));
    t.env.task.tgid = static_cast<std::uint32_t>(raw_syscall(SYS_getpid, kNoArgs));
    t.env.memory_pid = static_cast<pid_t>(t.env.task.tgid);
    for (auto& r : t.runners) r.runner->set_task(t.env.task, t.env.memory_pid);
  }
  if (t.creds_stale) [[unlikely]] {
    // bpf_get_current_uid_gid answers the thread's credentials as they are now (current_cred()).
    t.creds_stale = false;
    static constexpr std::uint64_t kNoArgs[6] = {};
    t.env.task.uid = static_cast<std::uint32_t>(raw_syscall(SYS_getuid, kNoArgs));
    t.env.task.gid = static_cast<std::uint32_t>(raw_syscall(SYS_getgid, kNoArgs));
    for (auto& r : t.runners) r.runner->set_task(t.env.task, t.env.memory_pid);
  }
  if (t.generation != gen) [[unlikely]] {  // first use on this thread, or the first after a fork
    const bool was = t_agent_thread;
    t_agent_thread = true;  // its syscalls are the agent's
    t_making_state = true;  // and by raw syscalls: libc's getpid may be a probed function
    t.runners.clear();
    t.env = {};
    static constexpr std::uint64_t kNoArgs[6] = {};
    t.env.task.pid = static_cast<std::uint32_t>(raw_syscall(SYS_gettid, kNoArgs));
    t.env.task.tgid = static_cast<std::uint32_t>(raw_syscall(SYS_getpid, kNoArgs));
    t.env.memory_pid = static_cast<pid_t>(t.env.task.tgid);  // this process, without a getpid per read
    t.env.read_user = &detail::read;  // without a syscall where it can (user_memory.hpp)
    t.env.task.uid = static_cast<std::uint32_t>(raw_syscall(SYS_getuid, kNoArgs));
    t.env.task.gid = static_cast<std::uint32_t>(raw_syscall(SYS_getgid, kNoArgs));
    const std::uint64_t name_args[6] = {PR_GET_NAME, reinterpret_cast<std::uint64_t>(t.env.task.comm), 0, 0, 0, 0};
    raw_syscall(SYS_prctl, name_args);
    t.generation = gen;
    t_making_state = false;
    t_agent_thread = was;
    release_held();
  }
  return t;
}

// Null when no memory could be mapped for it.
runtime::Program::Runner* runner_for(ThreadState& t, const Entry& e, void* ctx, std::size_t ctx_size) {
  for (auto& r : t.runners) {
    if (r.entry == &e) return r.runner;
  }
  helpers::RunEnv env = t.env;
  env.func_ip = e.address;
  env.attach_cookie = e.cookie;
  auto* runner = raw_new<runtime::Program::Runner>(*e.program, ctx, ctx_size, std::span<const std::uint8_t>(), env);
  if (runner && !t.runners.add(&e, runner)) {
    raw_delete(runner);
    runner = nullptr;
  }
  return runner;
}

void run_entries(const std::vector<Entry>& list, PtRegs* regs, ThreadState& t) {
  const int cpu = ::sched_getcpu();
  for (const Entry& e : list) {
    runtime::Program::Runner* runner = runner_for(t, e, regs, sizeof(PtRegs));
    if (!runner) [[unlikely]] {
      e.failures->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    runner->set_user_regs(regs);
    auto r = runner->run_on(regs, cpu < 0 ? 0 : static_cast<std::uint32_t>(cpu));
    if (!r) [[unlikely]] e.failures->fetch_add(1, std::memory_order_relaxed);
  }
}

void on_return(PtRegs* regs, void* data) {
  if (t_making_state) [[unlikely]] return;
  ThreadState& t = thread_state();
  if (t.busy) {
    g_state->misses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t.busy = true;
  run_entries(static_cast<const Entries*>(data)->on_return, regs, t);
  t.busy = false;
  release_held();
}

void on_entry(PtRegs* regs, void* data) {
  // The agent's own threads are bpfvm's, not the process's: its calls of probed functions are not events.
  if (t_making_state || t_agent_thread) [[unlikely]] return;
  ThreadState& t = thread_state();
  if (t.busy) [[unlikely]] {
    g_state->misses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const Entries* e = static_cast<Site*>(data)->entries.load(std::memory_order_acquire);
  if (!e) return;
  t.busy = true;
  run_entries(e->on_entry, regs, t);
  // (hooking the return is the agent's work too: the probed function may be one it calls, malloc)
  if (!e->on_return.empty()) hook_return(regs, on_return, const_cast<Entries*>(e));
  t.busy = false;
  release_held();
}

// Syscalls that must run where the program made them (a new stack, a return to another context): their
// entry probes run, and then the original instruction; the kernel's exit event is not reported for them.
bool runs_in_place(std::uint64_t nr) {
  return nr == SYS_clone || nr == SYS_clone3 || nr == SYS_vfork || nr == SYS_fork || nr == SYS_rt_sigreturn;
}

void run_syscall_entries(const std::vector<SyscallEntry>& list, const attach::SyscallStop& stop, ThreadState& t,
                         int cpu) {
  attach::SyscallContext& context = t.context;
  for (const SyscallEntry& e : list) {
    attach::make_syscall_context(e.point, stop, context);
    runtime::Program::Runner* runner = runner_for(t, e.entry, context.bytes, context.size);
    if (!runner) [[unlikely]] {
      e.entry.failures->fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    runner->set_user_regs(stop.user_regs);
    auto r = runner->run_on(context.bytes, static_cast<std::uint32_t>(cpu));
    if (!r) [[unlikely]] e.entry.failures->fetch_add(1, std::memory_order_relaxed);
  }
}

// A syscall with probes (the trampoline's slow path; see syscall_sites.hpp): its entry programs, then,
// when it has exit programs, the syscall itself and those.
// The flags of the clone-family syscall this thread is making (0 for fork and vfork), for after_fork.
__attribute__((tls_model("initial-exec"))) thread_local std::uint64_t t_fork_flags = 0;

std::uint64_t clone3_flags(std::uint64_t args, std::uint64_t size) {
  std::uint64_t flags = 0;  // struct clone_args starts with its flags
  if (size < sizeof flags || !detail::read(static_cast<pid_t>(::getpid()), &flags, args, sizeof flags)) return 0;
  return flags;
}

// A clone-family syscall returned in the parent (rax: the child's id, or an error): the kernel's
// sched_process_fork, in the parent, for processes and threads alike.
void fork_event(std::int64_t child_id, std::uint64_t flags) {
  const SyscallEntries* e = g_syscalls.load(std::memory_order_acquire);
  if (child_id <= 0 || !e || e->of(attach::ProcessEvent::kFork).empty() || t_agent_thread || t_in_syscall_handler) return;
  t_in_syscall_handler = true;
  ThreadState& t = thread_state();
  if (!t.busy) {
    helpers::Task child = t.env.task;
    child.pid = static_cast<std::uint32_t>(child_id);
    child.tgid = (flags & CLONE_THREAD) ? t.env.task.tgid : child.pid;
    attach::SyscallStop ev;
    ev.task = &t.env.task;
    ev.event = attach::ProcessEvent::kFork;
    ev.child = &child;
    const int c = ::sched_getcpu();
    t.busy = true;
    run_syscall_entries(e->of(attach::ProcessEvent::kFork), ev, t, c < 0 ? 0 : c);
    t.busy = false;
  }
  t_in_syscall_handler = false;
  release_held();
}

// A fork to report once glibc's fork has released its locks (malloc's among them): its atfork parent
// handler, or this thread's next syscall with probes for a fork made otherwise.
__attribute__((tls_model("initial-exec"))) thread_local std::int64_t t_pending_fork = 0;

void report_pending_fork() {
  if (const std::int64_t child = t_pending_fork; child > 0) [[unlikely]] {
    t_pending_fork = 0;
    fork_event(child, 0);
  }
}

void after_fork(PtRegs* regs, void*) {
  const auto child_id = static_cast<std::int64_t>(regs->rax);
  // A vfork child runs on its parent's thread-locals: its ids are read again, and the parent's after
  // it resumes. A new thread has none yet; a forked process, its own copy.
  if (t_state) t_state->ids_stale = true;
  if (child_id == 0 && !(t_fork_flags & CLONE_VM)) {
    detail::signals_forked();
    forget_held();
  }
  if (child_id <= 0) return;
  // A new process of its own memory (fork): the caller may hold locks the programs need (glibc's fork
  // holds malloc's until after this returns). Threads and vfork children: now, as the kernel does.
  if (!(t_fork_flags & CLONE_VM)) {
    t_pending_fork = child_id;
    return;
  }
  fork_event(child_id, t_fork_flags);
}

// Performs a syscall that unmaps or protects memory as user_memory.hpp's writer, for every thread
// (the agent's own too), when direct reads are on: its result in rax, rcx = 1.
bool memory_syscall(PtRegs* regs) {
  const std::uint64_t args[6] = {regs->rdi, regs->rsi, regs->rdx, regs->r10, regs->r8, regs->r9};
  if (!detail::fast_reads() || !detail::is_memory_syscall(regs->rax, args)) return false;
  regs->rax = static_cast<std::uint64_t>(detail::memory_syscall(regs->rax, args));
  regs->rcx = 1;
  return true;
}

// A clone-family syscall returns through after_fork, in the parent (the fork event) and in the child
// (a vfork child re-reads its ids), when there is a fork program or a child that is not a thread of
// this process (a forked child without glibc's atfork handlers too): rcx = 2. Allocates nothing.
void fork_return_path(PtRegs* regs, const SyscallEntries* e) {
  const std::uint64_t nr = regs->rax;
  const std::uint64_t flags = nr == SYS_clone    ? regs->rdi
                              : nr == SYS_clone3 ? clone3_flags(regs->rdi, regs->rsi)
                              : nr == SYS_vfork  ? CLONE_VM | CLONE_VFORK
                                                 : 0;
  if (!e->of(attach::ProcessEvent::kFork).empty() || !(flags & CLONE_THREAD)) {
    t_fork_flags = flags;
    regs->rcx = 2;
  }
}

// exit_group ends the process's other threads without them running again; the kernel reports each
// one's sched_process_exit as that thread. Here the caller reports them before its own, each with
// that thread's ids and name as current (the agent's watcher is no thread of the process's).
void report_sibling_exits(const SyscallEntries* e, ThreadState& t) {
  DIR* d = ::opendir("/proc/self/task");
  if (!d) return;
  const helpers::Task self = t.env.task;
  const int c = ::sched_getcpu();
  t.busy = true;
  while (const dirent* entry = ::readdir(d)) {
    const long tid = std::strtol(entry->d_name, nullptr, 10);
    if (tid <= 0 || static_cast<std::uint32_t>(tid) == self.pid) continue;
    helpers::Task other = self;
    other.pid = static_cast<std::uint32_t>(tid);
    std::memset(other.comm, 0, sizeof other.comm);
    if (FILE* f = std::fopen(fmt::format("/proc/self/task/{}/comm", tid).c_str(), "re")) {
      if (std::fgets(other.comm, sizeof other.comm, f)) other.comm[std::strcspn(other.comm, "\n")] = '\0';
      std::fclose(f);
    }
    if (is_watcher(tid, other.comm)) continue;
    t.env.task = other;
    for (auto& r : t.runners) r.runner->set_task(other, t.env.memory_pid);
    attach::SyscallStop ev;
    ev.task = &other;
    ev.event = attach::ProcessEvent::kExit;
    run_syscall_entries(e->of(attach::ProcessEvent::kExit), ev, t, c < 0 ? 0 : c);
  }
  ::closedir(d);
  t.env.task = self;
  for (auto& r : t.runners) r.runner->set_task(self, t.env.memory_pid);
  t.busy = false;
}

// ---- signal/signal_deliver ------------------------------------------------------------------------

// This thread's task, from its state when it has a fresh one, else by the agent's own syscalls.
helpers::Task signal_task() {
  if (const ThreadState* t = t_state;
      t && !t->ids_stale && t->generation == g_fork_generation.load(std::memory_order_relaxed)) {
    return t->env.task;
  }
  helpers::Task task;
  task.pid = static_cast<std::uint32_t>(sys(SYS_gettid));
  task.tgid = static_cast<std::uint32_t>(sys(SYS_getpid));
  task.uid = static_cast<std::uint32_t>(sys(SYS_getuid));
  task.gid = static_cast<std::uint32_t>(sys(SYS_getgid));
  sys(SYS_prctl, PR_GET_NAME, reinterpret_cast<std::uint64_t>(task.comm));
  return task;
}

void run_signal_programs(const std::vector<SyscallEntry>& list, const attach::SyscallStop& stop) {
  std::uint32_t cpu = 0;
  sys(SYS_getcpu, reinterpret_cast<std::uint64_t>(&cpu));
  for (const SyscallEntry& e : list) {
    SignalRunners* pool = e.signal_runners;
    if (!pool) continue;
    std::size_t i = 0;
    while (i < SignalRunners::kCount && pool->taken[i].exchange(true, std::memory_order_acquire)) ++i;
    if (i == SignalRunners::kCount) {  // as many handlers at once as runners
      g_state->misses.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    attach::make_syscall_context(e.point, stop, pool->contexts[i]);
    pool->runners[i]->set_task(*stop.task, static_cast<pid_t>(stop.task->tgid));
    if (!pool->runners[i]->run_on(pool->contexts[i].bytes, cpu)) [[unlikely]] {
      e.entry.failures->fetch_add(1, std::memory_order_relaxed);
    }
    pool->taken[i].store(false, std::memory_order_release);
  }
}

// Calls `fn(task)` for each other thread of this process (by the agent's own syscalls: /proc/self/task
// read with getdents64, nothing allocated), as current for programs of its own.
template <typename F>
void for_each_sibling(const helpers::Task& self, F&& fn) {
  const std::int64_t dir = sys(SYS_open, reinterpret_cast<std::uint64_t>("/proc/self/task"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return;
  alignas(8) char buf[2048];
  for (std::int64_t n; (n = sys(SYS_getdents64, static_cast<std::uint64_t>(dir), reinterpret_cast<std::uint64_t>(buf), sizeof buf)) > 0;) {
    for (std::int64_t at = 0; at < n;) {
      const auto* d = reinterpret_cast<const struct dirent64*>(buf + at);
      at += d->d_reclen;
      const long tid = std::strtol(d->d_name, nullptr, 10);
      if (tid <= 0 || static_cast<std::uint32_t>(tid) == self.pid) continue;
      helpers::Task other = self;
      other.pid = static_cast<std::uint32_t>(tid);
      std::memset(other.comm, 0, sizeof other.comm);
      char path[64];
      std::snprintf(path, sizeof path, "/proc/self/task/%ld/comm", tid);
      if (const std::int64_t f = sys(SYS_open, reinterpret_cast<std::uint64_t>(path), O_RDONLY | O_CLOEXEC); f >= 0) {
        const std::int64_t got = sys(SYS_read, static_cast<std::uint64_t>(f), reinterpret_cast<std::uint64_t>(other.comm), sizeof other.comm - 1);
        if (got > 0) other.comm[std::strcspn(other.comm, "\n")] = '\0';
        sys(SYS_close, static_cast<std::uint64_t>(f));
      }
      if (is_watcher(tid, other.comm)) continue;
      fn(other);
    }
  }
  sys(SYS_close, static_cast<std::uint64_t>(dir));
}

void run_exit(const std::vector<SyscallEntry>& list, const helpers::Task& task, bool group_dead) {
  attach::SyscallStop ev;
  ev.task = &task;
  ev.event = attach::ProcessEvent::kExit;
  ev.group_dead = group_dead;
  run_signal_programs(list, ev);
}

// The dispatcher's report (signals.hpp): a signal this thread takes, with the action the process set
// for it; the process events around it that only the signal handler sees: a fault's signal_generate,
// and when the signal ends the process, each thread's SIGKILL delivery and exit, and the SIGCHLD its
// parent gets.
bool on_signal_delivered(int sig, const siginfo_t* info, detail::SignalAction action, bool may_hold) {
  if (t_own_thread) return true;  // (the agent's own threads take no signal of the process's)
  if (may_hold && in_agent_work() && !attach::is_synchronous_fault(sig, info->si_code) && hold_signal(info)) {
    return false;
  }
  const SyscallEntries* e = g_syscalls.load(std::memory_order_acquire);
  if (!e) return true;
  const auto& generate = e->of(attach::ProcessEvent::kSignalGenerate);
  const auto& deliver = e->of(attach::ProcessEvent::kSignalDeliver);
  const auto& exits = e->of(attach::ProcessEvent::kExit);
  if (generate.empty() && deliver.empty() && exits.empty()) return true;
  if (t_in_signal_program || (t_state && t_state->busy)) {  // a fault inside a program of this thread: a miss
    g_state->misses.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  t_in_signal_program = true;
  const bool was_agent = t_agent_thread;
  t_agent_thread = true;  // the libc calls below (reading /proc) are the agent's, not the process's
  const helpers::Task task = signal_task();
  if (!generate.empty() && attach::is_synchronous_fault(sig, info->si_code)) {
    attach::SentSignal sent;
    sent.target = task;
    sent.signal = sig;
    sent.sig_errno = info->si_errno;
    sent.sig_code = info->si_code;
    run_signal_programs(generate, attach::signal_generate_event(&task, sent));
  }
  if (!deliver.empty()) {
    if (attach::kills_as_sigkill(sig, action.handler)) {
      // The kernel makes it a SIGKILL of the process when it is sent (see syscall_tracer.hpp).
      run_signal_programs(deliver, attach::signal_deliver_event(&task, SIGKILL, 0, SI_USER, 0, 0));
    } else {
      run_signal_programs(deliver, attach::signal_deliver_event(&task, sig, info->si_errno, info->si_code,
                                                                action.handler, action.flags));
    }
  }
  if (action.handler == reinterpret_cast<std::uint64_t>(SIG_DFL) && attach::default_is_fatal(sig)) {
    // The process ends: each other thread takes a SIGKILL and exits, then this one, the last; each with
    // the group's exit code, the signal (| 0x80 when it dumps core), as the kernel's do_group_exit.
    struct rlimit core {};
    const bool dumps = !attach::kills_as_sigkill(sig, action.handler) && ::getrlimit(RLIMIT_CORE, &core) == 0 &&
                       core.rlim_cur != 0;
    const int status = (sig & 0x7f) | (dumps ? 0x80 : 0);
    for_each_sibling(task, [&](const helpers::Task& other) {
      if (!deliver.empty()) run_signal_programs(deliver, attach::signal_deliver_event(&other, SIGKILL, 0, SI_USER, 0, 0));
      helpers::Task ending = other;
      ending.exit_code = status;
      if (!exits.empty()) run_exit(exits, ending, false);
    });
    helpers::Task ending = task;
    ending.exit_code = status;
    if (!exits.empty()) run_exit(exits, ending, true);
    if (!generate.empty()) {
      if (const auto sent = attach::exit_signal(task, status)) {
        run_signal_programs(generate, attach::signal_generate_event(&task, *sent));
      }
    }
  }
  t_agent_thread = was_agent;
  t_in_signal_program = false;
  release_held();  // (signals that came while its programs ran: blocked in this handler unless SA_NODEFER)
  return true;
}

// The server's answer to this syscall, when it has one: rax is the result and rcx 1 (performed).
bool serve(PtRegs* regs) {
  const std::uint64_t nr = regs->rax;
  if (nr >= kMaxSyscall || !g_served[nr]) return false;
  const SyscallServer server = g_server.load(std::memory_order_acquire);
  if (!server) return false;
  const bool was = t_in_syscall_handler;
  t_in_syscall_handler = true;  // the server's own syscalls go to the kernel
  const int saved_errno = errno;
  const std::uint64_t args[6] = {regs->rdi, regs->rsi, regs->rdx, regs->r10, regs->r8, regs->r9};
  std::int64_t rax = 0;
  const bool served = server(nr, args, &rax);
  errno = saved_errno;
  t_in_syscall_handler = was;
  if (!served) return false;
  regs->rax = static_cast<std::uint64_t>(rax);
  regs->rcx = 1;
  return true;
}

// glibc changes a process's ids in every thread it knows: its setxid broadcast has each thread make
// the same set*id call in its SIGSETXID handler, and aborts the process when one result differs. The
// agent's watcher is such a thread, but what decides a result is partly per thread: capabilities set by
// capset and PR_SET_KEEPCAPS reach only the thread that sets them (setpriv: KEEPCAPS, setresuid, capset,
// setresgid). Untraced the process would have no such thread, so the watcher makes its call with all it
// is permitted (KEEPCAPS, effective = permitted) and, once the process's leader has made the same change,
// drops every capability the leader lacks: it ends with the leader's credentials and never more.

struct Capabilities {
  __user_cap_data_struct data[2] = {};
};
std::int64_t capabilities(std::uint64_t nr, pid_t pid, Capabilities& caps) {
  __user_cap_header_struct head{_LINUX_CAPABILITY_VERSION_3, pid};
  return sys(nr, reinterpret_cast<std::uint64_t>(&head), reinterpret_cast<std::uint64_t>(caps.data));
}

bool on_watcher() {
  const pid_t watcher = g_watcher_tid.load(std::memory_order_acquire);
  return watcher != 0 && static_cast<pid_t>(sys(SYS_gettid)) == watcher;
}

void before_setxid() {  // (in the SIGSETXID handler, before glibc's)
  if (!on_watcher()) return;
  sys(SYS_prctl, PR_SET_KEEPCAPS, 1);
  Capabilities own;
  if (capabilities(SYS_capget, 0, own) != 0) return;
  for (auto& d : own.data) d.effective = d.permitted;
  capabilities(SYS_capset, 0, own);
}

// The watcher's capabilities: none the leader lacks (its own capset calls reach no other thread; the
// watcher checks after each set*id broadcast and whenever it wakes).
void drop_what_the_leader_lacks() {
  Capabilities own, lead;
  if (capabilities(SYS_capget, 0, own) != 0 || capabilities(SYS_capget, ::getpid(), lead) != 0) return;
  const Capabilities was = own;
  for (int i = 0; i < 2; ++i) {
    own.data[i].permitted &= lead.data[i].permitted;
    own.data[i].effective = lead.data[i].effective & own.data[i].permitted;
    own.data[i].inheritable &= lead.data[i].inheritable;
  }
  if (std::memcmp(&was, &own, sizeof own) != 0) capabilities(SYS_capset, 0, own);
}

void after_setxid() {  // (in the SIGSETXID handler, after glibc's)
  if (!on_watcher()) return;
  // The thread that asked makes its own call once every other thread has made theirs: wait for the
  // leader's ids to be this thread's (at most ~20 ms; a failed call leaves them as they were).
  const pid_t leader = ::getpid();
  os::TaskFacts mine, theirs;
  if (!os::read_task_facts(static_cast<std::uint32_t>(sys(SYS_gettid)), mine)) return;
  for (int i = 0; i < 200; ++i) {
    if (!os::read_task_facts(static_cast<std::uint32_t>(leader), theirs)) break;
    if (std::equal(std::begin(mine.uid), std::end(mine.uid), std::begin(theirs.uid)) &&
        std::equal(std::begin(mine.gid), std::end(mine.gid), std::begin(theirs.gid))) {
      break;
    }
    const timespec pause{0, 100000};
    ::nanosleep(&pause, nullptr);
  }
  drop_what_the_leader_lacks();
  sys(SYS_prctl, PR_SET_KEEPCAPS, 0);
}

// Syscalls a forked child makes on its way to exit or to exec (glibc's fork and exit, a shell's
// redirections and signal set-up), and those made where malloc's locks may be held, which the watcher's
// start (pthread_create allocates) would wait for forever: malloc's own, glibc's fork (clone, with every
// arena locked), and the message and abort of a corrupted heap. They leave a forked child's watcher
// unstarted (after_fork_child).
bool on_the_way_out(std::uint64_t nr) {
  switch (nr) {
    case SYS_exit: case SYS_exit_group: case SYS_execve: case SYS_execveat:
    case SYS_clone: case SYS_clone3: case SYS_fork: case SYS_vfork: case SYS_writev: case SYS_tgkill: case SYS_kill:
    case SYS_set_robust_list: case SYS_rseq: case SYS_rt_sigprocmask: case SYS_rt_sigaction: case SYS_rt_sigreturn:
    case SYS_sigaltstack: case SYS_getpid: case SYS_gettid: case SYS_getppid: case SYS_close: case SYS_close_range:
    case SYS_dup2: case SYS_dup3: case SYS_fcntl: case SYS_setpgid: case SYS_setsid: case SYS_umask:
    case SYS_brk: case SYS_mmap: case SYS_munmap: case SYS_mprotect: case SYS_madvise: case SYS_mremap: case SYS_futex:
      return true;
    default:
      return false;
  }
}

void start_deferred_watcher(std::uint64_t sp);

// ---- the broker (runtime/broker.hpp): the agent's own file syscalls its pin root refuses ----------

// On when this process cannot open its pin root (it became another user, then exec'd) and a broker of
// that pin root listens; the pin root is set before.
std::atomic<bool> g_brokered{false};
char g_broker_root[1024];

bool is_brokered_nr(std::uint64_t nr) {
  switch (nr) {
    case SYS_open: case SYS_openat: case SYS_stat: case SYS_lstat: case SYS_newfstatat: case SYS_access:
    case SYS_faccessat: case SYS_faccessat2: case SYS_mkdir: case SYS_mkdirat: case SYS_rename: case SYS_renameat:
    case SYS_renameat2: case SYS_unlink: case SYS_unlinkat:
      return true;
    default: return false;
  }
}

bool under_broker_root(const char* path) {
  const std::size_t n = std::strlen(g_broker_root);
  return path && std::strncmp(path, g_broker_root, n) == 0 && (path[n] == '/' || path[n] == 0);
}

// One of the agent's own file syscalls, performed here; when the pin root refuses it (EACCES, EPERM),
// asked of a broker instead.
void brokered_syscall(std::uint64_t nr, PtRegs* regs) {
  const std::uint64_t a[6] = {regs->rdi, regs->rsi, regs->rdx, regs->r10, regs->r8, regs->r9};
  std::int64_t ret = raw_syscall(nr, a);
  regs->rax = static_cast<std::uint64_t>(ret);
  regs->rcx = 1;
  if (ret != -EACCES && ret != -EPERM) return;
  const char* path = nullptr;
  const char* to = nullptr;
  int flags = 0;
  unsigned mode = 0;
  struct stat* st = nullptr;
  auto op = runtime::BrokerOp::kStat;
  const auto at = [](std::uint64_t dirfd, std::uint64_t p) {
    const char* s = reinterpret_cast<const char*>(p);
    return (static_cast<int>(dirfd) == AT_FDCWD || (s && s[0] == '/')) ? s : nullptr;
  };
  switch (nr) {
    case SYS_open: path = reinterpret_cast<const char*>(a[0]), flags = static_cast<int>(a[1]), mode = static_cast<unsigned>(a[2]), op = runtime::BrokerOp::kOpen; break;
    case SYS_openat: path = at(a[0], a[1]), flags = static_cast<int>(a[2]), mode = static_cast<unsigned>(a[3]), op = runtime::BrokerOp::kOpen; break;
    case SYS_stat: path = reinterpret_cast<const char*>(a[0]), st = reinterpret_cast<struct stat*>(a[1]); break;
    case SYS_lstat: path = reinterpret_cast<const char*>(a[0]), st = reinterpret_cast<struct stat*>(a[1]), flags = AT_SYMLINK_NOFOLLOW; break;
    case SYS_newfstatat:
      if (a[3] & AT_EMPTY_PATH) return;
      path = at(a[0], a[1]), st = reinterpret_cast<struct stat*>(a[2]), flags = static_cast<int>(a[3] & AT_SYMLINK_NOFOLLOW);
      break;
    case SYS_access: path = reinterpret_cast<const char*>(a[0]); break;
    case SYS_faccessat: case SYS_faccessat2: path = at(a[0], a[1]); break;
    case SYS_mkdir: path = reinterpret_cast<const char*>(a[0]), op = runtime::BrokerOp::kMkdir; break;
    case SYS_mkdirat: path = at(a[0], a[1]), op = runtime::BrokerOp::kMkdir; break;
    case SYS_rename: path = reinterpret_cast<const char*>(a[0]), to = reinterpret_cast<const char*>(a[1]), op = runtime::BrokerOp::kRename; break;
    case SYS_renameat: case SYS_renameat2:
      if (nr == SYS_renameat2 && a[4] != 0) return;
      path = at(a[0], a[1]), to = at(a[2], a[3]), op = runtime::BrokerOp::kRename;
      if (!to) return;
      break;
    case SYS_unlink: path = reinterpret_cast<const char*>(a[0]), op = runtime::BrokerOp::kUnlink; break;
    case SYS_unlinkat:
      if (a[2] != 0) return;
      path = at(a[0], a[1]), op = runtime::BrokerOp::kUnlink;
      break;
    default: return;
  }
  if (!under_broker_root(path) || (to && !under_broker_root(to))) return;
  struct stat got {};
  const auto r = runtime::broker_request(g_broker_root, op, path, flags, mode, to, st ? &got : nullptr);
  if (!r) return;
  if (st && *r == 0) std::memcpy(st, &got, sizeof got);  // (the agent's own buffer)
  regs->rax = static_cast<std::uint64_t>(*r);
}

// The syscall as it goes on: served, or a memory syscall through the writer, or the instruction.
void perform(PtRegs* regs) {
  if (!serve(regs)) memory_syscall(regs);
}

// The syscalls that change a thread's user or group ids: they come to the handler (as the served ones
// do), which has the thread read its credentials again before its next event.
bool changes_ids(std::uint64_t nr) {
  switch (nr) {
    case SYS_setuid: case SYS_setgid: case SYS_setreuid: case SYS_setregid: case SYS_setresuid:
    case SYS_setresgid: case SYS_setfsuid: case SYS_setfsgid:
      return true;
    default: return false;
  }
}

void on_syscall(PtRegs* regs, void*) {
  regs->rcx = 0;  // the original instruction runs, unless performed here
  const std::uint64_t nr = regs->rax;
  if (changes_ids(nr) && t_state) [[unlikely]] t_state->creds_stale = true;
  if (g_watcher_deferred.load(std::memory_order_relaxed)) [[unlikely]] {
    if (!t_agent_thread && !t_in_syscall_handler && nr < kMaxSyscall && !on_the_way_out(nr)) start_deferred_watcher(regs->rsp);
  }
  const SyscallEntries* e = g_syscalls.load(std::memory_order_acquire);
  if (nr == SYS_rt_sigaction && (detail::signals_interposed() || detail::trap_action(nullptr, nullptr))) [[unlikely]] {
    // The process's signal actions stay its own (signals.hpp), whoever asks; programs on rt_sigaction
    // itself run around it below.
    if (!e || t_agent_thread || t_in_syscall_handler || (e->enter[nr].empty() && e->exit[nr].empty() &&
                                                          e->all_enter.empty() && e->all_exit.empty())) {
      detail::signal_action_syscall(regs);
      return;
    }
  }
  if (nr >= kMaxSyscall || t_agent_thread || t_in_syscall_handler) {
    if (g_brokered.load(std::memory_order_relaxed) && is_brokered_nr(nr)) [[unlikely]] {
      brokered_syscall(nr, regs);
      return;
    }
    memory_syscall(regs);
    return;
  }
  if (!e) {
    perform(regs);
    return;
  }
  if (regs->rsp - g_watcher_stack.load(std::memory_order_relaxed) < kWatcherStack) [[unlikely]] {
    perform(regs);  // the watcher starting (glibc's thread start)
    return;
  }
  if (const pid_t creator = g_watcher_creator.load(std::memory_order_acquire); creator != 0) [[unlikely]] {
    static constexpr std::uint64_t kNoArgs[6] = {};
    if (static_cast<pid_t>(raw_syscall(SYS_gettid, kNoArgs)) != creator) {
      perform(regs);
      return;
    }
  }
  if (runs_in_place(nr) && e->enter[nr].empty() && e->all_enter.empty()) {
    // Nothing to run before it: no thread state is made (glibc's fork holds malloc's lock here).
    if (nr != SYS_rt_sigreturn) fork_return_path(regs, e);
    return;
  }
  t_in_syscall_handler = true;
  struct Leave {
    ~Leave() {
      t_in_syscall_handler = false;
      release_held();
    }
  } leave;
  ThreadState& t = thread_state();
  if (t.busy) {  // a syscall of a helper or of the agent itself
    memory_syscall(regs);
    return;
  }
  if (t_pending_fork) {
    t_in_syscall_handler = false;
    report_pending_fork();
    t_in_syscall_handler = true;
  }
  const auto& enter = e->enter[nr];
  const auto& exit = e->exit[nr];
  if ((nr == SYS_exit || nr == SYS_exit_group) && !e->of(attach::ProcessEvent::kExit).empty()) {
    t.env.task.exit_code = static_cast<std::int32_t>((regs->rdi & 0xff) << 8);  // the kernel's exit_code, for all
  }
  if (nr == SYS_exit_group && !e->of(attach::ProcessEvent::kExit).empty()) report_sibling_exits(e, t);
  if ((nr == SYS_exit || nr == SYS_exit_group) && !e->of(attach::ProcessEvent::kExit).empty()) {
    // The thread ends here (the kernel reports each thread of an exit_group; the agent sees the one
    // that calls it, and a thread's own exit).
    attach::SyscallStop ev;
    ev.task = &t.env.task;
    ev.event = attach::ProcessEvent::kExit;
    ev.group_dead = nr == SYS_exit_group || detail::other_threads() == 0;
    const int c = ::sched_getcpu();
    t.busy = true;
    for (auto& r : t.runners) r.runner->set_task(t.env.task, t.env.memory_pid);
    run_syscall_entries(e->of(attach::ProcessEvent::kExit), ev, t, c < 0 ? 0 : c);
    t.busy = false;
  }
  if ((nr == SYS_exit || nr == SYS_exit_group) && !e->of(attach::ProcessEvent::kSignalGenerate).empty() &&
      (nr == SYS_exit_group || detail::other_threads() == 0)) {
    // The process ends: the kernel's exit_notify sends its parent SIGCHLD (after the exit event).
    if (const auto sent = attach::exit_signal(t.env.task, static_cast<int>((regs->rdi & 0xff) << 8))) {
      const int c = ::sched_getcpu();
      t.busy = true;
      run_syscall_entries(e->of(attach::ProcessEvent::kSignalGenerate), attach::signal_generate_event(&t.env.task, *sent),
                          t, c < 0 ? 0 : c);
      t.busy = false;
    }
  }
  attach::SyscallStop stop;
  stop.task = &t.env.task;
  stop.nr = static_cast<int>(nr);
  stop.args = {regs->rdi, regs->rsi, regs->rdx, regs->r10, regs->r8, regs->r9};
  stop.ip = regs->rip;
  stop.sp = regs->rsp;
  stop.user_regs = regs;
  const int c = ::sched_getcpu();
  const int cpu = c < 0 ? 0 : c;
  if (!enter.empty() || !e->all_enter.empty()) {
    t.busy = true;
    run_syscall_entries(e->all_enter, stop, t, cpu);
    run_syscall_entries(enter, stop, t, cpu);
    t.busy = false;
  }
  // The signals it sends (signal/signal_generate), reported from inside the syscall as the kernel
  // does: after its entry programs, before it returns (a signal to itself may end the process).
  if (attach::is_signal_syscall(static_cast<int>(nr)) && !e->of(attach::ProcessEvent::kSignalGenerate).empty()) {
    t.busy = true;
    for (const attach::SentSignal& sent : attach::signals_sent(stop)) {
      run_syscall_entries(e->of(attach::ProcessEvent::kSignalGenerate), attach::signal_generate_event(&t.env.task, sent),
                          t, cpu);
    }
    t.busy = false;
  }
  if (runs_in_place(nr) && nr != SYS_rt_sigreturn) fork_return_path(regs, e);
  const bool actions = nr == SYS_rt_sigaction && (detail::signals_interposed() || detail::trap_action(nullptr, nullptr));
  if ((exit.empty() && e->all_exit.empty()) || runs_in_place(nr)) {
    t_in_syscall_handler = false;
    if (actions) detail::signal_action_syscall(regs);
    else perform(regs);
    return;
  }
  t_in_syscall_handler = false;  // a signal handler running during the syscall makes the process's own
  const bool memory = detail::fast_reads() && detail::is_memory_syscall(nr, stop.args.data());
  std::int64_t ret = 0;
  PtRegs served = *regs;
  // A signal the syscall sends (to this thread or process) is delivered as it returns to user space,
  // after the kernel's sys_exit tracepoint: its exit programs run before, so its handler or the death it
  // causes come after them (killsnoop's row of a `kill -TERM $$`). Signals stay blocked until then.
  std::uint64_t old_mask = 0;
  const bool hold_signals = attach::is_signal_syscall(static_cast<int>(nr));
  if (hold_signals) {
    const std::uint64_t all = ~0ull;
    const std::uint64_t mask_args[6] = {SIG_BLOCK, reinterpret_cast<std::uint64_t>(&all),
                                        reinterpret_cast<std::uint64_t>(&old_mask), sizeof all, 0, 0};
    raw_syscall(SYS_rt_sigprocmask, mask_args);
  }
  if (actions) {
    PtRegs copy = *regs;
    detail::signal_action_syscall(&copy);
    ret = static_cast<std::int64_t>(copy.rax);
  } else if (serve(&served)) {
    ret = static_cast<std::int64_t>(served.rax);
  } else {
    ret = memory ? detail::memory_syscall(nr, stop.args.data()) : raw_syscall(nr, stop.args.data());
  }
  t_in_syscall_handler = true;
  regs->rax = static_cast<std::uint64_t>(ret);
  regs->rcx = 1;
  stop.exit = true;
  stop.ret = ret;
  t.busy = true;
  run_syscall_entries(e->all_exit, stop, t, cpu);
  run_syscall_entries(exit, stop, t, cpu);
  t.busy = false;
  if (hold_signals) {
    const std::uint64_t restore_args[6] = {SIG_SETMASK, reinterpret_cast<std::uint64_t>(&old_mask), 0, sizeof old_mask, 0, 0};
    raw_syscall(SYS_rt_sigprocmask, restore_args);
  }
}

// ---- applying links --------------------------------------------------------------------------------

// Patches the syscall instructions of every file this process maps executable (but the agent's own
// library and the vDSO), once; only while no other thread runs (see syscall_sites.hpp).
// The numbers user_memory.hpp's writer may need to see (is_memory_syscall decides by the arguments).
bool memory_nr(std::size_t nr) {
  static constexpr std::uint64_t kAll[6] = {0, 0, ~0ull, ~0ull, 0, 0};  // madvise's advice, mmap's flags
  return detail::is_memory_syscall(nr, kAll);
}

// Patches the syscall instructions of the files mapped executable that it has not seen yet (all of
// them the first time; those dlopen added later), or, with other threads running, reports them. Direct
// reads of the process's memory (user_memory.hpp) are on while every such instruction is patched.
void patch_new_code(State& s, bool alone, std::vector<PreparedSite>* prepared = nullptr) {
  Dl_info self{};
  ::dladdr(reinterpret_cast<void*>(&patch_new_code), &self);
  const std::string own = self.dli_fname ? self.dli_fname : "";
  const std::vector<os::Mapping> maps = os::read_mappings();
  if (maps.empty()) {
    detail::disable_fast_reads();
    return;
  }
  std::vector<os::Mapping> todo;
  bool unseen_syscalls = false;
  for (const os::Mapping& map : maps) {
    if (!map.executable() || !map.path.starts_with('/')) continue;
    if (!s.code_seen.insert({map.start, map.end}).second) continue;
    const char* path = map.path.c_str();
    char real[4096];
    const std::string canonical = ::realpath(path, real) ? real : path;
    char own_real[4096];
    if (!own.empty() && ::realpath(own.c_str(), own_real) && canonical == own_real) continue;
    // Sanitizer runtimes (a sanitized bpfvm build preloads them before the agent) make raw syscalls
    // inside their own bookkeeping, where the agent's instrumented code must not run.
    const std::string_view base = std::string_view(canonical).substr(canonical.rfind('/') + 1);
    if (base.starts_with("libasan") || base.starts_with("libubsan") || base.starts_with("libtsan") ||
        base.starts_with("liblsan")) {
      unseen_syscalls = true;
      continue;
    }
    todo.push_back(map);
  }
  // The sweeps' results are kept per user beside the registry (see syscall_sites.hpp); none when that
  // directory cannot be this user's alone.
  std::string cache = fmt::format("{}/.cache-{}/syscall-sites", s.rt->pin_root(), ::geteuid());
  if (!os::make_private_directory(cache)) cache.clear();
  std::size_t hooked = 0, left = 0;
  for (const os::Mapping& m : todo) {
    auto r = hook_syscall_sites(m.path, m.start, m.end, m.offset, alone, cache, prepared);
    if (!r) {
      s.sites_left.push_back(r.error().to_string());
      ++left;
      continue;
    }
    hooked += r->hooked;
    left += r->left.size();
    for (auto& why : r->left) s.sites_left.push_back(std::move(why));
  }
  s.syscall_sites += hooked;
  if (prepared) {  // the jumps are written later, with the other threads stopped (commit_sites)
    s.prepared_left = left + (unseen_syscalls ? 1 : 0);
    report(fmt::format("{} syscall sites prepared, {} left", prepared->size(), left));
    return;
  }
  if (left > 0 || unseen_syscalls) detail::disable_fast_reads();
  if (!todo.empty()) {
    report(fmt::format("{} syscall sites patched, {} left{}", hooked, left,
                       detail::fast_reads() ? "" : "; probe_read_user uses process_vm_readv"));
  }
}

// Patches the syscall instructions of every file this process maps executable (but the agent's own
// library and the vDSO), once; only while no other thread runs (see syscall_sites.hpp).
void hook_sites(State& s) {
  if (s.sites_hooked) return;
  if (const int others = detail::other_threads(); others > 0) {
    s.sites_left.push_back(fmt::format("not patched: {} other thread{} already run{}", others, others == 1 ? "" : "s",
                                       others == 1 ? "s" : ""));
    return;
  }
  s.sites_hooked = true;
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
    if (changes_ids(nr)) g_served[nr] = 1;  // (no server answers them: the handler notes them, see changes_ids)
  }
  set_syscall_handler(on_syscall);
  set_after_fork_handler(after_fork);
  // The syscalls that change memory come to the handler first, then direct reads go on (unless
  // patch_new_code finds a syscall instruction it cannot patch).
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
    if (memory_nr(nr)) syscall_table()[nr] = 1;
  }
  syscall_table()[SYS_rt_sigaction] = 1;  // see publish_syscalls
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
    if (g_served[nr]) syscall_table()[nr] = 1;
  }
  detail::enable_fast_reads();
  patch_new_code(s, true);
}

// `bpfvm attach` of a process whose other threads run: the sites are prepared at join (trampolines
// written, nothing patched), the attaching tracer stops every other thread and calls commit_sites with
// where each resumes, then, the threads running again, sites_ready.
void prepare_sites(State& s) {
  if (s.sites_hooked || s.prepared_made || detail::other_threads() == 0) return;
  s.prepared_made = true;
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
    if (changes_ids(nr)) g_served[nr] = 1;  // (see hook_sites)
  }
  set_syscall_handler(on_syscall);
  set_after_fork_handler(after_fork);
  patch_new_code(s, false, &s.prepared);
}

void publish_syscalls(State& s) {
  auto next = std::make_unique<SyscallEntries>();
  for (const auto& [id, a] : s.syscalls) {
    SyscallEntry e{{id, a.program.get(), a.cookie, 0, &s.failures}, a.point, a.signal_runners};
    if (a.point.kind == attach::SyscallPoint::Kind::kProcess) {
      next->events[static_cast<int>(a.point.event)].push_back(e);
    } else if (a.point.kind == attach::SyscallPoint::Kind::kSyscall) {
      if (a.point.nr < 0 || static_cast<std::size_t>(a.point.nr) >= kMaxSyscall) continue;
      (a.point.exit ? next->exit : next->enter)[a.point.nr].push_back(e);
    } else if (a.point.kind == attach::SyscallPoint::Kind::kKernelFunction) {
      for (std::size_t i = 0; i < a.point.function.count; ++i) {
        const int nr = a.point.function.nrs[i];
        if (nr >= 0 && static_cast<std::size_t>(nr) < kMaxSyscall) (a.point.exit ? next->exit : next->enter)[nr].push_back(e);
      }
    } else {
      (a.point.exit ? next->all_exit : next->all_enter).push_back(e);
    }
  }
  std::uint8_t* table = syscall_table();
  const bool all = !next->all_enter.empty() || !next->all_exit.empty();
  g_syscalls.store(next.get(), std::memory_order_release);
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
    table[nr] = all || !next->enter[nr].empty() || !next->exit[nr].empty() || (detail::fast_reads() && memory_nr(nr)) ||
                g_served[nr];
  }
  if (!next->of(attach::ProcessEvent::kExit).empty()) table[SYS_exit] = table[SYS_exit_group] = 1;
  if (!next->of(attach::ProcessEvent::kSignalGenerate).empty()) {
    table[SYS_exit] = table[SYS_exit_group] = 1;  // a process's end: SIGCHLD to its parent
    for (const int nr : {SYS_kill, SYS_tkill, SYS_tgkill, SYS_rt_sigqueueinfo, SYS_rt_tgsigqueueinfo, SYS_pidfd_send_signal}) {
      table[nr] = 1;
    }
  }
  // The process's signal actions as it set them (signals.hpp), and its SIGTRAP's beside int3 probes.
  if (s.sites_hooked) table[SYS_rt_sigaction] = 1;
  // Clone-family syscalls come to the handler whenever programs run here: a vfork child must not be
  // taken for its parent (see after_fork), and fork programs see them.
  table[SYS_clone] = table[SYS_clone3] = table[SYS_fork] = table[SYS_vfork] = 1;
  s.retired_syscalls.push_back(std::move(next));
}

// A link's program, opened once by id (verified again) and kept for the process's life.
Result<std::shared_ptr<runtime::Program>> program_of(State& s, std::uint32_t prog_id) {
  if (const auto it = s.programs.find(prog_id); it != s.programs.end()) return it->second;
  auto opened = s.rt->open_program_by_id(prog_id);
  if (!opened) return std::move(opened).error().with_context(fmt::format("opening program {}", prog_id));
  s.programs.emplace(prog_id, *opened);
  return *opened;
}

Result<void> apply_syscall(State& s, std::uint32_t link_id, const json& record) {
  const std::string kind = record.value("kind", "");
  // (sync_locked takes only the kinds attach::is_syscall_link_kind names: `kind/name` is the section)
  const std::string section = kind + "/" + record.value("name", "");
  const std::shared_ptr<runtime::Program> program = BPFVM_TRY(program_of(s, record.value("prog_id", 0u)));
  const attach::SyscallPoint point = BPFVM_TRY(attach::tracing_point(section, *program));
  hook_sites(s);
  if (!s.sites_hooked) {
    return make_error(Errc::kBusy, "the syscall instructions were not patched: {}",
                      s.sites_left.empty() ? std::string("?") : s.sites_left.back());
  }
  const std::uint64_t cookie = record.value("cookie", std::uint64_t{0});
  SignalRunners* runners = nullptr;
  // Programs the signal dispatcher may run (signals.hpp): signal_deliver's, and signal_generate's and
  // sched_process_exit's for a fault and a death by signal.
  if (point.event == attach::ProcessEvent::kSignalDeliver || point.event == attach::ProcessEvent::kSignalGenerate ||
      point.event == attach::ProcessEvent::kExit) {
    auto made = std::make_unique<SignalRunners>();
    helpers::RunEnv env;
    env.read_user = &detail::read;
    env.attach_cookie = cookie;
    for (std::size_t i = 0; i < SignalRunners::kCount; ++i) {
      made->runners[i] = std::make_unique<runtime::Program::Runner>(*program, made->contexts[i].bytes,
                                                                    sizeof made->contexts[i].bytes,
                                                                    std::span<const std::uint8_t>(), env);
    }
    runners = made.get();
    s.signal_runners.push_back(std::move(made));
  }
  s.syscalls[link_id] = {point, cookie, program, runners};
  if (runners) detail::interpose_signals(on_signal_delivered);
  publish_syscalls(s);
  return {};
}

// Where this process maps byte `offset` of the file (dev, inode) executable; 0 when it does not.
std::uintptr_t address_of(std::uint64_t dev, std::uint64_t inode, std::uint64_t offset) {
  for (const os::Mapping& m : os::read_mappings()) {
    if (!m.executable() || m.inode != inode || m.dev != dev) continue;
    if (offset >= m.offset && offset < m.offset + (m.end - m.start)) return m.start + (offset - m.offset);
  }
  return 0;
}

// Where this process maps the 2-byte USDT semaphore at `offset` in the file (dev, inode) writable; 0
// when it does not.
std::uintptr_t semaphore_of(std::uint64_t dev, std::uint64_t inode, std::uint64_t offset) {
  for (const os::Mapping& m : os::read_mappings()) {
    if (m.perms[1] != 'w' || m.inode != inode || m.dev != dev) continue;
    if (offset >= m.offset && offset + 2 <= m.offset + (m.end - m.start)) return m.start + (offset - m.offset);
  }
  return 0;
}

// Counts a USDT semaphore up or down, as the kernel's uprobe does with ref_ctr_offset: the program's
// `if (PROVIDER_NAME_ENABLED())` is true while at least one link is applied.
void count_semaphore(std::uintptr_t at, int delta) {
  __atomic_fetch_add(reinterpret_cast<std::int16_t*>(at), static_cast<std::int16_t>(delta), __ATOMIC_RELAXED);
}

void publish_sites(State& s, Site& site) {
  auto next = std::make_unique<Entries>();
  for (const std::uint32_t id : site.links) {
    const Applied& a = s.applied.at(id);
    Entry e{id, a.program.get(), a.cookie, a.address, &s.failures};
    (a.retprobe ? next->on_return : next->on_entry).push_back(e);
  }
  site.entries.store(next.get(), std::memory_order_release);
  s.retired.push_back(std::move(next));
}

void unapply(State& s, std::uint32_t link_id) {
  if (s.syscalls.erase(link_id)) {
    publish_syscalls(s);
    return;
  }
  const auto it = s.applied.find(link_id);
  if (it == s.applied.end()) return;
  const std::uintptr_t address = it->second.address;
  if (it->second.semaphore) count_semaphore(it->second.semaphore, -1);
  auto& site = *s.sites.at(address);
  site.links.erase(link_id);
  s.applied.erase(it);
  publish_sites(s, site);
  if (site.links.empty()) {
    if (auto r = site.hook->remove(); !r) report(fmt::format("removing the probe at {:#x}: {}", address, r.error().to_string()));
    s.sites.erase(address);
  }
}

Result<void> apply(State& s, std::uint32_t link_id, const json& record) {
  const json& u = record.at("uprobe");
  const std::uintptr_t address =
      address_of(u.value("dev", std::uint64_t{0}), u.value("inode", std::uint64_t{0}), u.value("offset", std::uint64_t{0}));
  if (!address) return {};  // this process does not map the file (yet: a dlopen syncs again)
  const std::shared_ptr<runtime::Program> program = BPFVM_TRY(program_of(s, record.value("prog_id", 0u)));
  auto& site = s.sites[address];
  if (!site) {
    site = std::make_unique<Site>();
    PatchSite where;
    where.address = address;
    const std::uint64_t func_offset = u.value("func_offset", std::uint64_t{0});
    if (u.value("func_size", std::uint64_t{0}) != 0) {
      where.func_start = address - func_offset;
      where.func_size = u.value("func_size", std::uint64_t{0});
      where.func_slack = u.value("func_slack", std::uint64_t{0});
      where.func_pad_before = u.value("func_pad_before", std::uint64_t{0});
    }
    where.trap = s.options.traps;
    auto hook = Hook::install(where, on_entry, site.get());
    if (!hook) {
      s.sites.erase(address);
      return std::move(hook).error().with_context(
          fmt::format("probing {}+{:#x}", u.value("function", std::string("?")), func_offset));
    }
    site->hook = std::move(*hook);
  }
  std::uintptr_t semaphore = 0;
  if (const std::uint64_t ref = u.value("ref_ctr_offset", std::uint64_t{0})) {
    // Where the file maps no writable page at that offset the probe applies all the same, as the
    // kernel's does (its update_ref_ctr finds no valid vma and counts nothing): BCC 0.26's Python passes
    // no ref_ctr_offset to a libbcc that reads one, so its uprobes come with whatever the stack held.
    semaphore = semaphore_of(u.value("dev", std::uint64_t{0}), u.value("inode", std::uint64_t{0}), ref);
    if (semaphore) count_semaphore(semaphore, 1);
  }
  s.applied[link_id] = {address, record.value("kind", "") == "uretprobe", record.value("cookie", std::uint64_t{0}),
                        program, semaphore};
  site->links.insert(link_id);
  publish_sites(s, *site);
  return {};
}

// Marks the agent's own work on a process thread (a sync from the constructor, dlopen or fork): its
// syscalls are not the process's.
struct AgentWork {
  bool saved = t_agent_thread;
  AgentWork() { t_agent_thread = true; }
  ~AgentWork() {
    t_agent_thread = saved;
    release_held();
  }
};

void publish_record(State& s) {
  AgentWork own;
  json links = json::array();
  for (const auto& [id, a] : s.applied) {
    json l{{"link", id}, {"address", a.address}};
    if (const auto site = s.sites.find(a.address); site != s.sites.end() && site->second->hook->trap()) l["int3"] = true;
    links.push_back(std::move(l));
  }
  for (const auto& [id, a] : s.syscalls) links.push_back({{"link", id}, {"syscall", a.point.nr}});
  json errors = json::array();
  for (const auto& [id, why] : s.failed) errors.push_back({{"link", id}, {"error", why}});
  // The process's name is its main thread's (this may be the watcher thread, named bpfvm-agent).
  char comm[17] = {};
  if (FILE* f = std::fopen("/proc/self/comm", "re")) {
    if (std::fgets(comm, sizeof comm, f)) comm[std::strcspn(comm, "\n")] = '\0';
    std::fclose(f);
  }
  s.registry->publish(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()),
                      {{"comm", comm}, {"scope", s.options.scope}, {"applied", links}, {"errors", errors},
                       {"misses", s.misses.load()}, {"failures", s.failures.load()},
                       {"syscall_sites", s.syscall_sites}, {"syscall_sites_left", s.sites_left}});
}

void sync_locked(State& s) {
  if (s.stopped || s.exiting) return;
  AgentWork own;
  std::map<std::uint32_t, json> wanted;
  for (auto& r : s.registry->list(runtime::ObjectKind::kLink)) {
    const std::string kind = r.value("kind", "");
    // (uprobes that a loader's own ptrace tracer places are not the agents')
    const bool uprobe = (kind == "uprobe" || kind == "uretprobe" || kind == "usdt") && r.contains("uprobe") &&
                        r.value("agent", false);
    const bool syscall = attach::is_syscall_link_kind(kind) && r.value("agent", false);
    if (!uprobe && !syscall) continue;
    if (!runtime::Registry::link_fires_here(r, s.options.scope)) continue;
    wanted.emplace(r.value("id", 0u), std::move(r));
  }
  bool changed = false;
  for (auto it = s.applied.begin(); it != s.applied.end();) {
    const std::uint32_t id = (it++)->first;
    if (!wanted.count(id)) {
      unapply(s, id);
      changed = true;
    }
  }
  for (auto it = s.syscalls.begin(); it != s.syscalls.end();) {
    const std::uint32_t id = (it++)->first;
    if (!wanted.count(id)) {
      unapply(s, id);
      changed = true;
    }
  }
  for (auto it = s.failed.begin(); it != s.failed.end();) {
    if (!wanted.count(it->first)) it = s.failed.erase(it), changed = true;
    else ++it;
  }
  for (const auto& [id, record] : wanted) {
    if (s.applied.count(id) || s.syscalls.count(id) || s.failed.count(id)) continue;
    Result<void> r = [&]() -> Result<void> {
      try {
        return record.contains("uprobe") ? apply(s, id, record) : apply_syscall(s, id, record);
      } catch (const std::exception& e) {
        return make_error(Errc::kInvalid, "a malformed link record: {}", e.what());
      }
    }();
    if (!r) {
      s.failed[id] = r.error().to_string();
      report(fmt::format("link {}: {}", id, s.failed[id]));
    }
    changed = true;
  }
  // Return probes and exceptions: the unwinder's entry points probed too, in libraries loaded so far.
  if (std::any_of(s.applied.begin(), s.applied.end(), [](const auto& a) { return a.second.retprobe; })) {
    if (auto r = guard_returns_from_unwinding(); !r) report(r.error().to_string());
  }
  if (changed) publish_record(s);
}

// The watcher waits for a change of links parked: in the agent's own futex call, where another
// thread may patch libc's code under it (see other_threads), and it leaves only through an open gate
// (its flag cleared before it looks at the gate, the patcher's gate closed before it looks at the flag).
void park(State& s, std::uint32_t seen) {
  detail::g_watcher_parked.store(true, std::memory_order_seq_cst);
  s.registry->wait_links_changed(seen, 1000);
  for (;;) {
    detail::g_watcher_parked.store(false, std::memory_order_seq_cst);
    const std::uint32_t gate = detail::g_gate.load(std::memory_order_seq_cst);
    if (gate == 0) return;
    detail::g_watcher_parked.store(true, std::memory_order_seq_cst);
    os::futex_wait(detail::g_gate, gate, 100);
  }
}

// `arg`: null, sync first; else the links generation of the last sync + 1 (start's, or for a forked
// child, which has its parent's links, the fork's): wait for a change first, so that a short-lived
// child costs no registry work and the process's first files are not opened beside the watcher's.
// exit() runs the handlers registered with atexit and the static objects' destructors in the reverse
// order of their registration. A handler registered now runs before the destructors of every static
// object made so far (those the agent used until now among them): it waits for a sync in progress and
// marks the state exiting, after which the watcher syncs no more. Registered at the start and again
// after each sync that applied or removed links (a sync may make static objects of its own, such as a
// program's first load; the watcher read one that exit() had freed). The first of them to run also
// takes the process's record out of the registry (a process that ends otherwise leaves it, for the
// registry's listings to remove: Registry::list).
void watch_exit() {
  std::atexit([] {
    if (!g_state) return;
    std::lock_guard lock(g_state_mutex);  // (a sync in progress ends first)
    if (g_state->exiting) return;
    g_state->exiting = true;
    AgentWork own;  // (its syscalls are not the process's)
    g_state->registry->withdraw(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()));
  });
}

void* watch(void* arg) {
  t_agent_thread = true;
  t_own_thread = true;
  ::prctl(PR_SET_NAME, "bpfvm-agent", 0, 0, 0);  // by itself: pthread_setname_np writes a /proc file
  g_watcher_creator.store(0, std::memory_order_release);
  g_watcher_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  State& s = *g_state;
  if (arg) {
    const auto at_fork = static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(arg) - 1);
    helpers::start_timer_thread();  // for the links applied before this thread (the start's, a parent's)
    park(s, at_fork);
  }
  for (;;) {
    const std::uint32_t seen = s.registry->links_generation();
    bool changed = false;
    {
      std::lock_guard lock(g_state_mutex);
      if (s.stopped || s.exiting) return nullptr;
      const std::size_t before = s.applied.size() + s.syscalls.size() + s.failed.size();
      sync_locked(s);
      changed = before != s.applied.size() + s.syscalls.size() + s.failed.size();
    }
    if (changed) watch_exit();
    helpers::start_timer_thread();  // (when a program applied here uses timers)
    // Woken by a link's change; every second anyway, for links whose loader died without withdrawing.
    park(s, seen);
    drop_what_the_leader_lacks();
  }
}

void start_watcher(void* arg = nullptr) {
  // The thread takes no signals: the process's signals go to its own threads, as untraced.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  // 8 MiB (the verifier runs here: open_program_by_id) of the agent's own, below a guard page: a forked
  // child starts its watcher on the same memory, which its parent's watcher used and the child's copy
  // of that thread no longer does. glibc's stack cache would do the same but, reached first in the
  // child, costs it a lazy symbol lookup through every library (and the page faults that go with it).
  constexpr std::size_t kStack = kWatcherStack, kGuard = 4096;
  static void* stack = nullptr;
  if (!stack) {
    void* p = ::mmap(nullptr, kStack + kGuard, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p != MAP_FAILED && ::mprotect(p, kGuard, PROT_NONE) == 0) stack = static_cast<char*>(p) + kGuard;
    g_watcher_stack.store(reinterpret_cast<std::uintptr_t>(stack), std::memory_order_relaxed);
  }
  if (stack) {
    pthread_attr_setstack(&attr, stack, kStack);
  } else {
    pthread_attr_setstacksize(&attr, kStack);
  }
  // The new thread's first syscalls (glibc's thread start) come before it can mark itself as the
  // agent's: on its own stack they are known as the watcher's (on_syscall), and this thread goes on at
  // once (a forked child that exits or execs never waits for its watcher to be scheduled: about 50 µs
  // a fork here). Without that stack, only the creating thread's syscalls are the process's until the
  // watcher has marked itself, and this thread waits for that.
  // The process's own signals are blocked here only while the thread is made (it inherits the mask).
  if (!stack) g_watcher_creator.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
  g_watcher_tid.store(0, std::memory_order_release);  // (a forked child's is its parent's watcher's)
  const int made = pthread_create(&thread, &attr, watch, arg);
  // (glibc installs its SIGSETXID handler at a process's first pthread_create, this one or an earlier.)
  if (made == 0) detail::chain_setxid(before_setxid, after_setxid);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (made == 0) {
    // Its id, which the process's thread lists skip it by (signal deaths, exit_group's exits), before
    // it may have run at all: the kernel's CPU clock id of a thread encodes its tid (~tid << 3 | 6,
    // CPUCLOCK_PID), which glibc makes from the tid clone wrote. Without it, or without its own stack,
    // wait until it has started (named itself, its syscalls marked as the agent's).
    clockid_t clock = 0;
    const bool known = stack && pthread_getcpuclockid(thread, &clock) == 0 && (clock & 7) == 6;
    if (known) g_watcher_tid.store(static_cast<pid_t>(~(clock >> 3)), std::memory_order_release);
    for (int i = 0; i < 100000 && !known && g_watcher_tid.load(std::memory_order_acquire) == 0; ++i) sched_yield();
  } else {
    report("cannot start the watching thread: links made from now on do not apply");
  }
  g_watcher_creator.store(0, std::memory_order_release);
  pthread_attr_destroy(&attr);
}

// Ends a forked child's deferral (after_fork_child): its syscalls go back to the table the links make.
// False when it had ended already, or this is a vfork child, which runs on its parent's memory (the
// watcher is its parent's to start).
bool end_deferral() {
  if (static_cast<pid_t>(sys(SYS_getpid)) != g_deferred_pid) return false;
  if (!g_watcher_deferred.exchange(false, std::memory_order_acq_rel)) return false;
  std::uint8_t* table = syscall_table();
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) table[nr] &= static_cast<std::uint8_t>(~kStartsWatcher);
  return true;
}

// A forked child's first other syscall: its watcher starts (waiting, as before, for a change of links
// since the fork). Not from a signal handler (`sp`, the syscall's stack pointer, below a signal frame):
// the handler may have interrupted malloc, whose lock pthread_create would then wait for forever; a
// later syscall starts it.
void start_deferred_watcher(std::uint64_t sp) {
  if (static_cast<pid_t>(sys(SYS_getpid)) != g_deferred_pid || !g_watcher_deferred.load(std::memory_order_acquire)) return;
  AgentWork own;  // (its reads of the stack and the watcher's clone are not the process's syscalls)
  if (detail::in_signal_handler(sp) || !end_deferral()) return;
  if (!g_state || g_state->stopped || !g_state->options.watch) return;
  start_watcher(reinterpret_cast<void*>(static_cast<std::uintptr_t>(g_deferred_generation) + 1));
}

// A fork of a process whose syscall instructions are not patched (no syscall link, not `bpfvm run`'s
// server: a shell in the system-wide scope) cannot defer its child's watcher (after_fork_child): each
// child starts a thread at once, which its exit then waits for. On the 2-CPU guest this was measured on
// (a single-threaded loop of fork, _exit, waitpid under `BPFVM_SERVE=0 bpfvm run`), that made a
// fork+exit+wait ~2.0 ms against ~1.4 ms with the instructions patched; patching them took ~10 ms (596
// sites; the sweeps come from the per-user cache). So a process patches them at the fork where the forks
// so far have cost it about what patching costs (kPatchAtFork), as one buys what one has rented for its
// price: a process that forks a few times pays no patching, one that forks on and on (a shell running a
// script) pays at most twice what knowing its future would have cost. Only while it has no other thread
// (hook_sites): a process with threads keeps starting its children's watchers at once.
constexpr std::uint32_t kPatchAtFork = 16;
std::atomic<std::uint32_t> g_unpatched_forks{0};  // (counted under g_state_mutex)

void patch_before_fork(State& s) {
  AgentWork own;  // (the syscalls the patching makes are the agent's)
  detail::close_gate();  // the watcher, if parked, stays so while this thread patches (other_threads)
  try {
    std::lock_guard lock(g_state_mutex);
    if (!s.sites_hooked && !s.prepared_made && !s.stopped && s.options.watch && g_unpatched_forks.fetch_add(1, std::memory_order_relaxed) + 1 == kPatchAtFork) {
      hook_sites(s);
    }
  } catch (const std::exception& e) {
    report(fmt::format("patching before a fork: {}", e.what()));
  }
  detail::open_gate();
}

void before_fork() {
  if (!g_state) return;
  if (!g_state->sites_hooked && g_unpatched_forks.load(std::memory_order_relaxed) < kPatchAtFork) patch_before_fork(*g_state);
  g_state_mutex.lock();
}
void after_fork_parent() {
  if (g_state) g_state_mutex.unlock();
  report_pending_fork();
}
void after_fork_child() {
  if (!g_state) return;
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);  // threads' task ids are stale
  // Only this thread came along: no gate it did not close, no watcher, no copies in flight elsewhere.
  detail::store_if_changed(detail::g_gate, 0);
  detail::store_if_changed(detail::g_watcher_parked, false);
  detail::forked();
  detail::signals_forked();
  forget_held();
  g_state_mutex.unlock();
  // The probes came with the memory; the watching thread did not. It starts at the child's first
  // syscall that is not on its way to exit or exec (on_the_way_out): a child that exits or execs at once
  // (a fork per thousand rounds of a workload, a shell's commands) makes no thread. A thread at fork
  // cost such a child about 300 us more to be waited for on a busy machine: exit_group waits for the
  // watcher, which must first be scheduled. Until it starts, links made after the fork reach the child
  // at that syscall; the child's record and its first sync wait for a change of links (or a second),
  // as before: see watch().
  if (g_state->options.watch && !g_state->stopped && g_state->sites_hooked && detail::fast_reads()) {
    g_deferred_generation = g_state->registry->links_generation();
    g_deferred_pid = static_cast<pid_t>(sys(SYS_getpid));
    g_watcher_deferred.store(true, std::memory_order_release);
    std::uint8_t* table = syscall_table();
    for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
      if (!on_the_way_out(nr)) table[nr] |= kStartsWatcher;
    }
  } else if (g_state->options.watch && !g_state->stopped) {
    AgentWork own;  // the watcher's clone is not the process's fork
    const std::uint32_t generation = g_state->registry->links_generation();
    start_watcher(reinterpret_cast<void*>(static_cast<std::uintptr_t>(generation) + 1));
  }
}

// The process's syscalls from before this agent started (early.hpp), taken over by the constructor.
bpfvm_early_log* g_early = nullptr;

// Reports them to the syscall links, as the kernel reported them as they were made: each one's entry
// and exit programs, on this thread (the process's only one then), after its exec events. Its path
// arguments point at the copies the early module kept. Syscalls it could not keep count as misses.
void report_early_syscalls() {
  bpfvm_early_log* log = std::exchange(g_early, nullptr);
  if (!log) return;
  const SyscallEntries* e = g_syscalls.load(std::memory_order_acquire);
  bool wanted = e && (!e->all_enter.empty() || !e->all_exit.empty());
  for (std::size_t nr = 0; e && !wanted && nr < kMaxSyscall; ++nr) wanted = !e->enter[nr].empty() || !e->exit[nr].empty();
  if (wanted) {
    ThreadState& t = thread_state();
    const int c = ::sched_getcpu();
    const int cpu = c < 0 ? 0 : c;
    if (log->dropped != 0) g_state->misses.fetch_add(log->dropped, std::memory_order_relaxed);
    t.busy = true;
    for (const detail::EarlySyscall& s : detail::process_syscalls(*log, detail::loaded_objects())) {
      if (s.nr < 0 || static_cast<std::size_t>(s.nr) >= kMaxSyscall) continue;
      const auto nr = static_cast<std::size_t>(s.nr);
      PtRegs regs{};
      attach::syscall_regs(s.nr, s.args, false, 0, s.ip, 0, reinterpret_cast<std::uint8_t*>(&regs));
      attach::SyscallStop stop;
      stop.task = &t.env.task;
      stop.nr = s.nr;
      stop.args = s.args;
      stop.ip = s.ip;
      stop.user_regs = &regs;
      run_syscall_entries(e->all_enter, stop, t, cpu);
      run_syscall_entries(e->enter[nr], stop, t, cpu);
      stop.exit = true;
      stop.ret = s.ret;
      attach::syscall_regs(s.nr, s.args, true, s.ret, s.ip, 0, reinterpret_cast<std::uint8_t*>(&regs));
      run_syscall_entries(e->all_exit, stop, t, cpu);
      run_syscall_entries(e->exit[nr], stop, t, cpu);
    }
    t.busy = false;
  }
  detail::release_early_log(log);
}

}  // namespace

Result<void> start(const AgentOptions& options) {
  if (g_state && g_state->stopped) {  // joined again after stop() (bpfvm attach after detach)
    std::uint32_t synced = 0;
    {
      std::lock_guard lock(g_state_mutex);
      g_state->stopped = false;
      synced = g_state->registry->links_generation();
      sync_locked(*g_state);
      publish_record(*g_state);
    }
    if (g_state->options.watch) {
      AgentWork own;
      start_watcher(reinterpret_cast<void*>(static_cast<std::uintptr_t>(synced) + 1));
    }
    return {};
  }
  if (g_state) return {};
  try {
    AgentWork own;  // its syscalls are the agent's (and come to a broker when the pin root refuses them)
    auto s = std::make_unique<State>();
    s->options = options;
    s->rt = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{options.pin_root});
    // A process that joined as the pin root's user and became another (then exec'd: this image's agent
    // is the new user's) cannot open it; a broker of the loaders opens what the agent needs. Its file
    // syscalls come through the handler from now on: the syscall instructions are patched first.
    if (const std::string& root = s->rt->pin_root();
        !g_brokered.load() && root.size() < sizeof g_broker_root && ::access(root.c_str(), X_OK) != 0 && errno == EACCES &&
        runtime::broker_listening(root)) {
      std::memcpy(g_broker_root, root.c_str(), root.size() + 1);
      g_brokered.store(true);
      for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
        if (is_brokered_nr(nr)) g_served[nr] = 1;
      }
      hook_sites(*s);
    }
    s->registry = s->rt->registry();
    if (!s->registry) {
      const auto& why = s->rt->registry_error();
      return make_error(Errc::kNotFound, "no registry at '{}'{}", s->rt->pin_root(),
                        why ? ": " + why->to_string() : std::string());
    }
    g_state = s.release();
    static std::once_flag atfork;
    std::call_once(atfork, [] { pthread_atfork(before_fork, after_fork_parent, after_fork_child); });
    // A thread that fires bpf_timer callbacks here is the agent's (its syscalls are not the process's).
    // Made by the watcher (below), after the links' patching, which needs the process to have no other
    // thread, and never in a run, which may be at a syscall of malloc's.
    helpers::set_timer_hooks({&mark_own_thread, &report, true});
    std::uint32_t synced = 0;
    {
      std::lock_guard lock(g_state_mutex);
      if (options.prepare_sites) prepare_sites(*g_state);
      if (options.serve) hook_sites(*g_state);
      synced = g_state->registry->links_generation();
      sync_locked(*g_state);
      publish_record(*g_state);
    }
    // This program was just exec'd: the exec event, then the execve's exit event, as the kernel reports
    // them in the new image (the path execve was given is the auxiliary vector's AT_EXECFN).
    if (const SyscallEntries* e = g_syscalls.load(std::memory_order_acquire);
        e && !e->of(attach::ProcessEvent::kExec).empty()) {
      ThreadState& t = thread_state();
      attach::SyscallStop ev;
      ev.task = &t.env.task;
      ev.event = attach::ProcessEvent::kExec;
      ev.filename = reinterpret_cast<const char*>(::getauxval(AT_EXECFN));
      ev.old_pid = t.env.task.pid;
      const int c = ::sched_getcpu();
      t.busy = true;
      run_syscall_entries(e->of(attach::ProcessEvent::kExec), ev, t, c < 0 ? 0 : c);
      t.busy = false;
    }
    if (const SyscallEntries* e = g_syscalls.load(std::memory_order_acquire);
        e && (!e->exit[SYS_execve].empty() || !e->all_exit.empty())) {
      ThreadState& t = thread_state();
      attach::SyscallStop stop;
      stop.task = &t.env.task;
      stop.nr = SYS_execve;
      stop.exit = true;
      const int c = ::sched_getcpu();
      t.busy = true;
      run_syscall_entries(e->all_exit, stop, t, c < 0 ? 0 : c);
      run_syscall_entries(e->exit[SYS_execve], stop, t, c < 0 ? 0 : c);
      t.busy = false;
    }
    report_early_syscalls();
    release_held();
    if (options.watch) {
      // The links were just synced here, before the process runs on: the watcher waits for a change
      // first. (Syncing again at once, it read the registry while the process opened its first files,
      // and the process's descriptors came out one or two higher than without bpfvm.) (Agent work: `own`.)
      start_watcher(reinterpret_cast<void*>(static_cast<std::uintptr_t>(synced) + 1));
    }
    // exit() destroys the static objects of the libraries (this one's included) after the handlers
    // registered after them: from here on, the watcher stops syncing before any of those the agent
    // used so far goes (it read freed memory when a process exited while its watcher synced).
    watch_exit();
    return {};
  } catch (const std::exception& e) {
    return make_error(Errc::kInvalid, "the agent could not start: {}", e.what());
  }
}

bool running() { return g_state && !g_state->stopped; }

void take_early_syscalls() {
  if (!g_early) g_early = detail::take_early_log();
}

void drop_early_syscalls() { detail::release_early_log(std::exchange(g_early, nullptr)); }

void set_syscall_server(SyscallServer server) { g_server.store(server, std::memory_order_release); }

void serve_syscall(int nr) {
  if (nr < 0 || static_cast<std::size_t>(nr) >= kMaxSyscall) return;
  g_served[nr] = 1;
  if (g_state && g_state->sites_hooked) syscall_table()[nr] = 1;
}

bool read_own_memory(void* dst, const void* src, std::size_t n) {
  return detail::read(static_cast<pid_t>(::getpid()), dst, reinterpret_cast<std::uintptr_t>(src), n);
}

void mark_own_thread() {
  t_agent_thread = true;
  t_own_thread = true;
}

OwnSyscalls::OwnSyscalls() : saved_(t_agent_thread) { t_agent_thread = true; }
OwnSyscalls::~OwnSyscalls() {
  t_agent_thread = saved_;
  release_held();
}

std::size_t commit_sites(const std::uint64_t* positions, std::size_t count) {
  State* s = g_state;
  if (!s || !s->prepared_made || s->sites_hooked) return 0;
  s->committed = commit_prepared_sites(s->prepared, positions, count);
  return s->committed;
}

void sites_ready() {
  State* s = g_state;
  if (!s || !s->prepared_made || s->sites_hooked) return;
  std::lock_guard lock(g_state_mutex);
  const std::size_t skipped = s->prepared.size() - s->committed;
  s->syscall_sites += s->committed;
  if (skipped) s->sites_left.push_back(fmt::format("{} sites where stopped threads were to resume", skipped));
  s->sites_hooked = true;
  for (std::size_t nr = 0; nr < kMaxSyscall; ++nr) {
    if (memory_nr(nr)) syscall_table()[nr] = 1;
  }
  syscall_table()[SYS_rt_sigaction] = 1;
  if (skipped == 0 && s->prepared_left == 0) detail::enable_fast_reads();
  else detail::disable_fast_reads();
  report(fmt::format("{} syscall sites patched with the other threads stopped, {} left", s->committed,
                     skipped + s->prepared_left));
  s->failed.clear();  // links refused for want of patched sites: applied now
  sync_locked(*s);
  publish_record(*s);
}

void sync() {
  if (!g_state) return;
  detail::close_gate();  // the watcher, if parked, stays so while this thread may patch
  try {
    std::lock_guard lock(g_state_mutex);
    // Code mapped since the syscall instructions were patched (a dlopen): patched too while no other
    // thread runs; else its syscalls are not seen, and reads go back to process_vm_readv.
    if (g_state->sites_hooked) patch_new_code(*g_state, detail::other_threads() == 0);
    sync_locked(*g_state);
  } catch (const std::exception& e) {
    report(fmt::format("sync: {}", e.what()));
  }
  detail::open_gate();
}

void stop() {
  if (!g_state) return;
  std::lock_guard lock(g_state_mutex);
  while (!g_state->applied.empty()) unapply(*g_state, g_state->applied.begin()->first);
  g_state->failed.clear();
  g_state->stopped = true;
  end_deferral();
  g_state->registry->withdraw(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()));
}

std::vector<LinkStatus> status() {
  std::vector<LinkStatus> out;
  if (!g_state) return out;
  std::lock_guard lock(g_state_mutex);
  for (const auto& [id, a] : g_state->applied) out.push_back({id, a.address, ""});
  for (const auto& [id, why] : g_state->failed) out.push_back({id, 0, why});
  return out;
}

std::uint64_t misses() { return g_state ? g_state->misses.load() : 0; }

}  // namespace bpfvm::agent
