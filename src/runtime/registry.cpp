#include "bpfvm/runtime/registry.hpp"

#include "bpfvm/base/process.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <fstream>

#include "bpfvm/base/file.hpp"
#include "bpfvm/base/wakeup.hpp"

namespace bpfvm::runtime {

using nlohmann::json;

namespace {

constexpr std::uint64_t kIdsMagic = 0x5344496d76667062;  // "bpfvmIDS"

struct Ids {
  std::uint64_t magic;
  std::atomic<std::uint32_t> next[4];
  std::atomic<std::uint32_t> links_generation;  // zero in a page made before it existed: still valid
};

Result<os::SharedMemory> open_ids(const std::string& path) {
  // Made whole under a name of this process's, then linked in place (atomic): another process opening
  // the registry at the same moment finds no file, or a sized and filled one (it found an empty one
  // between the creator's open and its fallocate: "not a shared memory file"). The loser of two links
  // opens the winner's.
  if (!os::exists(path)) {
    const std::string mine = fmt::format("{}.tmp.{}", path, ::getpid());
    ::unlink(mine.c_str());
    if (auto created = os::SharedMemory::create(mine, 4096)) {
      auto* ids = reinterpret_cast<Ids*>(created->data());
      for (auto& n : ids->next) n.store(0);
      std::atomic_ref<std::uint64_t>(ids->magic).store(kIdsMagic, std::memory_order_release);
      const bool linked = ::link(mine.c_str(), path.c_str()) == 0;
      ::unlink(mine.c_str());
      if (linked) return os::SharedMemory::open(path);
    }
  }
  auto opened = BPFVM_TRY(os::SharedMemory::open(path));
  if (opened.size() < sizeof(Ids)) return make_error(Errc::kInvalid, "'{}' is not a bpfvm id file", path);
  // A creator may be between create and the magic: wait for it briefly.
  auto* ids = reinterpret_cast<Ids*>(opened.data());
  for (int i = 0; i < 1000 && std::atomic_ref<std::uint64_t>(ids->magic).load(std::memory_order_acquire) != kIdsMagic; ++i) {
    ::usleep(100);
  }
  if (std::atomic_ref<std::uint64_t>(ids->magic).load() != kIdsMagic) {
    return make_error(Errc::kInvalid, "'{}' is not a bpfvm id file", path);
  }
  return opened;
}

bool process_alive(int pid, std::uint64_t start) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno != EPERM) return false;
  return start == 0 || process_start_time(pid) == start;
}

// A record or pin file, if it is one: the files are plain JSON anyone with access to the pin root could
// edit, so the fields the registry reads must have their types (the rest is checked where it is used).
std::optional<json> read_json(const std::string& path) {
  auto text = os::read_text_file(path);
  if (!text) return std::nullopt;
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  for (const char* field : {"id", "owner_pid", "owner_start"}) {
    if (j.contains(field) && !j.at(field).is_number_integer()) return std::nullopt;
  }
  if (j.contains("pins") && !j.at("pins").is_array()) return std::nullopt;
  return j;
}

}  // namespace

std::string_view kind_name(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kProg: return "prog";
    case ObjectKind::kMap: return "map";
    case ObjectKind::kBtf: return "btf";
    case ObjectKind::kLink: return "link";
    case ObjectKind::kAgent: return "agent";
  }
  return "?";
}

std::uint64_t process_start_time(int pid) {
  os::TaskFacts stat;
  return pid > 0 && os::read_task_stat(static_cast<std::uint32_t>(pid), stat) ? stat.start_ticks : 0;
}

Result<std::shared_ptr<Registry>> Registry::open(const std::string& pin_root) {
  const std::string dir = pin_root + "/.registry";
  BPFVM_TRY(os::make_directories(dir));
  auto ids = BPFVM_TRY(open_ids(dir + "/ids"));
  return std::shared_ptr<Registry>(new Registry(dir, std::move(ids)));
}

std::uint32_t Registry::allocate(ObjectKind kind) {
  auto* ids = reinterpret_cast<Ids*>(ids_.data());
  return ids->next[static_cast<int>(kind)].fetch_add(1, std::memory_order_relaxed) + 1;
}

std::uint32_t Registry::links_generation() const {
  return reinterpret_cast<const Ids*>(ids_.data())->links_generation.load(std::memory_order_acquire);
}

void Registry::wait_links_changed(std::uint32_t seen, int timeout_ms) const {
  auto* ids = reinterpret_cast<Ids*>(ids_.data());
  os::futex_wait(ids->links_generation, seen, timeout_ms);
}

void Registry::links_changed() {
  auto* ids = reinterpret_cast<Ids*>(ids_.data());
  ids->links_generation.fetch_add(1, std::memory_order_acq_rel);
  os::futex_wake_all(ids->links_generation);
}

std::string Registry::path_of(ObjectKind kind, std::uint32_t id) const {
  return fmt::format("{}/{}-{}", dir_, kind_name(kind), id);
}

bool Registry::owned_here(const json& record) { return record.value("owner_pid", 0) == ::getpid(); }

bool Registry::link_fires_here(const json& link, std::uint32_t scope) {
  const std::uint32_t pid = link.value("pid", 0u);
  if (pid != 0 && pid != static_cast<std::uint32_t>(::getpid())) return false;
  if (owned_here(link) && !link.value("self", false)) return false;
  const std::uint32_t link_scope = link.value("scope", 0u);
  return link_scope == 0 || link_scope == scope;
}

void Registry::publish(ObjectKind kind, std::uint32_t id, json record) {
  // Cached per pid: a process that forks after loading has a child with another pid and start.
  static thread_local std::pair<int, std::uint64_t> owner{0, 0};
  if (owner.first != ::getpid()) owner = {::getpid(), process_start_time(::getpid())};
  record["id"] = id;
  record["owner_pid"] = owner.first;
  record["owner_start"] = owner.second;
  std::lock_guard lock(mutex_);
  // Pins recorded before (by an earlier owner) stay.
  if (auto old = read_json(path_of(kind, id)); old && old->contains("pins") && !record.contains("pins")) {
    record["pins"] = old->at("pins");
  }
  const std::string text = record.dump();
  (void)os::replace_file(path_of(kind, id), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  if (kind == ObjectKind::kLink) links_changed();
}

void Registry::add_pin(ObjectKind kind, std::uint32_t id, const std::string& pin_file, const json& keep) {
  std::lock_guard lock(mutex_);
  auto record = read_json(path_of(kind, id));
  if (!record) return;
  json& pins = (*record)["pins"];
  if (!pins.is_array()) pins = json::array();
  if (std::find(pins.begin(), pins.end(), pin_file) != pins.end()) return;
  pins.push_back(pin_file);
  if (keep.is_object()) record->update(keep);
  const std::string text = record->dump();
  (void)os::replace_file(path_of(kind, id), {reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
}

bool Registry::owner_alive(const json& record) {
  return process_alive(record.value("owner_pid", 0), record.value("owner_start", std::uint64_t{0}));
}

bool Registry::is_live(const json& record, std::uint32_t id) const {
  if (owner_alive(record)) return true;
  // Its owner is gone: a pin that still names it keeps it.
  if (const auto it = record.find("pins"); it != record.end() && it->is_array()) {
    for (const auto& p : *it) {
      if (!p.is_string()) continue;
      auto pin = read_json(p.get<std::string>());
      if (pin && pin->value("id", 0u) == id) return true;
    }
  }
  return false;
}

void Registry::withdraw(ObjectKind kind, std::uint32_t id) {
  std::lock_guard lock(mutex_);
  const std::string path = path_of(kind, id);
  auto record = read_json(path);
  if (!record || !owned_here(*record)) return;
  // A program's profile goes with the process that runs it.
  if (kind == ObjectKind::kProg) ::unlink(fmt::format("{}/profile-{}", dir_, id).c_str());
  // Pinned: the record outlives this process (is_live finds the pin).
  if (const auto it = record->find("pins"); it != record->end() && it->is_array()) {
    for (const auto& p : *it) {
      auto pin = p.is_string() ? read_json(p.get<std::string>()) : std::nullopt;
      if (pin && pin->value("id", 0u) == id) return;
    }
  }
  ::unlink(path.c_str());
  if (kind == ObjectKind::kLink) links_changed();
}

std::vector<json> Registry::list(ObjectKind kind) {
  std::vector<std::pair<std::uint32_t, json>> found;
  const std::string prefix = fmt::format("{}-", kind_name(kind));
  DIR* d = ::opendir(dir_.c_str());
  if (!d) return {};
  // Agents' records of processes that ended without exit() (killed, _exit) stay until agents are listed,
  // and every agent's start and sync lists the links of this directory: kAgentProbes of them, drawn at
  // random (a reservoir sample of the agents' records seen on the way), are looked at by the pid their
  // name holds, and removed when no such process runs. (A pid reused since is taken as alive: listing
  // the agents, which reads each record's start time, removes that one.)
  constexpr std::size_t kAgentProbes = 8;
  const bool probe_agents = kind != ObjectKind::kAgent;
  long sample[kAgentProbes] = {};
  std::size_t agents = 0;
  std::uint64_t random = os::clock_ns(CLOCK_MONOTONIC) ^ (static_cast<std::uint64_t>(::getpid()) << 32);
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (probe_agents && name.starts_with("agent-")) {
      char* end = nullptr;
      const long pid = std::strtol(e->d_name + 6, &end, 10);
      if (*end != '\0' || pid <= 0) continue;
      random = random * 6364136223846793005ULL + 1442695040888963407ULL;
      const std::size_t slot = agents < kAgentProbes ? agents : static_cast<std::size_t>((random >> 33) % (agents + 1));
      if (slot < kAgentProbes) sample[slot] = pid;
      ++agents;
      continue;
    }
    if (!name.starts_with(prefix)) continue;
    char* end = nullptr;
    const unsigned long id = std::strtoul(e->d_name + prefix.size(), &end, 10);
    if (*end || id == 0) continue;  // temporaries of write_file and strangers
    auto record = read_json(dir_ + "/" + std::string(name));
    if (!record) continue;
    if (!is_live(*record, static_cast<std::uint32_t>(id))) {
      ::unlink((dir_ + "/" + std::string(name)).c_str());
      continue;
    }
    found.emplace_back(static_cast<std::uint32_t>(id), std::move(*record));
  }
  for (std::size_t i = 0; i < std::min(agents, kAgentProbes); ++i) {
    if (!process_alive(static_cast<int>(sample[i]), 0)) {
      ::unlinkat(::dirfd(d), fmt::format("agent-{}", sample[i]).c_str(), 0);
    }
  }
  ::closedir(d);
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<json> out;
  for (auto& [id, r] : found) out.push_back(std::move(r));
  return out;
}

std::optional<json> Registry::find(ObjectKind kind, std::uint32_t id) {
  auto record = read_json(path_of(kind, id));
  if (!record || !is_live(*record, id)) return std::nullopt;
  return record;
}

}  // namespace bpfvm::runtime
