// A BPF map: the kernel's map semantics (types by the kernel's ids, update flags, errno values).
//
// Two faces: user space (the bpf() commands) copies keys and values in and out; programs get a pointer
// to the value in place (lookup_in_place), as the kernel's helpers do. Map-in-map values are other maps.
//
// Storage: arrays and hashes live in shared memory, a file in a storage directory (or anonymous memory
// when there is none). Another process opens the same file (open_shared_map) and sees the same map,
// live: that is what makes a pinned map one object for every process. The file goes with its last user
// unless the map was pinned.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/base/shared_memory.hpp"

namespace bpfvm::maps {

struct MapDef {
  std::uint32_t type = 0;  // enum bpf_map_type
  std::uint32_t key_size = 0, value_size = 0, max_entries = 0, map_flags = 0;
  std::string name;
  std::uint64_t map_extra = 0;  // bloom_filter: the number of hash functions (0 = 5)
  std::int32_t spin_lock_off = -1;  // offset of the value's struct bpf_spin_lock (from BTF), -1: none
  std::int32_t timer_off = -1;      // offset of the value's struct bpf_timer (from BTF), -1: none
  // Offsets of the value's kptr fields (pointers to kernel structs tagged in BTF; at most kMaxKptrs).
  static constexpr std::size_t kMaxKptrs = 7;
  std::vector<std::uint32_t> kptr_offs{};
};

class Map {
 public:
  virtual ~Map();
  Map(const Map&) = delete;
  Map& operator=(const Map&) = delete;

  const MapDef& def() const { return def_; }
  // The map's id. A shared map keeps it in its header, the same for every process that opens it:
  // set_id gives one only to a map that has none yet.
  std::uint32_t id() const;
  void set_id(std::uint32_t id);

  // User space (BPF_MAP_*_ELEM). Keys and values are def().key_size / value_size bytes. Errors carry the
  // kernel's errno: ENOENT (no such key), EEXIST / ENOENT (BPF_NOEXIST / BPF_EXIST), E2BIG (full),
  // EINVAL (bad flags, delete from an array), EPERM (frozen).
  virtual Result<void> lookup(const void* key, void* value) const = 0;
  virtual Result<void> update(const void* key, const void* value, std::uint64_t flags) = 0;
  virtual Result<void> erase(const void* key) = 0;
  // The key after `key` (the first key when key is null or not in the map); ENOENT at the end.
  virtual Result<void> next_key(const void* key, void* next) const = 0;

  // Programs (bpf_map_lookup_elem): the value in place, or null. For map-in-map, the inner Map*.
  virtual void* lookup_in_place(const void* key) = 0;
  // An array's values, for code that computes a lookup's address itself (the JIT inlines array
  // lookups, as the kernel's verifier does with array_map_gen_lookup and percpu_array_map_gen_lookup):
  // value i is at values + i * stride for i < max_entries, for the map's whole life; in a per-CPU array
  // (cpu_stride != 0) that is CPU 0's, and slot c's (maps::this_cpu()) is c * cpu_stride further.
  // Nothing for other maps.
  struct DirectArray {
    std::uint8_t* values = nullptr;
    std::size_t stride = 0;
    std::uint32_t max_entries = 0;
    std::size_t cpu_stride = 0;
  };
  virtual std::optional<DirectArray> direct_array() const { return std::nullopt; }
  // What JIT code calls for a program's lookup in this map when the verifier proved which map a call
  // passes (the kernel's fixups call the map type's own lookup there instead of the helper):
  // fn(this, key) returns what lookup_in_place does. The default calls lookup_in_place; a type may
  // give a function specialised for its layout and key size.
  using ProgramLookup = void* (*)(void* map, const void* key);
  virtual ProgramLookup program_lookup() const;
  // Programs (bpf_map_update_elem / bpf_map_delete_elem): as above but ignoring the user-side freeze.
  virtual Result<void> update_from_program(const void* key, const void* value, std::uint64_t flags);
  virtual Result<void> erase_from_program(const void* key);

  // BPF_MAP_FREEZE: user space may no longer write (programs still may, unless BPF_F_RDONLY_PROG).
  void freeze();
  bool frozen() const;

  // The shared memory file behind the map ("" when it is private to this process).
  const std::string& storage_path() const;
  // Where the type's data starts in that file (a page boundary for an array with BPF_F_MMAPABLE: user
  // space maps its values from there, as it maps the kernel's map fd from offset 0).
  std::size_t payload_file_offset() const { return static_cast<std::size_t>(payload_ - memory_.data()); }
  // A pin refers to the map: its storage stays when its last user goes. A shared map-in-map holds its
  // inner maps this way too, and lets go with release_pin.
  virtual void mark_pinned();
  void release_pin();
  bool pinned() const { return pinned_.load(std::memory_order_acquire); }

  // BPF_F_LOCK: lookup and update of a value with a bpf_spin_lock, copied under that lock (the lock
  // word itself is neither copied out nor overwritten). EINVAL for a map whose values have no lock.
  Result<void> lookup_locked(const void* key, void* value);
  Result<void> update_locked(const void* key, const void* value, std::uint64_t flags);

  // Queues, stacks and bloom filters (keyless maps): BPF_MAP_UPDATE_ELEM / bpf_map_push_elem,
  // BPF_MAP_LOOKUP_AND_DELETE_ELEM / bpf_map_pop_elem, BPF_MAP_LOOKUP_ELEM / bpf_map_peek_elem.
  // Other maps answer EINVAL.
  virtual Result<void> push(const void* value, std::uint64_t flags);
  virtual Result<void> pop(void* value);
  virtual Result<void> peek(void* value) const;
  bool is_keyless() const;
  // The size of a value as user space passes it: value_size, or round_up(value_size, 8) times the
  // number of CPUs for per-CPU maps.
  std::size_t user_value_size() const;

  // Map-in-map only: set / clear a slot with another map (what user space names by fd).
  virtual Result<void> update_inner(const void* key, std::shared_ptr<Map> inner, std::uint64_t flags);
  // The inner map template of a map-in-map (null otherwise).
  virtual const MapDef* inner_def() const { return nullptr; }

  // Whether `p` is a live map (for checked-mode helpers that receive a map pointer from a program
  // that no verifier vouched for).
  static bool is_live(const void* p);
  // Whether [p, p + size) lies in this map's shared memory (a timer's map is the one whose values hold
  // it). False for a map with private storage.
  bool holds(const void* p, std::size_t size) const;

  // The fields of a value that no copy of the value writes (the kernel's special fields: struct
  // bpf_spin_lock, struct bpf_timer and kptrs, found through BTF; in hash, LRU hash and array values). A value written over an element's keeps its
  // lock word and frees its timer (copy_map_value, then bpf_obj_free_fields: a timer pending there
  // never fires, and may be initialised again); a new element's are zero; a value copied out to user
  // space has them zero (check_and_init_map_value).
  // (Inline for the values that have none, as most do: a copy is then one memcpy.)
  void copy_value_in(std::uint8_t* element_value, const void* value, bool fresh) const {
    if (!has_special_fields_) [[likely]] {
      std::memcpy(element_value, value, def_.value_size);
      return;
    }
    copy_around_special_fields(element_value, value, fresh);
  }
  void clear_special_fields(void* value) const {
    if (has_special_fields_) [[unlikely]] clear_special_fields_slow(value);
  }
  // An element that goes (deleted, evicted, written over): its timer is freed, so that one pending
  // there never fires and the timer may be initialised again, and its kptrs are cleared (the kernel
  // releases the objects they hold).
  void free_special_fields(std::uint8_t* element_value) const {
    if (has_special_fields_) [[unlikely]] free_special_fields_slow(element_value);
  }

 protected:
  explicit Map(MapDef def);                         // private storage (map-in-map)
  Map(MapDef def, os::SharedMemory memory);         // shared storage, MapHeader first
  Result<void> check_user_write() const;
  struct MapHeader* header() const { return header_; }
  std::uint8_t* payload() const { return payload_; }  // the type's data, after the header

 private:
  void copy_around_special_fields(std::uint8_t* element_value, const void* value, bool fresh) const;
  void clear_special_fields_slow(void* value) const;
  void free_special_fields_slow(std::uint8_t* element_value) const;
  MapDef def_;
  bool has_special_fields_ = false;  // a lock, a timer or kptrs
  std::uint32_t id_ = 0;
  std::atomic<std::uint32_t> local_frozen_{0};
  std::atomic<bool> pinned_{false};
  os::SharedMemory memory_;
  struct MapHeader* header_ = nullptr;
  std::uint8_t* payload_ = nullptr;
};

// Creates a map, checking the definition as BPF_MAP_CREATE does (EINVAL for bad sizes or flags).
// For array_of_maps and hash_of_maps, `inner` is the template inner map definition. With a
// `storage_dir`, shared maps get a file there; without, anonymous memory.
Result<std::shared_ptr<Map>> create_map(const MapDef& def, const MapDef* inner = nullptr,
                                        const std::string& storage_dir = {});

// Opens a shared map another process (or this one) created, checking its header against the file.
Result<std::shared_ptr<Map>> open_shared_map(const std::string& storage_path);
// Removes from `storage_dir` the files of maps and perf buffers whose creating process died without
// removing them (a crash), but a map's that a pin still names. Returns how many went. (Processes that
// still map one keep their mapping: only the name goes, as with a record whose owner is gone.) With
// `ending`, those of that process too (it is exiting).
std::size_t remove_orphaned_storage(const std::string& storage_dir, int ending = 0);

// The kernel's name of a map type ("hash", "array", ...), as bpftool prints it.
std::string_view map_type_name(std::uint32_t type);

}  // namespace bpfvm::maps
