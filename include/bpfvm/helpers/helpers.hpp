// Helper functions by the kernel's ids, for programs run by bpfvm's vm.
//
// This first set covers maps and a few basics; the helpers issue adds the rest, their prototypes as
// data for the verifier, and the allowed set per program type. In checked mode (a program no verifier
// vouched for) every pointer a program passes is checked first: a map pointer must be a live map, a
// key or value must lie in memory the program may access; a bad one returns -EFAULT, never a crash.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "bpfvm/base/call_context.hpp"

namespace bpfvm::helpers {

struct Implementation {
  std::int32_t id;  // BPF_FUNC_*
  HelperFn fn;
};

// Every implemented helper, by id (the runtime puts them in the vm's helper table).
std::span<const Implementation> implementations();
// Whether bpfvm can run the helper (a helper may be verified without being runnable: bpfvm veristat
// judges programs that call it, loading them says it cannot run).
bool implemented(std::int64_t id);

// The reader of loads through pointers to kernel objects (vm::ProbeLoads::read, the kernel's
// BPF_PROBE_MEM): the `size`-byte value (1, 2, 4 or 8) at `addr` among the emulated kernel objects
// (RunEnv::kernel), else in this process's memory, where a context's kernel objects are, read without
// faulting; 0 where nothing is readable, as a faulting PROBE_MEM load reads in the kernel.
std::uint64_t probe_load(std::uint64_t addr, std::uint64_t size, std::uint64_t, std::uint64_t, std::uint64_t,
                         CallContext* ctx);

// What the helper files add their implementations to.
class Registry {
 public:
  void set(std::int32_t id, HelperFn fn) { entries_.push_back({id, fn}); }
  std::span<const Implementation> entries() const { return entries_; }

 private:
  std::vector<Implementation> entries_;
};

}  // namespace bpfvm::helpers
