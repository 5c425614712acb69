#include "lpm_trie.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "map_header.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

namespace {
constexpr std::uint32_t kMaxData = 256;  // LPM_DATA_SIZE_MAX

bool bit(const std::uint8_t* data, std::uint32_t i) { return (data[i / 8] >> (7 - i % 8)) & 1; }

// How many leading bits of a and b agree, up to `limit`.
std::uint32_t common_bits(const std::uint8_t* a, const std::uint8_t* b, std::uint32_t limit) {
  std::uint32_t n = 0;
  while (n < limit && bit(a, n) == bit(b, n)) ++n;
  return n;
}
}  // namespace

Result<std::size_t> LpmTrie::payload_size(const MapDef& def) {
  if (def.key_size <= 4 || def.key_size - 4 > kMaxData) {
    return make_error(Errc::kInvalid, "an LPM trie key is a u32 prefixlen and 1 to {} bytes of data", kMaxData);
  }
  if (def.value_size == 0 || def.value_size > (1u << 20)) return make_error(Errc::kInvalid, "value_size {} is invalid", def.value_size);
  // The kernel allocates trie nodes as they come and requires BPF_F_NO_PREALLOC to say so.
  if (!(def.map_flags & BPF_F_NO_PREALLOC)) return make_error(Errc::kInvalid, "an LPM trie needs BPF_F_NO_PREALLOC");
  constexpr std::uint32_t kAllowed = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY |
                                     BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for an LPM trie", def.map_flags);
  const std::uint64_t bytes = 8 + std::uint64_t{def.max_entries} * (8 + round8(def.key_size - 4) + round8(def.value_size));
  if (def.max_entries > (1u << 24) || bytes > (1ull << 32)) return make_error(Errc::kTooBig, "the LPM trie is too large");
  return static_cast<std::size_t>(bytes);
}

Result<std::shared_ptr<Map>> LpmTrie::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  return std::shared_ptr<Map>(new LpmTrie(def, std::move(memory)));
}

Result<std::shared_ptr<Map>> LpmTrie::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != sizeof(MapHeader) + payload) return make_error(Errc::kInvalid, "'{}' has the wrong size", memory.path());
  auto map = std::shared_ptr<LpmTrie>(new LpmTrie(def, std::move(memory)));
  if (map->count() > def.max_entries) return make_error(Errc::kInvalid, "'{}': the trie's count is corrupt", map->storage_path());
  return std::shared_ptr<Map>(std::move(map));
}

std::size_t LpmTrie::entry_size() const { return 8 + round8(data_size()) + round8(def().value_size); }
std::uint8_t* LpmTrie::entry(std::uint32_t i) const { return payload() + 8 + i * entry_size(); }
std::uint32_t& LpmTrie::count() const { return *reinterpret_cast<std::uint32_t*>(payload()); }

std::uint32_t LpmTrie::find_exact(std::uint32_t prefixlen, const std::uint8_t* data) const {
  for (std::uint32_t i = 0; i < def().max_entries; ++i) {
    const std::uint8_t* e = entry(i);
    std::uint32_t used, len;
    std::memcpy(&used, e, 4);
    std::memcpy(&len, e + 4, 4);
    if (used && len == prefixlen && common_bits(e + 8, data, prefixlen) == prefixlen) return i;
  }
  return def().max_entries;
}

std::uint32_t LpmTrie::longest_match(const void* key) const {
  std::uint32_t limit;
  std::memcpy(&limit, key, 4);
  if (limit > data_size() * 8) return def().max_entries;  // the kernel finds nothing for such a key
  const auto* data = static_cast<const std::uint8_t*>(key) + 4;
  std::uint32_t best = def().max_entries, best_len = 0;
  for (std::uint32_t i = 0; i < def().max_entries; ++i) {
    const std::uint8_t* e = entry(i);
    std::uint32_t used, len;
    std::memcpy(&used, e, 4);
    std::memcpy(&len, e + 4, 4);
    if (!used || len > limit) continue;
    if ((best == def().max_entries || len > best_len) && common_bits(e + 8, data, len) == len) {
      best = i;
      best_len = len;
    }
  }
  return best;
}

Result<void> LpmTrie::lookup(const void* key, void* value) const {
  SpinGuard guard(header()->lock);
  const std::uint32_t i = longest_match(key);
  if (i == def().max_entries) return make_error(Errc::kNotFound, "no prefix matches");
  std::memcpy(value, entry(i) + 8 + round8(data_size()), def().value_size);
  return {};
}

void* LpmTrie::lookup_in_place(const void* key) {
  SpinGuard guard(header()->lock);
  const std::uint32_t i = longest_match(key);
  return i == def().max_entries ? nullptr : entry(i) + 8 + round8(data_size());
}

Result<void> LpmTrie::write(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_update_flags(flags));
  std::uint32_t prefixlen;
  std::memcpy(&prefixlen, key, 4);
  if (prefixlen > data_size() * 8) return make_error(Errc::kInvalid, "prefixlen {} is longer than the key data", prefixlen);
  const auto* data = static_cast<const std::uint8_t*>(key) + 4;
  SpinGuard guard(header()->lock);
  std::uint32_t i = find_exact(prefixlen, data);
  BPFVM_TRY(check_existence(flags, i != def().max_entries));
  if (i == def().max_entries) {
    if (count() >= def().max_entries) return make_error(Errc::kNoSpace, "the trie is full ({} entries)", def().max_entries);
    for (i = 0; i < def().max_entries; ++i) {
      std::uint32_t used;
      std::memcpy(&used, entry(i), 4);
      if (!used) break;
    }
    if (i == def().max_entries) return make_error(Errc::kNoSpace, "the trie is full");
    std::uint8_t* e = entry(i);
    const std::uint32_t one = 1;
    std::memcpy(e, &one, 4);
    std::memcpy(e + 4, &prefixlen, 4);
    ++count();
  }
  // The kernel replaces the node with one made from this key: its data is kept whole, bits past the
  // prefix included, and get_next_key returns them.
  std::memcpy(entry(i) + 8, data, data_size());
  std::memcpy(entry(i) + 8 + round8(data_size()), value, def().value_size);
  return {};
}

Result<void> LpmTrie::update(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  return write(key, value, flags);
}
Result<void> LpmTrie::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return write(key, value, flags);
}

Result<void> LpmTrie::remove(const void* key) {
  std::uint32_t prefixlen;
  std::memcpy(&prefixlen, key, 4);
  if (prefixlen > data_size() * 8) return make_error(Errc::kInvalid, "prefixlen {} is longer than the key data", prefixlen);
  SpinGuard guard(header()->lock);
  const std::uint32_t i = find_exact(prefixlen, static_cast<const std::uint8_t*>(key) + 4);
  if (i == def().max_entries) return make_error(Errc::kNotFound, "no such prefix");
  std::memset(entry(i), 0, entry_size());
  --count();
  return {};
}

Result<void> LpmTrie::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  return remove(key);
}
Result<void> LpmTrie::erase_from_program(const void* key) { return remove(key); }

Result<void> LpmTrie::next_key(const void* key, void* next) const {
  SpinGuard guard(header()->lock);
  std::vector<std::uint32_t> order;
  for (std::uint32_t i = 0; i < def().max_entries; ++i) {
    std::uint32_t used;
    std::memcpy(&used, entry(i), 4);
    if (used) order.push_back(i);
  }
  // The kernel's post-order walk of its trie: at the first differing bit, 0 first; a prefix that
  // extends another comes before it.
  auto before = [&](std::uint32_t a, std::uint32_t b) {
    std::uint32_t la, lb;
    std::memcpy(&la, entry(a) + 4, 4);
    std::memcpy(&lb, entry(b) + 4, 4);
    const std::uint32_t n = common_bits(entry(a) + 8, entry(b) + 8, std::min(la, lb));
    if (n < std::min(la, lb)) return !bit(entry(a) + 8, n);
    return la > lb;
  };
  std::sort(order.begin(), order.end(), before);
  if (order.empty()) return make_error(Errc::kNotFound, "the trie is empty");
  std::size_t pos = 0;
  if (key) {
    std::uint32_t prefixlen;
    std::memcpy(&prefixlen, key, 4);
    const std::uint32_t i =
        prefixlen <= data_size() * 8 ? find_exact(prefixlen, static_cast<const std::uint8_t*>(key) + 4) : def().max_entries;
    if (i != def().max_entries) {  // a key that is not there restarts from the first
      pos = static_cast<std::size_t>(std::find(order.begin(), order.end(), i) - order.begin()) + 1;
      if (pos >= order.size()) return make_error(Errc::kNotFound, "no key after the last");
    }
  }
  const std::uint8_t* e = entry(order[pos]);
  std::memcpy(next, e + 4, 4);
  std::memcpy(static_cast<std::uint8_t*>(next) + 4, e + 8, data_size());
  return {};
}

}  // namespace bpfvm::maps
