// bpf_perf_event_output (25): a sample into a perf_event_array's event. Packet programs have their own
// variants under the same id (bpf_skb_event_output, bpf_xdp_event_output) that may append the first
// (flags & BPF_F_CTXLEN_MASK) >> 32 bytes of the packet after the data.
#include <linux/bpf.h>

#include <cerrno>

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

}  // namespace

void install_perf_event_helpers(Registry& table) { table.set(BPF_FUNC_perf_event_output, perf_event_output); }

}  // namespace bpfvm::helpers
