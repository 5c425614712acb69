#include "bpfvm/obj/section_name.hpp"

#include <linux/bpf.h>

#include <array>

namespace bpfvm::obj {

namespace {

enum class Form { kExact, kExactOrTarget };  // "socket"; "kprobe" or "kprobe/FUNC" (libbpf's "kprobe+")

// Attach types newer than the uapi header bpfvm may be built with (Debian 12's is Linux 6.1); values
// from the kernel's enum bpf_attach_type.
constexpr std::uint32_t kNone = 0;  // libbpf leaves expected_attach_type 0
constexpr std::uint32_t kNetfilter = 45, kTcxIngress = 46, kTcxEgress = 47, kTraceUprobeMulti = 48,
                        kCgroupUnixConnect = 49, kCgroupUnixSendmsg = 50, kCgroupUnixRecvmsg = 51,
                        kCgroupUnixGetpeername = 52, kCgroupUnixGetsockname = 53, kNetkitPrimary = 54,
                        kNetkitPeer = 55, kTraceKprobeSession = 56, kTraceUprobeSession = 57;
constexpr std::uint32_t kProgTypeNetfilter = 32;

enum Flag : std::uint8_t {
  kRuns = 1,           // bpfvm's runtime loads and runs programs of this section
  kRetprobe = 2,       // kretprobe, uretprobe, ...
  kSleepable = 4,      // ".s" sections: BPF_F_SLEEPABLE
  kLegacyPrefix = 8,   // old libbpf (before 1.0) and samples/bpf's bpf_load.c matched it as a bare
                       // prefix: "socket1", "xdp_prog", "cgroup/sock1", "sockops_x"
};

struct SectionRule {
  std::string_view prefix;
  Form form;
  std::uint32_t type;    // enum bpf_prog_type
  std::uint32_t attach;  // enum bpf_attach_type
  std::uint8_t flags;
};

// libbpf's table of section names (libbpf 1.x, src/libbpf.c section_defs), in its order: the first
// match wins, so a longer name comes before a name it extends ("xdp.frags/devmap" before "xdp").
// xdp_devmap/ and xdp_cpumap/ are the pre-1.0 spellings.
constexpr SectionRule kRules[] = {
    {"socket", Form::kExact, BPF_PROG_TYPE_SOCKET_FILTER, kNone, kRuns | kLegacyPrefix},
    {"sk_reuseport/migrate", Form::kExact, BPF_PROG_TYPE_SK_REUSEPORT, BPF_SK_REUSEPORT_SELECT_OR_MIGRATE, kLegacyPrefix},
    {"sk_reuseport", Form::kExact, BPF_PROG_TYPE_SK_REUSEPORT, BPF_SK_REUSEPORT_SELECT, kLegacyPrefix},
    {"kprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns},
    {"uprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns},
    {"uprobe.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns | kSleepable},
    {"kretprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns | kRetprobe},
    {"uretprobe", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns | kRetprobe},
    {"uretprobe.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns | kRetprobe | kSleepable},
    {"kprobe.multi", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, 0},
    {"kretprobe.multi", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, BPF_TRACE_KPROBE_MULTI, kRetprobe},
    {"kprobe.session", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceKprobeSession, 0},
    {"uprobe.multi", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceUprobeMulti, 0},
    {"uretprobe.multi", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceUprobeMulti, kRetprobe},
    {"uprobe.session", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceUprobeSession, 0},
    {"uprobe.multi.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceUprobeMulti, kSleepable},
    {"uretprobe.multi.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceUprobeMulti, kRetprobe | kSleepable},
    {"uprobe.session.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kTraceUprobeSession, kSleepable},
    {"ksyscall", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns},
    {"kretsyscall", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns | kRetprobe},
    {"usdt", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns},
    {"usdt.s", Form::kExactOrTarget, BPF_PROG_TYPE_KPROBE, kNone, kRuns | kSleepable},
    {"tc/ingress", Form::kExact, BPF_PROG_TYPE_SCHED_CLS, kTcxIngress, kRuns},
    {"tc/egress", Form::kExact, BPF_PROG_TYPE_SCHED_CLS, kTcxEgress, kRuns},
    {"tcx/ingress", Form::kExact, BPF_PROG_TYPE_SCHED_CLS, kTcxIngress, kRuns},
    {"tcx/egress", Form::kExact, BPF_PROG_TYPE_SCHED_CLS, kTcxEgress, kRuns},
    {"tc", Form::kExactOrTarget, BPF_PROG_TYPE_SCHED_CLS, kNone, kRuns},
    {"classifier", Form::kExactOrTarget, BPF_PROG_TYPE_SCHED_CLS, kNone, kRuns | kLegacyPrefix},
    {"action", Form::kExactOrTarget, BPF_PROG_TYPE_SCHED_ACT, kNone, kRuns | kLegacyPrefix},
    {"netkit/primary", Form::kExact, BPF_PROG_TYPE_SCHED_CLS, kNetkitPrimary, kRuns},
    {"netkit/peer", Form::kExact, BPF_PROG_TYPE_SCHED_CLS, kNetkitPeer, kRuns},
    {"tracepoint", Form::kExactOrTarget, BPF_PROG_TYPE_TRACEPOINT, kNone, kRuns},
    {"tp", Form::kExactOrTarget, BPF_PROG_TYPE_TRACEPOINT, kNone, kRuns},
    {"tracepoint.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACEPOINT, kNone, kRuns | kSleepable},
    {"tp.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACEPOINT, kNone, kRuns | kSleepable},
    {"raw_tracepoint", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT, kNone, kRuns},
    {"raw_tp", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT, kNone, kRuns},
    {"raw_tracepoint.s", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT, kNone, kRuns | kSleepable},
    {"raw_tp.s", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT, kNone, kRuns | kSleepable},
    {"raw_tracepoint.w", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, kNone, 0},
    {"raw_tp.w", Form::kExactOrTarget, BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE, kNone, 0},
    {"tp_btf", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, kRuns},
    {"tp_btf.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, kSleepable},
    {"fentry", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, kRuns},
    {"fmod_ret", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_MODIFY_RETURN, 0},
    {"fexit", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, kRuns},
    {"fentry.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, kSleepable},
    {"fmod_ret.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_MODIFY_RETURN, kSleepable},
    {"fexit.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, kSleepable},
    {"freplace", Form::kExactOrTarget, BPF_PROG_TYPE_EXT, kNone, 0},
    {"lsm", Form::kExactOrTarget, BPF_PROG_TYPE_LSM, BPF_LSM_MAC, 0},
    {"lsm.s", Form::kExactOrTarget, BPF_PROG_TYPE_LSM, BPF_LSM_MAC, kSleepable},
    {"lsm_cgroup", Form::kExactOrTarget, BPF_PROG_TYPE_LSM, BPF_LSM_CGROUP, 0},
    {"iter", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, 0},
    {"iter.s", Form::kExactOrTarget, BPF_PROG_TYPE_TRACING, BPF_TRACE_ITER, kSleepable},
    {"syscall", Form::kExact, BPF_PROG_TYPE_SYSCALL, kNone, kRuns | kSleepable},
    {"xdp.frags/devmap", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP_DEVMAP, kRuns},
    {"xdp/devmap", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP_DEVMAP, kRuns},
    {"xdp_devmap", Form::kExactOrTarget, BPF_PROG_TYPE_XDP, BPF_XDP_DEVMAP, kRuns},
    {"xdp.frags/cpumap", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP_CPUMAP, kRuns},
    {"xdp/cpumap", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP_CPUMAP, kRuns},
    {"xdp_cpumap", Form::kExactOrTarget, BPF_PROG_TYPE_XDP, BPF_XDP_CPUMAP, kRuns},
    {"xdp.frags", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP, kRuns},
    {"xdp", Form::kExact, BPF_PROG_TYPE_XDP, BPF_XDP, kRuns | kLegacyPrefix},
    {"perf_event", Form::kExact, BPF_PROG_TYPE_PERF_EVENT, kNone, kRuns | kLegacyPrefix},
    {"lwt_in", Form::kExact, BPF_PROG_TYPE_LWT_IN, kNone, kLegacyPrefix},
    {"lwt_out", Form::kExact, BPF_PROG_TYPE_LWT_OUT, kNone, kLegacyPrefix},
    {"lwt_xmit", Form::kExact, BPF_PROG_TYPE_LWT_XMIT, kNone, kLegacyPrefix},
    {"lwt_seg6local", Form::kExact, BPF_PROG_TYPE_LWT_SEG6LOCAL, kNone, kLegacyPrefix},
    {"sockops", Form::kExact, BPF_PROG_TYPE_SOCK_OPS, BPF_CGROUP_SOCK_OPS, kLegacyPrefix},
    {"sk_skb/stream_parser", Form::kExact, BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_STREAM_PARSER, kLegacyPrefix},
    {"sk_skb/stream_verdict", Form::kExact, BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_STREAM_VERDICT, kLegacyPrefix},
    {"sk_skb/verdict", Form::kExact, BPF_PROG_TYPE_SK_SKB, BPF_SK_SKB_VERDICT, 0},
    {"sk_skb", Form::kExactOrTarget, BPF_PROG_TYPE_SK_SKB, kNone, kLegacyPrefix},
    {"sk_msg", Form::kExact, BPF_PROG_TYPE_SK_MSG, BPF_SK_MSG_VERDICT, kLegacyPrefix},
    {"lirc_mode2", Form::kExact, BPF_PROG_TYPE_LIRC_MODE2, BPF_LIRC_MODE2, kLegacyPrefix},
    {"flow_dissector", Form::kExact, BPF_PROG_TYPE_FLOW_DISSECTOR, BPF_FLOW_DISSECTOR, kLegacyPrefix},
    {"cgroup_skb/ingress", Form::kExact, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS, kRuns | kLegacyPrefix},
    {"cgroup_skb/egress", Form::kExact, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_EGRESS, kRuns | kLegacyPrefix},
    {"cgroup/skb", Form::kExact, BPF_PROG_TYPE_CGROUP_SKB, BPF_CGROUP_INET_INGRESS, kRuns | kLegacyPrefix},
    {"cgroup/sock_create", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, kLegacyPrefix},
    {"cgroup/sock_release", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_RELEASE, kLegacyPrefix},
    {"cgroup/sock", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET_SOCK_CREATE, kLegacyPrefix},
    {"cgroup/post_bind4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET4_POST_BIND, kLegacyPrefix},
    {"cgroup/post_bind6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK, BPF_CGROUP_INET6_POST_BIND, kLegacyPrefix},
    {"cgroup/bind4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_BIND, kLegacyPrefix},
    {"cgroup/bind6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_BIND, kLegacyPrefix},
    {"cgroup/connect4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_CONNECT, kLegacyPrefix},
    {"cgroup/connect6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_CONNECT, kLegacyPrefix},
    {"cgroup/connect_unix", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, kCgroupUnixConnect, 0},
    {"cgroup/sendmsg4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_SENDMSG, kLegacyPrefix},
    {"cgroup/sendmsg6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_SENDMSG, kLegacyPrefix},
    {"cgroup/sendmsg_unix", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, kCgroupUnixSendmsg, 0},
    {"cgroup/recvmsg4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP4_RECVMSG, kLegacyPrefix},
    {"cgroup/recvmsg6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_UDP6_RECVMSG, kLegacyPrefix},
    {"cgroup/recvmsg_unix", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, kCgroupUnixRecvmsg, 0},
    {"cgroup/getpeername4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETPEERNAME, kLegacyPrefix},
    {"cgroup/getpeername6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_GETPEERNAME, kLegacyPrefix},
    {"cgroup/getpeername_unix", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, kCgroupUnixGetpeername, 0},
    {"cgroup/getsockname4", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET4_GETSOCKNAME, kLegacyPrefix},
    {"cgroup/getsockname6", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, BPF_CGROUP_INET6_GETSOCKNAME, kLegacyPrefix},
    {"cgroup/getsockname_unix", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, kCgroupUnixGetsockname, 0},
    {"cgroup/sysctl", Form::kExact, BPF_PROG_TYPE_CGROUP_SYSCTL, BPF_CGROUP_SYSCTL, kLegacyPrefix},
    {"cgroup/getsockopt", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_GETSOCKOPT, kLegacyPrefix},
    {"cgroup/setsockopt", Form::kExact, BPF_PROG_TYPE_CGROUP_SOCKOPT, BPF_CGROUP_SETSOCKOPT, kLegacyPrefix},
    {"cgroup/dev", Form::kExact, BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE, kLegacyPrefix},
    {"struct_ops", Form::kExactOrTarget, BPF_PROG_TYPE_STRUCT_OPS, kNone, kLegacyPrefix},
    {"struct_ops.s", Form::kExactOrTarget, BPF_PROG_TYPE_STRUCT_OPS, kNone, kSleepable},
    {"sk_lookup", Form::kExact, BPF_PROG_TYPE_SK_LOOKUP, BPF_SK_LOOKUP, kLegacyPrefix},
    {"netfilter", Form::kExact, kProgTypeNetfilter, kNetfilter, 0},
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
  const auto kind = [](const SectionRule& r, std::string target, bool legacy) {
    return ProgramKind{r.type,
                       r.attach,
                       std::move(target),
                       (r.flags & kRuns) != 0,
                       (r.flags & kRetprobe) != 0,
                       (r.flags & kSleepable) != 0,
                       legacy};
  };
  for (const SectionRule& r : kRules) {
    if (!section.starts_with(r.prefix)) continue;
    const std::string_view rest = section.substr(r.prefix.size());
    if (rest.empty()) return kind(r, {}, false);
    if (r.form == Form::kExactOrTarget && rest[0] == '/') return kind(r, std::string(rest.substr(1)), false);
  }
  // Names older loaders took by prefix alone ("socket1", "xdp_prog", "cgroup/sock1", "classifier_x").
  for (const SectionRule& r : kRules) {
    if (!(r.flags & kLegacyPrefix) || !section.starts_with(r.prefix)) continue;
    return kind(r, {}, true);
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
