#include "bpfvm/maps/stack_trace.hpp"

#include <linux/bpf.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>

#include "map_header.hpp"

namespace bpfvm::maps {

// A bucket: its lock, whether it holds a stack, the stack's hash and frame count, then value_size bytes
// of frames.
struct StackTraceMap::Bucket {
  std::atomic<std::uint32_t> lock;
  std::uint32_t present;
  std::uint32_t hash;
  std::uint32_t frames;
  std::uint64_t ips[];
};

namespace {

constexpr std::uint32_t kCreateFlags = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_STACK_BUILD_ID;

std::uint64_t bucket_count(const MapDef& def) { return std::bit_ceil(static_cast<std::uint64_t>(def.max_entries)); }
std::size_t stride(const MapDef& def) { return 16 + def.value_size; }

std::uint32_t rol(std::uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

}  // namespace

// lookup3's mix and final steps over 32-bit words; the initial value is 0xdeadbeef + (length << 2) + seed,
// as the kernel's jhash2 (include/linux/jhash.h, JHASH_INITVAL).
std::uint32_t jhash2(std::span<const std::uint32_t> words, std::uint32_t seed) {
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeefu + (static_cast<std::uint32_t>(words.size()) << 2) + seed;
  std::size_t i = 0, left = words.size();
  while (left > 3) {
    a += words[i];
    b += words[i + 1];
    c += words[i + 2];
    a -= c; a ^= rol(c, 4);  c += b;
    b -= a; b ^= rol(a, 6);  a += c;
    c -= b; c ^= rol(b, 8);  b += a;
    a -= c; a ^= rol(c, 16); c += b;
    b -= a; b ^= rol(a, 19); a += c;
    c -= b; c ^= rol(b, 4);  b += a;
    i += 3;
    left -= 3;
  }
  switch (left) {
    case 3: c += words[i + 2]; [[fallthrough]];
    case 2: b += words[i + 1]; [[fallthrough]];
    case 1:
      a += words[i];
      c ^= b; c -= rol(b, 14);
      a ^= c; a -= rol(c, 11);
      b ^= a; b -= rol(a, 25);
      c ^= b; c -= rol(b, 16);
      a ^= c; a -= rol(c, 4);
      b ^= a; b -= rol(a, 14);
      c ^= b; c -= rol(b, 24);
      break;
    default: break;
  }
  return c;
}

Result<std::size_t> StackTraceMap::payload_size(const MapDef& def) {
  if (def.map_flags & ~kCreateFlags) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a stack_trace map", def.map_flags);
  if (def.max_entries == 0 || def.key_size != 4 || def.value_size < 8 || def.value_size % 8 != 0) {
    return make_error(Errc::kInvalid, "a stack_trace map needs max_entries > 0, key_size 4 and a value_size that is a "
                      "multiple of 8 (got {}, {}, {})", def.max_entries, def.key_size, def.value_size);
  }
  if (def.map_flags & BPF_F_STACK_BUILD_ID) {
    return make_error(Errc::kNotSupported, "stack_trace maps of build ids (BPF_F_STACK_BUILD_ID) are not supported by bpfvm");
  }
  if (def.value_size / 8 > kMaxFrames) {
    return make_error(Errc::kInvalid, "a stack_trace value of {} frames is more than perf_event_max_stack ({})",
                      def.value_size / 8, kMaxFrames);
  }
  if (def.max_entries > (1u << 31)) return make_error(Errc::kTooBig, "a stack_trace map of {} entries is too large", def.max_entries);
  const std::uint64_t bytes = bucket_count(def) * stride(def);
  if (bytes > (std::uint64_t{1} << 32)) return make_error(Errc::kNoMemory, "a stack_trace map of {} bytes is too large", bytes);
  return static_cast<std::size_t>(bytes);
}

Result<std::shared_ptr<Map>> StackTraceMap::create(const MapDef& def, const std::string& storage_dir) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, payload, storage_dir));
  return std::shared_ptr<Map>(new StackTraceMap(def, std::move(memory)));
}

Result<std::shared_ptr<Map>> StackTraceMap::attach(const MapDef& def, os::SharedMemory memory) {
  const std::size_t payload = BPFVM_TRY(payload_size(def));
  if (memory.size() != payload_offset(def) + payload) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for its stack_trace map", memory.path());
  }
  return std::shared_ptr<Map>(new StackTraceMap(def, std::move(memory)));
}

std::uint32_t StackTraceMap::buckets() const { return static_cast<std::uint32_t>(bucket_count(def())); }

StackTraceMap::Bucket* StackTraceMap::bucket(std::uint32_t id) const {
  return reinterpret_cast<Bucket*>(payload() + static_cast<std::size_t>(id) * stride(def()));
}

long StackTraceMap::store(std::span<const std::uint64_t> frames, std::uint64_t flags) {
  const std::size_t room = def().value_size / 8;
  if (frames.empty()) return -EFAULT;
  if (frames.size() > room) frames = frames.first(room);
  // (the frames as 32-bit words, as the kernel hashes them)
  std::uint32_t words[2 * kMaxFrames];
  std::memcpy(words, frames.data(), frames.size_bytes());
  const std::uint32_t hash = jhash2({words, frames.size() * 2}, 0);
  const std::uint32_t id = hash & (buckets() - 1);
  Bucket* b = bucket(id);
  for (int tries = 0;; ++tries) {
    std::uint32_t free = 0;
    if (b->lock.compare_exchange_weak(free, 1, std::memory_order_acquire)) break;
    if (tries == 4096) return -EBUSY;
    __builtin_ia32_pause();
  }
  long result = id;
  const bool same = b->present && b->hash == hash &&
                    ((flags & BPF_F_FAST_STACK_CMP) ||
                     (b->frames == frames.size() && std::memcmp(b->ips, frames.data(), frames.size_bytes()) == 0));
  if (!same) {
    if (b->present && !(flags & BPF_F_REUSE_STACKID)) {
      result = -EEXIST;
    } else {
      std::memcpy(b->ips, frames.data(), frames.size_bytes());
      b->frames = static_cast<std::uint32_t>(frames.size());
      b->hash = hash;
      b->present = 1;
    }
  }
  b->lock.store(0, std::memory_order_release);
  return result;
}

// The stored stack `key` names, under its bucket's lock: `then(bucket)`. Past the buckets: `past` (the
// kernel's lookup says ENOENT, its delete EINVAL); an empty bucket: ENOENT.
template <typename F>
Result<void> StackTraceMap::with_stack(const void* key, Errc past, F then) const {
  std::uint32_t id;
  std::memcpy(&id, key, 4);
  if (id >= buckets()) return make_error(past, "stack id {} is past the map's {} buckets", id, buckets());
  Bucket* b = bucket(id);
  SpinGuard guard(b->lock);
  if (!b->present) return make_error(Errc::kNotFound, "no stack with id {}", id);
  then(*b);
  return {};
}

Result<void> StackTraceMap::lookup(const void* key, void* value) const {
  return with_stack(key, Errc::kNotFound, [&](const Bucket& b) {
    std::memcpy(value, b.ips, b.frames * 8);
    std::memset(static_cast<std::uint8_t*>(value) + b.frames * 8, 0, def().value_size - b.frames * 8);
  });
}

Result<void> StackTraceMap::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a stack_trace map is written by bpf_get_stackid only");
}

Result<void> StackTraceMap::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  return with_stack(key, Errc::kInvalid, [](Bucket& b) { b.present = 0; });
}

Result<void> StackTraceMap::next_key(const void* key, void* next) const {
  std::uint32_t id = 0;
  if (key) {
    std::memcpy(&id, key, 4);
    id = id < buckets() && bucket(id)->present ? id + 1 : 0;
  }
  while (id < buckets() && !bucket(id)->present) ++id;
  if (id >= buckets()) return make_error(Errc::kNotFound, "no stack after this one");
  std::memcpy(next, &id, 4);
  return {};
}

void* StackTraceMap::lookup_in_place(const void*) { return nullptr; }

}  // namespace bpfvm::maps
