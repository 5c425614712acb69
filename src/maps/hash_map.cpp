#include "hash_map.hpp"

#include <cstring>

#include "update_flags.hpp"

namespace bpfvm::maps {

Result<std::shared_ptr<Map>> HashMap::create(const MapDef& def) {
  if (def.key_size == 0 || def.value_size == 0) return make_error(Errc::kInvalid, "key_size and value_size must be at least 1");
  // The kernel caps keys at the stack size (they are built on the stack) and values well below 4 GiB.
  if (def.key_size > 512) return make_error(Errc::kTooBig, "key_size {} is larger than 512", def.key_size);
  if (def.value_size > (1u << 30)) return make_error(Errc::kTooBig, "value_size {} is too large", def.value_size);
  constexpr std::uint32_t kAllowed = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_RDONLY |
                                     BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG | BPF_F_ZERO_SEED;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a hash", def.map_flags);
  return std::shared_ptr<Map>(new HashMap(def));
}

Result<void> HashMap::lookup(const void* key, void* value) const {
  std::lock_guard lock(mutex_);
  auto it = elements_.find(key_of(key));
  if (it == elements_.end()) return make_error(Errc::kNotFound, "no such key");
  std::memcpy(value, it->second.get(), def().value_size);
  return {};
}

Result<void> HashMap::write(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_update_flags(flags));
  std::lock_guard lock(mutex_);
  auto k = key_of(key);
  auto it = elements_.find(k);
  BPFVM_TRY(check_existence(flags, it != elements_.end()));
  if (it == elements_.end()) {
    if (elements_.size() >= def().max_entries) {
      return make_error(Errc::kTooBig, "the map is full ({} elements)", def().max_entries);
    }
    auto storage = std::make_unique<std::uint64_t[]>((def().value_size + 7) / 8);
    it = elements_.emplace(std::move(k), std::move(storage)).first;
  }
  std::memcpy(it->second.get(), value, def().value_size);
  return {};
}

Result<void> HashMap::update(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  return write(key, value, flags);
}

Result<void> HashMap::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return write(key, value, flags);
}

Result<void> HashMap::remove(const void* key) {
  std::lock_guard lock(mutex_);
  if (elements_.erase(key_of(key)) == 0) return make_error(Errc::kNotFound, "no such key");
  return {};
}

Result<void> HashMap::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  return remove(key);
}

Result<void> HashMap::erase_from_program(const void* key) { return remove(key); }

Result<void> HashMap::next_key(const void* key, void* next) const {
  std::lock_guard lock(mutex_);
  auto it = elements_.begin();
  if (key) {
    // A key that is not in the map restarts the walk, as the kernel's hash does.
    auto found = elements_.find(key_of(key));
    if (found != elements_.end()) it = std::next(found);
  }
  if (it == elements_.end()) return make_error(Errc::kNotFound, "no key after this one");
  std::memcpy(next, it->first.data(), def().key_size);
  return {};
}

void* HashMap::lookup_in_place(const void* key) {
  std::lock_guard lock(mutex_);
  auto it = elements_.find(key_of(key));
  return it == elements_.end() ? nullptr : it->second.get();
}

}  // namespace bpfvm::maps
