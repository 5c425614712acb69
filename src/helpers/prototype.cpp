#include "bpfvm/helpers/prototype.hpp"

#include <linux/bpf.h>

#include <algorithm>

namespace bpfvm::helpers {

namespace {

using A = Arg;
constexpr A _ = A::kNone;

// From the kernel's bpf_func_proto definitions (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c,
// kernel/bpf/ringbuf.c, net/core/filter.c), in id order.
constexpr Prototype kPrototypes[] = {
    {BPF_FUNC_map_lookup_elem, "map_lookup_elem", Ret::kMapValueOrNull, {A::kConstMapPtr, A::kMapKey, _, _, _}, false},
    {BPF_FUNC_map_update_elem, "map_update_elem", Ret::kInteger, {A::kConstMapPtr, A::kMapKey, A::kMapValue, A::kAnything, _}, false},
    {BPF_FUNC_map_delete_elem, "map_delete_elem", Ret::kInteger, {A::kConstMapPtr, A::kMapKey, _, _, _}, false},
    {BPF_FUNC_probe_read, "probe_read", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_ktime_get_ns, "ktime_get_ns", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_trace_printk, "trace_printk", Ret::kInteger, {A::kMem, A::kConstSize, _, _, _}, true},
    {BPF_FUNC_get_prandom_u32, "get_prandom_u32", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_get_smp_processor_id, "get_smp_processor_id", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_skb_store_bytes, "skb_store_bytes", Ret::kInteger, {A::kCtx, A::kAnything, A::kMem, A::kConstSize, A::kAnything}, false, true},
    {BPF_FUNC_l3_csum_replace, "l3_csum_replace", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, A::kAnything}, false, true},
    {BPF_FUNC_l4_csum_replace, "l4_csum_replace", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, A::kAnything}, false, true},
    {BPF_FUNC_tail_call, "tail_call", Ret::kVoid, {A::kCtx, A::kConstMapPtr, A::kAnything, _, _}, false},
    {BPF_FUNC_get_current_pid_tgid, "get_current_pid_tgid", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_get_current_uid_gid, "get_current_uid_gid", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_get_current_comm, "get_current_comm", Ret::kInteger, {A::kUninitMem, A::kConstSize, _, _, _}, false},
    {BPF_FUNC_redirect, "redirect", Ret::kInteger, {A::kAnything, A::kAnything, _, _, _}, false},
    {BPF_FUNC_perf_event_output, "perf_event_output", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kAnything, A::kMem, A::kConstSizeOrZero}, true},
    {BPF_FUNC_skb_load_bytes, "skb_load_bytes", Ret::kInteger, {A::kCtx, A::kAnything, A::kUninitMem, A::kConstSize, _}, false},
    {BPF_FUNC_csum_diff, "csum_diff", Ret::kInteger, {A::kMemOrNull, A::kConstSizeOrZero, A::kMemOrNull, A::kConstSizeOrZero, A::kAnything}, false},
    {BPF_FUNC_xdp_adjust_head, "xdp_adjust_head", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false, true},
    {BPF_FUNC_get_numa_node_id, "get_numa_node_id", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_probe_read_str, "probe_read_str", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_map_push_elem, "map_push_elem", Ret::kInteger, {A::kConstMapPtr, A::kMapValue, A::kAnything, _, _}, false},
    {BPF_FUNC_map_pop_elem, "map_pop_elem", Ret::kInteger, {A::kConstMapPtr, A::kUninitMapValue, _, _, _}, false},
    {BPF_FUNC_map_peek_elem, "map_peek_elem", Ret::kInteger, {A::kConstMapPtr, A::kUninitMapValue, _, _, _}, false},
    {BPF_FUNC_spin_lock, "spin_lock", Ret::kVoid, {A::kSpinLock, _, _, _, _}, false},
    {BPF_FUNC_spin_unlock, "spin_unlock", Ret::kVoid, {A::kSpinLock, _, _, _, _}, false},
    {BPF_FUNC_send_signal, "send_signal", Ret::kInteger, {A::kAnything, _, _, _, _}, false},
    {BPF_FUNC_probe_read_user, "probe_read_user", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_probe_read_kernel, "probe_read_kernel", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_probe_read_user_str, "probe_read_user_str", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_probe_read_kernel_str, "probe_read_kernel_str", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_jiffies64, "jiffies64", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_ktime_get_boot_ns, "ktime_get_boot_ns", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_ringbuf_output, "ringbuf_output", Ret::kInteger, {A::kConstMapPtr, A::kMem, A::kConstSizeOrZero, A::kAnything, _}, false},
    {BPF_FUNC_ringbuf_reserve, "ringbuf_reserve", Ret::kRingbufRecordOrNull, {A::kConstMapPtr, A::kConstAllocSizeOrZero, A::kAnything, _, _}, false},
    {BPF_FUNC_ringbuf_submit, "ringbuf_submit", Ret::kVoid, {A::kRingbufRecord, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ringbuf_discard, "ringbuf_discard", Ret::kVoid, {A::kRingbufRecord, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ringbuf_query, "ringbuf_query", Ret::kInteger, {A::kConstMapPtr, A::kAnything, _, _, _}, false},
    {BPF_FUNC_for_each_map_elem, "for_each_map_elem", Ret::kInteger, {A::kConstMapPtr, A::kFunc, A::kStackOrNull, A::kAnything, _}, false},
    {BPF_FUNC_snprintf, "snprintf", Ret::kInteger, {A::kMemOrNull, A::kConstSizeOrZero, A::kConstStr, A::kMemOrNull, A::kConstSizeOrZero}, false},
    {BPF_FUNC_ktime_get_coarse_ns, "ktime_get_coarse_ns", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_get_func_ip, "get_func_ip", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_attach_cookie, "get_attach_cookie", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_loop, "loop", Ret::kInteger, {A::kAnything, A::kFunc, A::kStackOrNull, A::kAnything, _}, false},
    {BPF_FUNC_strncmp, "strncmp", Ret::kInteger, {A::kMem, A::kConstSize, A::kConstStr, _, _}, false},
};

bool is_tracing(std::uint32_t t) {
  return t == BPF_PROG_TYPE_KPROBE || t == BPF_PROG_TYPE_TRACEPOINT || t == BPF_PROG_TYPE_PERF_EVENT ||
         t == BPF_PROG_TYPE_RAW_TRACEPOINT;
}

}  // namespace

std::span<const Prototype> prototypes() { return kPrototypes; }

const Prototype* find_prototype(std::int64_t id) {
  const auto* it = std::find_if(std::begin(kPrototypes), std::end(kPrototypes), [&](const Prototype& p) { return p.id == id; });
  return it == std::end(kPrototypes) ? nullptr : it;
}

// As Linux 6.18 answers a privileged loader (checked by the kernel oracle test for every helper and
// program type bpfvm has).
bool allowed(std::uint32_t prog_type, std::int64_t id) {
  if (!find_prototype(id)) return false;
  switch (id) {
    // Tracing only (bpf_tracing_func_proto): the legacy probe_read that reads user or kernel memory.
    case BPF_FUNC_probe_read:
    case BPF_FUNC_probe_read_str:
      return is_tracing(prog_type);
    // The coarse clock is not NMI-safe: tracing programs may not read it.
    case BPF_FUNC_ktime_get_coarse_ns: return !is_tracing(prog_type);
    // The traced function's address: kprobes.
    case BPF_FUNC_get_func_ip: return prog_type == BPF_PROG_TYPE_KPROBE;
    // Packet helpers: socket buffers (skb_load_bytes), and the networking types (csum_diff).
    case BPF_FUNC_skb_load_bytes:
      return prog_type == BPF_PROG_TYPE_SOCKET_FILTER || prog_type == BPF_PROG_TYPE_SCHED_CLS ||
             prog_type == BPF_PROG_TYPE_SCHED_ACT;
    case BPF_FUNC_xdp_adjust_head: return prog_type == BPF_PROG_TYPE_XDP;
    case BPF_FUNC_skb_store_bytes:
    case BPF_FUNC_l3_csum_replace:
    case BPF_FUNC_l4_csum_replace:
      return prog_type == BPF_PROG_TYPE_SCHED_CLS || prog_type == BPF_PROG_TYPE_SCHED_ACT;
    case BPF_FUNC_redirect:
      return prog_type == BPF_PROG_TYPE_SCHED_CLS || prog_type == BPF_PROG_TYPE_SCHED_ACT ||
             prog_type == BPF_PROG_TYPE_XDP;
    case BPF_FUNC_csum_diff:
      return prog_type == BPF_PROG_TYPE_SCHED_CLS || prog_type == BPF_PROG_TYPE_SCHED_ACT ||
             prog_type == BPF_PROG_TYPE_XDP;
    // The attach cookie: the tracing types.
    case BPF_FUNC_get_attach_cookie: return is_tracing(prog_type);
    // Everything else is in the kernel's bpf_base_func_proto for a privileged loader (the current
    // task's ids and comm and bpf_send_signal included, since Linux 6.x) or offered by every type bpfvm
    // runs (perf_event_output: skb and xdp have their own variants with the same id).
    default: return true;
  }
}

}  // namespace bpfvm::helpers
