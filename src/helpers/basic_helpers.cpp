// Time, randomness, the execution slot, strings: ktime_get_ns (5), get_prandom_u32 (7),
// get_smp_processor_id (8), get_numa_node_id (42), jiffies64 (118), ktime_get_boot_ns (125),
// ktime_get_coarse_ns (160), strncmp (182).
#include <linux/bpf.h>
#include <time.h>

#include <cerrno>
#include <random>

#include "bpfvm/helpers/helpers.hpp"
#include "bpfvm/helpers/run_env.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

std::uint64_t clock_ns(clockid_t clock) {
  struct timespec ts {};
  ::clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t ktime_get_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                           CallContext*) {
  return clock_ns(CLOCK_MONOTONIC);  // the kernel's ktime_get_mono_fast_ns
}
std::uint64_t ktime_get_boot_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                CallContext*) {
  return clock_ns(CLOCK_BOOTTIME);
}
std::uint64_t ktime_get_coarse_ns(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                  CallContext*) {
  return clock_ns(CLOCK_MONOTONIC_COARSE);
}
// jiffies at Debian's CONFIG_HZ=250, counted from CLOCK_MONOTONIC (there is no kernel tick to read).
std::uint64_t jiffies64(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, CallContext*) {
  return clock_ns(CLOCK_MONOTONIC) / (1'000'000'000u / 250);
}

std::uint64_t get_prandom_u32(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                              CallContext*) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  return static_cast<std::uint32_t>(rng());
}

std::uint64_t get_smp_processor_id(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                                   CallContext* ctx) {
  return ctx->user() ? static_cast<const RunEnv*>(ctx->user())->cpu : 0;
}

std::uint64_t get_numa_node_id(std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t,
                               CallContext*) {
  return 0;  // one node
}

// strncmp(s1, s1_sz, s2): the kernel's strncmp over at most s1_sz bytes; s2 is a NUL-terminated
// constant string. Returns -1, 0 or 1.
std::uint64_t strncmp_helper(std::uint64_t s1, std::uint64_t size, std::uint64_t s2, std::uint64_t, std::uint64_t,
                             CallContext* ctx) {
  if (size == 0 || !ctx->may_access(s1, size, false)) return errno_result(EFAULT);
  const auto* a = reinterpret_cast<const unsigned char*>(s1);
  const auto* b = reinterpret_cast<const unsigned char*>(s2);
  for (std::uint64_t i = 0; i < size; ++i) {
    if (!ctx->may_access(s2 + i, 1, false)) return errno_result(EFAULT);
    if (a[i] != b[i]) return a[i] < b[i] ? static_cast<std::uint64_t>(-1) : 1;
    if (a[i] == 0) break;
  }
  return 0;
}

}  // namespace

void install_basic_helpers(Registry& table) {
  table.set(BPF_FUNC_ktime_get_ns, ktime_get_ns);
  table.set(BPF_FUNC_ktime_get_boot_ns, ktime_get_boot_ns);
  table.set(BPF_FUNC_ktime_get_coarse_ns, ktime_get_coarse_ns);
  table.set(BPF_FUNC_jiffies64, jiffies64);
  table.set(BPF_FUNC_get_prandom_u32, get_prandom_u32);
  table.set(BPF_FUNC_get_smp_processor_id, get_smp_processor_id);
  table.set(BPF_FUNC_get_numa_node_id, get_numa_node_id);
  table.set(BPF_FUNC_strncmp, strncmp_helper);
}

namespace {
void install(Registry& table) {
  install_map_helpers(table);
  install_basic_helpers(table);
  install_task_helpers(table);
  install_callback_helpers(table);
  install_ringbuf_helpers(table);
  install_trace_helpers(table);
  install_lock_helpers(table);
  install_tail_call_helper(table);
  install_snprintf_helper(table);
  install_perf_event_helpers(table);
  install_packet_helpers(table);
  install_socket_helpers(table);
}
}  // namespace

std::span<const Implementation> implementations() {
  static const Registry registry = [] {
    Registry r;
    install(r);
    return r;
  }();
  return registry.entries();
}

bool implemented(std::int64_t id) {
  for (const Implementation& h : implementations()) {
    if (h.id == id) return true;
  }
  return false;
}

}  // namespace bpfvm::helpers
