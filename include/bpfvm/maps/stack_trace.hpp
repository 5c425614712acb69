// BPF_MAP_TYPE_STACK_TRACE: stacks by id, which bpf_get_stackid stores and user space reads (BCC's
// stackcount and trace -U, libbpf-tools' capable, offcputime...).
//
// Kernel semantics (kernel/bpf/stackmap.c): key_size 4; value_size a multiple of 8, at least 8, and at
// most perf_event_max_stack (127) frames; max_entries rounded up to a power of two buckets (above 2^31,
// E2BIG); flags NUMA_NODE, RDONLY, WRONLY (STACK_BUILD_ID is refused here: bpfvm has no build ids).
// A stack's id is its jhash2 (seed 0) masked to the buckets. Storing into a bucket that holds the same
// stack (the same hash, and the same frames unless BPF_F_FAST_STACK_CMP) gives that id again; a bucket
// holding another stack is -EEXIST unless BPF_F_REUSE_STACKID, which replaces it. From user space,
// lookup copies the stored frames and zeroes the rest of the value (ENOENT for an empty or out-of-range
// id); update is EINVAL; delete is EINVAL past the buckets and ENOENT for an empty one; next_key walks
// the buckets that hold a stack, from 0 again when the key is not one of them.
//
// Shared: each bucket has its own lock. A program (possibly in a signal handler that interrupted a
// program on the same thread) only tries it, a bounded number of times, and answers -EBUSY if it stays
// taken.
#pragma once

#include <cstdint>
#include <span>

#include "bpfvm/maps/map.hpp"

namespace bpfvm::maps {

class StackTraceMap final : public Map {
 public:
  static constexpr std::uint32_t kMaxFrames = 127;  // the kernel's sysctl perf_event_max_stack default

  static Result<std::shared_ptr<Map>> create(const MapDef& def, const std::string& storage_dir);
  static Result<std::shared_ptr<Map>> attach(const MapDef& def, os::SharedMemory memory);

  // bpf_get_stackid's store of `frames` (at most value_size / 8 of them; not empty): the id, or -EEXIST /
  // -EBUSY as above. `flags`: BPF_F_FAST_STACK_CMP, BPF_F_REUSE_STACKID.
  long store(std::span<const std::uint64_t> frames, std::uint64_t flags);
  std::uint32_t buckets() const;

  Result<void> lookup(const void* key, void* value) const override;
  Result<void> update(const void* key, const void* value, std::uint64_t flags) override;
  Result<void> erase(const void* key) override;
  Result<void> next_key(const void* key, void* next) const override;
  void* lookup_in_place(const void* key) override;

 private:
  struct Bucket;
  StackTraceMap(const MapDef& def, os::SharedMemory memory) : Map(def, std::move(memory)) {}
  static Result<std::size_t> payload_size(const MapDef& def);
  Bucket* bucket(std::uint32_t id) const;
  template <typename F>
  Result<void> with_stack(const void* key, Errc past, F then) const;
};

// The kernel's jhash2 (Bob Jenkins' lookup3 hashword) of `words` with `seed`.
std::uint32_t jhash2(std::span<const std::uint32_t> words, std::uint32_t seed);

}  // namespace bpfvm::maps
