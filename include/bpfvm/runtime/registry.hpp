// The system-wide registry: what makes objects of one bpfvm process visible to every other, as the
// kernel's object ids are. Under <pin root>/.registry:
//   ids            shared memory: the next id of each kind (programs, maps, BTF, links), taken with an
//                  atomic add, so ids are unique across processes and never reused
//   <kind>-<id>    one JSON record per live object: what bpftool's *_get_info_by_id would return (and
//                  for a program its translated and native code, for a map where its shared memory is),
//                  with the owner process (pid and start time) and the paths it is pinned at
// A record is written when its object is made and removed when it goes. A record whose owner died
// stays while a pin names the object (pins keep objects alive, as on bpffs), and is dropped by the
// next reader otherwise.
//
// Best effort: where the pin root cannot be used (another user's), a process works alone with
// process-local ids, and listings report why (Runtime::registry_error).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/base/shared_memory.hpp"

namespace bpfvm::runtime {

// kAgent: a process in scope (its agent's record, by pid: what it applied and what failed); not an id.
enum class ObjectKind { kProg = 0, kMap = 1, kBtf = 2, kLink = 3, kAgent = 4 };
std::string_view kind_name(ObjectKind kind);  // "prog", "map", "btf", "link", "agent"

class Registry {
 public:
  // The registry under `pin_root`, or why it cannot be opened there.
  static Result<std::shared_ptr<Registry>> open(const std::string& pin_root);

  // A fresh system-wide id.
  std::uint32_t allocate(ObjectKind kind);
  // Writes (or replaces) the record of an object this process owns.
  void publish(ObjectKind kind, std::uint32_t id, nlohmann::json record);
  // Removes the record of an object this process owns, unless a pin still names it.
  void withdraw(ObjectKind kind, std::uint32_t id);
  // Notes that `pin_file` names the object (kept in its record), with `keep`'s fields added to the record:
  // what the object needs once its loader is gone (its BTF, whose own record goes with the loader).
  void add_pin(ObjectKind kind, std::uint32_t id, const std::string& pin_file, const nlohmann::json& keep = {});

  // The live records of a kind, by id (stale ones are removed on the way).
  std::vector<nlohmann::json> list(ObjectKind kind);
  std::optional<nlohmann::json> find(ObjectKind kind, std::uint32_t id);
  // Whether the record's owner process is this one; whether it is still running.
  static bool owned_here(const nlohmann::json& record);
  static bool owner_alive(const nlohmann::json& record);
  // Whether a link record fires in this process, in scope `scope`: its pid filter is 0 or this process,
  // its scope 0 or `scope`, and its loader is another process unless the link asks to fire there too
  // ("self"). The agent's rule, and bpfvm run's for the exec it makes before any agent runs.
  static bool link_fires_here(const nlohmann::json& link, std::uint32_t scope);

  const std::string& directory() const { return dir_; }

  // Links changing: every link record published or withdrawn adds 1 to a counter in the shared ids page
  // and wakes the agents waiting on it (a futex: no polling, no file descriptor in the traced process).
  std::uint32_t links_generation() const;
  // Sleeps until the counter differs from `seen` (or `timeout_ms` passes; -1: no limit).
  void wait_links_changed(std::uint32_t seen, int timeout_ms) const;

 private:
  Registry(std::string dir, os::SharedMemory ids) : dir_(std::move(dir)), ids_(std::move(ids)) {}
  void links_changed();
  std::string path_of(ObjectKind kind, std::uint32_t id) const;
  bool is_live(const nlohmann::json& record, std::uint32_t id) const;

  std::string dir_;
  os::SharedMemory ids_;
  std::mutex mutex_;
};

// Removes a record when the object it describes goes (held by the object).
class Registration {
 public:
  Registration(std::shared_ptr<Registry> registry, ObjectKind kind, std::uint32_t id)
      : registry_(std::move(registry)), kind_(kind), id_(id) {}
  ~Registration() {
    if (registry_) registry_->withdraw(kind_, id_);
  }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  std::shared_ptr<Registry> registry_;
  ObjectKind kind_;
  std::uint32_t id_;
};

// This process's start time (in clock ticks since boot, /proc/<pid>/stat field 22): with the pid, it
// names a process even after its pid is reused.
std::uint64_t process_start_time(int pid);

}  // namespace bpfvm::runtime
