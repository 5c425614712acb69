#include "bpfvm/maps/prog_array.hpp"

#include <linux/bpf.h>

#include <cstring>

#include "array_keys.hpp"

namespace bpfvm::maps {

Result<std::shared_ptr<Map>> ProgArray::create(const MapDef& def) {
  if (def.key_size != 4 || def.value_size != 4) return make_error(Errc::kInvalid, "a program array has 4-byte keys and values");
  if (def.max_entries > (1u << 20)) return make_error(Errc::kTooBig, "max_entries {} is too large", def.max_entries);
  if (def.map_flags & ~static_cast<std::uint32_t>(BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY)) {
    return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a program array", def.map_flags);
  }
  return std::shared_ptr<Map>(new ProgArray(def));
}

std::shared_ptr<const void> ProgArray::program(std::uint32_t index) const {
  std::lock_guard lock(mutex_);
  return index < slots_.size() ? slots_[index].prog : nullptr;
}

Result<void> ProgArray::set_program(const void* key, std::shared_ptr<const void> prog, std::uint32_t id,
                                    std::uint32_t prog_type, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  // bpf_fd_array_map_update_elem: BPF_ANY only, E2BIG past the end.
  if (flags != BPF_ANY) return make_error(Errc::kInvalid, "a program array takes BPF_ANY updates only");
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= slots_.size()) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
  std::lock_guard lock(mutex_);
  if (owner_type_ && owner_type_ != prog_type) {
    return make_error(Errc::kInvalid, "program type {} does not match the array's programs ({})", prog_type, owner_type_);
  }
  owner_type_ = prog_type;
  slots_[index] = {std::move(prog), id};
  return {};
}

void ProgArray::clear() {
  std::vector<Slot> old;
  {
    std::lock_guard lock(mutex_);
    old.swap(slots_);
    slots_.resize(old.size());
  }
  // `old` goes here, outside the lock: a program it frees may free other arrays.
}

Result<void> ProgArray::lookup(const void* key, void* value) const {
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  std::lock_guard lock(mutex_);
  if (index >= slots_.size() || !slots_[index].prog) return make_error(Errc::kNotFound, "no program in slot {}", index);
  std::memcpy(value, &slots_[index].id, 4);
  return {};
}

Result<void> ProgArray::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a program array is updated with program fds");
}

Result<void> ProgArray::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  std::lock_guard lock(mutex_);
  if (index >= slots_.size()) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
  if (!slots_[index].prog) return make_error(Errc::kNotFound, "no program in slot {}", index);
  slots_[index] = {};
  return {};
}

Result<void> ProgArray::next_key(const void* key, void* next) const {
  return array_next_key(def().max_entries, key, next);
}

void* ProgArray::lookup_in_place(const void*) { return nullptr; }  // programs cannot read slots

}  // namespace bpfvm::maps
