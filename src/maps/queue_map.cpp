#include "queue_map.hpp"

#include <linux/bpf.h>

#include <cstring>

#include "map_header.hpp"

namespace bpfvm::maps {

// head: where the next value goes; tail: the oldest value. One slot stays free to tell full from empty
// (the kernel's queue_stack_map uses max_entries + 1 slots the same way).
struct QueueMap::Ring {
  std::uint32_t head;
  std::uint32_t tail;
  std::uint32_t size;  // max_entries + 1
  std::uint32_t pad;
};

namespace {
}  // namespace

Result<std::size_t> QueueMap::payload_size(const MapDef& def) {
  if (def.key_size != 0) return make_error(Errc::kInvalid, "a queue or stack has no key: key_size must be 0");
  if (def.value_size == 0) return make_error(Errc::kInvalid, "value_size must be at least 1");
  if (def.max_entries > (1u << 24) || def.value_size > (1u << 20)) {
    return make_error(Errc::kTooBig, "{} values of {} bytes is too large", def.max_entries, def.value_size);
  }
  constexpr std::uint32_t kAllowed = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a queue", def.map_flags);
  return sizeof(Ring) + (std::size_t{def.max_entries} + 1) * round8(def.value_size);
}

Result<std::shared_ptr<Map>> QueueMap::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  auto map = std::shared_ptr<QueueMap>(new QueueMap(def, std::move(memory)));
  map->ring().size = def.max_entries + 1;
  return std::shared_ptr<Map>(std::move(map));
}

Result<std::shared_ptr<Map>> QueueMap::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != sizeof(MapHeader) + payload) return make_error(Errc::kInvalid, "'{}' has the wrong size", memory.path());
  auto map = std::shared_ptr<QueueMap>(new QueueMap(def, std::move(memory)));
  const Ring& r = map->ring();
  if (r.size != def.max_entries + 1 || r.head >= r.size || r.tail >= r.size) {
    return make_error(Errc::kInvalid, "'{}': the queue's bookkeeping is corrupt", map->storage_path());
  }
  return std::shared_ptr<Map>(std::move(map));
}

QueueMap::Ring& QueueMap::ring() const { return *reinterpret_cast<Ring*>(payload()); }
std::uint8_t* QueueMap::slot(std::uint32_t i) const { return payload() + sizeof(Ring) + i * round8(def().value_size); }
bool QueueMap::is_stack() const { return def().type == BPF_MAP_TYPE_STACK; }

Result<void> QueueMap::push(const void* value, std::uint64_t flags) {
  if (flags & ~static_cast<std::uint64_t>(BPF_EXIST)) return make_error(Errc::kInvalid, "push flags 0x{:x} are invalid", flags);
  SpinGuard guard(header()->lock);
  Ring& r = ring();
  const std::uint32_t size = def().max_entries + 1;
  std::uint32_t head = r.head % size, tail = r.tail % size;
  if ((head + 1) % size == tail) {  // full
    if (!(flags & BPF_EXIST)) return make_error(Errc::kTooBig, "the {} is full", is_stack() ? "stack" : "queue");
    tail = (tail + 1) % size;  // drop the oldest
  }
  std::memcpy(slot(head), value, def().value_size);
  r.head = (head + 1) % size;
  r.tail = tail;
  return {};
}

Result<void> QueueMap::take(void* value, bool remove) const {
  SpinGuard guard(header()->lock);
  Ring& r = ring();
  const std::uint32_t size = def().max_entries + 1;
  const std::uint32_t head = r.head % size, tail = r.tail % size;
  if (head == tail) return make_error(Errc::kNotFound, "the {} is empty", is_stack() ? "stack" : "queue");
  if (is_stack()) {
    const std::uint32_t top = (head + size - 1) % size;
    std::memcpy(value, slot(top), def().value_size);
    if (remove) r.head = top;
  } else {
    std::memcpy(value, slot(tail), def().value_size);
    if (remove) r.tail = (tail + 1) % size;
  }
  return {};
}

Result<void> QueueMap::pop(void* value) { return take(value, true); }
Result<void> QueueMap::peek(void* value) const { return take(value, false); }

Result<void> QueueMap::lookup(const void*, void*) const { return make_error(Errc::kInvalid, "a queue has no keys"); }
Result<void> QueueMap::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a queue has no keys");
}
Result<void> QueueMap::erase(const void*) { return make_error(Errc::kInvalid, "a queue has no keys"); }
Result<void> QueueMap::next_key(const void*, void*) const { return make_error(Errc::kInvalid, "a queue has no keys"); }
void* QueueMap::lookup_in_place(const void*) { return nullptr; }

}  // namespace bpfvm::maps
