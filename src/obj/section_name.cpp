#include "bpfvm/obj/section_name.hpp"

#include <linux/bpf.h>

#include <array>

namespace bpfvm::obj {

namespace {

enum class Form { kExact, kTarget, kExactOrTarget };  // "socket", "kprobe/", "tracepoint+"

struct SectionRule {
  std::string_view prefix;
  Form form;
  bpf_prog_type type;
  bpf_attach_type attach;
  bool supported;
  bool retprobe = false;
};

// Longer prefixes first where one is a prefix of another ("kretprobe" before "kprobe" is not needed as
// matching is by whole word, but "xdp.frags" must come before "xdp").
constexpr SectionRule kRules[] = {
    {"socket", Form::kExact, BPF_PROG_TYPE_SOCKET_FILTER, BPF_CGROUP_INET_INGRESS, true},
    {"xdp.frags", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP, true},
    {"xdp", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP, true},
    {"tc", Form::kExactOrTarget, BPF_PROG_TYPE_SCHED_CLS, BPF_CGROUP_INET_INGRESS, true},
    {"classifier", Form::kExactOrTarget, BPF_PROG_TYPE_SCHED_CLS, BPF_CGROUP_INET_INGRESS, true},
    {"action", Form::kExactOrTarget, BPF_PROG_TYPE_SCHED_ACT, BPF_CGROUP_INET_INGRESS, true},
    {"tracepoint", Form::kExactOrTarget, BPF_PROG_TYPE_TRACEPOINT, BPF_CGROUP_INET_INGRESS, true},
    {"tp", Form::kExactOrTarget, BPF_PROG_TYPE_TRACEPOINT, BPF_CGROUP_INET_INGRESS, true},
    {"raw_tracepoint", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_CGROUP_INET_INGRESS, true},
    {"raw_tp", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT, BPF_CGROUP_INET_INGRESS, true},
    {"kprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true},
    {"kretprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true, true},
    {"uprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true},
    {"uprobe.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true},
    {"uretprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true, true},
    {"uretprobe.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true, true},
    {"usdt", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_CGROUP_INET_INGRESS, true},
    {"kprobe.multi", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, false},
    {"kretprobe.multi", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, false, true},
    {"perf_event", Form::kExact, BPF_PROG_TYPE_PERF_EVENT, BPF_CGROUP_INET_INGRESS, true},
    {"tp_btf", Form::kTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, false},
    {"fentry", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, false},
    {"fentry.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, false},
    {"fexit", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, false},
    {"fexit.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, false},
    {"fmod_ret", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_MODIFY_RETURN, false},
    {"iter", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, false},
    {"lsm", Form::kExactOrTarget, BPF_PROG_TYPE_LSM, BPF_LSM_MAC, false},
    {"syscall", Form::kExact, BPF_PROG_TYPE_SYSCALL, BPF_CGROUP_INET_INGRESS, false},
    {"struct_ops", Form::kExactOrTarget, BPF_PROG_TYPE_STRUCT_OPS, BPF_CGROUP_INET_INGRESS, false},
    {"sk_skb", Form::kExactOrTarget, BPF_PROG_TYPE_SK_SKB, BPF_CGROUP_INET_INGRESS, false},
    {"sk_msg", Form::kExact, BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT, false},
    {"flow_dissector", Form::kExact, BPF_PROG_TYPE_FLOW_DISSECTOR, BPF_FLOW_DISSECTOR, false},
    {"lwt_in", Form::kExact, BPF_PROG_TYPE_LWT_IN, BPF_CGROUP_INET_INGRESS, false},
    {"lwt_out", Form::kExact, BPF_PROG_TYPE_LWT_OUT, BPF_CGROUP_INET_INGRESS, false},
    {"lwt_xmit", Form::kExact, BPF_PROG_TYPE_LWT_XMIT, BPF_CGROUP_INET_INGRESS, false},
    {"cgroup_skb/ingress", Form::kExact, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS, false},
    {"cgroup_skb/egress", Form::kExact, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS, false},
    {"cgroup/skb", Form::kExact, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS, false},
    {"cgroup/sock", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, false},
    {"cgroup/dev", Form::kExact, BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE, false},
    {"cgroup/sysctl", Form::kExact, BPF_PROG_TYPE_CGROUP_SYSCTL, BPF_CGROUP_SYSCTL, false},
    {"sockops", Form::kExact, BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, false},
    {"sk_lookup", Form::kExact, BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, false},
    {"sk_reuseport", Form::kExact, BPF_PROG_TYPE_SK_REUSEPORT, BPF_SK_REUSEPORT_SELECT, false},
};

// Program types bpftool names, indexed by enum bpf_prog_type (as in the kernel's bpf_prog_type list).
constexpr std::array<std::string_view, 33> kProgTypeNames = {
    "unspec",        "socket_filter",  "kprobe",       "sched_cls",      "sched_act",   "tracepoint",
    "xdp",           "perf_event",     "cgroup_skb",   "cgroup_sock",    "lwt_in",      "lwt_out",
    "lwt_xmit",      "sock_ops",       "sk_skb",       "cgroup_device",  "sk_msg",      "raw_tracepoint",
    "cgroup_sock_addr", "lwt_seg6local", "lirc_mode2",  "sk_reuseport",   "flow_dissector", "cgroup_sysctl",
    "raw_tracepoint_writable", "cgroup_sockopt", "tracing", "struct_ops", "ext", "lsm", "sk_lookup", "syscall",
    "netfilter"};

}  // namespace

std::optional<ProgramKind> classify_section(std::string_view section) {
  for (const SectionRule& r : kRules) {
    if (!section.starts_with(r.prefix)) continue;
    const std::string_view rest = section.substr(r.prefix.size());
    std::string target;
    if (rest.empty()) {
      if (r.form == Form::kTarget) continue;
    } else {
      if (r.form == Form::kExact || rest[0] != '/') continue;
      target = rest.substr(1);
    }
    return ProgramKind{static_cast<std::uint32_t>(r.type), static_cast<std::uint32_t>(r.attach), std::move(target),
                       r.supported, r.retprobe};
  }
  return std::nullopt;
}

std::string_view prog_type_name(std::uint32_t prog_type) {
  return prog_type < kProgTypeNames.size() ? kProgTypeNames[prog_type] : std::string_view{};
}

std::optional<std::uint32_t> prog_type_from_name(std::string_view name) {
  for (std::uint32_t i = 1; i < kProgTypeNames.size(); ++i) {
    if (kProgTypeNames[i] == name) return i;
  }
  // bpftool's `prog load ... type` accepts section-style words too.
  if (auto kind = classify_section(name)) return kind->prog_type;
  return std::nullopt;
}

}  // namespace bpfvm::obj
