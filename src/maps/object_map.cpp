#include "bpfvm/maps/object_map.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <unistd.h>

#include "bpfvm/base/process.hpp"

#include "array_keys.hpp"
#include "map_header.hpp"

namespace bpfvm::maps {

namespace {

constexpr std::uint32_t kTaskStorage = ObjectMap::kTaskStorage, kCgrpStorage = ObjectMap::kCgrpStorage;
constexpr std::uint32_t kAccessFlags = BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
// The running kernel's largest local storage value: U16_MAX less its struct bpf_local_storage_elem.
constexpr std::uint32_t kLocalStorageMaxValue = 65407;
constexpr std::uint32_t kPercpuMaxValue = 32768;  // PCPU_MIN_UNIT_SIZE
constexpr std::uint32_t kMaxEntries = 1u << 24;    // bpfvm's bound on a shared map's slots

// NR_CPUS, which bounds a cpumap: kernel_max + 1.
std::uint32_t kernel_cpus() {
  static const std::uint32_t n = [] {
    std::ifstream f("/sys/devices/system/cpu/kernel_max");
    std::uint32_t max = 0;
    return (f >> max) ? max + 1 : 8192u;
  }();
  return n;
}

bool is_sock_type(std::uint32_t t) {
  return t == BPF_MAP_TYPE_SOCKMAP || t == BPF_MAP_TYPE_SOCKHASH || t == BPF_MAP_TYPE_REUSEPORT_SOCKARRAY ||
         t == BPF_MAP_TYPE_XSKMAP;
}

ObjectMap::Kind kind_of(std::uint32_t t) {
  switch (t) {
    case BPF_MAP_TYPE_DEVMAP_HASH:
    case BPF_MAP_TYPE_SOCKHASH: return ObjectMap::Kind::kHash;
    case BPF_MAP_TYPE_SK_STORAGE:
    case BPF_MAP_TYPE_INODE_STORAGE:
    case kTaskStorage:
    case kCgrpStorage: return ObjectMap::Kind::kOwner;
    case BPF_MAP_TYPE_CGROUP_STORAGE:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: return ObjectMap::Kind::kCgroupStorage;
    default: return ObjectMap::Kind::kArray;
  }
}

// BPF_MAP_CREATE's checks for each type, in the kernel's order.
Result<void> check_def(const MapDef& d) {
  const std::string_view name = map_type_name(d.type);
  auto invalid = [&](std::string_view why) { return make_error(Errc::kInvalid, "a {} map {}", name, why); };
  const bool value_4_or_8 = d.value_size == 4 || d.value_size == 8;
  switch (d.type) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_DEVMAP_HASH:
    case BPF_MAP_TYPE_SOCKMAP:
    case BPF_MAP_TYPE_SOCKHASH:
    case BPF_MAP_TYPE_XSKMAP: {
      const bool hash_key = d.type == BPF_MAP_TYPE_SOCKHASH;
      if (d.max_entries == 0 || (hash_key ? d.key_size == 0 : d.key_size != 4) ||
          (d.type == BPF_MAP_TYPE_XSKMAP ? d.value_size != 4 : !value_4_or_8) ||
          (d.map_flags & ~(BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY))) {
        return invalid(d.type == BPF_MAP_TYPE_XSKMAP
                           ? "needs key_size 4, value_size 4 (a socket's fd), max_entries > 0 and no map_flags but "
                             "BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY"
                           : fmt::format("needs key_size {}, value_size 4 or 8, max_entries > 0 and no map_flags but "
                                         "BPF_F_NUMA_NODE, BPF_F_RDONLY, BPF_F_WRONLY",
                                         hash_key ? "> 0" : "4"));
      }
      if (hash_key && d.key_size > 512) return make_error(Errc::kTooBig, "a sockhash's key_size {} is over 512 (MAX_BPF_STACK)", d.key_size);
      break;
    }
    case BPF_MAP_TYPE_CPUMAP:
      if (d.max_entries == 0 || d.key_size != 4 || !value_4_or_8 || (d.map_flags & ~BPF_F_NUMA_NODE)) {
        return invalid("needs key_size 4, value_size 4 or 8 (struct bpf_cpumap_val), max_entries > 0 and no map_flags but BPF_F_NUMA_NODE");
      }
      if (d.max_entries > kernel_cpus()) {
        return make_error(Errc::kTooBig, "a cpumap of {} entries is larger than the kernel's NR_CPUS ({})", d.max_entries, kernel_cpus());
      }
      break;
    case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY:
      if (!value_4_or_8 || d.key_size != 4 || d.max_entries == 0 || (d.map_flags & ~(BPF_F_NUMA_NODE | kAccessFlags))) {
        return invalid("needs key_size 4, value_size 4 or 8, max_entries > 0 and no map_flags but BPF_F_NUMA_NODE and the access flags");
      }
      break;
    case BPF_MAP_TYPE_SK_STORAGE:
    case BPF_MAP_TYPE_INODE_STORAGE:
    case kTaskStorage:
    case kCgrpStorage:
      // bpf_local_storage_map_alloc_check (the BTF it also asks for is the runtime's to check).
      if ((d.map_flags & ~(BPF_F_NO_PREALLOC | BPF_F_CLONE)) || !(d.map_flags & BPF_F_NO_PREALLOC) || d.max_entries != 0 ||
          d.key_size != 4 || d.value_size == 0) {
        return invalid("needs map_flags BPF_F_NO_PREALLOC (BPF_F_CLONE besides at most), max_entries 0, key_size 4 (an fd) and a value");
      }
      if (d.value_size > kLocalStorageMaxValue) {
        return make_error(Errc::kTooBig, "a {} value of {} bytes is over the kernel's {}", name, d.value_size, kLocalStorageMaxValue);
      }
      break;
    case BPF_MAP_TYPE_CGROUP_STORAGE:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: {
      if (d.key_size != 16 && d.key_size != 8) return invalid("needs key_size 16 (struct bpf_cgroup_storage_key) or 8 (a cgroup id)");
      if (d.value_size == 0) return invalid("needs a value");
      const std::uint32_t max = d.type == BPF_MAP_TYPE_CGROUP_STORAGE ? kLocalStorageMaxValue : kPercpuMaxValue;
      if (d.value_size > max) return make_error(Errc::kTooBig, "a {} value of {} bytes is over the kernel's {}", name, d.value_size, max);
      if ((d.map_flags & ~(BPF_F_NUMA_NODE | kAccessFlags)) ||
          ((d.map_flags & BPF_F_RDONLY) && (d.map_flags & BPF_F_WRONLY)) ||
          ((d.map_flags & BPF_F_RDONLY_PROG) && (d.map_flags & BPF_F_WRONLY_PROG))) {
        return invalid("takes no map_flags but BPF_F_NUMA_NODE and the access flags");
      }
      if (d.max_entries != 0) return invalid("needs max_entries 0 (its entries are per attached cgroup)");
      break;
    }
    case BPF_MAP_TYPE_STRUCT_OPS:
      // (bpf() checked the kernel's value type; a struct_ops map holds one value.)
      if (d.key_size != 4 || d.max_entries != 1 || d.value_size == 0) return invalid("needs key_size 4 and max_entries 1");
      break;
    default: return make_error(Errc::kInvalid, "map type {} is not an object map", d.type);
  }
  if (d.max_entries > kMaxEntries) return make_error(Errc::kTooBig, "a {} of {} entries is over bpfvm's {}", name, d.max_entries, kMaxEntries);
  return {};
}

}  // namespace

Result<ObjectMap::OwnerKey> ObjectMap::task_owner(std::uint32_t tid) {
  // A thread's own start time never changes: cached for the calling thread (the helpers' usual case).
  static thread_local std::uint32_t cached_tid = 0;
  static thread_local std::uint64_t cached_start = 0;
  static thread_local std::uint32_t cached_for = 0;  // the thread that filled the cache (fork copies it)
  const auto self = static_cast<std::uint32_t>(::gettid());
  if (tid == self && cached_for == self && cached_tid == tid) return OwnerKey{tid, cached_start};
  os::TaskFacts facts;
  if (!os::read_task_stat(tid, facts)) return make_error(Errc::kNotFound, "task {} is gone", tid);
  if (tid == self) {
    cached_tid = tid;
    cached_start = facts.start_ticks;
    cached_for = self;
  }
  return OwnerKey{tid, facts.start_ticks};
}

struct ObjectMap::Meta {
  std::uint32_t count;      // entries of a hash or storage
  std::uint32_t free_head;  // hash kinds: the first free slot (1-based), 0 when full
};

bool ObjectMap::is_local_storage(std::uint32_t t) { return handles(t) && kind_of(t) == Kind::kOwner; }

bool ObjectMap::handles(std::uint32_t t) {
  switch (t) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_DEVMAP_HASH:
    case BPF_MAP_TYPE_CPUMAP:
    case BPF_MAP_TYPE_XSKMAP:
    case BPF_MAP_TYPE_SOCKMAP:
    case BPF_MAP_TYPE_SOCKHASH:
    case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY:
    case BPF_MAP_TYPE_SK_STORAGE:
    case BPF_MAP_TYPE_INODE_STORAGE:
    case kTaskStorage:
    case kCgrpStorage:
    case BPF_MAP_TYPE_CGROUP_STORAGE:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE:
    case BPF_MAP_TYPE_STRUCT_OPS: return true;
    default: return false;
  }
}

// A slot: u32 used, u32 next (the bucket chain or the free list, 1-based), the key, the value.
Result<ObjectMap::Layout> ObjectMap::layout_for(const MapDef& def) {
  BPFVM_TRY(check_def(def));
  Layout l;
  const Kind kind = kind_of(def.type);
  const std::uint32_t key = kind == Kind::kOwner ? sizeof(OwnerKey) : def.key_size;
  const std::uint32_t value = is_sock_type(def.type) ? 8 : def.value_size;
  l.key_stride = static_cast<std::uint32_t>(round8(key));
  l.value_stride = static_cast<std::uint32_t>(round8(value));
  l.slot_size = 8 + l.key_stride + l.value_stride;
  switch (kind) {
    case Kind::kArray: l.capacity = def.max_entries; break;
    case Kind::kHash: l.capacity = def.max_entries; break;
    case Kind::kOwner: {
      // As many owners as fit in 64 MiB, between 256 and kOwnerCapacity.
      const std::size_t fit = (std::size_t{64} << 20) / l.slot_size;
      l.capacity = static_cast<std::uint32_t>(std::clamp<std::size_t>(fit, 256, kOwnerCapacity));
      break;
    }
    case Kind::kCgroupStorage: l.capacity = 0; break;
  }
  if (kind == Kind::kHash || kind == Kind::kOwner) {
    l.buckets = 1;
    while (l.buckets < l.capacity) l.buckets <<= 1;  // the kernel's roundup_pow_of_two(max_entries)
  }
  l.payload = sizeof(Meta) + round8(std::size_t{l.buckets} * 4) + std::size_t{l.capacity} * l.slot_size;
  return l;
}

ObjectMap::ObjectMap(const MapDef& def, os::SharedMemory memory, Layout layout)
    : Map(def, std::move(memory)), layout_(layout), kind_(kind_of(def.type)) {}

Result<std::shared_ptr<Map>> ObjectMap::create(const MapDef& def, const std::string& storage_dir) {
  const Layout l = BPFVM_TRY(layout_for(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, l.payload, storage_dir));
  std::shared_ptr<ObjectMap> map(new ObjectMap(def, std::move(memory), l));
  if (map->kind_ == Kind::kHash || map->kind_ == Kind::kOwner) {
    // The free list threads every slot (the file starts zeroed: buckets empty, count 0).
    for (std::uint32_t i = 1; i <= l.capacity; ++i) {
      std::uint32_t next = i < l.capacity ? i + 1 : 0;
      std::memcpy(map->slot(i) + 4, &next, 4);
    }
    map->meta().free_head = l.capacity ? 1 : 0;
  }
  return std::shared_ptr<Map>(std::move(map));
}

Result<std::shared_ptr<Map>> ObjectMap::attach(const MapDef& def, os::SharedMemory memory) {
  const Layout l = BPFVM_TRY(layout_for(def));
  if (memory.size() != payload_offset(def) + l.payload) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for its {}", memory.path(), map_type_name(def.type));
  }
  return std::shared_ptr<Map>(new ObjectMap(def, std::move(memory), l));
}

std::uint32_t ObjectMap::stored_key_size() const { return kind_ == Kind::kOwner ? sizeof(OwnerKey) : def().key_size; }
std::uint32_t ObjectMap::stored_value_size() const { return is_sock_type(def().type) ? 8 : def().value_size; }

ObjectMap::Meta& ObjectMap::meta() const { return *reinterpret_cast<Meta*>(payload()); }
std::uint32_t* ObjectMap::bucket_heads() const { return reinterpret_cast<std::uint32_t*>(payload() + sizeof(Meta)); }

std::uint8_t* ObjectMap::slot(std::uint32_t index) const {
  std::uint8_t* slots = payload() + sizeof(Meta) + round8(std::size_t{layout_.buckets} * 4);
  // Hash slots are numbered from 1 (0 ends a chain); array slots from 0.
  const std::uint32_t i = kind_ == Kind::kArray ? index : index - 1;
  return slots + std::size_t{i} * layout_.slot_size;
}

std::uint32_t ObjectMap::bucket_of(const void* key) const {
  if (def().type == BPF_MAP_TYPE_DEVMAP_HASH) {
    std::uint32_t k;
    std::memcpy(&k, key, 4);
    return k & (layout_.buckets - 1);  // the kernel's dev_map_index_hash
  }
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a (the kernel's sockhash seeds jhash at random)
  const auto* p = static_cast<const std::uint8_t*>(key);
  for (std::uint32_t i = 0; i < stored_key_size(); ++i) h = (h ^ p[i]) * 0x100000001b3ULL;
  return static_cast<std::uint32_t>(h ^ (h >> 32)) & (layout_.buckets - 1);
}

// Every index read from the shared file is checked, so a corrupted file cannot send a walk out of
// bounds or round a cycle.
std::uint32_t ObjectMap::find_slot(const void* key) const {
  std::uint32_t i = bucket_heads()[bucket_of(key)];
  for (std::uint32_t steps = 0; i != 0 && i <= layout_.capacity && steps <= layout_.capacity; ++steps) {
    const std::uint8_t* s = slot(i);
    if (std::memcmp(s + 8, key, stored_key_size()) == 0) return i;
    std::memcpy(&i, s + 4, 4);
  }
  return 0;
}

Result<std::uint32_t> ObjectMap::array_index(const void* key, Errc past_end) const {
  std::uint32_t i;
  std::memcpy(&i, key, 4);
  if (i >= def().max_entries) return make_error(past_end, "index {} is past max_entries {}", i, def().max_entries);
  return i;
}

Result<void> ObjectMap::install(const void* key, const void* value, std::uint64_t flags) {
  if (flags > BPF_EXIST) return make_error(Errc::kInvalid, "update flags 0x{:x} are invalid", flags);
  if (kind_ == Kind::kCgroupStorage) return make_error(Errc::kInvalid, "a cgroup storage's entries come with cgroup attachments");
  const std::uint32_t vs = stored_value_size();
  SpinGuard guard(header()->lock);
  if (kind_ == Kind::kArray) {
    const std::uint32_t i = BPFVM_TRY(array_index(key, Errc::kTooBig));
    std::uint8_t* s = slot(i);
    std::uint32_t used;
    std::memcpy(&used, s, 4);
    if (used && flags == BPF_NOEXIST) return make_error(Errc::kExists, "slot {} is filled", i);
    if (!used && flags == BPF_EXIST) return make_error(Errc::kNotFound, "slot {} is empty", i);
    std::memcpy(s + 8 + layout_.key_stride, value, vs);
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(s)).store(1, std::memory_order_release);
    return {};
  }
  if (const std::uint32_t i = find_slot(key)) {
    if (flags == BPF_NOEXIST) return make_error(Errc::kExists, "the key is in the map");
    std::memcpy(slot(i) + 8 + layout_.key_stride, value, vs);
    return {};
  }
  if (flags == BPF_EXIST) return make_error(Errc::kNotFound, "the key is not in the map");
  Meta& m = meta();
  const std::uint32_t free = m.free_head;
  if (free == 0 || free > layout_.capacity || m.count >= layout_.capacity) {
    if (kind_ == Kind::kOwner) return make_error(Errc::kNoMemory, "the {} holds bpfvm's most owners ({})", map_type_name(def().type), layout_.capacity);
    return make_error(Errc::kTooBig, "the map is full ({} entries)", def().max_entries);
  }
  std::uint8_t* s = slot(free);
  std::memcpy(&m.free_head, s + 4, 4);
  std::memcpy(s + 8, key, stored_key_size());
  std::memcpy(s + 8 + layout_.key_stride, value, vs);
  const std::uint32_t used = 1;
  std::memcpy(s, &used, 4);
  std::uint32_t* head = &bucket_heads()[bucket_of(key)];
  std::memcpy(s + 4, head, 4);  // newest first, as hlist_add_head_rcu
  *head = free;
  ++m.count;
  return {};
}

Result<void> ObjectMap::fetch(const void* key, void* value) const {
  if (kind_ == Kind::kCgroupStorage) return make_error(Errc::kNotFound, "no cgroup has this map's program attached");
  SpinGuard guard(header()->lock);
  const std::uint8_t* s = nullptr;
  if (kind_ == Kind::kArray) {
    const std::uint32_t i = BPFVM_TRY(array_index(key, Errc::kNotFound));
    std::uint32_t used;
    std::memcpy(&used, slot(i), 4);
    if (used) s = slot(i);
  } else if (const std::uint32_t i = find_slot(key)) {
    s = slot(i);
  }
  if (!s) return make_error(Errc::kNotFound, "no such entry");
  std::memcpy(value, s + 8 + layout_.key_stride, stored_value_size());
  return {};
}

Result<void> ObjectMap::remove(const void* key) {
  if (kind_ == Kind::kCgroupStorage) return make_error(Errc::kInvalid, "a cgroup storage's entries go with their cgroup attachment");
  SpinGuard guard(header()->lock);
  if (kind_ == Kind::kArray) {
    const std::uint32_t i = BPFVM_TRY(array_index(key, Errc::kInvalid));
    std::uint32_t used;
    std::memcpy(&used, slot(i), 4);
    std::atomic_ref<std::uint32_t>(*reinterpret_cast<std::uint32_t*>(slot(i))).store(0, std::memory_order_release);
    if (!used) return make_error(Errc::kNotFound, "slot {} is empty", i);
    return {};
  }
  std::uint32_t* link = &bucket_heads()[bucket_of(key)];
  for (std::uint32_t steps = 0; *link != 0 && *link <= layout_.capacity && steps <= layout_.capacity; ++steps) {
    std::uint8_t* s = slot(*link);
    if (std::memcmp(s + 8, key, stored_key_size()) == 0) {
      const std::uint32_t freed = *link;
      std::memcpy(link, s + 4, 4);
      std::memset(s, 0, layout_.slot_size);
      Meta& m = meta();
      std::memcpy(s + 4, &m.free_head, 4);
      m.free_head = freed;
      --m.count;
      return {};
    }
    link = reinterpret_cast<std::uint32_t*>(s + 4);
  }
  return make_error(Errc::kNotFound, "the key is not in the map");
}

void* ObjectMap::find(const void* key) {
  if (kind_ == Kind::kCgroupStorage) return nullptr;
  SpinGuard guard(header()->lock);
  if (kind_ == Kind::kArray) {
    std::uint32_t i, used;
    std::memcpy(&i, key, 4);
    if (i >= def().max_entries) return nullptr;
    std::memcpy(&used, slot(i), 4);
    return used ? slot(i) + 8 + layout_.key_stride : nullptr;
  }
  const std::uint32_t i = find_slot(key);
  return i ? slot(i) + 8 + layout_.key_stride : nullptr;
}

Result<void> ObjectMap::lookup(const void* key, void* value) const {
  switch (def().type) {
    case BPF_MAP_TYPE_XSKMAP: return make_error(Errc::kNotSupported, "an xskmap's sockets cannot be read from user space");
    case BPF_MAP_TYPE_SOCKMAP:
    case BPF_MAP_TYPE_SOCKHASH:
    case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY:
      // A socket's cookie, when the value has room for it (sock_map_lookup_sys, reuseport_array).
      if (def().value_size != 8) return make_error(Errc::kNoSpace, "a socket's cookie needs an 8-byte value");
      return fetch(key, value);
    default:
      if (kind_ == Kind::kOwner) return make_error(Errc::kInvalid, "a {}'s keys are descriptors: bpf() looks them up", map_type_name(def().type));
      return fetch(key, value);
  }
}

Result<void> ObjectMap::update(const void*, const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "a {}'s values are kernel objects: bpf() installs them", map_type_name(def().type));
}

Result<void> ObjectMap::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  switch (def().type) {
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_CPUMAP:
    case BPF_MAP_TYPE_XSKMAP: {
      // Clearing an empty slot is no error (dev_map_delete_elem, cpu_map_delete_elem, xsk_map_delete_elem).
      auto r = remove(key);
      if (!r && r.error().code() == Errc::kNotFound) return {};
      return r;
    }
    case BPF_MAP_TYPE_SOCKMAP: {
      auto r = remove(key);  // __sock_map_delete: EINVAL for an empty slot too
      if (!r && r.error().code() == Errc::kNotFound) return make_error(Errc::kInvalid, "the slot is empty");
      return r;
    }
    case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY: {
      std::uint32_t i;
      std::memcpy(&i, key, 4);
      if (i >= def().max_entries) return make_error(Errc::kTooBig, "index {} is past max_entries {}", i, def().max_entries);
      return remove(key);
    }
    default:
      if (kind_ == Kind::kOwner) return make_error(Errc::kInvalid, "a {}'s keys are descriptors: bpf() deletes by them", map_type_name(def().type));
      return remove(key);
  }
}

Result<void> ObjectMap::next_key(const void* key, void* next) const {
  if (kind_ == Kind::kOwner) return make_error(Errc::kKernelNotSupported, "a {} cannot be walked from user space", map_type_name(def().type));
  if (kind_ == Kind::kCgroupStorage) return make_error(Errc::kNotFound, "no cgroup has this map's program attached");
  if (kind_ == Kind::kArray) return array_next_key(def().max_entries, key, next);
  // Hashes: the entry after `key` in its bucket's chain, then the following buckets; the first entry
  // when `key` is absent (htab and dev_map_hash_get_next_key).
  SpinGuard guard(header()->lock);
  std::uint32_t bucket = 0;
  if (key) {
    if (const std::uint32_t i = find_slot(key)) {
      std::uint32_t after;
      std::memcpy(&after, slot(i) + 4, 4);
      if (after != 0 && after <= layout_.capacity) {
        std::memcpy(next, slot(after) + 8, stored_key_size());
        return {};
      }
      bucket = bucket_of(key) + 1;
    }
  }
  for (; bucket < layout_.buckets; ++bucket) {
    const std::uint32_t head = bucket_heads()[bucket];
    if (head != 0 && head <= layout_.capacity) {
      std::memcpy(next, slot(head) + 8, stored_key_size());
      return {};
    }
  }
  return make_error(Errc::kNotFound, "no key after the last");
}

void* ObjectMap::lookup_in_place(const void* key) {
  // Programs may read a devmap's or xskmap's entry (the verifier allows map_lookup_elem there).
  return kind_ == Kind::kArray || kind_ == Kind::kHash ? find(key) : nullptr;
}

}  // namespace bpfvm::maps
