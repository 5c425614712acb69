// BPF_MAP_TYPE_PROG_ARRAY: slots of programs for bpf_tail_call. User space writes program fds (the
// runtime turns them into programs, set_program) and reads back program ids. The programs are objects
// of this process, so a program array is not shared through memory: a pin hands out a copy.
#pragma once

#include <mutex>
#include <vector>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class ProgArray final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def);

  // The program in a slot (an opaque runtime object), or null.
  std::shared_ptr<const void> program(std::uint32_t index) const;
  // Puts a program (of type `prog_type`, with id `id`) in a slot. All programs of one array must have
  // the same type, as the kernel's bpf_prog_array_compatible requires.
  Result<void> set_program(const void* key, std::shared_ptr<const void> prog, std::uint32_t id,
                           std::uint32_t prog_type, std::uint64_t flags);

  // Empties every slot: what the kernel does when the last user reference (fd or pin) to the array goes,
  // which breaks the cycle of a program that tail-calls through the array it is in.
  void clear();

  Result<void> lookup(const void* key, void* value) const override;  // the program's id
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  explicit ProgArray(const MapDef& def) : Map(def), slots_(def.max_entries) {}
  struct Slot {
    std::shared_ptr<const void> prog;
    std::uint32_t id = 0;
  };
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;
  std::uint32_t owner_type_ = 0;
};

}  // namespace bpfvm::maps
