// How programs call out: helper functions by the kernel's ids, filled in by the embedder.
//
// A helper receives r1-r5 and a CallContext and returns r0. The signature is SysV-friendly on purpose:
// r1-r5 arrive in the argument registers and the context in the sixth, so JIT code calls helpers
// without shuffling.
#pragma once

#include <cstdint>
#include <vector>

#include "bpfvm/vm/memory.hpp"

namespace bpfvm::vm {

// What a helper sees of the run that called it.
class CallContext {
 public:
  explicit CallContext(void* user) : user_(user) {}

  // The embedder's per-run data (RunContext::user).
  void* user() const { return user_; }

  // Ends the program when this helper returns, with r0 = the helper's return value. The conformance
  // suite's "unwind" helper is built on this.
  void request_exit() { exit_requested_ = true; }
  bool exit_requested() const { return exit_requested_; }

  // In checked mode, lets the program access [start, start + size) from now on, e.g. a map value a
  // lookup returned. Ignored in unchecked mode, where the verifier vouches for every access.
  void allow_region(MemoryRegion region) { extra_regions_.push_back(region); }
  const std::vector<MemoryRegion>& extra_regions() const { return extra_regions_; }

  // Whether the program may access [addr, addr + size): helpers that take pointers from a program no
  // verifier vouched for ask before touching them. Always true in unchecked mode.
  using AccessCheck = bool (*)(const void* self, std::uint64_t addr, std::uint64_t size, bool write);
  void set_access_check(AccessCheck check, const void* self) {
    check_ = check;
    check_self_ = self;
  }
  bool checked() const { return check_ != nullptr; }
  bool may_access(std::uint64_t addr, std::uint64_t size, bool write) const {
    return !check_ || check_(check_self_, addr, size, write);
  }

  // The interpreter reuses one context for every call of a run.
  void begin_call() {
    exit_requested_ = false;
    extra_regions_.clear();
  }

 private:
  void* user_;
  bool exit_requested_ = false;
  std::vector<MemoryRegion> extra_regions_;
  AccessCheck check_ = nullptr;
  const void* check_self_ = nullptr;
};

using HelperFn = std::uint64_t (*)(std::uint64_t r1, std::uint64_t r2, std::uint64_t r3, std::uint64_t r4,
                                   std::uint64_t r5, CallContext* ctx);

// Helper id -> implementation. Ids are the kernel's (1 = map_lookup_elem, 6 = trace_printk, ...).
class HelperTable {
 public:
  void set(std::int32_t id, HelperFn fn);
  // nullptr when the id has no implementation.
  HelperFn find(std::int64_t id) const {
    if (id < 0 || static_cast<std::uint64_t>(id) >= fns_.size()) return nullptr;
    return fns_[static_cast<std::size_t>(id)];
  }

 private:
  std::vector<HelperFn> fns_;
};

}  // namespace bpfvm::vm
