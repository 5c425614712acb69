// BPF_MAP_TYPE_ARRAY: max_entries preallocated values indexed by a u32 key; elements always exist.
// Values are laid out every round_up(value_size, 8) bytes, as the kernel's.
#pragma once

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class ArrayMap final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  std::optional<DirectArray> direct_array() const override { return DirectArray{slot(0), stride_, def().max_entries}; }
  Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags) override;

 private:
  ArrayMap(const MapDef& def, os::SharedMemory memory);
  static Result<std::size_t> payload_size(const MapDef& def);
  Result<std::uint32_t> index_of(const void* key) const;
  std::uint8_t* slot(std::uint32_t index) const { return payload() + index * stride_; }
  Result<void> write(const void* key, const void* value, std::uint64_t flags);

  std::size_t stride_;
};

}  // namespace bpfvm::maps
