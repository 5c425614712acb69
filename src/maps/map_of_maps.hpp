// BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS: values are maps that match the template
// inner map (type, sizes, flags and, unless it has BPF_F_INNER_MAP, max_entries). User space writes
// inner maps by fd (update_inner) and reads back their ids; programs get the inner map itself.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class MapOfMaps final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const MapDef& inner);

  Result<void> lookup(const void* key, void* value) const override;  // the inner map's id (u32)
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  Result<void> update_inner(const void* key, std::shared_ptr<Map> inner, std::uint64_t flags) override;
  const MapDef* inner_def() const override { return &inner_; }

 private:
  MapOfMaps(const MapDef& def, const MapDef& inner) : Map(def), inner_(inner) {}
  bool is_array() const;
  std::string key_of(const void* key) const { return {static_cast<const char*>(key), def().key_size}; }

  MapDef inner_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Map>> slots_;  // arrays use the 4-byte key too (ordered by bytes)
};

}  // namespace bpfvm::maps
