// The agent's core (see include/bpfvm/agent/agent.hpp).
#include "bpfvm/agent/agent.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <set>

#include "bpfvm/agent/hook.hpp"
#include "bpfvm/runtime/runtime.hpp"

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
};

struct State {
  AgentOptions options;
  std::unique_ptr<runtime::Runtime> rt;
  std::shared_ptr<runtime::Registry> registry;
  std::mutex mutex;
  std::map<std::uintptr_t, std::unique_ptr<Site>> sites;
  std::map<std::uint32_t, Applied> applied;               // by link id
  std::map<std::uint32_t, std::string> failed;            // by link id
  std::map<std::uint32_t, std::shared_ptr<runtime::Program>> programs;  // by program id, kept for life
  std::vector<std::unique_ptr<Entries>> retired;          // never freed: a thread may still read one
  std::atomic<std::uint64_t> failures{0}, misses{0};
  bool stopped = false;
};

State* g_state = nullptr;  // made once, never destroyed: probes may fire during exit
std::atomic<std::uint32_t> g_fork_generation{0};

void report(const std::string& what) {
  if (g_state && g_state->options.verbose) std::fprintf(stderr, "bpfvm agent[%d]: %s\n", ::getpid(), what.c_str());
}

// ---- the probed thread's side ----------------------------------------------------------------------

struct ThreadRunner {
  const Entry* entry;
  std::unique_ptr<runtime::Program::Runner> runner;
};

struct ThreadState {
  bool busy = false;
  std::uint32_t generation = ~0u;
  helpers::RunEnv env;
  std::vector<ThreadRunner> runners;
};

thread_local ThreadState t_state;

ThreadState& thread_state() {
  ThreadState& t = t_state;
  const std::uint32_t gen = g_fork_generation.load(std::memory_order_relaxed);
  if (t.generation != gen) [[unlikely]] {  // first use on this thread, or the first after a fork
    t.runners.clear();
    t.env = {};
    t.env.task.pid = static_cast<std::uint32_t>(::gettid());
    t.env.task.tgid = static_cast<std::uint32_t>(::getpid());
    t.env.task.uid = ::getuid();
    t.env.task.gid = ::getgid();
    ::prctl(PR_GET_NAME, t.env.task.comm, 0, 0, 0);
    t.generation = gen;
  }
  return t;
}

runtime::Program::Runner& runner_for(ThreadState& t, const Entry& e, PtRegs* regs) {
  for (auto& r : t.runners) {
    if (r.entry == &e) return *r.runner;
  }
  helpers::RunEnv env = t.env;
  env.func_ip = e.address;
  env.attach_cookie = e.cookie;
  t.runners.push_back({&e, std::make_unique<runtime::Program::Runner>(*e.program, regs, sizeof(PtRegs),
                                                                        std::span<const std::uint8_t>(), env)});
  return *t.runners.back().runner;
}

void run_entries(const std::vector<Entry>& list, PtRegs* regs, ThreadState& t) {
  const int cpu = ::sched_getcpu();
  for (const Entry& e : list) {
    auto r = runner_for(t, e, regs).run_on(regs, cpu < 0 ? 0 : static_cast<std::uint32_t>(cpu));
    if (!r) [[unlikely]] e.failures->fetch_add(1, std::memory_order_relaxed);
  }
}

void on_return(PtRegs* regs, void* data) {
  ThreadState& t = thread_state();
  if (t.busy) {
    g_state->misses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t.busy = true;
  run_entries(static_cast<const Entries*>(data)->on_return, regs, t);
  t.busy = false;
}

void on_entry(PtRegs* regs, void* data) {
  ThreadState& t = thread_state();
  if (t.busy) [[unlikely]] {
    g_state->misses.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const Entries* e = static_cast<Site*>(data)->entries.load(std::memory_order_acquire);
  if (!e) return;
  t.busy = true;
  run_entries(e->on_entry, regs, t);
  t.busy = false;
  if (!e->on_return.empty()) hook_return(regs, on_return, const_cast<Entries*>(e));
}

// ---- applying links --------------------------------------------------------------------------------

// Where this process maps byte `offset` of the file (dev, inode) executable; 0 when it does not.
std::uintptr_t address_of(std::uint64_t dev, std::uint64_t inode, std::uint64_t offset) {
  FILE* f = std::fopen("/proc/self/maps", "re");
  if (!f) return 0;
  char line[4096];
  std::uintptr_t found = 0;
  while (std::fgets(line, sizeof line, f)) {
    unsigned long start, end, off, ino;
    unsigned maj, min;
    char perms[8];
    if (std::sscanf(line, "%lx-%lx %7s %lx %x:%x %lu", &start, &end, perms, &off, &maj, &min, &ino) != 7) continue;
    if (perms[2] != 'x' || ino != inode || ::makedev(maj, min) != dev) continue;
    if (offset >= off && offset < off + (end - start)) {
      found = start + (offset - off);
      break;
    }
  }
  std::fclose(f);
  return found;
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
  const auto it = s.applied.find(link_id);
  if (it == s.applied.end()) return;
  const std::uintptr_t address = it->second.address;
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
  const std::uint32_t prog_id = record.value("prog_id", 0u);
  auto& program = s.programs[prog_id];
  if (!program) {
    auto opened = s.rt->open_program_by_id(prog_id);
    if (!opened) {
      s.programs.erase(prog_id);
      return std::move(opened).error().with_context(fmt::format("opening program {}", prog_id));
    }
    program = *opened;
  }
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
    auto hook = Hook::install(where, on_entry, site.get());
    if (!hook) {
      s.sites.erase(address);
      return std::move(hook).error().with_context(
          fmt::format("probing {}+{:#x}", u.value("function", std::string("?")), func_offset));
    }
    site->hook = std::move(*hook);
  }
  s.applied[link_id] = {address, record.value("kind", "") == "uretprobe", record.value("cookie", std::uint64_t{0}),
                        program};
  site->links.insert(link_id);
  publish_sites(s, *site);
  return {};
}

void publish_record(State& s) {
  json links = json::array();
  for (const auto& [id, a] : s.applied) links.push_back({{"link", id}, {"address", a.address}});
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
                       {"misses", s.misses.load()}, {"failures", s.failures.load()}});
}

void sync_locked(State& s) {
  if (s.stopped) return;
  std::map<std::uint32_t, json> wanted;
  for (auto& r : s.registry->list(runtime::ObjectKind::kLink)) {
    const std::string kind = r.value("kind", "");
    if ((kind != "uprobe" && kind != "uretprobe") || !r.contains("uprobe")) continue;
    const std::uint32_t pid = r.value("pid", 0u);
    if (pid != 0 && pid != static_cast<std::uint32_t>(::getpid())) continue;
    if (runtime::Registry::owned_here(r) && !r.value("self", false)) continue;
    const std::uint32_t scope = r.value("scope", 0u);
    if (scope != 0 && scope != s.options.scope) continue;
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
  for (auto it = s.failed.begin(); it != s.failed.end();) {
    if (!wanted.count(it->first)) it = s.failed.erase(it), changed = true;
    else ++it;
  }
  for (const auto& [id, record] : wanted) {
    if (s.applied.count(id) || s.failed.count(id)) continue;
    Result<void> r = [&]() -> Result<void> {
      try {
        return apply(s, id, record);
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
  if (changed) publish_record(s);
}

void* watch(void*) {
  State& s = *g_state;
  for (;;) {
    const std::uint32_t seen = s.registry->links_generation();
    {
      std::lock_guard lock(s.mutex);
      if (s.stopped) return nullptr;
      sync_locked(s);
    }
    // Woken by a link's change; every second anyway, for links whose loader died without withdrawing.
    s.registry->wait_links_changed(seen, 1000);
  }
}

void start_watcher() {
  // The thread takes no signals: the process's signals go to its own threads, as untraced.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_t thread;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  if (pthread_create(&thread, &attr, watch, nullptr) == 0) pthread_setname_np(thread, "bpfvm-agent");
  else report("cannot start the watching thread: links made from now on do not apply");
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void before_fork() {
  if (g_state) g_state->mutex.lock();
}
void after_fork_parent() {
  if (g_state) g_state->mutex.unlock();
}
void after_fork_child() {
  if (!g_state) return;
  g_fork_generation.fetch_add(1, std::memory_order_relaxed);  // threads' task ids are stale
  g_state->mutex.unlock();
  // The probes came with the memory; the watching thread did not.
  if (g_state->options.watch && !g_state->stopped) {
    {
      std::lock_guard lock(g_state->mutex);
      publish_record(*g_state);
    }
    start_watcher();
  }
}

}  // namespace

Result<void> start(const AgentOptions& options) {
  if (g_state) return {};
  try {
    auto s = std::make_unique<State>();
    s->options = options;
    s->rt = std::make_unique<runtime::Runtime>(runtime::RuntimeOptions{options.pin_root});
    s->registry = s->rt->registry();
    if (!s->registry) {
      const auto& why = s->rt->registry_error();
      return make_error(Errc::kNotFound, "no registry at '{}'{}", s->rt->pin_root(),
                        why ? ": " + why->to_string() : std::string());
    }
    g_state = s.release();
    static std::once_flag atfork;
    std::call_once(atfork, [] { pthread_atfork(before_fork, after_fork_parent, after_fork_child); });
    {
      std::lock_guard lock(g_state->mutex);
      sync_locked(*g_state);
      publish_record(*g_state);
    }
    if (options.watch) start_watcher();
    return {};
  } catch (const std::exception& e) {
    return make_error(Errc::kInvalid, "the agent could not start: {}", e.what());
  }
}

bool running() { return g_state && !g_state->stopped; }

void sync() {
  if (!g_state) return;
  try {
    std::lock_guard lock(g_state->mutex);
    sync_locked(*g_state);
  } catch (const std::exception& e) {
    report(fmt::format("sync: {}", e.what()));
  }
}

void stop() {
  if (!g_state) return;
  std::lock_guard lock(g_state->mutex);
  while (!g_state->applied.empty()) unapply(*g_state, g_state->applied.begin()->first);
  g_state->failed.clear();
  g_state->stopped = true;
  g_state->registry->withdraw(runtime::ObjectKind::kAgent, static_cast<std::uint32_t>(::getpid()));
}

std::vector<LinkStatus> status() {
  std::vector<LinkStatus> out;
  if (!g_state) return out;
  std::lock_guard lock(g_state->mutex);
  for (const auto& [id, a] : g_state->applied) out.push_back({id, a.address, ""});
  for (const auto& [id, why] : g_state->failed) out.push_back({id, 0, why});
  return out;
}

std::uint64_t misses() { return g_state ? g_state->misses.load() : 0; }

}  // namespace bpfvm::agent
