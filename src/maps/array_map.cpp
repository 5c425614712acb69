#include "array_map.hpp"

#include <cstring>

#include "map_header.hpp"
#include "array_keys.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

namespace {
constexpr std::uint64_t kMaxValueSize = 1u << 30;
}

ArrayMap::ArrayMap(const MapDef& def, os::SharedMemory memory)
    : Map(def, std::move(memory)), stride_((def.value_size + 7) / 8 * 8) {}

Result<std::size_t> ArrayMap::payload_size(const MapDef& def) {
  if (def.key_size != 4) return make_error(Errc::kInvalid, "an array's key_size must be 4, not {}", def.key_size);
  if (def.value_size == 0) return make_error(Errc::kInvalid, "value_size must be at least 1");
  const std::uint64_t stride = (static_cast<std::uint64_t>(def.value_size) + 7) / 8 * 8;
  if (def.value_size > kMaxValueSize || stride * def.max_entries > (1ull << 32)) {
    return make_error(Errc::kTooBig, "an array of {} values of {} bytes is too large", def.max_entries, def.value_size);
  }
  constexpr std::uint32_t kAllowed = BPF_F_NUMA_NODE | BPF_F_MMAPABLE | BPF_F_RDONLY | BPF_F_WRONLY |
                                     BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG | BPF_F_INNER_MAP | BPF_F_PRESERVE_ELEMS;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for an array", def.map_flags);
  return static_cast<std::size_t>(stride * def.max_entries);
}

Result<std::shared_ptr<Map>> ArrayMap::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  return std::shared_ptr<Map>(new ArrayMap(def, std::move(memory)));
}

Result<std::shared_ptr<Map>> ArrayMap::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != payload_offset(def) + payload) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for its array", memory.path());
  }
  return std::shared_ptr<Map>(new ArrayMap(def, std::move(memory)));
}

Result<std::uint32_t> ArrayMap::index_of(const void* key) const {
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= def().max_entries) return make_error(Errc::kNotFound, "index {} is past max_entries {}", index, def().max_entries);
  return index;
}

Result<void> ArrayMap::lookup(const void* key, void* value) const {
  const std::uint32_t i = BPFVM_TRY(index_of(key));
  std::memcpy(value, slot(i), def().value_size);
  clear_special_fields(value);
  return {};
}

Result<void> ArrayMap::write(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_update_flags(flags));
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= def().max_entries) {
    return make_error(Errc::kTooBig, "index {} is past max_entries {}", index, def().max_entries);
  }
  // Every element of an array exists: BPF_NOEXIST always fails.
  BPFVM_TRY(check_existence(flags, true));
  // Around the lock and the timer, which then is freed (array_map_update_elem).
  copy_value_in(slot(index), value, false);
  free_special_fields(slot(index));
  return {};
}

Result<void> ArrayMap::update(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  return write(key, value, flags);
}

Result<void> ArrayMap::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return write(key, value, flags);
}

Result<void> ArrayMap::erase(const void*) {
  return make_error(Errc::kInvalid, "elements of an array cannot be deleted");
}

Result<void> ArrayMap::next_key(const void* key, void* next) const {
  return array_next_key(def().max_entries, key, next);
}

void* ArrayMap::lookup_in_place(const void* key) {
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  return index < def().max_entries ? slot(index) : nullptr;
}

}  // namespace bpfvm::maps
