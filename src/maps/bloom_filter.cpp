#include "bloom_filter.hpp"

#include <linux/bpf.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>

#include "map_header.hpp"

namespace bpfvm::maps {

Result<BloomFilter::Shape> BloomFilter::shape_for(const MapDef& def) {
  if (def.key_size != 0) return make_error(Errc::kInvalid, "a bloom filter has no key: key_size must be 0");
  if (def.value_size == 0) return make_error(Errc::kInvalid, "value_size must be at least 1");
  if (def.map_extra & ~0xfull) return make_error(Errc::kInvalid, "map_extra 0x{:x}: only the low 4 bits (nr_hash_funcs)", def.map_extra);
  constexpr std::uint32_t kAllowed = BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | BPF_F_RDONLY | BPF_F_WRONLY |
                                     BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a bloom filter", def.map_flags);
  Shape s;
  s.hashes = def.map_extra ? static_cast<std::uint32_t>(def.map_extra) : 5;
  const double bits = std::ceil(static_cast<double>(def.max_entries) * s.hashes / std::log(2.0));
  if (bits > static_cast<double>(1ull << 32)) return make_error(Errc::kTooBig, "the bloom filter is too large");
  s.bits = std::bit_ceil(std::max<std::uint64_t>(static_cast<std::uint64_t>(bits), 64));
  return s;
}

Result<std::shared_ptr<Map>> BloomFilter::create(const MapDef& def, const std::string& storage_dir) {
  const Shape s = BPFVM_TRY(shape_for(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, s.bits / 8, storage_dir));
  return std::shared_ptr<Map>(new BloomFilter(def, std::move(memory), s));
}

Result<std::shared_ptr<Map>> BloomFilter::attach(const MapDef& def, os::SharedMemory memory) {
  const Shape s = BPFVM_TRY(shape_for(def));
  if (memory.size() != sizeof(MapHeader) + s.bits / 8) return make_error(Errc::kInvalid, "'{}' has the wrong size", memory.path());
  return std::shared_ptr<Map>(new BloomFilter(def, std::move(memory), s));
}

// Hash function i of a value: FNV-1a seeded with i, finalised, masked to the bit array.
std::uint64_t BloomFilter::bit_of(const void* value, std::uint32_t i) const {
  std::uint64_t h = 1469598103934665603ull ^ (0x9e3779b97f4a7c15ull * (i + 1));
  const auto* p = static_cast<const std::uint8_t*>(value);
  for (std::uint32_t k = 0; k < def().value_size; ++k) h = (h ^ p[k]) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h & (shape_.bits - 1);
}

Result<void> BloomFilter::push(const void* value, std::uint64_t flags) {
  if (flags != BPF_ANY) return make_error(Errc::kInvalid, "a bloom filter takes only BPF_ANY");
  auto* words = reinterpret_cast<std::atomic<std::uint64_t>*>(payload());
  for (std::uint32_t i = 0; i < shape_.hashes; ++i) {
    const std::uint64_t bit = bit_of(value, i);
    words[bit / 64].fetch_or(1ull << (bit % 64), std::memory_order_relaxed);
  }
  return {};
}

Result<void> BloomFilter::peek(void* value) const {
  const auto* words = reinterpret_cast<const std::atomic<std::uint64_t>*>(payload());
  for (std::uint32_t i = 0; i < shape_.hashes; ++i) {
    const std::uint64_t bit = bit_of(value, i);
    if (!(words[bit / 64].load(std::memory_order_relaxed) & (1ull << (bit % 64)))) {
      return make_error(Errc::kNotFound, "the value is not in the bloom filter");
    }
  }
  return {};
}

Result<void> BloomFilter::pop(void*) { return make_error(Errc::kNotSupported, "a bloom filter cannot pop"); }
Result<void> BloomFilter::lookup(const void*, void*) const { return make_error(Errc::kInvalid, "a bloom filter has no keys"); }
Result<void> BloomFilter::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a bloom filter has no keys");
}
Result<void> BloomFilter::erase(const void*) { return make_error(Errc::kNotSupported, "a bloom filter cannot delete"); }
Result<void> BloomFilter::next_key(const void*, void*) const {
  return make_error(Errc::kNotSupported, "a bloom filter has no keys to walk");
}
void* BloomFilter::lookup_in_place(const void*) { return nullptr; }

}  // namespace bpfvm::maps
