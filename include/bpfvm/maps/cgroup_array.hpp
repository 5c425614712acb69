// BPF_MAP_TYPE_CGROUP_ARRAY: slots of cgroups (v2), which user space fills with descriptors of cgroup
// directories and bpf_current_task_under_cgroup tests the current task against (libbpf-tools' -c
// filters: execsnoop, syscount, opensnoop...).
//
// Kernel semantics (kernel/bpf/arraymap.c's fd arrays, kernel/trace/bpf_trace.c): key and value are 4
// bytes; an update takes the descriptor of a cgroup2 directory (EBADF for anything else), an index
// past max_entries is E2BIG, deleting an empty slot ENOENT, user-space lookup is not supported.
//
// Shared: a slot holds the cgroup's path below the cgroup2 mount and its id (the directory's inode), so
// a program in another process tests its own task against it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class CgroupArray final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  // BPF_MAP_UPDATE_ELEM with a cgroup: `path` below the cgroup2 mount ("/" for the root), `id` its inode.
  Result<void> set_cgroup(const void* key, const std::string& path, std::uint64_t id, std::uint64_t flags);
  // bpf_current_task_under_cgroup: 1 when the cgroup at `cgroup_path` (a task's, from /proc/PID/cgroup's
  // "0::" line) is slot `index`'s or below it, 0 when not; -E2BIG past the end, -ENOENT for an empty slot.
  // Nothing allocated.
  long under(std::uint32_t index, std::string_view cgroup_path) const;

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  CgroupArray(const MapDef& def, os::SharedMemory memory) : Map(def, std::move(memory)) {}
  static Result<std::size_t> payload_size(const MapDef& def);
  struct Slot;
  Slot* slot(std::uint32_t index) const;
};

}  // namespace bpfvm::maps
