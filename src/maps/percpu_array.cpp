#include "percpu_array.hpp"

#include <linux/bpf.h>

#include <cstring>

#include "bpfvm/maps/cpu.hpp"
#include "map_header.hpp"
#include "array_keys.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

PercpuArray::PercpuArray(const MapDef& def, os::SharedMemory memory)
    : Map(def, std::move(memory)), stride_((def.value_size + 7) / 8 * 8), cpus_(possible_cpus()) {}

Result<std::size_t> PercpuArray::payload_size(const MapDef& def) {
  if (def.key_size != 4) return make_error(Errc::kInvalid, "an array's key_size must be 4, not {}", def.key_size);
  if (def.value_size == 0) return make_error(Errc::kInvalid, "value_size must be at least 1");
  // The kernel limits per-CPU values to PCPU_MIN_UNIT_SIZE (32 KiB).
  if (def.value_size > 32768) return make_error(Errc::kTooBig, "a per-CPU value of {} bytes is too large", def.value_size);
  constexpr std::uint32_t kAllowed = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG |
                                     BPF_F_WRONLY_PROG | BPF_F_INNER_MAP;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a percpu_array", def.map_flags);
  const std::uint64_t bytes = (std::uint64_t{def.value_size} + 7) / 8 * 8 * possible_cpus() * def.max_entries;
  if (bytes > (1ull << 32)) return make_error(Errc::kTooBig, "the per-CPU array needs {} bytes", bytes);
  return static_cast<std::size_t>(bytes);
}

Result<std::shared_ptr<Map>> PercpuArray::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  return std::shared_ptr<Map>(new PercpuArray(def, std::move(memory)));
}

Result<std::shared_ptr<Map>> PercpuArray::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != sizeof(MapHeader) + payload) return make_error(Errc::kInvalid, "'{}' has the wrong size", memory.path());
  return std::shared_ptr<Map>(new PercpuArray(def, std::move(memory)));
}

std::uint8_t* PercpuArray::value_of(std::uint32_t index, std::uint32_t cpu) const {
  return payload() + (std::size_t{index} * cpus_ + cpu) * stride_;
}

Result<void> PercpuArray::lookup(const void* key, void* value) const {
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= def().max_entries) return make_error(Errc::kNotFound, "index {} is past max_entries", index);
  auto* out = static_cast<std::uint8_t*>(value);
  // Whole 8-byte-rounded slots, padding included, as the kernel's bpf_long_memcpy copies them.
  for (std::uint32_t cpu = 0; cpu < cpus_; ++cpu) std::memcpy(out + cpu * stride_, value_of(index, cpu), stride_);
  return {};
}

Result<void> PercpuArray::update(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  BPFVM_TRY(check_update_flags(flags));
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
  BPFVM_TRY(check_existence(flags, true));
  const auto* in = static_cast<const std::uint8_t*>(value);
  for (std::uint32_t cpu = 0; cpu < cpus_; ++cpu) std::memcpy(value_of(index, cpu), in + cpu * stride_, stride_);
  return {};
}

Result<void> PercpuArray::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_update_flags(flags));
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  if (index >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries", index);
  BPFVM_TRY(check_existence(flags, true));
  std::memcpy(value_of(index, this_cpu()), value, def().value_size);  // a program writes its CPU's value
  return {};
}

Result<void> PercpuArray::erase(const void*) { return make_error(Errc::kInvalid, "elements of an array cannot be deleted"); }

Result<void> PercpuArray::next_key(const void* key, void* next) const {
  return array_next_key(def().max_entries, key, next);
}

void* PercpuArray::lookup_in_place(const void* key) {
  std::uint32_t index;
  std::memcpy(&index, key, 4);
  return index < def().max_entries ? value_of(index, this_cpu()) : nullptr;
}

}  // namespace bpfvm::maps
