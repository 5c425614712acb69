#include "bpfvm/maps/map.hpp"

#include <linux/bpf.h>

#include <array>
#include <shared_mutex>
#include <unordered_set>

#include "array_map.hpp"
#include "hash_map.hpp"
#include "map_of_maps.hpp"

namespace bpfvm::maps {

namespace {
struct LiveMaps {
  std::shared_mutex mutex;
  std::unordered_set<const void*> maps;
};
LiveMaps& live() {
  static LiveMaps* l = new LiveMaps;  // never destroyed: maps may outlive static destruction
  return *l;
}
}  // namespace

Map::Map(MapDef def) : def_(std::move(def)) {
  std::unique_lock lock(live().mutex);
  live().maps.insert(this);
}

Map::~Map() {
  std::unique_lock lock(live().mutex);
  live().maps.erase(this);
}

bool Map::is_live(const void* p) {
  std::shared_lock lock(live().mutex);
  return live().maps.count(p) != 0;
}

Result<void> Map::check_user_write() const {
  if (frozen_) return make_error(Errc::kPermission, "map '{}' is frozen", def_.name);
  return {};
}

Result<void> Map::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return update(key, value, flags);
}
Result<void> Map::erase_from_program(const void* key) { return erase(key); }

Result<void> Map::update_inner(const void*, std::shared_ptr<Map>, std::uint64_t) {
  return make_error(Errc::kInvalid, "map '{}' does not hold maps", def_.name);
}

Result<std::shared_ptr<Map>> create_map(const MapDef& def, const MapDef* inner) {
  if (def.max_entries == 0) return make_error(Errc::kInvalid, "max_entries must be at least 1");
  if (def.key_size == 0 && def.type != BPF_MAP_TYPE_ARRAY) {
    // (arrays check their own key size below)
  }
  switch (def.type) {
    case BPF_MAP_TYPE_ARRAY: return ArrayMap::create(def);
    case BPF_MAP_TYPE_HASH: return HashMap::create(def);
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      if (!inner) return make_error(Errc::kInvalid, "a map-in-map needs an inner map template");
      return MapOfMaps::create(def, *inner);
    default:
      return make_error(Errc::kInvalid, "map type {} ({}) is not supported yet", def.type, map_type_name(def.type));
  }
}

std::string_view map_type_name(std::uint32_t type) {
  static constexpr std::array<std::string_view, 33> kNames = {
      "unspec",        "hash",           "array",          "prog_array",     "perf_event_array", "percpu_hash",
      "percpu_array",  "stack_trace",    "cgroup_array",   "lru_hash",       "lru_percpu_hash",  "lpm_trie",
      "array_of_maps", "hash_of_maps",   "devmap",         "sockmap",        "cpumap",           "xskmap",
      "sockhash",      "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack",
      "sk_storage",    "devmap_hash",    "struct_ops",     "ringbuf",        "inode_storage",    "task_storage",
      "bloom_filter",  "user_ringbuf",   "cgrp_storage"};
  return type < kNames.size() ? kNames[type] : std::string_view{};
}

}  // namespace bpfvm::maps
