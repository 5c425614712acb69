// bpf_timer_init (169), bpf_timer_set_callback (170), bpf_timer_start (171) and bpf_timer_cancel (172):
// timers in map values; and bpf_kptr_xchg (194), the other helper of a map value's special fields, with the kernel's results (kernel/bpf/helpers.c: __bpf_async_init,
// __bpf_async_set_callback, bpf_timer_start, bpf_timer_cancel). include/bpfvm/helpers/timers.hpp says
// where a timer's state is kept and where it fires.
#include "bpfvm/helpers/timers.hpp"

#include <linux/bpf.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "bpfvm/helpers/run_env.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

// Word 0 of a timer (timers.hpp).
constexpr std::uint64_t kInitialised = 1, kHasCallback = 2;
constexpr std::uint64_t kClockShift = 4, kPcShift = 8, kProgShift = 32;
constexpr std::uint64_t kPcMask = 0xffffff;
// bpf_timer_start's flags (BPF_F_TIMER_ABS, BPF_F_TIMER_CPU_PIN: Linux 6.7 and 6.8, newer than the
// headers bpfvm builds with).
constexpr std::uint64_t kTimerAbs = 1, kTimerCpuPin = 2;
constexpr std::uint64_t kMaxClocks = 16;  // MAX_CLOCKS

std::atomic_ref<std::uint64_t> word(std::uint64_t* words, int i) { return std::atomic_ref<std::uint64_t>(words[i]); }

std::uint64_t now_ns(clockid_t clock) {
  timespec ts{};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

// An expiry to come: it fires if the timer's word 1 still holds its ticket then.
struct Pending {
  std::uint64_t due;  // CLOCK_MONOTONIC
  std::uint64_t ticket;
  std::uint64_t* words;
  maps::Map* map;
  std::shared_ptr<const TimerProgram> starter;  // the program that started it: its maps hold the timer's
};
struct Later {
  bool operator()(const Pending& a, const Pending& b) const { return a.due > b.due; }
};

struct Hooks {
  std::atomic<void (*)()> thread_start{nullptr};
  std::atomic<void (*)(const std::string&)> report{nullptr};
  std::atomic<bool> embedder_starts_thread{false};
};
Hooks& hooks() {
  static Hooks h;
  return h;
}

// This process's timers: what is pending, the programs callbacks belong to, the thread that fires them.
constexpr std::size_t kQueueRoom = 4096;

struct Service {
  explicit Service(pid_t p) : pid(p) { queue.reserve(kQueueRoom); }
  const pid_t pid;
  std::mutex mutex;
  std::condition_variable changed;  // a new earliest expiry; a callback finished
  std::vector<Pending> queue;       // a heap by Later: the earliest first
  // The programs whose functions this process's timers call, by id (bpf_timer_set_callback records it,
  // and a start in this process finds it there when another program set the callback).
  std::unordered_map<std::uint32_t, std::weak_ptr<const TimerProgram>> programs;
  const std::uint64_t* running = nullptr;  // the timer whose callback runs now
  bool thread = false;
  bool wanted = false;  // a program that uses timers was loaded here
  std::uint32_t tickets = 0;
  bool reported = false;
};

// A forked child starts with no timers (its parent's stay the parent's) and no service: the parent's
// lock may have been held by another thread at the fork, so the child leaves that object alone.
std::atomic<Service*> g_service{nullptr};
__attribute__((tls_model("initial-exec"))) thread_local const std::uint64_t* t_running = nullptr;

Service& service() {
  if (Service* s = g_service.load(std::memory_order_acquire)) [[likely]] return *s;
  // A child of a process with timers gets its service at the fork (malloc is usable in an atfork child
  // handler), so that its runs do not make one; its thread is made as the parent's was.
  static std::once_flag atfork;
  std::call_once(atfork, [] {
    ::pthread_atfork(nullptr, nullptr, [] {
      Service* parent = g_service.load(std::memory_order_relaxed);
      Service* child = parent ? new Service(::getpid()) : nullptr;
      if (child) child->wanted = parent->wanted;
      g_service.store(child, std::memory_order_relaxed);
    });
  });
  auto* fresh = new Service(::getpid());
  Service* none = nullptr;
  if (g_service.compare_exchange_strong(none, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *none;
}

void report(Service& s, const std::string& what) {
  if (s.reported) return;  // once per process: a timer that fails every millisecond would flood stderr
  s.reported = true;
  if (auto hook = hooks().report.load(std::memory_order_acquire)) return hook(what);
  std::fprintf(stderr, "bpfvm: %s\n", what.c_str());
}

// Runs one expiry (the service's lock held, and released while the callback runs).
void fire(Service& s, std::unique_lock<std::mutex>& lock, const Pending& p) {
  // Cancelled, started again or freed since: a later start's expiry is its own.
  std::uint64_t ticket = p.ticket;
  if (!word(p.words, 1).compare_exchange_strong(ticket, 0, std::memory_order_acq_rel)) return;
  const std::uint64_t state = word(p.words, 0).load(std::memory_order_acquire);
  if (!(state & kHasCallback)) return;
  const auto id = static_cast<std::uint32_t>(state >> kProgShift);
  const auto pc = static_cast<std::uint32_t>((state >> kPcShift) & kPcMask);
  std::shared_ptr<const TimerProgram> prog = p.starter->timer_program_id() == id ? p.starter : nullptr;
  if (!prog) {
    auto it = s.programs.find(id);
    if (it != s.programs.end()) prog = it->second.lock();
  }
  if (!prog) {
    report(s, fmt::format("a timer's callback is in program {}, which process {} has not loaded: it did not run", id, s.pid));
    return;
  }
  // The callback's arguments, as bpf_timer_cb gives them: the map, the element's key (an array's index,
  // a hash element's key before its value) and the value.
  const maps::MapDef& def = p.map->def();
  auto* value = reinterpret_cast<std::uint8_t*>(p.words) - def.timer_off;
  std::uint32_t index = 0;
  const void* key = nullptr;
  if (const auto array = p.map->direct_array()) {
    index = static_cast<std::uint32_t>(static_cast<std::size_t>(value - array->values) / array->stride);
    key = &index;
  } else {
    key = value - (def.key_size + 7) / 8 * 8;
  }
  s.running = p.words;
  lock.unlock();
  t_running = p.words;
  const std::uint64_t args[5] = {reinterpret_cast<std::uint64_t>(p.map), reinterpret_cast<std::uint64_t>(key),
                                 reinterpret_cast<std::uint64_t>(value), 0, 0};
  auto r = prog->run_timer_callback(pc, args);
  t_running = nullptr;
  lock.lock();
  s.running = nullptr;
  s.changed.notify_all();
  if (!r) report(s, "a timer's callback failed: " + r.error().to_string());
}

void* timer_thread(void* arg) {
  if (auto hook = hooks().thread_start.load(std::memory_order_acquire)) hook();
  ::prctl(PR_SET_NAME, "bpfvm-timers", 0, 0, 0);
  Service& s = *static_cast<Service*>(arg);
  std::unique_lock lock(s.mutex);
  for (;;) {
    if (s.queue.empty()) {
      s.changed.wait(lock);
      continue;
    }
    const std::uint64_t due = s.queue.front().due;
    if (due > now_ns(CLOCK_MONOTONIC)) {
      // (steady_clock is CLOCK_MONOTONIC.)
      s.changed.wait_until(lock, std::chrono::steady_clock::time_point(std::chrono::nanoseconds(due)));
      continue;
    }
    std::pop_heap(s.queue.begin(), s.queue.end(), Later{});
    const Pending p = std::move(s.queue.back());
    s.queue.pop_back();
    fire(s, lock, p);
  }
}

// The service's thread, started at the first start. It takes none of the process's signals.
bool start_thread(Service& s) {
  if (s.thread) return true;
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  s.thread = pthread_create(&thread, &attr, timer_thread, &s) == 0;
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  return s.thread;
}

// Knows `program` by id (without allocating when it is known already).
void remember(Service& s, const TimerProgram& program) {
  std::lock_guard lock(s.mutex);
  const auto it = s.programs.find(program.timer_program_id());
  if (it != s.programs.end() && !it->second.expired()) return;
  s.programs[program.timer_program_id()] = program.keep_for_timer();
}

// The timer's words, when `addr` may be one (checked mode: memory the program may write).
std::uint64_t* timer_at(std::uint64_t addr, CallContext* ctx) {
  if (addr == 0 || addr % 8 != 0 || !ctx->may_access(addr, 16, true)) return nullptr;
  return reinterpret_cast<std::uint64_t*>(addr);
}

std::uint64_t timer_init(std::uint64_t timer, std::uint64_t, std::uint64_t flags, std::uint64_t, std::uint64_t,
                         CallContext* ctx) {
  std::uint64_t* w = timer_at(timer, ctx);
  if (!w) return errno_result(EINVAL);
  // A clock of timerfd's but the alarms: MONOTONIC, REALTIME, BOOTTIME.
  const std::uint64_t clock = flags & (kMaxClocks - 1);
  if (flags >= kMaxClocks || (clock != CLOCK_MONOTONIC && clock != CLOCK_REALTIME && clock != CLOCK_BOOTTIME)) {
    return errno_result(EINVAL);
  }
  std::uint64_t none = 0;
  if (!word(w, 0).compare_exchange_strong(none, kInitialised | clock << kClockShift, std::memory_order_acq_rel)) {
    return errno_result(EBUSY);
  }
  return 0;
}

std::uint64_t timer_set_callback(std::uint64_t timer, std::uint64_t callback, std::uint64_t, std::uint64_t,
                                 std::uint64_t, CallContext* ctx) {
  std::uint64_t* w = timer_at(timer, ctx);
  const TimerProgram* program = env_of(ctx).program;
  if (!w) return errno_result(EINVAL);
  if (!program || callback > kPcMask) return errno_result(EOPNOTSUPP);
  std::uint64_t state = word(w, 0).load(std::memory_order_acquire);
  std::uint64_t next;
  do {
    if (!(state & kInitialised)) return errno_result(EINVAL);
    next = (state & (kInitialised | 0xf << kClockShift)) | kHasCallback | callback << kPcShift |
           std::uint64_t{program->timer_program_id()} << kProgShift;
  } while (!word(w, 0).compare_exchange_weak(state, next, std::memory_order_acq_rel));
  remember(service(), *program);
  return 0;
}

std::uint64_t timer_start(std::uint64_t timer, std::uint64_t nsecs, std::uint64_t flags, std::uint64_t, std::uint64_t,
                          CallContext* ctx) {
  if (flags & ~(kTimerAbs | kTimerCpuPin)) return errno_result(EINVAL);
  std::uint64_t* w = timer_at(timer, ctx);
  if (!w) return errno_result(EINVAL);
  const std::uint64_t state = word(w, 0).load(std::memory_order_acquire);
  if (!(state & kInitialised) || !(state & kHasCallback)) return errno_result(EINVAL);
  const TimerProgram* program = env_of(ctx).program;
  maps::Map* map = program ? program->timer_map(w, 16) : nullptr;
  auto starter = program ? program->keep_for_timer() : nullptr;
  if (!map || !starter) return errno_result(EOPNOTSUPP);
  // An absolute expiry is on the timer's clock; it waits on CLOCK_MONOTONIC.
  const auto clock = static_cast<clockid_t>((state >> kClockShift) & 0xf);
  const std::uint64_t now = now_ns(CLOCK_MONOTONIC);
  std::uint64_t wait = nsecs;
  if (flags & kTimerAbs) {
    const std::uint64_t clock_now = clock == CLOCK_MONOTONIC ? now : now_ns(clock);
    wait = nsecs > clock_now ? nsecs - clock_now : 0;
  }
  const std::uint64_t due = wait > UINT64_MAX - now ? UINT64_MAX : now + wait;
  Service& s = service();
  std::lock_guard lock(s.mutex);
  s.wanted = true;
  if (!hooks().embedder_starts_thread.load(std::memory_order_relaxed) && !start_thread(s)) return errno_result(ENOMEM);
  if (++s.tickets == 0) ++s.tickets;
  const std::uint64_t ticket = std::uint64_t{static_cast<std::uint32_t>(s.pid)} << 32 | s.tickets;
  const std::uint64_t before = word(w, 1).exchange(ticket, std::memory_order_acq_rel);
  // What was pending for this timer here will not fire (its ticket is gone): out of the queue with it,
  // and with it the program it kept. A timer that was not pending here (the usual start) is only
  // pushed onto the heap.
  if (before >> 32 == static_cast<std::uint32_t>(s.pid)) {
    std::erase_if(s.queue, [&](const Pending& p) { return p.words == w; });
    s.queue.push_back({due, ticket, w, map, std::move(starter)});
    std::make_heap(s.queue.begin(), s.queue.end(), Later{});
  } else {
    s.queue.push_back({due, ticket, w, map, std::move(starter)});
    std::push_heap(s.queue.begin(), s.queue.end(), Later{});
  }
  if (s.queue.front().words == w) s.changed.notify_all();
  return 0;
}

std::uint64_t timer_cancel(std::uint64_t timer, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                           CallContext* ctx) {
  std::uint64_t* w = timer_at(timer, ctx);
  if (!w || !(word(w, 0).load(std::memory_order_acquire) & kInitialised)) return errno_result(EINVAL);
  // Its own callback cannot wait for itself to finish.
  if (t_running == w) return errno_result(EDEADLK);
  // The callback goes (the kernel drops its program): a start needs bpf_timer_set_callback again.
  std::uint64_t state = word(w, 0).load(std::memory_order_acquire);
  while (!word(w, 0).compare_exchange_weak(state, state & (kInitialised | 0xf << kClockShift), std::memory_order_acq_rel)) {
  }
  Service* s = g_service.load(std::memory_order_acquire);
  if (!s) return word(w, 1).exchange(0, std::memory_order_acq_rel) != 0 ? 1 : 0;
  // As hrtimer_cancel: after the callback running now (which may start it again) has finished.
  std::unique_lock lock(s->mutex);
  s->changed.wait(lock, [&] { return s->running != w; });
  const bool pending = word(w, 1).exchange(0, std::memory_order_acq_rel) != 0;
  std::erase_if(s->queue, [&](const Pending& p) { return p.words == w; });
  std::make_heap(s->queue.begin(), s->queue.end(), Later{});
  return pending ? 1 : 0;
}

// bpf_kptr_xchg (194): the kptr field's old pointer for the new one (or NULL), atomically. (The verifier
// proved the field a referenced kptr of a map value and the pointer one of its struct, or NULL.)
std::uint64_t kptr_xchg(std::uint64_t field, std::uint64_t ptr, std::uint64_t, std::uint64_t, std::uint64_t,
                        CallContext* ctx) {
  if (field % 8 != 0 || !ctx->may_access(field, 8, true)) return 0;
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(field)).exchange(ptr, std::memory_order_acq_rel);
}

}  // namespace

void prepare_timers(const TimerProgram& program) {
  Service& s = service();
  remember(s, program);
  {
    std::lock_guard lock(s.mutex);
    s.wanted = true;
  }
  if (!hooks().embedder_starts_thread.load(std::memory_order_acquire)) start_timer_thread();
}

void start_timer_thread() {
  Service* s = g_service.load(std::memory_order_acquire);
  if (!s) return;
  std::lock_guard lock(s->mutex);
  if (!s->wanted || s->thread) return;
  if (start_thread(*s)) {
    s->changed.notify_all();
  } else if (auto hook = hooks().report.load(std::memory_order_acquire)) {
    hook("cannot start the timers' thread: timers started here do not fire");
  }
}

void set_timer_hooks(const TimerHooks& h) {
  hooks().thread_start.store(h.thread_start, std::memory_order_release);
  hooks().report.store(h.report, std::memory_order_release);
  hooks().embedder_starts_thread.store(h.embedder_starts_thread, std::memory_order_release);
}

void install_timer_helpers(Registry& table) {
  table.set(BPF_FUNC_timer_init, timer_init);
  table.set(BPF_FUNC_timer_set_callback, timer_set_callback);
  table.set(BPF_FUNC_timer_start, timer_start);
  table.set(BPF_FUNC_timer_cancel, timer_cancel);
  table.set(BPF_FUNC_kptr_xchg, kptr_xchg);
}

}  // namespace bpfvm::helpers
