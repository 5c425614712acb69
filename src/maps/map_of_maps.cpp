#include "map_of_maps.hpp"

#include <fmt/format.h>

#include <cstring>
#include <vector>

#include "array_map.hpp"
#include "hash_map.hpp"
#include "map_header.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

// After the outer map's header: the inner map template and the slot table's file.
struct MapOfMaps::Shared {
  std::uint32_t inner_type, inner_key_size, inner_value_size, inner_max_entries, inner_map_flags;
  std::int32_t inner_spin_lock_off;
  std::uint32_t writes;  // slot writes so far: each gets the next number as its seq
  char table_path[228];
};

// A slot: which inner map it holds ("" = none): its storage file, or "private:<address>" for a map
// private to the process that put it there. `seq` numbers the write, unique in the outer map, so that
// a process can tell a slot it has resolved before from a new one at the same place.
struct MapOfMaps::Slot {
  std::uint32_t seq;
  std::uint32_t id;
  char name[248];
};

namespace {
constexpr std::string_view kPrivate = "private:";
}

bool MapOfMaps::is_array() const { return def().type == BPF_MAP_TYPE_ARRAY_OF_MAPS; }

Result<void> MapOfMaps::check(const MapDef& def, const MapDef& inner) {
  if (def.value_size != 4) return make_error(Errc::kInvalid, "a map-in-map's value_size must be 4 (a map fd)");
  if (def.type == BPF_MAP_TYPE_ARRAY_OF_MAPS && def.key_size != 4) {
    return make_error(Errc::kInvalid, "an array's key_size must be 4, not {}", def.key_size);
  }
  if (def.key_size == 0 || def.key_size > 512) return make_error(Errc::kInvalid, "key_size {} is invalid", def.key_size);
  if (inner.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || inner.type == BPF_MAP_TYPE_HASH_OF_MAPS ||
      inner.type == BPF_MAP_TYPE_PROG_ARRAY) {
    return make_error(Errc::kInvalid, "a {} cannot be an inner map", map_type_name(inner.type));
  }
  return {};
}

MapOfMaps::MapOfMaps(const MapDef& def, os::SharedMemory memory, MapDef inner, std::shared_ptr<Map> table)
    : Map(def, std::move(memory)), inner_(std::move(inner)), table_(std::move(table)) {}

Result<std::shared_ptr<Map>> MapOfMaps::create(const MapDef& def, const MapDef& inner, const std::string& storage_dir) {
  BPFVM_TRY(check(def, inner));
  const bool array = def.type == BPF_MAP_TYPE_ARRAY_OF_MAPS;
  const MapDef table_def{array ? BPF_MAP_TYPE_ARRAY : BPF_MAP_TYPE_HASH, def.key_size, sizeof(Slot), def.max_entries, 0,
                         def.name};
  auto table = BPFVM_TRY(array ? ArrayMap::create(table_def, storage_dir) : HashMap::create(table_def, storage_dir));
  if (table->storage_path().size() >= sizeof(Shared::table_path)) {
    return make_error(Errc::kTooBig, "the storage path '{}' is too long", table->storage_path());
  }
  auto memory = BPFVM_TRY(allocate_map_memory(def, sizeof(Shared), storage_dir));
  auto* s = reinterpret_cast<Shared*>(memory.data() + sizeof(MapHeader));
  s->inner_type = inner.type;
  s->inner_key_size = inner.key_size;
  s->inner_value_size = inner.value_size;
  s->inner_max_entries = inner.max_entries;
  s->inner_map_flags = inner.map_flags;
  s->inner_spin_lock_off = inner.spin_lock_off;
  std::memcpy(s->table_path, table->storage_path().data(), table->storage_path().size());
  return std::shared_ptr<Map>(new MapOfMaps(def, std::move(memory), inner, std::move(table)));
}

Result<std::shared_ptr<Map>> MapOfMaps::attach(const MapDef& def, os::SharedMemory memory) {
  if (memory.size() != sizeof(MapHeader) + sizeof(Shared)) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for a map-in-map", memory.path());
  }
  const auto* s = reinterpret_cast<const Shared*>(memory.data() + sizeof(MapHeader));
  MapDef inner{s->inner_type, s->inner_key_size, s->inner_value_size, s->inner_max_entries, s->inner_map_flags, "inner", 0,
               s->inner_spin_lock_off};
  BPFVM_TRY_CTX(check(def, inner), "'{}'", memory.path());
  const std::string table_path(s->table_path, strnlen(s->table_path, sizeof s->table_path));
  auto table = BPFVM_TRY_CTX(open_shared_map(table_path), "'{}': its slots", memory.path());
  const std::uint32_t want = def.type == BPF_MAP_TYPE_ARRAY_OF_MAPS ? BPF_MAP_TYPE_ARRAY : BPF_MAP_TYPE_HASH;
  if (table->def().type != want || table->def().key_size != def.key_size || table->def().value_size != sizeof(Slot) ||
      table->def().max_entries != def.max_entries) {
    return make_error(Errc::kInvalid, "'{}': its slot table '{}' does not match it", memory.path(), table_path);
  }
  return std::shared_ptr<Map>(new MapOfMaps(def, std::move(memory), std::move(inner), std::move(table)));
}

MapOfMaps::~MapOfMaps() {
  // The last user of an outer map no pin holds lets go of its inner maps' files, as the kernel drops
  // its references to inner maps when it frees the outer one.
  if (!shared() || header()->users.load(std::memory_order_acquire) != 1 || header()->pins.load(std::memory_order_acquire) != 0) {
    return;
  }
  std::vector<std::uint8_t> key(def().key_size), next(def().key_size);
  bool first = true;
  for (std::uint32_t n = 0; n < def().max_entries; ++n) {
    if (!table_->next_key(first ? nullptr : key.data(), next.data())) break;
    first = false;
    key = next;
    Slot s;
    if (!table_->lookup(key.data(), &s) || s.name[0] != '/') continue;
    const std::string name(s.name, strnlen(s.name, sizeof s.name));
    auto it = open_.find(name);
    if (it != open_.end()) {
      it->second->release_pin();
    } else if (auto opened = open_shared_map(name)) {
      (*opened)->release_pin();
    }
  }
}

void MapOfMaps::mark_pinned() {
  Map::mark_pinned();
  table_->mark_pinned();
}

Result<MapOfMaps::Slot> MapOfMaps::read_slot(const void* key) const {
  Slot s;
  {
    SpinGuard guard(header()->lock);
    const void* p = table_->lookup_in_place(key);
    if (!p) return make_error(Errc::kNotFound, "no map in this slot");
    std::memcpy(&s, p, sizeof s);
  }
  if (s.name[0] == 0) return make_error(Errc::kNotFound, "no map in this slot");
  s.name[sizeof s.name - 1] = 0;
  return s;
}

std::shared_ptr<Map> MapOfMaps::resolve(const Slot& slot) {
  const std::string name(slot.name, strnlen(slot.name, sizeof slot.name));
  if (auto it = open_.find(name); it != open_.end()) return it->second;
  if (name.empty() || name[0] != '/') return nullptr;  // another process's private map
  auto opened = open_shared_map(name);
  if (!opened) return nullptr;
  const MapDef& d = (*opened)->def();
  if (d.type != inner_.type || d.key_size != inner_.key_size || d.value_size != inner_.value_size) return nullptr;
  open_[name] = *opened;
  return *opened;
}

Result<void> MapOfMaps::update_inner(const void* key, std::shared_ptr<Map> inner, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  if (is_array()) {
    // bpf_fd_array_map_update_elem: BPF_ANY only, E2BIG past the end.
    if (flags != BPF_ANY) return make_error(Errc::kInvalid, "an array of maps takes BPF_ANY updates only");
    std::uint32_t index;
    std::memcpy(&index, key, 4);
    if (index >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
  } else {
    BPFVM_TRY(check_update_flags(flags));
  }
  const MapDef& d = inner->def();
  const bool any_size = inner_.map_flags & BPF_F_INNER_MAP;
  if (d.type != inner_.type || d.key_size != inner_.key_size || d.value_size != inner_.value_size ||
      (d.map_flags & ~BPF_F_INNER_MAP) != (inner_.map_flags & ~BPF_F_INNER_MAP) ||
      (!any_size && d.max_entries != inner_.max_entries)) {
    return make_error(Errc::kInvalid, "map '{}' does not match the inner map template of '{}'", d.name, def().name);
  }
  const std::string name = !inner->storage_path().empty()
                               ? inner->storage_path()
                               : fmt::format("{}{:x}", kPrivate, reinterpret_cast<std::uintptr_t>(inner.get()));
  if (name.size() >= sizeof(Slot::name)) return make_error(Errc::kTooBig, "the storage path '{}' is too long", name);

  std::lock_guard lock(mutex_);
  std::shared_ptr<Map> old;
  {
    SpinGuard guard(header()->lock);
    Slot s{};
    if (const void* p = table_->lookup_in_place(key)) {
      std::memcpy(&s, p, sizeof s);
      s.name[sizeof s.name - 1] = 0;
      if (s.name[0]) old = resolve(s);
    }
    Slot fresh{};
    fresh.seq = ++shared_state()->writes;
    fresh.id = inner->id();
    std::memcpy(fresh.name, name.data(), name.size());
    BPFVM_TRY(table_->update(key, &fresh, flags));
  }
  open_[name] = inner;
  // A shared outer map keeps the inner map's file, as a pin does.
  if (shared() && !inner->storage_path().empty()) inner->mark_pinned();
  if (shared() && old && !old->storage_path().empty()) old->release_pin();
  return {};
}

Result<void> MapOfMaps::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "map '{}' holds maps: update it with a map fd", def().name);
}

Result<void> MapOfMaps::lookup(const void* key, void* value) const {
  if (is_array()) {
    std::uint32_t index;
    std::memcpy(&index, key, 4);
    if (index >= def().max_entries) return make_error(Errc::kNotFound, "index {} is past max_entries", index);
  }
  const Slot s = BPFVM_TRY(read_slot(key));
  std::memcpy(value, &s.id, 4);
  return {};
}

Result<void> MapOfMaps::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  if (is_array()) {
    std::uint32_t index;
    std::memcpy(&index, key, 4);
    if (index >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
  }
  std::lock_guard lock(mutex_);
  std::shared_ptr<Map> old;
  {
    SpinGuard guard(header()->lock);
    const void* p = table_->lookup_in_place(key);
    Slot s{};
    if (p) std::memcpy(&s, p, sizeof s);
    s.name[sizeof s.name - 1] = 0;
    if (!p || !s.name[0]) return make_error(Errc::kNotFound, "no map in this slot");
    old = resolve(s);
    if (is_array()) {
      Slot empty{};
      empty.seq = ++shared_state()->writes;
      BPFVM_TRY(table_->update(key, &empty, BPF_ANY));
    } else {
      BPFVM_TRY(table_->erase(key));
    }
  }
  if (shared() && old && !old->storage_path().empty()) old->release_pin();
  return {};
}

Result<void> MapOfMaps::next_key(const void* key, void* next) const { return table_->next_key(key, next); }

MapOfMaps::Shared* MapOfMaps::shared_state() const { return reinterpret_cast<Shared*>(payload()); }

// Programs look inner maps up on every run: a slot seen before (same place, same write) answers from
// this process's cache without copying or comparing its name.
void* MapOfMaps::lookup_in_place(const void* key) {
  std::lock_guard lock(mutex_);
  Slot s;
  const void* at;
  {
    SpinGuard guard(header()->lock);
    at = table_->lookup_in_place(key);
    if (!at) return nullptr;
    std::memcpy(&s.seq, at, sizeof s.seq);
    if (auto it = resolved_.find(at); it != resolved_.end() && it->second.first == s.seq) return it->second.second;
    std::memcpy(&s, at, sizeof s);
  }
  s.name[sizeof s.name - 1] = 0;
  Map* inner = s.name[0] ? resolve(s).get() : nullptr;
  resolved_[at] = {s.seq, inner};
  return inner;
}

}  // namespace bpfvm::maps
