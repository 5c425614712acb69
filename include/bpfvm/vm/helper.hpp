// How programs call out: helpers by the kernel's ids, filled in by the embedder. The calling convention
// itself (CallContext, HelperFn) is in base/call_context.hpp, shared with src/helpers.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bpfvm/base/call_context.hpp"
#include "bpfvm/vm/memory.hpp"

namespace bpfvm::vm {

using bpfvm::CallContext;
using bpfvm::HelperFn;

// Helper id -> implementation. Ids are the kernel's (1 = map_lookup_elem, 6 = trace_printk, ...).
class HelperTable {
 public:
  void set(std::int32_t id, HelperFn fn);
  // nullptr when the id has no implementation.
  HelperFn find(std::int64_t id) const {
    if (id < 0 || static_cast<std::uint64_t>(id) >= fns_.size()) return nullptr;
    return fns_[static_cast<std::size_t>(id)];
  }
  // Indexed by id; nullptr where there is none.
  std::span<const HelperFn> all() const { return fns_; }

 private:
  std::vector<HelperFn> fns_;
};

}  // namespace bpfvm::vm
