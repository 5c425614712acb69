// bpf_perf_event_output (25): a sample into a perf_event_array's event. Packet programs have their own
// variants under the same id (bpf_skb_event_output, bpf_xdp_event_output) that may append the first
// (flags & BPF_F_CTXLEN_MASK) >> 32 bytes of the packet after the data.
// bpf_perf_event_read (22) and bpf_perf_event_read_value (55): a counting event's value (and its
// enabled and running times) from a perf_event_array slot, as the kernel's get_map_perf_counter.
#include <linux/bpf.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bpfvm/helpers/run_env.hpp"
#include "bpfvm/maps/cpu.hpp"
#include "bpfvm/maps/perf_event_array.hpp"
#include "helper_args.hpp"

namespace bpfvm::helpers {

namespace {

bool is_packet_program(std::uint32_t prog_type) {
  return prog_type == BPF_PROG_TYPE_SOCKET_FILTER || prog_type == BPF_PROG_TYPE_SCHED_CLS ||
         prog_type == BPF_PROG_TYPE_SCHED_ACT || prog_type == BPF_PROG_TYPE_XDP;
}

std::uint64_t perf_event_output(std::uint64_t, std::uint64_t map_arg, std::uint64_t flags, std::uint64_t data,
                                std::uint64_t size, CallContext* ctx) {
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  const std::uint32_t prog_type = env ? env->prog_type : 0;
  const std::uint32_t cpu = env ? env->cpu : maps::this_cpu();
  // The order of the kernel's checks: flags, then the packet length, then the slot.
  std::uint64_t ctx_len = 0;
  if (is_packet_program(prog_type)) {
    if (flags & ~(BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK)) return errno_result(EINVAL);
    ctx_len = (flags & BPF_F_CTXLEN_MASK) >> 32;
    if (!env || ctx_len > env->packet.size()) return errno_result(EFAULT);
  } else if (flags & ~BPF_F_INDEX_MASK) {
    return errno_result(EINVAL);
  }
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
    ctx->fail(make_error(Errc::kFault, "bpf_perf_event_output of 0x{:x}, which is not a perf_event_array", map_arg));
    return 0;
  }
  if (size && !readable(ctx, data, size)) {
    ctx->fail(make_error(Errc::kFault, "bpf_perf_event_output reads {} bytes at 0x{:x}, outside the program's memory",
                         size, data));
    return 0;
  }
  const std::span<const std::uint8_t> parts[2] = {
      {reinterpret_cast<const std::uint8_t*>(data), static_cast<std::size_t>(size)},
      env ? env->packet.first(static_cast<std::size_t>(ctx_len)) : std::span<const std::uint8_t>{}};
  const auto index = static_cast<std::uint32_t>(flags & BPF_F_INDEX_MASK);
  const int r = static_cast<maps::PerfEventArray*>(map)->output(index, cpu, parts);
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(r));
}

// The slot's counter, read by the thread running the program on its CPU; 0 or a negative errno.
int read_counter(std::uint64_t map_arg, std::uint64_t flags, maps::PerfEventArray::CounterValue* out,
                 CallContext* ctx) {
  if (flags & ~BPF_F_INDEX_MASK) return -EINVAL;
  maps::Map* map = as_map(map_arg, ctx);
  if (!map || map->def().type != BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
    ctx->fail(make_error(Errc::kFault, "bpf_perf_event_read of 0x{:x}, which is not a perf_event_array", map_arg));
    return -EINVAL;
  }
  const auto* env = static_cast<const RunEnv*>(ctx->user());
  const std::uint32_t cpu = env ? env->cpu : maps::this_cpu();
  const std::uint32_t tid = env && env->task.pid ? env->task.pid : static_cast<std::uint32_t>(::gettid());
  return static_cast<maps::PerfEventArray*>(map)->read(static_cast<std::uint32_t>(flags & BPF_F_INDEX_MASK), cpu,
                                                       tid, out);
}

std::uint64_t perf_event_read(std::uint64_t map_arg, std::uint64_t flags, std::uint64_t, std::uint64_t, std::uint64_t,
                              CallContext* ctx) {
  maps::PerfEventArray::CounterValue v;
  const int r = read_counter(map_arg, flags, &v, ctx);
  // The value or an errno, in one register (a large count looks like an error: the kernel's caveat).
  return r ? static_cast<std::uint64_t>(static_cast<std::int64_t>(r)) : v.counter;
}

std::uint64_t perf_event_read_value(std::uint64_t map_arg, std::uint64_t flags, std::uint64_t buf, std::uint64_t size,
                                    std::uint64_t, CallContext* ctx) {
  bpf_perf_event_value value{};
  int r = -EINVAL;
  if (size == sizeof value) {
    maps::PerfEventArray::CounterValue v;
    r = read_counter(map_arg, flags, &v, ctx);
    if (r == 0) value = {v.counter, v.enabled, v.running};
  }
  // On an error the buffer is zeroed (the kernel's memset).
  if (size) std::memset(reinterpret_cast<void*>(buf), 0, size);
  if (r == 0) std::memcpy(reinterpret_cast<void*>(buf), &value, sizeof value);
  return static_cast<std::uint64_t>(static_cast<std::int64_t>(r));
}

}  // namespace

void install_perf_event_helpers(Registry& table) {
  table.set(BPF_FUNC_perf_event_output, perf_event_output);
  table.set(BPF_FUNC_perf_event_read, perf_event_read);
  table.set(BPF_FUNC_perf_event_read_value, perf_event_read_value);
}

}  // namespace bpfvm::helpers
