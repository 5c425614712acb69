#include "hash_map.hpp"

#include <bit>
#include <cstring>

#include "bpfvm/maps/cpu.hpp"
#include "map_header.hpp"
#include "update_flags.hpp"

namespace bpfvm::maps {

// After the header: Meta, the buckets (element index + 1, 0 = empty), then the elements.
struct HashMap::Meta {
  std::uint32_t buckets;
  std::uint32_t count;
  std::uint32_t free_head;  // element index (1-based), 0 = none free
  std::uint32_t element_size;
  std::uint32_t lru_head;   // most recently used (LRU hashes), 0 = empty
  std::uint32_t lru_tail;   // least recently used: evicted first
  // Bumped before and after every change of the chains (odd while one is under way), so that programs
  // can look up without the lock, as the kernel's RCU lookups do, and retry when a change overlapped.
  std::uint32_t change_seq;
  std::uint32_t pad;
};

namespace {
// An element: chain link, hash, then key and value at 8-byte boundaries.
struct ElementHead {
  std::uint32_t next;  // 1-based, 0 = end of chain
  std::uint32_t hash;
  std::uint32_t lru_prev, lru_next;  // LRU hashes: the recency list (1-based, 0 = none)
};
constexpr std::size_t kKeyOffset = sizeof(ElementHead);
}  // namespace

Result<HashMap::Layout> HashMap::layout_for(const MapDef& def) {
  if (def.key_size == 0 || def.value_size == 0) return make_error(Errc::kInvalid, "key_size and value_size must be at least 1");
  // The kernel caps keys at the stack size (they are built on the stack) and values well below 4 GiB.
  if (def.key_size > 512) return make_error(Errc::kTooBig, "key_size {} is larger than 512", def.key_size);
  if (def.value_size > (1u << 30)) return make_error(Errc::kTooBig, "value_size {} is too large", def.value_size);
  constexpr std::uint32_t kAllowed = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU | BPF_F_NUMA_NODE | BPF_F_RDONLY |
                                     BPF_F_WRONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG | BPF_F_ZERO_SEED;
  if (def.map_flags & ~kAllowed) return make_error(Errc::kInvalid, "map_flags 0x{:x} are invalid for a hash", def.map_flags);
  if (def.max_entries > (1u << 24)) return make_error(Errc::kTooBig, "max_entries {} is too large", def.max_entries);
  Layout l;
  l.buckets = std::bit_ceil(def.max_entries);  // the kernel's roundup_pow_of_two(max_entries)
  l.value_stride = round8(def.value_size);
  l.lru = def.type == BPF_MAP_TYPE_LRU_HASH || def.type == BPF_MAP_TYPE_LRU_PERCPU_HASH;
  if (def.type == BPF_MAP_TYPE_PERCPU_HASH || def.type == BPF_MAP_TYPE_LRU_PERCPU_HASH) {
    if (def.value_size > 32768) return make_error(Errc::kTooBig, "a per-CPU value of {} bytes is too large", def.value_size);
    l.cpus = possible_cpus();
  }
  l.element_size = kKeyOffset + round8(def.key_size) + l.value_stride * l.cpus;
  const std::uint64_t payload = round8(sizeof(Meta) + std::uint64_t{l.buckets} * 4) +
                                std::uint64_t{def.max_entries} * l.element_size;
  if (payload > (1ull << 34)) return make_error(Errc::kTooBig, "the hash needs {} bytes", payload);
  l.payload = static_cast<std::size_t>(payload);
  return l;
}

HashMap::HashMap(const MapDef& def, os::SharedMemory memory, Layout layout)
    : Map(def, std::move(memory)), layout_(layout) {
  bucket_array_ = reinterpret_cast<std::uint32_t*>(payload() + sizeof(Meta));
  elements_ = payload() + round8(sizeof(Meta) + std::size_t{layout_.buckets} * 4);
}

Result<std::shared_ptr<Map>> HashMap::create(const MapDef& def, const std::string& storage_dir) {
  const Layout l = BPFVM_TRY(layout_for(def));
  auto memory = BPFVM_TRY(allocate_map_memory(def, l.payload, storage_dir));
  auto map = std::shared_ptr<HashMap>(new HashMap(def, std::move(memory), l));
  Meta& m = map->meta();
  m.buckets = l.buckets;
  m.element_size = static_cast<std::uint32_t>(l.element_size);
  for (std::uint32_t i = 1; i <= def.max_entries; ++i) {
    reinterpret_cast<ElementHead*>(map->element(i))->next = i < def.max_entries ? i + 1 : 0;
  }
  m.free_head = 1;
  return std::shared_ptr<Map>(std::move(map));
}

Result<std::shared_ptr<Map>> HashMap::attach(const MapDef& def, os::SharedMemory memory) {
  const Layout l = BPFVM_TRY(layout_for(def));
  if (memory.size() != sizeof(MapHeader) + l.payload) {
    return make_error(Errc::kInvalid, "'{}' has the wrong size for its hash", memory.path());
  }
  auto map = std::shared_ptr<HashMap>(new HashMap(def, std::move(memory), l));
  const Meta& m = map->meta();
  if (m.buckets != l.buckets || m.element_size != l.element_size || m.count > def.max_entries ||
      m.free_head > def.max_entries) {
    return make_error(Errc::kInvalid, "'{}': the hash's bookkeeping is corrupt", map->storage_path());
  }
  return std::shared_ptr<Map>(std::move(map));
}

HashMap::Meta& HashMap::meta() const { return *reinterpret_cast<Meta*>(payload()); }
std::uint32_t* HashMap::buckets() const { return bucket_array_; }
std::uint8_t* HashMap::element(std::uint32_t index) const { return elements_ + (index - 1) * layout_.element_size; }

// The recency list of an LRU hash (lock held). Indexes come from our own bookkeeping but are checked
// anyway: the memory is shared.
void HashMap::lru_unlink(std::uint32_t i) const {
  Meta& m = meta();
  auto* h = reinterpret_cast<ElementHead*>(element(i));
  const std::uint32_t max = def().max_entries;
  if (h->lru_prev && h->lru_prev <= max) {
    reinterpret_cast<ElementHead*>(element(h->lru_prev))->lru_next = h->lru_next;
  } else if (m.lru_head == i) {
    m.lru_head = h->lru_next <= max ? h->lru_next : 0;
  }
  if (h->lru_next && h->lru_next <= max) {
    reinterpret_cast<ElementHead*>(element(h->lru_next))->lru_prev = h->lru_prev;
  } else if (m.lru_tail == i) {
    m.lru_tail = h->lru_prev <= max ? h->lru_prev : 0;
  }
  h->lru_prev = h->lru_next = 0;
}

void HashMap::lru_push_front(std::uint32_t i) const {
  Meta& m = meta();
  auto* h = reinterpret_cast<ElementHead*>(element(i));
  h->lru_prev = 0;
  h->lru_next = m.lru_head <= def().max_entries ? m.lru_head : 0;
  if (h->lru_next) reinterpret_cast<ElementHead*>(element(h->lru_next))->lru_prev = i;
  m.lru_head = i;
  if (!m.lru_tail || m.lru_tail > def().max_entries) m.lru_tail = i;
}

void HashMap::touch(std::uint32_t i) const {
  if (!layout_.lru || meta().lru_head == i) return;
  lru_unlink(i);
  lru_push_front(i);
}

// Frees the least recently used element (lock held); false when there is none.
bool HashMap::evict() {
  Meta& m = meta();
  const std::uint32_t victim = m.lru_tail;
  if (!victim || victim > def().max_entries) return false;
  std::uint32_t* link = nullptr;
  if (find(element(victim) + kKeyOffset, reinterpret_cast<ElementHead*>(element(victim))->hash, &link) != victim) {
    return false;  // the lists disagree: corrupt memory, refuse rather than make it worse
  }
  auto* h = reinterpret_cast<ElementHead*>(element(victim));
  *link = h->next;
  lru_unlink(victim);
  if (layout_.cpus == 1) free_special_fields(values_of(victim));
  h->next = m.free_head;
  m.free_head = victim;
  --m.count;
  return true;
}

std::uint8_t* HashMap::values_of(std::uint32_t index) const { return element(index) + kKeyOffset + round8(def().key_size); }

namespace {
constexpr std::uint64_t kMix = 0xff51afd7ed558ccdull;

std::uint64_t fold(std::uint64_t h, std::uint64_t w) {
  h = (h ^ w) * kMix;
  return h ^ (h >> 32);
}

// Key comparison with the common sizes inlined.
bool same_key(const std::uint8_t* a, const void* b, std::uint32_t n) {
  if (n == 4) {
    std::uint32_t x, y;
    std::memcpy(&x, a, 4);
    std::memcpy(&y, b, 4);
    return x == y;
  }
  if (n == 8) {
    std::uint64_t x, y;
    std::memcpy(&x, a, 8);
    std::memcpy(&y, b, 8);
    return x == y;
  }
  return std::memcmp(a, b, n) == 0;
}

// 8 bytes at a time (the last chunk zero-extended), each folded in with a multiply, then a finalizer so
// that the low bits (the bucket) depend on every byte. 4- and 8-byte keys take one fold. N is the key
// size when the caller knows it at compile time (program lookups specialised by size), else 0.
template <std::uint32_t N>
std::uint32_t hash_key(const void* key, std::uint32_t n) {
  if constexpr (N != 0) n = N;
  const auto* p = static_cast<const std::uint8_t*>(key);
  std::uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
  if (n == 4) {
    std::uint32_t w;
    std::memcpy(&w, p, 4);
    h = fold(h, w);
  } else if (n == 8) {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    h = fold(h, w);
  } else {
    std::uint32_t i = 0;
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = fold(h, w);
    }
    if (i < n) {
      std::uint64_t w = 0;
      for (std::uint32_t j = 0; i + j < n; ++j) w |= std::uint64_t{p[i + j]} << (8 * j);
      h = fold(h, w);
    }
  }
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 29;
  return static_cast<std::uint32_t>(h);
}
}  // namespace

std::uint32_t HashMap::hash_of(const void* key) const { return hash_key<0>(key, def().key_size); }

namespace {
// Chain links are read while a writer may change them (lock-free lookups): atomically, relaxed.
std::uint32_t load_link(std::uint32_t& v) { return std::atomic_ref<std::uint32_t>(v).load(std::memory_order_relaxed); }
}  // namespace

std::uint32_t HashMap::find(const void* key, std::uint32_t hash, std::uint32_t** link) const {
  std::uint32_t* at = &buckets()[hash & (layout_.buckets - 1)];
  // At most max_entries steps: a chain longer than that is corrupt, or changing under a lock-free
  // lookup, and must not hang anyone. Every index is checked before use.
  std::uint32_t index = load_link(*at);
  for (std::uint32_t steps = 0; index != 0 && index <= def().max_entries && steps < def().max_entries; ++steps) {
    std::uint8_t* e = element(index);
    auto* head = reinterpret_cast<ElementHead*>(e);
    if (load_link(head->hash) == hash && same_key(e + kKeyOffset, key, def().key_size)) {
      if (link) *link = at;
      return index;
    }
    at = &head->next;
    index = load_link(*at);
  }
  return 0;
}

HashMap::ChangeGuard::ChangeGuard(HashMap& map)
    : lock_(map.header()->lock), seq_(std::atomic_ref<std::uint32_t>(map.meta().change_seq)) {
  seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
}

HashMap::ChangeGuard::~ChangeGuard() { seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

template <typename Read>
bool HashMap::read_unlocked(Read&& read) const {
  std::atomic_ref<std::uint32_t> seq(meta().change_seq);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::uint32_t before = seq.load(std::memory_order_acquire);
    if (before & 1) {
      __builtin_ia32_pause();
      continue;
    }
    read();
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) == before) return true;
  }
  return false;
}

std::uint32_t HashMap::find_lock_free(const void* key, std::uint32_t hash) const {
  std::uint32_t i = 0;
  if (read_unlocked([&] { i = find(key, hash, nullptr); })) return i;
  SpinGuard guard(header()->lock);  // writers keep changing it: wait for one
  return find(key, hash, nullptr);
}

Result<void> HashMap::lookup(const void* key, void* value) const {
  // Per CPU: every CPU's value, each round_up(value_size, 8) bytes, as the kernel copies them out.
  const std::size_t size = layout_.cpus == 1 ? def().value_size : layout_.value_stride * layout_.cpus;
  const std::uint32_t hash = hash_of(key);
  // Without the lock, like a program's lookup: the copy counts only if no change overlapped it (an
  // update in place changes the sequence too), so it is never torn.
  std::uint32_t i = 0;
  const auto copy = [&] {
    i = find(key, hash, nullptr);
    if (i) std::memcpy(value, values_of(i), size);
  };
  if (!read_unlocked(copy)) {
    SpinGuard guard(header()->lock);
    copy();
  }
  if (!i) return make_error(Errc::kNotFound, "no such key");
  clear_special_fields(value);
  return {};
}

Result<void> HashMap::write(const void* key, const void* value, std::uint64_t flags, bool from_program) {
  BPFVM_TRY(check_update_flags(flags));
  const std::uint32_t hash = hash_of(key);
  ChangeGuard guard(*this);
  std::uint32_t i = find(key, hash, nullptr);
  const bool existed = i != 0;
  BPFVM_TRY(check_existence(flags, existed));
  Meta& m = meta();
  if (!i) {
    // A full LRU hash makes room by evicting its least recently used element.
    if (layout_.lru && (m.count >= def().max_entries || m.free_head == 0)) evict();
    if (m.count >= def().max_entries || m.free_head == 0 || m.free_head > def().max_entries) {
      return make_error(Errc::kTooBig, "the map is full ({} elements)", def().max_entries);
    }
    i = m.free_head;
    auto* head = reinterpret_cast<ElementHead*>(element(i));
    m.free_head = head->next <= def().max_entries ? head->next : 0;
    std::memcpy(element(i) + kKeyOffset, key, def().key_size);
    head->hash = hash;
    std::uint32_t& bucket = buckets()[hash & (layout_.buckets - 1)];
    head->next = bucket;
    bucket = i;
    ++m.count;
    if (layout_.lru) lru_push_front(i);
  } else {
    touch(i);
  }
  std::uint8_t* values = values_of(i);
  if (layout_.cpus == 1) {
    // Not the lock word or the timer: a new element's are zero; the kernel replaces an existing element
    // with a new one, whose timer is a new one (the old element's is freed), and bpfvm writes in place,
    // keeping the lock word a program may hold.
    copy_value_in(values, value, !existed);
    if (existed) free_special_fields(values);
  } else if (from_program) {
    // A program writes its CPU's value; a new element starts with the other CPUs' values zeroed.
    if (!existed) std::memset(values, 0, layout_.value_stride * layout_.cpus);
    std::memcpy(values + this_cpu() * layout_.value_stride, value, def().value_size);
  } else {
    std::memcpy(values, value, layout_.value_stride * layout_.cpus);  // whole slots, as the kernel copies
  }
  return {};
}

Result<void> HashMap::update(const void* key, const void* value, std::uint64_t flags) {
  BPFVM_TRY(check_user_write());
  return write(key, value, flags, false);
}

Result<void> HashMap::update_from_program(const void* key, const void* value, std::uint64_t flags) {
  return write(key, value, flags, true);
}

Result<void> HashMap::remove(const void* key) {
  ChangeGuard guard(*this);
  std::uint32_t* link = nullptr;
  const std::uint32_t i = find(key, hash_of(key), &link);
  if (!i) return make_error(Errc::kNotFound, "no such key");
  auto* head = reinterpret_cast<ElementHead*>(element(i));
  *link = head->next;
  if (layout_.lru) lru_unlink(i);
  if (layout_.cpus == 1) free_special_fields(values_of(i));
  Meta& m = meta();
  head->next = m.free_head;
  m.free_head = i;
  --m.count;
  return {};
}

Result<void> HashMap::erase(const void* key) {
  BPFVM_TRY(check_user_write());
  return remove(key);
}

Result<void> HashMap::erase_from_program(const void* key) { return remove(key); }

Result<void> HashMap::next_key(const void* key, void* next) const {
  SpinGuard guard(header()->lock);
  std::uint32_t bucket = 0;
  std::uint32_t candidate = 0;
  if (key) {
    const std::uint32_t hash = hash_of(key);
    if (const std::uint32_t i = find(key, hash, nullptr)) {
      // The next element of the same chain, else the first of a later bucket.
      candidate = reinterpret_cast<const ElementHead*>(element(i))->next;
      bucket = (hash & (layout_.buckets - 1)) + 1;
    }
    // A key that is not in the map restarts the walk from the first bucket, as the kernel's hash does.
  }
  while (candidate == 0 && bucket < layout_.buckets) candidate = buckets()[bucket++];
  if (candidate == 0 || candidate > def().max_entries) return make_error(Errc::kNotFound, "no key after this one");
  std::memcpy(next, element(candidate) + kKeyOffset, def().key_size);
  return {};
}

void* HashMap::lookup_in_place(const void* key) {
  std::uint32_t i;
  if (layout_.lru) {
    SpinGuard guard(header()->lock);
    i = find(key, hash_of(key), nullptr);
    if (!i) return nullptr;
    touch(i);  // a program's lookup makes the element recent (the kernel sets its reference bit)
  } else {
    i = find_lock_free(key, hash_of(key));
    if (!i) return nullptr;
  }
  return values_of(i) + (layout_.cpus == 1 ? 0 : this_cpu() * layout_.value_stride);
}

// find_lock_free + values_of, inlined with the key size fixed: the seqlock read of lookup_in_place.
// Written out rather than through read_unlocked and find: that composition measured 5.8 ns a lookup
// from a program against 3.4 ns for this (maps_bench program, 2026-12-06).
template <std::uint32_t KeySize>
void* HashMap::lookup_for_program(void* self, const void* key) {
  HashMap& m = *static_cast<HashMap*>(static_cast<Map*>(self));
  const std::uint32_t n = KeySize ? KeySize : m.def().key_size;
  const std::uint32_t hash = hash_key<KeySize>(key, n);
  const std::uint32_t max = m.def().max_entries;
  std::atomic_ref<std::uint32_t> seq(m.meta().change_seq);
  for (int attempt = 0; attempt < 8; ++attempt) {
    const std::uint32_t before = seq.load(std::memory_order_acquire);
    if (before & 1) {
      __builtin_ia32_pause();
      continue;
    }
    std::uint8_t* found = nullptr;
    std::uint32_t index = load_link(m.bucket_array_[hash & (m.layout_.buckets - 1)]);
    for (std::uint32_t steps = 0; index != 0 && index <= max && steps < max; ++steps) {
      std::uint8_t* e = m.elements_ + std::size_t{index - 1} * m.layout_.element_size;
      auto* head = reinterpret_cast<ElementHead*>(e);
      if (load_link(head->hash) == hash && same_key(e + kKeyOffset, key, n)) {
        found = e;
        break;
      }
      index = load_link(head->next);
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq.load(std::memory_order_relaxed) != before) continue;
    if (!found) return nullptr;
    std::uint8_t* value = found + kKeyOffset + round8(n);
    return m.layout_.cpus == 1 ? value : value + this_cpu() * m.layout_.value_stride;
  }
  return m.lookup_in_place(key);  // writers kept changing the chains: wait for one under the lock
}

Map::ProgramLookup HashMap::program_lookup() const {
  if (layout_.lru) return Map::program_lookup();
  switch (def().key_size) {
    case 4: return &HashMap::lookup_for_program<4>;
    case 8: return &HashMap::lookup_for_program<8>;
    default: return &HashMap::lookup_for_program<0>;
  }
}

}  // namespace bpfvm::maps
