#include "bpfvm/maps/map.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <shared_mutex>
#include <unordered_set>

#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/ringbuf.hpp"

#include "array_map.hpp"
#include "bloom_filter.hpp"
#include "queue_map.hpp"
#include "hash_map.hpp"
#include "lpm_trie.hpp"
#include "map_header.hpp"
#include "map_of_maps.hpp"
#include "percpu_array.hpp"
#include "bpfvm/maps/cgroup_array.hpp"
#include "bpfvm/maps/stack_trace.hpp"
#include "bpfvm/maps/perf_event_array.hpp"
#include "bpfvm/maps/prog_array.hpp"
#include "bpfvm/maps/object_map.hpp"

namespace bpfvm::maps {

namespace {
bool has_special_fields(const MapDef& def) { return def.spin_lock_off >= 0 || def.timer_off >= 0 || !def.kptr_offs.empty(); }

struct LiveMaps {
  std::shared_mutex mutex;
  std::unordered_set<const void*> maps;
  std::atomic<std::uint64_t> generation{0};  // bumped when a map goes
};
// The last map this thread found live, and the generation it was found in: a program calls helpers
// on the same map again and again, and this answers those without the shared lock. (initial-exec: no
// __tls_get_addr call per helper in the agent, a shared library whose TLS is static anyway.)
__attribute__((tls_model("initial-exec"))) thread_local const void* t_last_live = nullptr;
__attribute__((tls_model("initial-exec"))) thread_local std::uint64_t t_last_generation = 0;
LiveMaps& live() {
  static LiveMaps* l = new LiveMaps;  // never destroyed: maps may outlive static destruction
  return *l;
}
}  // namespace

Map::Map(MapDef def)
    : def_(std::move(def)), has_special_fields_(has_special_fields(def_)) {
  std::unique_lock lock(live().mutex);
  live().maps.insert(this);
}

Map::Map(MapDef def, os::SharedMemory memory)
    : def_(std::move(def)),
      has_special_fields_(has_special_fields(def_)),
      memory_(std::move(memory)),
      header_(reinterpret_cast<MapHeader*>(memory_.data())),
      payload_(memory_.data() + payload_offset(def_)) {
  header_->users.fetch_add(1, std::memory_order_relaxed);
  std::unique_lock lock(live().mutex);
  live().maps.insert(this);
}

Map::~Map() {
  {
    std::unique_lock lock(live().mutex);
    live().maps.erase(this);
    live().generation.fetch_add(1, std::memory_order_release);
  }
  // The last user of a map no pin refers to removes its storage, as the kernel frees an unreferenced map.
  if (header_ && header_->users.fetch_sub(1, std::memory_order_acq_rel) == 1 &&
      header_->pins.load(std::memory_order_acquire) == 0) {
    memory_.unlink();
  }
}

bool Map::is_live(const void* p) {
  if (p == t_last_live && live().generation.load(std::memory_order_acquire) == t_last_generation) return true;
  std::shared_lock lock(live().mutex);
  if (live().maps.count(p) == 0) return false;
  t_last_live = p;
  t_last_generation = live().generation.load(std::memory_order_relaxed);
  return true;
}

void Map::freeze() {
  (header_ ? header_->frozen : local_frozen_).store(1, std::memory_order_release);
}

bool Map::frozen() const {
  return (header_ ? header_->frozen : local_frozen_).load(std::memory_order_acquire) != 0;
}

const std::string& Map::storage_path() const { return memory_.path(); }

std::uint32_t Map::id() const { return header_ ? header_->id.load(std::memory_order_acquire) : id_; }

void Map::set_id(std::uint32_t id) {
  if (!header_) {
    id_ = id;
    return;
  }
  std::uint32_t none = 0;
  header_->id.compare_exchange_strong(none, id, std::memory_order_acq_rel);
}

void Map::mark_pinned() {
  pinned_.store(true, std::memory_order_release);
  if (header_) header_->pins.fetch_add(1, std::memory_order_acq_rel);
}

void Map::release_pin() {
  if (header_) header_->pins.fetch_sub(1, std::memory_order_acq_rel);
}


Result<void> Map::check_user_write() const {
  if (frozen()) return make_error(Errc::kPermission, "map '{}' is frozen", def_.name);
  return {};
}

Map::ProgramLookup Map::program_lookup() const {
  return [](void* map, const void* key) { return static_cast<Map*>(map)->lookup_in_place(key); };
}

Result<void> Map::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return update(key, value, flags);
}
Result<void> Map::erase_from_program(const void* key) { return erase(key); }

namespace {
// The bpf_spin_lock word of a value: a 4-byte lock taken by spinning (the kernel's arch spin lock).
void lock_word(std::uint8_t* word) {
  auto* w = reinterpret_cast<std::atomic<std::uint32_t>*>(word);
  for (unsigned spins = 0; w->exchange(1, std::memory_order_acquire) != 0;) {
    while (w->load(std::memory_order_relaxed) != 0) {
      if (++spins % 128 == 0) std::this_thread::yield();
    }
  }
}
void unlock_word(std::uint8_t* word) {
  reinterpret_cast<std::atomic<std::uint32_t>*>(word)->store(0, std::memory_order_release);
}
// Copies a value but for its 4-byte lock word at `off`.
void copy_around_lock(std::uint8_t* dst, const std::uint8_t* src, std::size_t size, std::size_t off) {
  std::memcpy(dst, src, off);
  std::memcpy(dst + off + 4, src + off + 4, size - off - 4);
}
}  // namespace

bool Map::holds(const void* p, std::size_t size) const {
  const auto a = reinterpret_cast<std::uintptr_t>(p), lo = reinterpret_cast<std::uintptr_t>(memory_.data());
  return memory_.data() && a >= lo && size <= memory_.size() && a - lo <= memory_.size() - size;
}

void Map::free_special_fields_slow(std::uint8_t* element_value) const {
  for (const std::uint32_t off : def_.kptr_offs) {
    std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(element_value + off)).store(0, std::memory_order_release);
  }
  if (def_.timer_off < 0) return;
  // Both words of the timer (helpers/timers.hpp): its state, then the start a pending expiry must
  // still match to fire.
  auto* words = reinterpret_cast<std::uint64_t*>(element_value + def_.timer_off);
  std::atomic_ref<std::uint64_t>(words[1]).store(0, std::memory_order_release);
  std::atomic_ref<std::uint64_t>(words[0]).store(0, std::memory_order_release);
}

void Map::copy_around_special_fields(std::uint8_t* element_value, const void* value, bool fresh) const {
  const auto* src = static_cast<const std::uint8_t*>(value);
  const std::size_t size = def_.value_size;
  // The special fields in offset order, each [off, off + len).
  std::array<std::pair<std::size_t, std::size_t>, 2 + MapDef::kMaxKptrs> fields{};
  std::size_t n = 0;
  if (def_.spin_lock_off >= 0) fields[n++] = {static_cast<std::size_t>(def_.spin_lock_off), 4};
  if (def_.timer_off >= 0) fields[n++] = {static_cast<std::size_t>(def_.timer_off), 16};
  for (const std::uint32_t off : def_.kptr_offs) {
    if (n < fields.size()) fields[n++] = {off, 8};
  }
  std::sort(fields.begin(), fields.begin() + static_cast<std::ptrdiff_t>(n));
  std::size_t at = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::memcpy(element_value + at, src + at, fields[i].first - at);
    at = fields[i].first + fields[i].second;
  }
  std::memcpy(element_value + at, src + at, size - at);
  if (!fresh) return;
  if (def_.spin_lock_off >= 0) std::memset(element_value + def_.spin_lock_off, 0, 4);
  free_special_fields(element_value);
}

void Map::clear_special_fields_slow(void* value) const {
  auto* v = static_cast<std::uint8_t*>(value);
  if (def_.spin_lock_off >= 0) std::memset(v + def_.spin_lock_off, 0, 4);
  if (def_.timer_off >= 0) std::memset(v + def_.timer_off, 0, 16);
  for (const std::uint32_t off : def_.kptr_offs) std::memset(v + off, 0, 8);
}

Result<void> Map::lookup_locked(const void* key, void* value) {
  if (def_.spin_lock_off < 0) return make_error(Errc::kInvalid, "BPF_F_LOCK: values of map '{}' have no bpf_spin_lock", def_.name);
  auto* v = static_cast<std::uint8_t*>(lookup_in_place(key));
  if (!v) return make_error(Errc::kNotFound, "no such key");
  const auto off = static_cast<std::size_t>(def_.spin_lock_off);
  auto* out = static_cast<std::uint8_t*>(value);
  lock_word(v + off);
  copy_around_lock(out, v, def_.value_size, off);
  unlock_word(v + off);
  clear_special_fields(out);
  return {};
}

Result<void> Map::update_locked(const void* key, const void* value, std::uint64_t flags) {
  if (def_.spin_lock_off < 0) return make_error(Errc::kInvalid, "BPF_F_LOCK: values of map '{}' have no bpf_spin_lock", def_.name);
  BPFVM_TRY(check_user_write());
  const std::uint64_t mode = flags & ~static_cast<std::uint64_t>(BPF_F_LOCK);
  if (mode > BPF_EXIST) return make_error(Errc::kInvalid, "update flags 0x{:x} are invalid", flags);
  const auto off = static_cast<std::size_t>(def_.spin_lock_off);
  if (auto* v = static_cast<std::uint8_t*>(lookup_in_place(key))) {
    if (mode == BPF_NOEXIST) return make_error(Errc::kExists, "the key exists (BPF_NOEXIST)");
    lock_word(v + off);
    copy_value_in(v, value, false);
    // An array's timer is freed after the copy; a hash element updated in place under its lock keeps
    // its timer (array_map_update_elem and htab_map_update_elem differ there).
    if (def_.type == BPF_MAP_TYPE_ARRAY) free_special_fields(v);
    unlock_word(v + off);
    return {};
  }
  // A new element starts with its lock released (update() copies no special field in).
  return update(key, value, mode);
}

Result<void> Map::push(const void*, std::uint64_t) {
  return make_error(Errc::kInvalid, "map '{}' is not a queue, stack or bloom filter", def_.name);
}
Result<void> Map::pop(void*) {
  return make_error(Errc::kInvalid, "map '{}' is not a queue or stack", def_.name);
}
Result<void> Map::peek(void*) const {
  return make_error(Errc::kInvalid, "map '{}' is not a queue, stack or bloom filter", def_.name);
}
std::size_t Map::user_value_size() const {
  if (def_.type == BPF_MAP_TYPE_PERCPU_ARRAY || def_.type == BPF_MAP_TYPE_PERCPU_HASH ||
      def_.type == BPF_MAP_TYPE_LRU_PERCPU_HASH || def_.type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE) {
    return (std::size_t{def_.value_size} + 7) / 8 * 8 * possible_cpus();
  }
  return def_.value_size;
}

bool Map::is_keyless() const {
  return def_.type == BPF_MAP_TYPE_QUEUE || def_.type == BPF_MAP_TYPE_STACK || def_.type == BPF_MAP_TYPE_BLOOM_FILTER;
}

Result<void> Map::update_inner(const void*, std::shared_ptr<Map>, std::uint64_t) {
  return make_error(Errc::kInvalid, "map '{}' does not hold maps", def_.name);
}

void init_map_header(os::SharedMemory& memory, const MapDef& def) {
  auto* h = new (memory.data()) MapHeader{};
  h->magic = kMapMagic;
  h->version = kMapLayoutVersion;
  h->type = def.type;
  h->key_size = def.key_size;
  h->value_size = def.value_size;
  h->max_entries = def.max_entries;
  h->map_flags = def.map_flags;
  std::strncpy(h->name, def.name.c_str(), sizeof h->name - 1);
  h->total_size = memory.size();
  h->map_extra = def.map_extra;
  h->spin_lock_off = def.spin_lock_off;
  h->timer_off_plus1 = def.timer_off + 1;
  h->kptr_count = static_cast<std::uint32_t>(std::min(def.kptr_offs.size(), MapDef::kMaxKptrs));
  for (std::size_t i = 0; i < h->kptr_count; ++i) h->kptr_offs[i] = def.kptr_offs[i];
}

Result<os::SharedMemory> allocate_map_memory(const MapDef& def, std::size_t payload, const std::string& storage_dir) {
  const std::size_t size = payload_offset(def) + payload;
  auto memory = storage_dir.empty() ? os::SharedMemory::anonymous(size)
                                    : os::SharedMemory::create(storage_dir + "/" + os::unique_name("map-"), size);
  if (!memory) return std::move(memory).error();
  init_map_header(*memory, def);
  return memory;
}

Result<std::shared_ptr<Map>> create_map(const MapDef& def, const MapDef* inner, const std::string& storage_dir) {
  if (!def.kptr_offs.empty()) {
    // kptrs: bpfvm keeps them out of copies in hash, LRU hash and array values (the kernel also allows
    // them in per-CPU maps and local storages).
    if (def.type != BPF_MAP_TYPE_HASH && def.type != BPF_MAP_TYPE_ARRAY && def.type != BPF_MAP_TYPE_LRU_HASH) {
      return make_error(Errc::kNotSupported, "kptr fields in a {}: bpfvm keeps them only in hash and array values",
                        map_type_name(def.type));
    }
    if (def.kptr_offs.size() > MapDef::kMaxKptrs) {
      return make_error(Errc::kNotSupported, "{} kptr fields in a value: bpfvm keeps at most {}", def.kptr_offs.size(),
                        MapDef::kMaxKptrs);
    }
    for (const std::uint32_t off : def.kptr_offs) {
      if (off % 8 != 0 || std::uint64_t{off} + 8 > def.value_size) {
        return make_error(Errc::kInvalid, "the kptr at offset {} is not inside the value", off);
      }
    }
  }
  if (def.timer_off >= 0) {
    // A struct bpf_timer: in hash, LRU hash and array values only (map_check_btf), 8-byte aligned.
    if (def.type != BPF_MAP_TYPE_HASH && def.type != BPF_MAP_TYPE_ARRAY && def.type != BPF_MAP_TYPE_LRU_HASH) {
      return make_error(Errc::kNotSupported, "a {} cannot hold a bpf_timer", map_type_name(def.type));
    }
    if (def.timer_off % 8 != 0 || static_cast<std::uint64_t>(def.timer_off) + 16 > def.value_size) {
      return make_error(Errc::kInvalid, "the bpf_timer at offset {} is not inside the value", def.timer_off);
    }
  }
  // Maps of kernel objects and local storages check their own definitions (some need max_entries 0).
  if (ObjectMap::handles(def.type)) return ObjectMap::create(def, storage_dir);
  if (def.max_entries == 0) return make_error(Errc::kInvalid, "max_entries must be at least 1");
  if (def.spin_lock_off >= 0) {
    // The kernel allows a bpf_spin_lock in hash, array and (cgroup/sk/task) storage values only.
    if (def.type != BPF_MAP_TYPE_HASH && def.type != BPF_MAP_TYPE_ARRAY && def.type != BPF_MAP_TYPE_LRU_HASH) {
      return make_error(Errc::kNotSupported, "a {} cannot hold a bpf_spin_lock", map_type_name(def.type));
    }
    if (def.spin_lock_off % 4 != 0 || static_cast<std::uint64_t>(def.spin_lock_off) + 4 > def.value_size) {
      return make_error(Errc::kInvalid, "the bpf_spin_lock at offset {} is not inside the value", def.spin_lock_off);
    }
  }
  switch (def.type) {
    case BPF_MAP_TYPE_ARRAY: return ArrayMap::create(def, storage_dir);
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return HashMap::create(def, storage_dir);
    case BPF_MAP_TYPE_PERCPU_ARRAY: return PercpuArray::create(def, storage_dir);
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK: return QueueMap::create(def, storage_dir);
    case BPF_MAP_TYPE_BLOOM_FILTER: return BloomFilter::create(def, storage_dir);
    case BPF_MAP_TYPE_RINGBUF:
    case BPF_MAP_TYPE_USER_RINGBUF: return RingBuffer::create(def, storage_dir);
    case BPF_MAP_TYPE_LPM_TRIE: return LpmTrie::create(def, storage_dir);
    case BPF_MAP_TYPE_PROG_ARRAY: return ProgArray::create(def);
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY: return PerfEventArray::create(def, storage_dir);
    case BPF_MAP_TYPE_CGROUP_ARRAY: return CgroupArray::create(def, storage_dir);
    case BPF_MAP_TYPE_STACK_TRACE: return StackTraceMap::create(def, storage_dir);
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS:
      if (!inner) return make_error(Errc::kInvalid, "a map-in-map needs an inner map template");
      return MapOfMaps::create(def, *inner, storage_dir);
    default:
      return make_error(Errc::kInvalid, "map type {} ({}) is not supported yet", def.type, map_type_name(def.type));
  }
}

std::size_t remove_orphaned_storage(const std::string& storage_dir, int ending) {
  std::size_t removed = 0;
  for (const std::string& name : os::orphaned_names(storage_dir, "perf-", ending)) {
    removed += os::remove_file(storage_dir + "/" + name) ? 1 : 0;
  }
  for (const std::string& name : os::orphaned_names(storage_dir, "map-", ending)) {
    const std::string path = storage_dir + "/" + name;
    auto memory = os::SharedMemory::open(path);
    if (memory && memory->size() >= sizeof(MapHeader)) {
      const auto* h = reinterpret_cast<const MapHeader*>(memory->data());
      if (h->magic == kMapMagic && h->pins.load(std::memory_order_acquire) != 0) continue;  // a pin names it
    }
    removed += os::remove_file(path) ? 1 : 0;
  }
  return removed;
}

Result<std::shared_ptr<Map>> open_shared_map(const std::string& storage_path) {
  auto memory = BPFVM_TRY(os::SharedMemory::open(storage_path));
  // The file may come from anywhere: check every field before trusting it.
  if (memory.size() < sizeof(MapHeader)) return make_error(Errc::kInvalid, "'{}' is not a bpfvm map", storage_path);
  const auto* h = reinterpret_cast<const MapHeader*>(memory.data());
  if (h->magic != kMapMagic || h->version != kMapLayoutVersion || h->total_size != memory.size()) {
    return make_error(Errc::kInvalid, "'{}' is not a bpfvm map (or one of another layout version)", storage_path);
  }
  MapDef def{h->type, h->key_size, h->value_size, h->max_entries, h->map_flags,
             std::string(h->name, strnlen(h->name, sizeof h->name)), h->map_extra, h->spin_lock_off,
             h->timer_off_plus1 - 1};
  if (def.timer_off < -1 ||
      (def.timer_off >= 0 && (def.timer_off % 8 != 0 || static_cast<std::uint64_t>(def.timer_off) + 16 > def.value_size))) {
    return make_error(Errc::kInvalid, "'{}': the timer offset is corrupt", storage_path);
  }
  if (def.spin_lock_off < -1 ||
      (def.spin_lock_off >= 0 &&
       (def.spin_lock_off % 4 != 0 || static_cast<std::uint64_t>(def.spin_lock_off) + 4 > def.value_size))) {
    return make_error(Errc::kInvalid, "'{}': the spin lock offset is corrupt", storage_path);
  }
  if (h->kptr_count > MapDef::kMaxKptrs) return make_error(Errc::kInvalid, "'{}': the kptr count is corrupt", storage_path);
  for (std::uint32_t i = 0; i < h->kptr_count; ++i) {
    if (h->kptr_offs[i] % 8 != 0 || std::uint64_t{h->kptr_offs[i]} + 8 > def.value_size) {
      return make_error(Errc::kInvalid, "'{}': a kptr offset is corrupt", storage_path);
    }
    def.kptr_offs.push_back(h->kptr_offs[i]);
  }
  switch (def.type) {
    case BPF_MAP_TYPE_ARRAY: return ArrayMap::attach(def, std::move(memory));
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_PERCPU_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
    case BPF_MAP_TYPE_LRU_PERCPU_HASH: return HashMap::attach(def, std::move(memory));
    case BPF_MAP_TYPE_PERCPU_ARRAY: return PercpuArray::attach(def, std::move(memory));
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK: return QueueMap::attach(def, std::move(memory));
    case BPF_MAP_TYPE_BLOOM_FILTER: return BloomFilter::attach(def, std::move(memory));
    case BPF_MAP_TYPE_RINGBUF:
    case BPF_MAP_TYPE_USER_RINGBUF: return RingBuffer::attach(def, std::move(memory));
    case BPF_MAP_TYPE_LPM_TRIE: return LpmTrie::attach(def, std::move(memory));
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY: return PerfEventArray::attach(def, std::move(memory));
    case BPF_MAP_TYPE_CGROUP_ARRAY: return CgroupArray::attach(def, std::move(memory));
    case BPF_MAP_TYPE_STACK_TRACE: return StackTraceMap::attach(def, std::move(memory));
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS: return MapOfMaps::attach(def, std::move(memory));
    default:
      if (ObjectMap::handles(def.type)) return ObjectMap::attach(def, std::move(memory));
      return make_error(Errc::kInvalid, "'{}': map type {} cannot be shared", storage_path, def.type);
  }
}

std::string_view map_type_name(std::uint32_t type) {
  static constexpr std::array<std::string_view, 33> kNames = {
      "unspec",        "hash",           "array",          "prog_array",     "perf_event_array", "percpu_hash",
      "percpu_array",  "stack_trace",    "cgroup_array",   "lru_hash",       "lru_percpu_hash",  "lpm_trie",
      "array_of_maps", "hash_of_maps",   "devmap",         "sockmap",        "cpumap",           "xskmap",
      "sockhash",      "cgroup_storage", "reuseport_sockarray", "percpu_cgroup_storage", "queue", "stack",
      "sk_storage",    "devmap_hash",    "struct_ops",     "ringbuf",        "inode_storage",    "task_storage",
      "bloom_filter",  "user_ringbuf",   "cgrp_storage"};
  return type < kNames.size() ? kNames[type] : std::string_view{};
}

}  // namespace bpfvm::maps
