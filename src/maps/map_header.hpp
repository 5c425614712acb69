// The first bytes of every shared map: what the map is, so that another process can open it by path
// and check it, and the state all users share (users, pins, frozen, the writers' lock). Private to
// src/maps.
#pragma once

#include <linux/bpf.h>

#include <atomic>
#include <cstdint>
#include <thread>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

inline constexpr std::uint64_t kMapMagic = 0x50414d6d76667062;  // "bpfvmMAP"
inline constexpr std::uint32_t kMapLayoutVersion = 2;  // 2: LPM trie nodes, shared map-in-map, new hash function

struct alignas(64) MapHeader {
  std::uint64_t magic;
  std::uint32_t version;
  std::uint32_t type, key_size, value_size, max_entries, map_flags;
  char name[16];
  std::uint64_t total_size;  // of the whole shared memory
  std::uint64_t map_extra;
  std::int32_t spin_lock_off;
  std::atomic<std::uint32_t> users;  // processes that have it mapped
  std::atomic<std::uint32_t> pins;   // pins that refer to it: while any, it outlives its users
  std::atomic<std::uint32_t> frozen;
  std::atomic<std::uint32_t> lock;   // writers' spin lock (hash)
  // The system-wide id the first registering process gave it (0: none yet), so that every process
  // that opens the map calls it by the same id. (In what older files had as zero padding.)
  std::atomic<std::uint32_t> id;
  // The value's struct bpf_timer: its offset + 1 (0: none, as older files have zero padding here).
  std::int32_t timer_off_plus1;
  // The value's kptr fields (MapDef::kptr_offs; zero padding in older files: none).
  std::uint32_t kptr_count;
  std::uint32_t kptr_offs[MapDef::kMaxKptrs];
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "shared atomics must be lock-free");

// Values and keys are laid out at 8-byte boundaries, as the kernel lays them out.
constexpr std::uint64_t round8(std::uint64_t n) { return (n + 7) / 8 * 8; }
static_assert(sizeof(MapHeader) % 64 == 0);

// Where the type's data starts in the map's file: after the header, or, for an array that user space
// may mmap (BPF_F_MMAPABLE), at the next page, so that a mapping of the file from there is the kernel's
// mmap of the map (values from offset 0).
inline std::size_t payload_offset(const MapDef& def) {
  static_assert(sizeof(MapHeader) <= 4096);
  return def.type == BPF_MAP_TYPE_ARRAY && (def.map_flags & BPF_F_MMAPABLE) ? 4096 : sizeof(MapHeader);
}

// A spin lock in shared memory (a process may hold it while another waits; critical sections are a
// few hundred instructions).
class SpinGuard {
 public:
  explicit SpinGuard(std::atomic<std::uint32_t>& lock) : lock_(lock) {
    for (unsigned spins = 0; lock_.exchange(1, std::memory_order_acquire) != 0;) {
      while (lock_.load(std::memory_order_relaxed) != 0) {
        if (++spins % 128 == 0) std::this_thread::yield();
        __builtin_ia32_pause();
      }
    }
  }
  ~SpinGuard() { lock_.store(0, std::memory_order_release); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  std::atomic<std::uint32_t>& lock_;
};

}  // namespace bpfvm::maps

namespace bpfvm::maps {
// New shared memory for a map of this definition with `payload` bytes after the header (in
// `storage_dir`, or anonymous when it is empty), header filled in.
Result<os::SharedMemory> allocate_map_memory(const MapDef& def, std::size_t payload, const std::string& storage_dir);
// Writes a fresh header for `def` at the start of `memory`.
void init_map_header(os::SharedMemory& memory, const MapDef& def);
}  // namespace bpfvm::maps
