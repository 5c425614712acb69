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

// Loads through pointers to kernel objects (what the verifier reports in VerifierOptions::probe_loads),
// which the kernel's JIT makes fault-tolerant (BPF_PROBE_MEM: a load that faults reads 0). At each
// instruction `at` marks, both engines call `read(addr, size, 0, 0, 0, ctx)` in place of the plain
// load: the `size`-byte value at `addr` zero-extended (a sign-extending load extends it), or 0 where
// nothing is readable. The other registers keep their values, as around the kernel's load.
struct ProbeLoads {
  HelperFn read = nullptr;
  std::vector<bool> at;
  bool marks(std::size_t i) const { return read && i < at.size() && at[i]; }
};

}  // namespace bpfvm::vm
