#include "bpfvm/helpers/prototype.hpp"

#include <linux/bpf.h>

#include <algorithm>
#include <array>
#include <bitset>
#include <initializer_list>

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
    {BPF_FUNC_clone_redirect, "clone_redirect", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false, true},
    {BPF_FUNC_get_current_pid_tgid, "get_current_pid_tgid", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_get_current_uid_gid, "get_current_uid_gid", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_get_current_comm, "get_current_comm", Ret::kInteger, {A::kUninitMem, A::kConstSize, _, _, _}, false},
    {BPF_FUNC_get_cgroup_classid, "get_cgroup_classid", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_skb_vlan_push, "skb_vlan_push", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false, true},
    {BPF_FUNC_skb_vlan_pop, "skb_vlan_pop", Ret::kInteger, {A::kCtx, _, _, _, _}, false, true},
    {BPF_FUNC_skb_get_tunnel_key, "skb_get_tunnel_key", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSize, A::kAnything, _}, false},
    {BPF_FUNC_skb_set_tunnel_key, "skb_set_tunnel_key", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, _}, false},
    {BPF_FUNC_perf_event_read, "perf_event_read", Ret::kInteger, {A::kConstMapPtr, A::kAnything, _, _, _}, true},
    {BPF_FUNC_redirect, "redirect", Ret::kInteger, {A::kAnything, A::kAnything, _, _, _}, false},
    {BPF_FUNC_get_route_realm, "get_route_realm", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_perf_event_output, "perf_event_output", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kAnything, A::kMem, A::kConstSizeOrZero}, true},
    {BPF_FUNC_skb_load_bytes, "skb_load_bytes", Ret::kInteger, {A::kCtx, A::kAnything, A::kUninitMem, A::kConstSize, _}, false},
    {BPF_FUNC_get_stackid, "get_stackid", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kAnything, _, _}, true},
    {BPF_FUNC_csum_diff, "csum_diff", Ret::kInteger, {A::kMemOrNull, A::kConstSizeOrZero, A::kMemOrNull, A::kConstSizeOrZero, A::kAnything}, false},
    {BPF_FUNC_skb_get_tunnel_opt, "skb_get_tunnel_opt", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_skb_set_tunnel_opt, "skb_set_tunnel_opt", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_skb_change_proto, "skb_change_proto", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false, true},
    {BPF_FUNC_skb_change_type, "skb_change_type", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_skb_under_cgroup, "skb_under_cgroup", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kAnything, _, _}, false},
    {BPF_FUNC_get_hash_recalc, "get_hash_recalc", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_current_task, "get_current_task", Ret::kInteger, {_, _, _, _, _}, true},
    {BPF_FUNC_get_current_task_btf, "get_current_task_btf", Ret::kBtfIdTrusted, {_, _, _, _, _}, true, false, Ref::kNone, {}, "task_struct"},
    {BPF_FUNC_probe_write_user, "probe_write_user", Ret::kInteger, {A::kAnything, A::kMem, A::kConstSize, _, _}, true},
    {BPF_FUNC_current_task_under_cgroup, "current_task_under_cgroup", Ret::kInteger, {A::kConstMapPtr, A::kAnything, _, _, _}, false},
    {BPF_FUNC_skb_change_tail, "skb_change_tail", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false, true},
    {BPF_FUNC_skb_pull_data, "skb_pull_data", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false, true},
    {BPF_FUNC_csum_update, "csum_update", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_set_hash_invalid, "set_hash_invalid", Ret::kVoid, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_numa_node_id, "get_numa_node_id", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_skb_change_head, "skb_change_head", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false, true},
    {BPF_FUNC_xdp_adjust_head, "xdp_adjust_head", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false, true},
    {BPF_FUNC_probe_read_str, "probe_read_str", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_get_socket_cookie, "get_socket_cookie", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_socket_uid, "get_socket_uid", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_set_hash, "set_hash", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_setsockopt, "setsockopt", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kMem, A::kConstSize}, false},
    {BPF_FUNC_skb_adjust_room, "skb_adjust_room", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, _}, false, true},
    {BPF_FUNC_get_local_storage, "get_local_storage", Ret::kMapValue, {A::kConstMapPtr, A::kAnything, _, _, _}, false},
    {BPF_FUNC_get_func_arg, "get_func_arg", Ret::kInteger, {A::kCtx, A::kAnything, A::kUninitLong, _, _}, false},
    {BPF_FUNC_get_func_ret, "get_func_ret", Ret::kInteger, {A::kCtx, A::kUninitLong, _, _, _}, false},
    {BPF_FUNC_get_func_arg_cnt, "get_func_arg_cnt", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_copy_from_user_task, "copy_from_user_task", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, A::kBtfId, A::kAnything}, true, false, Ref::kNone, "task_struct"},
    {BPF_FUNC_get_task_stack, "get_task_stack", Ret::kInteger, {A::kBtfId, A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _}, false, false, Ref::kNone, "task_struct"},
    {BPF_FUNC_strtol, "strtol", Ret::kInteger, {A::kMem, A::kConstSize, A::kAnything, A::kUninitLong, _}, false},
    {BPF_FUNC_strtoul, "strtoul", Ret::kInteger, {A::kMem, A::kConstSize, A::kAnything, A::kUninitLong, _}, false},
    {BPF_FUNC_sk_storage_get, "sk_storage_get", Ret::kMapValueOrNull, {A::kConstMapPtr, A::kBtfIdSockCommon, A::kMapValueOrNull, A::kAnything, _}, false},
    {BPF_FUNC_sk_storage_delete, "sk_storage_delete", Ret::kInteger, {A::kConstMapPtr, A::kBtfIdSockCommon, _, _, _}, false},
    {BPF_FUNC_task_storage_get, "task_storage_get", Ret::kMapValueOrNull, {A::kConstMapPtr, A::kBtfIdOrNull, A::kMapValueOrNull, A::kAnything, _}, false, false, Ref::kNone, "task_struct"},
    {BPF_FUNC_task_storage_delete, "task_storage_delete", Ret::kInteger, {A::kConstMapPtr, A::kBtfId, _, _, _}, false, false, Ref::kNone, "task_struct"},
    {BPF_FUNC_redirect_map, "redirect_map", Ret::kInteger, {A::kConstMapPtr, A::kAnything, A::kAnything, _, _}, false},
    {BPF_FUNC_sk_redirect_map, "sk_redirect_map", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kAnything, A::kAnything, _}, false},
    {BPF_FUNC_sock_map_update, "sock_map_update", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kMapKey, A::kAnything, _}, false},
    {BPF_FUNC_xdp_adjust_meta, "xdp_adjust_meta", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false, true},
    {BPF_FUNC_perf_event_read_value, "perf_event_read_value", Ret::kInteger, {A::kConstMapPtr, A::kAnything, A::kUninitMem, A::kConstSize, _}, true},
    {BPF_FUNC_perf_prog_read_value, "perf_prog_read_value", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSize, _, _}, true},
    {BPF_FUNC_getsockopt, "getsockopt", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kUninitMem, A::kConstSize}, false},
    {BPF_FUNC_override_return, "override_return", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, true},
    {BPF_FUNC_sock_ops_cb_flags_set, "sock_ops_cb_flags_set", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_msg_redirect_map, "msg_redirect_map", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kAnything, A::kAnything, _}, false},
    {BPF_FUNC_msg_apply_bytes, "msg_apply_bytes", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_msg_cork_bytes, "msg_cork_bytes", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_msg_pull_data, "msg_pull_data", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, _}, false, true},
    {BPF_FUNC_bind, "bind", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_xdp_adjust_tail, "xdp_adjust_tail", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false, true},
    {BPF_FUNC_skb_get_xfrm_state, "skb_get_xfrm_state", Ret::kInteger, {A::kCtx, A::kAnything, A::kUninitMem, A::kConstSize, A::kAnything}, false},
    {BPF_FUNC_get_stack, "get_stack", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _}, true},
    {BPF_FUNC_skb_load_bytes_relative, "skb_load_bytes_relative", Ret::kInteger, {A::kCtx, A::kAnything, A::kUninitMem, A::kConstSize, A::kAnything}, false},
    {BPF_FUNC_fib_lookup, "fib_lookup", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, _}, false},
    {BPF_FUNC_sock_hash_update, "sock_hash_update", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kMapKey, A::kAnything, _}, false},
    {BPF_FUNC_msg_redirect_hash, "msg_redirect_hash", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kMapKey, A::kAnything, _}, false},
    {BPF_FUNC_sk_redirect_hash, "sk_redirect_hash", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kMapKey, A::kAnything, _}, false},
    {BPF_FUNC_lwt_push_encap, "lwt_push_encap", Ret::kInteger, {A::kCtx, A::kAnything, A::kMem, A::kConstSize, _}, false, true},
    {BPF_FUNC_lwt_seg6_store_bytes, "lwt_seg6_store_bytes", Ret::kInteger, {A::kCtx, A::kAnything, A::kMem, A::kConstSize, _}, false, true},
    {BPF_FUNC_lwt_seg6_adjust_srh, "lwt_seg6_adjust_srh", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false, true},
    {BPF_FUNC_lwt_seg6_action, "lwt_seg6_action", Ret::kInteger, {A::kCtx, A::kAnything, A::kMem, A::kConstSize, _}, false, true},
    {BPF_FUNC_rc_repeat, "rc_repeat", Ret::kInteger, {A::kCtx, _, _, _, _}, true},
    {BPF_FUNC_rc_keydown, "rc_keydown", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, _}, true},
    {BPF_FUNC_skb_cgroup_id, "skb_cgroup_id", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_current_cgroup_id, "get_current_cgroup_id", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_sk_select_reuseport, "sk_select_reuseport", Ret::kInteger, {A::kCtx, A::kConstMapPtr, A::kMapKey, A::kAnything, _}, false},
    {BPF_FUNC_skb_ancestor_cgroup_id, "skb_ancestor_cgroup_id", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    // Sockets (net/core/filter.c): the lookups acquire a reference that bpf_sk_release gives back; the
    // tuple is read-only memory of the given size (struct bpf_sock_tuple).
    {BPF_FUNC_sk_lookup_tcp, "sk_lookup_tcp", Ret::kSocketOrNull, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, A::kAnything}, false, false, Ref::kAcquires},
    {BPF_FUNC_sk_lookup_udp, "sk_lookup_udp", Ret::kSocketOrNull, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, A::kAnything}, false, false, Ref::kAcquires},
    {BPF_FUNC_sk_release, "sk_release", Ret::kInteger, {A::kSockRelease, _, _, _, _}, false},
    {BPF_FUNC_map_push_elem, "map_push_elem", Ret::kInteger, {A::kConstMapPtr, A::kMapValue, A::kAnything, _, _}, false},
    {BPF_FUNC_map_pop_elem, "map_pop_elem", Ret::kInteger, {A::kConstMapPtr, A::kUninitMapValue, _, _, _}, false},
    {BPF_FUNC_map_peek_elem, "map_peek_elem", Ret::kInteger, {A::kConstMapPtr, A::kUninitMapValue, _, _, _}, false},
    {BPF_FUNC_rc_pointer_rel, "rc_pointer_rel", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, true},
    {BPF_FUNC_spin_lock, "spin_lock", Ret::kVoid, {A::kSpinLock, _, _, _, _}, false},
    {BPF_FUNC_spin_unlock, "spin_unlock", Ret::kVoid, {A::kSpinLock, _, _, _, _}, false},
    {BPF_FUNC_skb_ecn_set_ce, "skb_ecn_set_ce", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_sk_fullsock, "sk_fullsock", Ret::kSocketOrNull, {A::kSockCommon, _, _, _, _}, false, false, Ref::kCasts},
    {BPF_FUNC_tcp_sock, "tcp_sock", Ret::kTcpSockOrNull, {A::kSockCommon, _, _, _, _}, false, false, Ref::kCasts},
    {BPF_FUNC_get_listener_sock, "get_listener_sock", Ret::kSocketOrNull, {A::kSockCommon, _, _, _, _}, false},
    {BPF_FUNC_skc_lookup_tcp, "skc_lookup_tcp", Ret::kSockCommonOrNull, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, A::kAnything}, false, false, Ref::kAcquires},
    {BPF_FUNC_tcp_check_syncookie, "tcp_check_syncookie", Ret::kInteger, {A::kBtfIdSockCommon, A::kMem, A::kConstSize, A::kMem, A::kConstSize}, false},
    {BPF_FUNC_sysctl_get_name, "sysctl_get_name", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSize, A::kAnything, _}, false},
    {BPF_FUNC_sysctl_get_current_value, "sysctl_get_current_value", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_sysctl_get_new_value, "sysctl_get_new_value", Ret::kInteger, {A::kCtx, A::kUninitMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_sysctl_set_new_value, "sysctl_set_new_value", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_send_signal, "send_signal", Ret::kInteger, {A::kAnything, _, _, _, _}, false},
    {BPF_FUNC_tcp_gen_syncookie, "tcp_gen_syncookie", Ret::kInteger, {A::kBtfIdSockCommon, A::kMem, A::kConstSize, A::kMem, A::kConstSize}, false},
    {BPF_FUNC_probe_read_user, "probe_read_user", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_probe_read_kernel, "probe_read_kernel", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_probe_read_user_str, "probe_read_user_str", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_probe_read_kernel_str, "probe_read_kernel_str", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_send_signal_thread, "send_signal_thread", Ret::kInteger, {A::kAnything, _, _, _, _}, false},
    {BPF_FUNC_jiffies64, "jiffies64", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_read_branch_records, "read_branch_records", Ret::kInteger, {A::kCtx, A::kMemOrNull, A::kConstSizeOrZero, A::kAnything, _}, true},
    {BPF_FUNC_get_ns_current_pid_tgid, "get_ns_current_pid_tgid", Ret::kInteger, {A::kAnything, A::kAnything, A::kUninitMem, A::kConstSize, _}, false},
    {BPF_FUNC_get_netns_cookie, "get_netns_cookie", Ret::kInteger, {A::kCtxOrNull, _, _, _, _}, false},
    {BPF_FUNC_get_current_ancestor_cgroup_id, "get_current_ancestor_cgroup_id", Ret::kInteger, {A::kAnything, _, _, _, _}, false},
    // tc's prototype; sk_lookup programs see another (kSkLookupAssign below).
    {BPF_FUNC_sk_assign, "sk_assign", Ret::kInteger, {A::kCtx, A::kBtfIdSockCommon, A::kAnything, _, _}, false},
    {BPF_FUNC_ktime_get_boot_ns, "ktime_get_boot_ns", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_sk_cgroup_id, "sk_cgroup_id", Ret::kInteger, {A::kBtfIdSockCommon, _, _, _, _}, false},
    {BPF_FUNC_sk_ancestor_cgroup_id, "sk_ancestor_cgroup_id", Ret::kInteger, {A::kBtfIdSockCommon, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ringbuf_output, "ringbuf_output", Ret::kInteger, {A::kConstMapPtr, A::kMem, A::kConstSizeOrZero, A::kAnything, _}, false},
    {BPF_FUNC_ringbuf_reserve, "ringbuf_reserve", Ret::kRingbufRecordOrNull, {A::kConstMapPtr, A::kConstAllocSizeOrZero, A::kAnything, _, _}, false, false, Ref::kAcquires},
    {BPF_FUNC_ringbuf_submit, "ringbuf_submit", Ret::kVoid, {A::kRingbufRecord, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ringbuf_discard, "ringbuf_discard", Ret::kVoid, {A::kRingbufRecord, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ringbuf_query, "ringbuf_query", Ret::kInteger, {A::kConstMapPtr, A::kAnything, _, _, _}, false},
    {BPF_FUNC_csum_level, "csum_level", Ret::kInteger, {A::kCtx, A::kAnything, _, _, _}, false},
    {BPF_FUNC_load_hdr_opt, "load_hdr_opt", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, _}, false},
    {BPF_FUNC_store_hdr_opt, "store_hdr_opt", Ret::kInteger, {A::kCtx, A::kMem, A::kConstSize, A::kAnything, _}, false},
    {BPF_FUNC_reserve_hdr_opt, "reserve_hdr_opt", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false},
    {BPF_FUNC_copy_from_user, "copy_from_user", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_skb_cgroup_classid, "skb_cgroup_classid", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_redirect_neigh, "redirect_neigh", Ret::kInteger, {A::kAnything, A::kMemOrNull, A::kConstSizeOrZero, A::kAnything, _}, false},
    {BPF_FUNC_redirect_peer, "redirect_peer", Ret::kInteger, {A::kAnything, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ktime_get_coarse_ns, "ktime_get_coarse_ns", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_for_each_map_elem, "for_each_map_elem", Ret::kInteger, {A::kConstMapPtr, A::kFunc, A::kStackOrNull, A::kAnything, _}, false},
    {BPF_FUNC_snprintf, "snprintf", Ret::kInteger, {A::kMemOrNull, A::kConstSizeOrZero, A::kConstStr, A::kMemOrNull, A::kConstSizeOrZero}, false},
    {BPF_FUNC_get_func_ip, "get_func_ip", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_attach_cookie, "get_attach_cookie", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_get_branch_snapshot, "get_branch_snapshot", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, _, _}, true},
    {BPF_FUNC_trace_vprintk, "trace_vprintk", Ret::kInteger, {A::kMem, A::kConstSize, A::kMemOrNull, A::kConstSizeOrZero, _}, true},
    {BPF_FUNC_loop, "loop", Ret::kInteger, {A::kAnything, A::kFunc, A::kStackOrNull, A::kAnything, _}, false},
    {BPF_FUNC_strncmp, "strncmp", Ret::kInteger, {A::kMem, A::kConstSize, A::kConstStr, _, _}, false},
    {BPF_FUNC_get_retval, "get_retval", Ret::kInteger, {_, _, _, _, _}, false},
    {BPF_FUNC_set_retval, "set_retval", Ret::kInteger, {A::kAnything, _, _, _, _}, false},
    {BPF_FUNC_xdp_get_buff_len, "xdp_get_buff_len", Ret::kInteger, {A::kCtx, _, _, _, _}, false},
    {BPF_FUNC_xdp_load_bytes, "xdp_load_bytes", Ret::kInteger, {A::kCtx, A::kAnything, A::kUninitMem, A::kConstSize, _}, false},
    {BPF_FUNC_xdp_store_bytes, "xdp_store_bytes", Ret::kInteger, {A::kCtx, A::kAnything, A::kMem, A::kConstSize, _}, false},
    {BPF_FUNC_skb_set_tstamp, "skb_set_tstamp", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, _, _}, false},
    {BPF_FUNC_map_lookup_percpu_elem, "map_lookup_percpu_elem", Ret::kMapValueOrNull, {A::kConstMapPtr, A::kMapKey, A::kAnything, _, _}, false},
    {BPF_FUNC_ktime_get_tai_ns, "ktime_get_tai_ns", Ret::kInteger, {_, _, _, _, _}, false},
    // sk_msg's data (net/core/filter.c): both may move the message's pages.
    {BPF_FUNC_msg_push_data, "msg_push_data", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, _}, false, true},
    {BPF_FUNC_msg_pop_data, "msg_pop_data", Ret::kInteger, {A::kCtx, A::kAnything, A::kAnything, A::kAnything, _}, false, true},
    // Kernel objects by their BTF type (ARG_PTR_TO_BTF_ID and RET_PTR_TO_BTF_ID*): tracing, LSM and
    // iterator programs' arguments, and the casts of a socket to its protocol's struct.
    {.id = BPF_FUNC_skb_output, .name = "skb_output", .ret = Ret::kInteger, .args = {A::kBtfId, A::kConstMapPtr, A::kAnything, A::kMem, A::kConstSizeOrZero}, .gpl_only = true, .btf_struct = "sk_buff"},
    {.id = BPF_FUNC_tcp_send_ack, .name = "tcp_send_ack", .ret = Ret::kInteger, .args = {A::kBtfId, A::kAnything, _, _, _}, .gpl_only = false, .btf_struct = "tcp_sock"},
    {.id = BPF_FUNC_xdp_output, .name = "xdp_output", .ret = Ret::kInteger, .args = {A::kBtfId, A::kConstMapPtr, A::kAnything, A::kMem, A::kConstSizeOrZero}, .gpl_only = true, .btf_struct = "xdp_buff"},
    {.id = BPF_FUNC_seq_printf, .name = "seq_printf", .ret = Ret::kInteger, .args = {A::kBtfId, A::kMem, A::kConstSize, A::kMemOrNull, A::kConstSizeOrZero}, .gpl_only = true, .btf_struct = "seq_file"},
    {.id = BPF_FUNC_seq_write, .name = "seq_write", .ret = Ret::kInteger, .args = {A::kBtfId, A::kMem, A::kConstSizeOrZero, _, _}, .gpl_only = true, .btf_struct = "seq_file"},
    {.id = BPF_FUNC_skc_to_tcp6_sock, .name = "skc_to_tcp6_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "tcp6_sock"},
    {.id = BPF_FUNC_skc_to_tcp_sock, .name = "skc_to_tcp_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "tcp_sock"},
    {.id = BPF_FUNC_skc_to_tcp_timewait_sock, .name = "skc_to_tcp_timewait_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "tcp_timewait_sock"},
    {.id = BPF_FUNC_skc_to_tcp_request_sock, .name = "skc_to_tcp_request_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "tcp_request_sock"},
    {.id = BPF_FUNC_skc_to_udp6_sock, .name = "skc_to_udp6_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "udp6_sock"},
    {.id = BPF_FUNC_skc_to_unix_sock, .name = "skc_to_unix_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "unix_sock"},
    {.id = BPF_FUNC_skc_to_mptcp_sock, .name = "skc_to_mptcp_sock", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfIdSockCommon, _, _, _, _}, .gpl_only = false, .ret_struct = "mptcp_sock"},
    {.id = BPF_FUNC_inode_storage_get, .name = "inode_storage_get", .ret = Ret::kMapValueOrNull, .args = {A::kConstMapPtr, A::kBtfIdOrNull, A::kMapValueOrNull, A::kAnything, _}, .gpl_only = false, .btf_struct = "inode"},
    {.id = BPF_FUNC_inode_storage_delete, .name = "inode_storage_delete", .ret = Ret::kInteger, .args = {A::kConstMapPtr, A::kBtfIdOrNull, _, _, _}, .gpl_only = false, .btf_struct = "inode"},
    {.id = BPF_FUNC_d_path, .name = "d_path", .ret = Ret::kInteger, .args = {A::kBtfId, A::kUninitMem, A::kConstSizeOrZero, _, _}, .gpl_only = false, .btf_struct = "path"},
    {.id = BPF_FUNC_snprintf_btf, .name = "snprintf_btf", .ret = Ret::kInteger, .args = {A::kUninitMem, A::kConstSize, A::kMem, A::kConstSize, A::kAnything}, .gpl_only = false},
    {.id = BPF_FUNC_seq_printf_btf, .name = "seq_printf_btf", .ret = Ret::kInteger, .args = {A::kBtfId, A::kMem, A::kConstSizeOrZero, A::kAnything, _}, .gpl_only = true, .btf_struct = "seq_file"},
    // The IMA measurement of an inode or a file into a buffer (bpf_lsm.c; at sleepable hooks only).
    {.id = BPF_FUNC_ima_inode_hash, .name = "ima_inode_hash", .ret = Ret::kInteger, .args = {A::kBtfId, A::kUninitMem, A::kConstSize, _, _}, .gpl_only = false, .btf_struct = "inode"},
    {.id = BPF_FUNC_ima_file_hash, .name = "ima_file_hash", .ret = Ret::kInteger, .args = {A::kBtfId, A::kUninitMem, A::kConstSize, _, _}, .gpl_only = false, .btf_struct = "file"},
    {.id = BPF_FUNC_bprm_opts_set, .name = "bprm_opts_set", .ret = Ret::kInteger, .args = {A::kBtfId, A::kAnything, _, _, _}, .gpl_only = false, .btf_struct = "linux_binprm"},
    {.id = BPF_FUNC_sock_from_file, .name = "sock_from_file", .ret = Ret::kBtfIdOrNull, .args = {A::kBtfId, _, _, _, _}, .gpl_only = false, .btf_struct = "file", .ret_struct = "socket"},
    {.id = BPF_FUNC_check_mtu, .name = "check_mtu", .ret = Ret::kInteger, .args = {A::kCtx, A::kAnything, A::kFixedMemWrite, A::kAnything, A::kAnything}, .gpl_only = false, .arg_size = {0, 0, 4, 0, 0}},
    // syscall programs (kernel/bpf/syscall.c): commands of bpf() from a program.
    {BPF_FUNC_sys_bpf, "sys_bpf", Ret::kInteger, {A::kAnything, A::kMem, A::kConstSize, _, _}, false},
    {BPF_FUNC_btf_find_by_name_kind, "btf_find_by_name_kind", Ret::kInteger, {A::kMem, A::kConstSize, A::kAnything, A::kAnything, _}, false},
    {BPF_FUNC_sys_close, "sys_close", Ret::kInteger, {A::kAnything, _, _, _, _}, false},
    {.id = BPF_FUNC_task_pt_regs, .name = "task_pt_regs", .ret = Ret::kBtfIdTrusted, .args = {A::kBtfId, _, _, _, _}, .gpl_only = false, .btf_struct = "task_struct", .ret_struct = "pt_regs"},
    // The traced task's mapping that holds an address, to a callback (kernel/bpf/task_iter.c).
    {.id = BPF_FUNC_find_vma, .name = "find_vma", .ret = Ret::kInteger, .args = {A::kBtfId, A::kAnything, A::kFunc, A::kStackOrNull, A::kAnything}, .gpl_only = false, .btf_struct = "task_struct"},
    {BPF_FUNC_kallsyms_lookup_name, "kallsyms_lookup_name", Ret::kInteger, {A::kMem, A::kConstSize, A::kAnything, A::kUninitLong, _}, false},
    // SYN cookies on raw headers (net/core/filter.c): the IP header and the TCP header at fixed sizes.
    {.id = BPF_FUNC_tcp_raw_gen_syncookie_ipv4, .name = "tcp_raw_gen_syncookie_ipv4", .ret = Ret::kInteger, .args = {A::kFixedMem, A::kMem, A::kConstSizeOrZero, _, _}, .gpl_only = true, .arg_size = {20, 0, 0, 0, 0}},
    {.id = BPF_FUNC_tcp_raw_gen_syncookie_ipv6, .name = "tcp_raw_gen_syncookie_ipv6", .ret = Ret::kInteger, .args = {A::kFixedMem, A::kMem, A::kConstSizeOrZero, _, _}, .gpl_only = true, .arg_size = {40, 0, 0, 0, 0}},
    {.id = BPF_FUNC_tcp_raw_check_syncookie_ipv4, .name = "tcp_raw_check_syncookie_ipv4", .ret = Ret::kInteger, .args = {A::kFixedMem, A::kFixedMem, _, _, _}, .gpl_only = true, .arg_size = {20, 20, 0, 0, 0}},
    {.id = BPF_FUNC_tcp_raw_check_syncookie_ipv6, .name = "tcp_raw_check_syncookie_ipv6", .ret = Ret::kInteger, .args = {A::kFixedMem, A::kFixedMem, _, _, _}, .gpl_only = true, .arg_size = {40, 20, 0, 0, 0}},
    // Dynptrs (kernel/bpf/helpers.c, ringbuf.c): a struct bpf_dynptr on the stack over a map value or a
    // ring buffer record, read, written and sliced by offset; the ring buffer's holds its reservation.
    {BPF_FUNC_dynptr_from_mem, "dynptr_from_mem", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kAnything, A::kDynptrUninitLocal, _}, false},
    {BPF_FUNC_ringbuf_reserve_dynptr, "ringbuf_reserve_dynptr", Ret::kInteger, {A::kConstMapPtr, A::kAnything, A::kAnything, A::kDynptrUninitRingbuf, _}, false},
    {BPF_FUNC_ringbuf_submit_dynptr, "ringbuf_submit_dynptr", Ret::kVoid, {A::kDynptrRingbufRelease, A::kAnything, _, _, _}, false},
    {BPF_FUNC_ringbuf_discard_dynptr, "ringbuf_discard_dynptr", Ret::kVoid, {A::kDynptrRingbufRelease, A::kAnything, _, _, _}, false},
    {BPF_FUNC_dynptr_read, "dynptr_read", Ret::kInteger, {A::kUninitMem, A::kConstSizeOrZero, A::kDynptr, A::kAnything, A::kAnything}, false},
    {BPF_FUNC_dynptr_write, "dynptr_write", Ret::kInteger, {A::kDynptr, A::kAnything, A::kMem, A::kConstSizeOrZero, A::kAnything}, false},
    {BPF_FUNC_dynptr_data, "dynptr_data", Ret::kDynptrMemOrNull, {A::kDynptr, A::kAnything, A::kConstAllocSizeOrZero, _, _}, false},
    // A ring buffer user space fills (BPF_MAP_TYPE_USER_RINGBUF): each sample to a callback, as a dynptr.
    {BPF_FUNC_user_ringbuf_drain, "user_ringbuf_drain", Ret::kInteger, {A::kConstMapPtr, A::kFunc, A::kStackOrNull, A::kAnything, _}, false},
    // A per-CPU kernel variable's copy for a CPU (a typed __ksym in .data..percpu, which bpfvm cannot
    // resolve in user space: no register is ever such a pointer here, so every call is refused, as the
    // kernel refuses one with any other argument).
    {BPF_FUNC_per_cpu_ptr, "per_cpu_ptr", Ret::kPercpuMemOrNull, {A::kPercpuBtfId, A::kAnything, _, _, _}, false},
    {BPF_FUNC_this_cpu_ptr, "this_cpu_ptr", Ret::kPercpuMem, {A::kPercpuBtfId, _, _, _, _}, false},
    // A referenced kptr of a map value swapped with a pointer the program holds (its reference goes into
    // the map) or NULL; the old one comes out with a reference the program must release.
    {.id = BPF_FUNC_kptr_xchg, .name = "kptr_xchg", .ret = Ret::kKptrOrNull, .args = {A::kKptrXchgDest, A::kKptrRelease, _, _, _}, .gpl_only = false, .ref = Ref::kAcquires},
    // Timers in map values (kernel/bpf/helpers.c): a callback the kernel runs later, on its own.
    {BPF_FUNC_timer_init, "timer_init", Ret::kInteger, {A::kTimer, A::kConstMapPtr, A::kAnything, _, _}, false},
    {BPF_FUNC_timer_set_callback, "timer_set_callback", Ret::kInteger, {A::kTimer, A::kFunc, _, _, _}, false},
    {BPF_FUNC_timer_start, "timer_start", Ret::kInteger, {A::kTimer, A::kAnything, A::kAnything, _, _}, false},
    {BPF_FUNC_timer_cancel, "timer_cancel", Ret::kInteger, {A::kTimer, _, _, _, _}, false},
    // Cgroup local storage (Linux 6.2; the uapi headers bpfvm builds with may predate it).
    {.id = 210, .name = "cgrp_storage_get", .ret = Ret::kMapValueOrNull, .args = {A::kConstMapPtr, A::kBtfIdOrNull, A::kMapValueOrNull, A::kAnything, _}, .gpl_only = false, .btf_struct = "cgroup"},
    {.id = 211, .name = "cgrp_storage_delete", .ret = Ret::kInteger, .args = {A::kConstMapPtr, A::kBtfIdOrNull, _, _, _}, .gpl_only = false, .btf_struct = "cgroup"},
};

// bpf_sk_lookup_assign_proto: an sk_lookup program assigns the socket its context or a lookup gave, or
// NULL to drop the assignment.
constexpr Prototype kSkLookupAssign = {BPF_FUNC_sk_assign, "sk_assign", Ret::kInteger, {A::kCtx, A::kSocketOrNull, A::kAnything, _, _}, false};
// A struct_ops program's socket options take its socket, not a context (bpf_sk_setsockopt_proto,
// bpf_sk_getsockopt_proto).
constexpr Prototype kSkSetsockopt = {BPF_FUNC_setsockopt, "setsockopt", Ret::kInteger, {A::kBtfIdSockCommon, A::kAnything, A::kAnything, A::kMem, A::kConstSize}, false};
constexpr Prototype kSkGetsockopt = {BPF_FUNC_getsockopt, "getsockopt", Ret::kInteger, {A::kBtfIdSockCommon, A::kAnything, A::kAnything, A::kUninitMem, A::kConstSize}, false};

}  // namespace

std::span<const Prototype> prototypes() { return kPrototypes; }

const Prototype* find_prototype(std::int64_t id, std::uint32_t prog_type) {
  if (id == BPF_FUNC_sk_assign && prog_type == BPF_PROG_TYPE_SK_LOOKUP) return &kSkLookupAssign;
  // (and a cgroup LSM program's, at the socket hooks that offer them: bpf_lsm_func_proto)
  const bool on_sock = prog_type == BPF_PROG_TYPE_STRUCT_OPS || prog_type == BPF_PROG_TYPE_LSM;
  if (id == BPF_FUNC_setsockopt && on_sock) return &kSkSetsockopt;
  if (id == BPF_FUNC_getsockopt && on_sock) return &kSkGetsockopt;
  return find_prototype(id);
}

bool takes_packet_pointers(std::int64_t id) {
  switch (id) {
    case BPF_FUNC_map_lookup_elem:
    case BPF_FUNC_map_update_elem:
    case BPF_FUNC_map_delete_elem:
    case BPF_FUNC_map_push_elem:
    case BPF_FUNC_csum_diff:
    case BPF_FUNC_sk_lookup_tcp:
    case BPF_FUNC_sk_lookup_udp:
    case BPF_FUNC_skc_lookup_tcp:
    case BPF_FUNC_tcp_check_syncookie:
    case BPF_FUNC_tcp_gen_syncookie:
    case 195:  // map_lookup_percpu_elem
    case 204: case 205: case 206: case 207:  // tcp_raw_gen/check_syncookie_ipv4/6
      return true;
    default: return false;
  }
}

bool might_sleep(std::int64_t id) {
  return id == BPF_FUNC_copy_from_user || id == BPF_FUNC_copy_from_user_task || id == BPF_FUNC_ima_inode_hash ||
         id == BPF_FUNC_ima_file_hash;
}

const Prototype* find_prototype(std::int64_t id) {
  const auto* it = std::find_if(std::begin(kPrototypes), std::end(kPrototypes), [&](const Prototype& p) { return p.id == id; });
  return it == std::end(kPrototypes) ? nullptr : it;
}

namespace {

struct TypeHelpers {
  std::uint32_t prog_type;
  std::initializer_list<std::uint8_t> ids;
};

// What the kernel offers each program type (its get_func_proto), as Linux answered a privileged loader
// when scripts/probe_helpers wrote the file; KernelOracle.HelpersAllowedPerProgramType asks the running
// kernel again.
const TypeHelpers kAllowedByType[] = {
#include "allowed_by_type.inc"
};

using Allowed = std::array<std::bitset<256>, 64>;

Allowed build_allowed() {
  Allowed out{};
  for (const TypeHelpers& t : kAllowedByType) {
    for (std::uint8_t id : t.ids) out[t.prog_type].set(id);
  }
  // Types the probe cannot load without an attach target build theirs as the kernel does. fentry/fexit,
  // tp_btf and iterators (tracing) and LSM programs get tracing_prog_func_proto, which a syscall
  // program's set also ends in (so take that set without syscall_prog_func_proto's own: sys_bpf,
  // btf_find_by_name_kind, sys_close, kallsyms_lookup_name); struct_ops and BPF_PROG_TYPE_EXT the
  // raw tracepoint's.
  for (std::uint32_t t : {26u, 29u}) {
    out[t] = out[BPF_PROG_TYPE_SYSCALL];
    for (std::size_t id : {BPF_FUNC_sys_bpf, BPF_FUNC_btf_find_by_name_kind, BPF_FUNC_sys_close, BPF_FUNC_kallsyms_lookup_name}) {
      out[t].reset(id);
    }
    // The trampoline's argument helpers (fentry/fexit/fmod_ret and LSM; allowed() narrows by attach type).
    for (std::size_t id : {BPF_FUNC_get_func_arg, BPF_FUNC_get_func_ret, BPF_FUNC_get_func_arg_cnt}) out[t].set(id);
  }
  // Iterators write into their seq_file (bpf_iter_get_func_proto).
  for (std::size_t id : {BPF_FUNC_seq_printf, BPF_FUNC_seq_write, BPF_FUNC_seq_printf_btf}) out[26].set(id);
  // bpf_lsm_func_proto's own: storage on inodes, exec options, the IMA hashes; a cgroup LSM program's
  // cgroup helpers (cgroup_common_func_proto) and socket options (allowed() and the platform narrow
  // these by attach type and hook).
  for (std::size_t id : {BPF_FUNC_inode_storage_get, BPF_FUNC_inode_storage_delete, BPF_FUNC_bprm_opts_set,
                         BPF_FUNC_ima_inode_hash, BPF_FUNC_ima_file_hash, BPF_FUNC_get_local_storage,
                         BPF_FUNC_get_retval, BPF_FUNC_set_retval, BPF_FUNC_setsockopt, BPF_FUNC_getsockopt}) {
    out[29].set(id);
  }
  // A trampoline's cookie (fentry/fexit/fmod_ret, tp_btf, LSM): allowed() narrows by attach type.
  out[26].set(BPF_FUNC_get_attach_cookie);
  out[29].set(BPF_FUNC_get_attach_cookie);
  out[28] = out[BPF_PROG_TYPE_RAW_TRACEPOINT];
  return out;
}

}  // namespace

bool allowed(std::uint32_t prog_type, std::int64_t id, std::uint32_t attach_type) {
  static const Allowed table = build_allowed();
  if (!find_prototype(id) || id < 0 || id > 255 || prog_type >= table.size()) return false;
  if (!table[prog_type].test(static_cast<std::size_t>(id))) return false;
  if (prog_type == BPF_PROG_TYPE_TRACING && attach_type != 0) {
    // What the kernel gives by attach type: the seq_file helpers to iterators only, the argument
    // helpers to trampolines only (tracing_prog_func_proto, bpf_iter_get_func_proto).
    const bool iter = attach_type == BPF_TRACE_ITER;
    const bool trampoline = attach_type == BPF_TRACE_FENTRY || attach_type == BPF_TRACE_FEXIT ||
                            attach_type == BPF_MODIFY_RETURN;
    switch (id) {
      case BPF_FUNC_seq_printf:
      case BPF_FUNC_seq_write:
      case BPF_FUNC_seq_printf_btf: return iter;
      case BPF_FUNC_get_func_arg:
      case BPF_FUNC_get_func_arg_cnt: return trampoline;
      case BPF_FUNC_get_func_ret: return attach_type == BPF_TRACE_FEXIT || attach_type == BPF_MODIFY_RETURN;
      // (tracing_prog_func_proto: a BTF tracepoint's link has a cookie too since Linux 6.10)
      case BPF_FUNC_get_attach_cookie: return trampoline || attach_type == BPF_TRACE_RAW_TP;
      default: break;
    }
  }
  if (prog_type == BPF_PROG_TYPE_LSM) {
    // bpf_lsm_func_proto: a cgroup LSM program (BPF_LSM_CGROUP) runs from the cgroup's shim, not a
    // trampoline of its own (bpf_prog_has_trampoline), and gets the cgroup helpers first; the socket
    // options are a cgroup program's only (at which hooks: the platform, which knows the hook).
    const bool cgroup = attach_type == BPF_LSM_CGROUP;
    switch (id) {
      case BPF_FUNC_get_attach_cookie:
      case BPF_FUNC_get_func_arg:
      case BPF_FUNC_get_func_arg_cnt:
      case BPF_FUNC_get_func_ret: return !cgroup;
      case BPF_FUNC_get_local_storage:
      case BPF_FUNC_get_retval:
      case BPF_FUNC_set_retval:
      case BPF_FUNC_setsockopt:
      case BPF_FUNC_getsockopt: return cgroup;
      default: break;
    }
  }
  return true;
}

bool allowed_struct_ops(std::string_view type, std::string_view member, std::int64_t id) {
  if (!find_prototype(id) || id < 0 || id > 255) return false;
  // What Linux 6.18 answered a privileged loader of a program at tcp_congestion_ops' ssthresh
  // (bpf_tcp_ca_get_func_proto: bpf_base_func_proto's, the socket storage, the socket options but in
  // release, tcp_send_ack); its bpf_dummy_ops offers none. KernelOracle.StructOpsHelpers asks again.
  static const std::bitset<256> tcp_ca = [] {
    std::bitset<256> b;
    for (int h : {1,   2,   3,   5,   6,   7,   8,   12,  14,  15,  16,  17,  22,  35,  37,  42,  49,  55,  57,  80,
                  87,  88,  89,  93,  94,  105, 106, 107, 108, 109, 112, 113, 114, 115, 116, 117, 118, 120, 123, 125,
                  130, 131, 132, 133, 134, 141, 148, 149, 153, 154, 156, 157, 158, 160, 164, 165, 169, 170, 171, 172,
                  175, 176, 177, 180, 181, 182, 191, 194, 195, 197, 198, 199, 200, 201, 202, 203, 208, 209, 210, 211}) {
      b.set(static_cast<std::size_t>(h));
    }
    return b;
  }();
  const auto h = static_cast<std::size_t>(id);
  if (type == "bpf_dummy_ops") return false;
  if (type == "tcp_congestion_ops") {
    if (member == "release" && (id == BPF_FUNC_setsockopt || id == BPF_FUNC_getsockopt)) return false;
    return tcp_ca.test(h);
  }
  // Another kernel's type (sched_ext_ops, hid_bpf_ops...), which this one does not have to ask: what every
  // get_func_proto ends in (bpf_base_func_proto), taken as tcp_congestion_ops' without its socket helpers.
  switch (id) {
    case BPF_FUNC_setsockopt:
    case BPF_FUNC_getsockopt:
    case BPF_FUNC_sk_storage_get:
    case BPF_FUNC_sk_storage_delete:
    case BPF_FUNC_tcp_send_ack: return false;
    default: return tcp_ca.test(h);
  }
}

}  // namespace bpfvm::helpers
