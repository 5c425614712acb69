// Private to src/cli: the maps of a traced object when tracing ends, as bpftrace prints its maps:
// `@name[key]: value` lines sorted by value, and maps whose name ends in "hist" drawn as log2
// histograms (key = slot, as bpfvm_log2_slot() in bpfvm_trace.h computes it: slot 0 holds 0, slot k
// holds [2^(k-1), 2^k)). Keys and values print through BTF; syscall numbers (bpfvm_syscall_nr_t) as names.
#pragma once

#include <cstdio>
#include <memory>
#include <vector>

#include "bpfvm/runtime/objects.hpp"

namespace bpfvm::cli {

void print_map_report(const std::vector<std::shared_ptr<runtime::Map>>& maps, std::FILE* out);

// One histogram: (slot, count) pairs, in bpftrace's layout.
void print_log2_hist(const std::vector<std::pair<std::uint32_t, std::uint64_t>>& slots, std::FILE* out);

}  // namespace bpfvm::cli
