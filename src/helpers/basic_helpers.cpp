// bpf_ktime_get_ns (5), bpf_get_prandom_u32 (7), bpf_get_smp_processor_id (8).
#include <linux/bpf.h>

#include <chrono>
#include <random>

#include "bpfvm/helpers/helpers.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::uint64_t ktime_get_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                           vm::CallContext*) {
  // CLOCK_MONOTONIC, as the kernel's ktime_get_mono_fast_ns.
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

std::uint64_t get_prandom_u32(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                              vm::CallContext*) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return static_cast<std::uint32_t>(rng());
}

std::uint64_t get_smp_processor_id(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                   vm::CallContext*) {
  return 0;  // one execution slot until per-CPU slots arrive with the maps issue
}

}  // namespace

void install_basic_helpers(vm::HelperTable& table) {
  table.set(BPF_FUNC_ktime_get_ns, ktime_get_ns);
  table.set(BPF_FUNC_get_prandom_u32, get_prandom_u32);
  table.set(BPF_FUNC_get_smp_processor_id, get_smp_processor_id);
}

void install(vm::HelperTable& table) {
  install_map_helpers(table);
  install_basic_helpers(table);
}

}  // namespace bpfvm::helpers
