#include "map_of_maps.hpp"

#include <cstring>

#include "array_keys.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

bool MapOfMaps::is_array() const { return def().type == BPF_MAP_TYPE_ARRAY_OF_MAPS; }

Result<std::shared_ptr<Map>> MapOfMaps::create(const MapDef& def, const MapDef& inner) {
  if (def.value_size != 4) return make_error(Errc::kInvalid, "a map-in-map's value_size must be 4 (a map fd)");
  if (def.type == BPF_MAP_TYPE_ARRAY_OF_MAPS && def.key_size != 4) {
    return make_error(Errc::kInvalid, "an array's key_size must be 4, not {}", def.key_size);
  }
  if (def.key_size == 0 || def.key_size > 512) return make_error(Errc::kInvalid, "key_size {} is invalid", def.key_size);
  if (inner.type == BPF_MAP_TYPE_ARRAY_OF_MAPS || inner.type == BPF_MAP_TYPE_HASH_OF_MAPS ||
      inner.type == BPF_MAP_TYPE_PROG_ARRAY) {
    return make_error(Errc::kInvalid, "a {} cannot be an inner map", map_type_name(inner.type));
  }
  return std::shared_ptr<Map>(new MapOfMaps(def, inner));
}

Result<void> MapOfMaps::update_inner(const void* key, std::shared_ptr<Map> inner, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  BPFVM_TRY(check_update_flags(flags));
  const MapDef& d = inner->def();
  const bool any_size = inner_.map_flags & BPF_F_INNER_MAP;
  if (d.type != inner_.type || d.key_size != inner_.key_size || d.value_size != inner_.value_size ||
      (d.map_flags & ~BPF_F_INNER_MAP) != (inner_.map_flags & ~BPF_F_INNER_MAP) ||
      (!any_size && d.max_entries != inner_.max_entries)) {
    return make_error(Errc::kInvalid, "map '{}' does not match the inner map template of '{}'", d.name, def().name);
  }
  std::lock_guard lock(mutex_);
  auto k = key_of(key);
  if (is_array()) {
    std::uint32_t index;
    std::memcpy(&index, key, 4);
    if (index >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
    BPFVM_TRY(check_existence(flags, slots_.count(k) != 0));
  } else {
    const bool exists = slots_.count(k) != 0;
    BPFVM_TRY(check_existence(flags, exists));
    if (!exists && slots_.size() >= def().max_entries) return make_error(Errc::kTooBig, "the map is full");
  }
  slots_[k] = std::move(inner);
  return {};
}

Result<void> MapOfMaps::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "map '{}' holds maps: update it with a map fd", def().name);
}

Result<void> MapOfMaps::lookup(const void* key, void* value) const {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(key_of(key));
  if (it == slots_.end()) return make_error(Errc::kNotFound, "no map in this slot");
  const std::uint32_t id = it->second->id();
  std::memcpy(value, &id, 4);
  return {};
}

Result<void> MapOfMaps::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  std::lock_guard lock(mutex_);
  if (slots_.erase(key_of(key)) == 0) return make_error(Errc::kNotFound, "no map in this slot");
  return {};
}

Result<void> MapOfMaps::next_key(const void* key, void* next) const {
  if (is_array()) return array_next_key(def().max_entries, key, next);
  std::lock_guard lock(mutex_);
  auto it = slots_.begin();
  if (key) {
    auto found = slots_.find(key_of(key));
    if (found != slots_.end()) it = std::next(found);
  }
  if (it == slots_.end()) return make_error(Errc::kNotFound, "no key after this one");
  std::memcpy(next, it->first.data(), def().key_size);
  return {};
}

void* MapOfMaps::lookup_in_place(const void* key) {
  std::lock_guard lock(mutex_);
  auto it = slots_.find(key_of(key));
  return it == slots_.end() ? nullptr : it->second.get();
}

}  // namespace bpfvm::maps
