// BPF_MAP_TYPE_HASH, PERCPU_HASH, LRU_HASH and LRU_PERCPU_HASH in shared memory: max_entries preallocated elements (as the kernel preallocates
// unless BPF_F_NO_PREALLOC; bpfvm always does, which also keeps every value at one address while its
// element lives), round_up_pow2(max_entries) buckets of chained element indexes, and a free list.
// Keys iterate bucket by bucket, as the kernel's get_next_key walks them. A per-CPU hash keeps one
// value per CPU in each element: user space reads and writes all of them, a program its CPU's. An LRU
// hash keeps a recency list (updates and program lookups make an element recent) and, when full, evicts
// the least recently used element instead of failing. The kernel's LRU is approximate (per-CPU free
// lists, reference bits); bpfvm's is exact and common to all CPUs, also under BPF_F_NO_COMMON_LRU. Every index read from the
// shared memory is checked, so a corrupted file cannot make a process read out of bounds or loop.
#pragma once

#include <atomic>

#include "bpfvm/maps/map.hpp"
#include "map_header.hpp"

namespace bpfvm::maps {

class HashMap final : public Map {
 public:
  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;
  // Plain and per-CPU hashes: lookup_in_place's lock-free walk specialised for 4- and 8-byte keys and
  // addressed from fields of this object, without a virtual call (the kernel's htab_map_gen_lookup
  // calls __htab_map_lookup_elem directly). LRU hashes, which update their recency list under the lock,
  // take the default.
  ProgramLookup program_lookup() const override;
  Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase_from_program(const void* key) override;

 private:
  struct Meta;
  struct Layout {
    std::uint32_t buckets = 0;
    std::uint32_t cpus = 1;  // values per element (per-CPU hash: possible_cpus())
    bool lru = false;        // LRU hash: evict the least recently used element when full
    std::size_t value_stride = 0, element_size = 0, payload = 0;
  };
  static Result<Layout> layout_for(const MapDef& def);
  HashMap(const MapDef& def, os::SharedMemory memory, Layout layout);

  Meta& meta() const;
  std::uint32_t* buckets() const;
  std::uint8_t* element(std::uint32_t index) const;  // index >= 1
  std::uint32_t hash_of(const void* key) const;
  // The element holding `key` (0 when none), and the link that points to it. Lock held.
  std::uint32_t find(const void* key, std::uint32_t hash, std::uint32_t** link) const;
  // Runs `read` (a walk of the chains, a copy) without the lock until no change overlapped it (a
  // seqlock read); false when writers kept changing the map, and the caller takes the lock.
  template <typename Read>
  bool read_unlocked(Read&& read) const;
  // find() without the lock, retried while a writer changes the chains.
  std::uint32_t find_lock_free(const void* key, std::uint32_t hash) const;
  // The writers' lock, with Meta::change_seq bumped around the change.
  class ChangeGuard {
   public:
    explicit ChangeGuard(HashMap& map);
    ~ChangeGuard();
    ChangeGuard(const ChangeGuard&) = delete;
    ChangeGuard& operator=(const ChangeGuard&) = delete;

   private:
    SpinGuard lock_;
    std::atomic_ref<std::uint32_t> seq_;
  };
  Result<void> write(const void* key, const void* value, std::uint64_t flags, bool from_program);
  std::uint8_t* values_of(std::uint32_t index) const;
  void lru_unlink(std::uint32_t i) const;
  void lru_push_front(std::uint32_t i) const;
  void touch(std::uint32_t i) const;
  bool evict();
  Result<void> remove(const void* key);

  template <std::uint32_t KeySize>
  static void* lookup_for_program(void* self, const void* key);

  Layout layout_;
  // Fixed for the map's life (the memory never moves): where the buckets and elements are.
  std::uint32_t* bucket_array_ = nullptr;
  std::uint8_t* elements_ = nullptr;
};

}  // namespace bpfvm::maps
