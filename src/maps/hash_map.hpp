// BPF_MAP_TYPE_HASH: up to max_entries elements keyed by bytes. Values stay at one address while
// their element lives (programs hold pointers to them). Keys iterate in byte order.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class HashMap final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def);

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase_from_program(const void* key) override;

 private:
  explicit HashMap(const MapDef& def) : Map(def) {}
  std::string key_of(const void* key) const { return {static_cast<const char*>(key), def().key_size}; }
  Result<void> write(const void* key, const void* value, std::uint64_t flags);
  Result<void> remove(const void* key);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<std::uint64_t[]>> elements_;
};

}  // namespace bpfvm::maps
