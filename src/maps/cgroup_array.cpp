#include "bpfvm/maps/cgroup_array.hpp"

#include <linux/bpf.h>

#include <cerrno>
#include <cstring>

#include "array_keys.hpp"
#include "map_header.hpp"

namespace bpfvm::maps {

struct CgroupArray::Slot {
  std::uint32_t present;
  std::uint32_t reserved;
  std::uint64_t id;
  char path[240];
};

Result<std::size_t> CgroupArray::payload_size(const MapDef& def) {
  static_assert(sizeof(Slot) == 256);
  if (def.key_size != 4 || def.value_size != 4) {
    return make_error(Errc::kInvalid, "a cgroup_array's key_size and value_size must be 4");
  }
  constexpr std::uint32_t kAllowed = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a cgroup_array", def.map_flags);
  if (def.max_entries > (1u << 20)) return make_error(Errc::kTooBig, "a cgroup_array of {} slots is too large", def.max_entries);
  return sizeof(Slot) * static_cast<std::size_t>(def.max_entries);
}

Result<std::shared_ptr<Map>> CgroupArray::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  return std::shared_ptr<Map>(new CgroupArray(def, std::move(memory)));
}

Result<std::shared_ptr<Map>> CgroupArray::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != payload_offset(def) + payload) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for its cgroup_array", memory.path());
  }
  return std::shared_ptr<Map>(new CgroupArray(def, std::move(memory)));
}

CgroupArray::Slot* CgroupArray::slot(std::uint32_t index) const { return reinterpret_cast<Slot*>(payload()) + index; }

Result<void> CgroupArray::set_cgroup(const void* key, const std::string& path, std::uint64_t id, std::uint64_t flags) {
  if (flags != BPF_ANY) return make_error(Errc::kInvalid, "a cgroup_array takes BPF_ANY updates only");
  BPFVM_TRY(check_user_write());
  std::uint32_t i;
  std::memcpy(&i, key, 4);
  if (i >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries {}", i, def().max_entries);
  if (path.size() >= sizeof(Slot::path)) return make_error(Errc::kTooBig, "the cgroup path '{}' is too long", path);
  SpinGuard guard(header()->lock);
  Slot* s = slot(i);
  std::memset(s->path, 0, sizeof s->path);
  std::memcpy(s->path, path.data(), path.size());
  s->id = id;
  s->present = 1;
  return {};
}

long CgroupArray::under(std::uint32_t index, std::string_view cgroup_path) const {
  if (index >= def().max_entries) return -E2BIG;
  SpinGuard guard(header()->lock);
  const Slot* s = slot(index);
  if (!s->present) return -ENOENT;
  const std::string_view path(s->path, strnlen(s->path, sizeof s->path));
  // task_under_cgroup_hierarchy: the slot's cgroup or one of its descendants.
  if (path == "/" || cgroup_path == path) return 1;
  return cgroup_path.size() > path.size() && cgroup_path.starts_with(path) && cgroup_path[path.size()] == '/' ? 1 : 0;
}

Result<void> CgroupArray::lookup(const void*, void*) const {
  return make_error(Errc::kNotSupported, "a cgroup_array's slots cannot be read");
}

Result<void> CgroupArray::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a cgroup_array holds cgroups: install them with set_cgroup (bpf() takes their fds)");
}

Result<void> CgroupArray::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  std::uint32_t i;
  std::memcpy(&i, key, 4);
  if (i >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries {}", i, def().max_entries);
  SpinGuard guard(header()->lock);
  Slot* s = slot(i);
  if (!s->present) return make_error(Errc::kNotFound, "slot {} is empty", i);
  std::memset(s, 0, sizeof *s);
  return {};
}

Result<void> CgroupArray::next_key(const void* key, void* next) const { return array_next_key(def().max_entries, key, next); }

void* CgroupArray::lookup_in_place(const void*) { return nullptr; }

}  // namespace bpfvm::maps
