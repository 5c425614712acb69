// BPF_MAP_TYPE_ARRAY_OF_MAPS and BPF_MAP_TYPE_HASH_OF_MAPS: values are maps that match the template
// inner map (type, sizes, flags and, unless it has BPF_F_INNER_MAP, max_entries). User space writes
// inner maps by fd (update_inner) and reads back their ids; programs get the inner map itself.
//
// Shared like the other maps: the slots are a table (an array or a hash, by the outer map's keys) in
// shared memory whose values name each inner map's storage file, so another process that opens the
// outer map finds the same inner maps, live. A shared outer map holds a pin-like reference on its inner
// maps' files, as the kernel's outer map holds its inner maps. Inner maps without storage (private to
// this process) are seen by this process only.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class MapOfMaps final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const MapDef& inner, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);
  ~MapOfMaps() override;

  Result<void> lookup(const void* key, void* value) const override;  // the inner map's id (u32)
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  Result<void> update_inner(const void* key, std::shared_ptr<Map> inner, std::uint64_t flags) override;
  const MapDef* inner_def() const override { return &inner_; }
  void mark_pinned() override;

 private:
  struct Shared;
  struct Slot;
  MapOfMaps(const MapDef& def, os::SharedMemory memory, MapDef inner, std::shared_ptr<Map> table);
  static Result<void> check(const MapDef& def, const MapDef& inner);
  bool is_array() const;
  bool shared() const { return !storage_path().empty(); }
  Shared* shared_state() const;
  // The slot's value (a copy, read under the lock), or nothing when the slot is empty.
  Result<Slot> read_slot(const void* key) const;
  // The inner map a slot names, opened (or taken from this process's maps) on first use. Lock held.
  std::shared_ptr<Map> resolve(const Slot& slot);

  MapDef inner_;
  std::shared_ptr<Map> table_;  // ArrayMap or HashMap of Slot values
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<Map>> open_;  // inner maps by the name their slot holds
  // Slots resolved before: (slot's place in the table) -> (its seq then, the inner map or null).
  std::unordered_map<const void*, std::pair<std::uint32_t, Map*>> resolved_;
};

}  // namespace bpfvm::maps
