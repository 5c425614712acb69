// BPF_MAP_TYPE_ARRAY: max_entries preallocated values indexed by a u32 key; elements always exist.
#pragma once

#include <vector>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class ArrayMap final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def);

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags) override;

 private:
  explicit ArrayMap(const MapDef& def);
  Result<std::uint32_t> index_of(const void* key) const;
  std::uint8_t* slot(std::uint32_t index) { return reinterpret_cast<std::uint8_t*>(storage_.data()) + index * stride_; }
  Result<void> write(const void* key, const void* value, std::uint64_t flags);

  std::size_t stride_;                 // value size rounded up to 8, as the kernel lays arrays out
  std::vector<std::uint64_t> storage_;  // 8-byte aligned
};

}  // namespace bpfvm::maps
