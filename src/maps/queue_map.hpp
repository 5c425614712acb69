// BPF_MAP_TYPE_QUEUE (FIFO) and BPF_MAP_TYPE_STACK (LIFO): keyless maps of up to max_entries values
// in a ring in shared memory. push with BPF_EXIST on a full map drops the oldest value, as the kernel's.
#pragma once

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class QueueMap final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Result<void> push(const void* value, std::uint64_t flags) override;
  Result<void> pop(void* value) override;
  Result<void> peek(void* value) const override;

  // Keyed operations do not apply (EINVAL), except through the keyless entry points above.
  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  struct Ring;
  QueueMap(const MapDef& def, os::SharedMemory memory) : Map(def, std::move(memory)) {}
  static Result<std::size_t> payload_size(const MapDef& def);
  Ring& ring() const;
  std::uint8_t* slot(std::uint32_t i) const;
  bool is_stack() const;
  Result<void> take(void* value, bool remove) const;
};

}  // namespace bpfvm::maps
