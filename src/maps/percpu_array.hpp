// BPF_MAP_TYPE_PERCPU_ARRAY: an array with one value per CPU for every index. User space reads and
// writes all CPUs' values at once (round_up(value_size, 8) bytes each); a program sees its CPU's.
#pragma once

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class PercpuArray final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  std::optional<DirectArray> direct_array() const override {
    return DirectArray{value_of(0, 0), stride_ * cpus_, def().max_entries, stride_};
  }
  Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags) override;

 private:
  PercpuArray(const MapDef& def, os::SharedMemory memory);
  static Result<std::size_t> payload_size(const MapDef& def);
  std::uint8_t* value_of(std::uint32_t index, std::uint32_t cpu) const;

  std::size_t stride_;  // round_up(value_size, 8)
  std::uint32_t cpus_;
};

}  // namespace bpfvm::maps
