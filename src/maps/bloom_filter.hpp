// BPF_MAP_TYPE_BLOOM_FILTER: push adds a value, peek says whether it may have been added (0) or surely
// was not (ENOENT). nr_hash_funcs = map_extra (1-15, default 5); the bit array is sized as the kernel
// sizes it: max_entries * nr_hash_funcs / ln 2 bits, rounded up to a power of two.
#pragma once

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class BloomFilter final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Result<void> push(const void* value, std::uint64_t flags) override;
  Result<void> peek(void* value) const override;
  Result<void> pop(void* value) override;

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  struct Shape {
    std::uint32_t hashes = 0;
    std::uint64_t bits = 0;  // a power of two
  };
  static Result<Shape> shape_for(const MapDef& def);
  BloomFilter(const MapDef& def, os::SharedMemory memory, Shape shape)
      : Map(def, std::move(memory)), shape_(shape) {}
  std::uint64_t bit_of(const void* value, std::uint32_t i) const;

  Shape shape_;
};

}  // namespace bpfvm::maps
