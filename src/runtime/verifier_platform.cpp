#include "bpfvm/runtime/verifier_platform.hpp"

#include <linux/bpf.h>

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <initializer_list>
#include <map>
#include <mutex>

#include <bpf/btf.h>

#include "bpfvm/helpers/prototype.hpp"
#include "bpfvm/obj/section_name.hpp"
#include "bpfvm/runtime/context.hpp"

namespace bpfvm::runtime {

namespace {

verifier::ArgType arg_type(helpers::Arg a) {
  using A = helpers::Arg;
  using V = verifier::ArgType;
  switch (a) {
    case A::kNone: return V::kNone;
    case A::kAnything: return V::kAnything;
    case A::kConstMapPtr: return V::kConstMapPtr;
    case A::kMapKey: return V::kMapKey;
    case A::kMapValue: return V::kMapValue;
    case A::kUninitMapValue: return V::kUninitMapValue;
    case A::kMem: return V::kMem;
    case A::kMemOrNull: return V::kMemOrNull;
    case A::kUninitMem: return V::kUninitMem;
    case A::kConstSize: return V::kConstSize;
    case A::kConstSizeOrZero: return V::kConstSizeOrZero;
    case A::kConstAllocSizeOrZero: return V::kConstAllocSizeOrZero;
    case A::kCtx: return V::kCtx;
    case A::kCtxOrNull: return V::kCtxOrNull;
    case A::kFunc: return V::kFunc;
    case A::kStackOrNull: return V::kStackOrNull;
    case A::kConstStr: return V::kConstStr;
    case A::kSpinLock: return V::kSpinLock;
    case A::kRingbufRecord: return V::kRingbufRecord;
    case A::kSockCommon: return V::kSockCommon;
    case A::kBtfIdSockCommon: return V::kBtfIdSockCommon;
    case A::kSockRelease: return V::kSockRelease;
    case A::kSocketOrNull: return V::kSocketOrNull;
    case A::kMapValueOrNull: return V::kMapValueOrNull;
    case A::kBtfId: return V::kBtfId;
    case A::kBtfIdOrNull: return V::kBtfIdOrNull;
    case A::kUninitLong: return V::kUninitLong;
    case A::kFixedMem: return V::kFixedMem;
    case A::kFixedMemWrite: return V::kFixedMemWrite;
    case A::kDynptr: return V::kDynptr;
    case A::kDynptrUninitLocal: return V::kDynptrUninitLocal;
    case A::kDynptrUninitRingbuf: return V::kDynptrUninitRingbuf;
    case A::kDynptrRingbufRelease: return V::kDynptrRingbufRelease;
    case A::kTimer: return V::kTimer;
    case A::kPercpuBtfId: return V::kPercpuBtfId;
    case A::kKptrXchgDest: return V::kKptrXchgDest;
    case A::kKptrRelease: return V::kKptrRelease;
  }
  return V::kNone;
}

verifier::RetType ret_type(helpers::Ret r) {
  switch (r) {
    case helpers::Ret::kInteger: return verifier::RetType::kInteger;
    case helpers::Ret::kVoid: return verifier::RetType::kVoid;
    case helpers::Ret::kMapValueOrNull: return verifier::RetType::kMapValueOrNull;
    case helpers::Ret::kMapValue: return verifier::RetType::kMapValue;
    case helpers::Ret::kRingbufRecordOrNull: return verifier::RetType::kRingbufRecordOrNull;
    case helpers::Ret::kSockCommonOrNull: return verifier::RetType::kSockCommonOrNull;
    case helpers::Ret::kSocketOrNull: return verifier::RetType::kSocketOrNull;
    case helpers::Ret::kTcpSockOrNull: return verifier::RetType::kTcpSockOrNull;
    case helpers::Ret::kBtfIdTrusted: return verifier::RetType::kBtfIdTrusted;
    case helpers::Ret::kBtfIdOrNull: return verifier::RetType::kBtfIdOrNull;
    case helpers::Ret::kDynptrMemOrNull: return verifier::RetType::kDynptrMemOrNull;
    case helpers::Ret::kPercpuMemOrNull: return verifier::RetType::kPercpuMemOrNull;
    case helpers::Ret::kPercpuMem: return verifier::RetType::kPercpuMem;
    case helpers::Ret::kKptrOrNull: return verifier::RetType::kKptrOrNull;
  }
  return verifier::RetType::kInteger;
}

verifier::HelperSignature signature(const helpers::Prototype& p) {
  verifier::HelperSignature s;
  s.name = p.name;
  s.ret = ret_type(p.ret);
  s.gpl_only = p.gpl_only;
  s.changes_packet = p.changes_packet;
  s.pkt_access = helpers::takes_packet_pointers(p.id);
  s.might_sleep = helpers::might_sleep(p.id);
  s.ref = p.ref == helpers::Ref::kAcquires ? verifier::RefEffect::kAcquires
          : p.ref == helpers::Ref::kCasts  ? verifier::RefEffect::kCasts
                                           : verifier::RefEffect::kNone;
  for (std::size_t i = 0; i < p.args.size(); ++i) s.args[i] = arg_type(p.args[i]);
  s.arg_struct = p.btf_struct;
  s.ret_struct = p.ret_struct;
  s.arg_size = p.arg_size;
  return s;
}

// The helper table in the verifier's terms, indexed like helpers::prototypes().
const std::vector<verifier::HelperSignature>& signatures() {
  // Never destroyed (as every table an agent's watcher reads: it may load a program while exit() runs).
  static const std::vector<verifier::HelperSignature>& table = *[] {
    auto* t = new std::vector<verifier::HelperSignature>;
    for (const helpers::Prototype& p : helpers::prototypes()) t->push_back(signature(p));
    return t;
  }();
  return table;
}

bool is_skb(std::uint32_t t) {
  return t == BPF_PROG_TYPE_SOCKET_FILTER || t == BPF_PROG_TYPE_SCHED_CLS || t == BPF_PROG_TYPE_SCHED_ACT;
}

}  // namespace

verifier::MapInfo VerifierPlatform::map_info(const maps::MapDef& def) {
  verifier::MapInfo m;
  m.type = def.type;
  m.key_size = def.key_size;
  m.value_size = def.value_size;
  m.max_entries = def.max_entries;
  m.read_only = (def.map_flags & BPF_F_RDONLY_PROG) != 0;
  m.spin_lock_off = def.spin_lock_off;
  m.timer_off = def.timer_off;
  m.name = def.name;
  // map_direct_value_addr: arrays of one entry (global data sections).
  m.direct_value = def.type == BPF_MAP_TYPE_ARRAY && def.max_entries == 1;
  return m;
}

Result<void> VerifierPlatform::add_kptrs(verifier::MapInfo& info, const obj::Btf& btf, std::uint32_t value_type_id) {
  for (obj::Btf::KptrField& f : BPFVM_TRY(btf.kptr_fields(value_type_id))) {
    info.kptrs.push_back({static_cast<std::int32_t>(f.offset), static_cast<verifier::MapInfo::Kptr::Kind>(f.kind),
                          std::move(f.pointee)});
  }
  return {};
}

VerifierPlatform::VerifierPlatform(std::uint32_t prog_type, std::vector<verifier::MapInfo> maps, bool gpl_compatible)
    : prog_type_(prog_type), maps_(std::move(maps)), gpl_(gpl_compatible) {}

const verifier::HelperSignature* VerifierPlatform::helper(std::int32_t id) const {
  const helpers::Prototype* p = helpers::find_prototype(id, prog_type_);
  if (!p) return nullptr;
  const auto protos = helpers::prototypes();
  if (p >= protos.data() && p < protos.data() + protos.size()) return &signatures()[static_cast<std::size_t>(p - protos.data())];
  // A type's own prototype of a helper (bpf_sk_assign in sk_lookup programs): few, kept once each.
  // (never destroyed, as the tables above: a watcher thread may verify while exit() runs)
  static std::mutex& mu = *new std::mutex;
  static auto& own = *new std::map<const helpers::Prototype*, verifier::HelperSignature>;
  const std::lock_guard lock(mu);
  return &own.try_emplace(p, signature(*p)).first->second;
}

namespace {

// The kernel's lists of LSM hooks (kernel/bpf/bpf_lsm.c), by name without bpf_lsm_.
bool in_list(std::string_view hook, std::initializer_list<std::string_view> list) {
  return std::find(list.begin(), list.end(), hook) != list.end();
}

// bpf_lsm_disabled_hooks: hooks whose calling convention a program cannot keep (a result through a
// pointer argument, a count to add to): refused by bpf_lsm_verify_prog.
bool lsm_hook_disabled(std::string_view hook) {
  return in_list(hook, {"vm_enough_memory", "inode_need_killpriv", "inode_getsecurity", "inode_listsecurity",
                        "inode_copy_up_xattr", "getselfattr", "getprocattr", "setprocattr", "key_getsecurity",
                        "audit_rule_match", "ismaclabel", "file_alloc_security"});
}

// sleepable_lsm_hooks: the hooks called where a program may sleep (lsm.s/HOOK; bpf_ima_*_hash).
bool lsm_hook_sleepable(std::string_view hook) {
  return in_list(hook, {"bpf", "bpf_map", "bpf_map_create", "bpf_map_free", "bpf_prog", "bpf_prog_load", "bpf_prog_free",
                        "bpf_token_create", "bpf_token_free", "bpf_token_cmd", "bpf_token_capable", "bprm_check_security",
                        "bprm_committed_creds", "bprm_committing_creds", "bprm_creds_for_exec", "bprm_creds_from_file",
                        "capget", "capset", "cred_prepare", "file_ioctl", "file_lock", "file_open", "file_post_open",
                        "file_receive", "inode_create", "inode_free_security", "inode_getattr", "inode_getxattr",
                        "inode_mknod", "inode_need_killpriv", "inode_post_setxattr", "inode_post_removexattr",
                        "inode_readlink", "inode_removexattr", "inode_rename", "inode_rmdir", "inode_setattr",
                        "inode_setxattr", "inode_symlink", "inode_unlink", "kernel_module_request", "kernel_read_file",
                        "kernfs_init_security", "path_unlink", "path_mkdir", "path_rmdir", "path_truncate",
                        "path_symlink", "path_link", "path_rename", "path_chmod", "path_chown", "mmap_file",
                        "netlink_send", "path_notify", "release_secctx", "sb_alloc_security", "sb_eat_lsm_opts",
                        "sb_kern_mount", "sb_mount", "sb_remount", "sb_set_mnt_opts", "sb_show_options", "sb_statfs",
                        "sb_umount", "settime", "inet_conn_established", "socket_accept", "socket_bind",
                        "socket_connect", "socket_create", "socket_getpeername", "socket_getpeersec_dgram",
                        "socket_getsockname", "socket_getsockopt", "socket_listen", "socket_post_create",
                        "socket_recvmsg", "socket_sendmsg", "socket_shutdown", "socket_socketpair", "syslog",
                        "task_alloc", "task_prctl", "task_setscheduler", "task_to_inode", "userns_create"});
}

// bpf_lsm_locked_sockopt_hooks and bpf_lsm_unlocked_sockopt_hooks: where a cgroup LSM program may set and
// read socket options (the socket locked, or not yet shared).
bool lsm_hook_has_sockopt(std::string_view hook) {
  return in_list(hook, {"sock_graft", "inet_csk_clone", "inet_conn_established", "socket_post_create", "socket_socketpair"});
}

// Whether `hook` is one of the kernel's LSM hooks (bpf_lsm_hooks, made from lsm_hook_defs.h): a member
// of its table of hooks, struct lsm_static_calls_table (Linux 6.8 on) or struct security_hook_heads
// (before). Other bpf_lsm_ functions (bpf_lsm_verify_prog...) are not. True when the BTF has neither.
bool is_lsm_hook(const obj::Btf& btf, std::string_view hook) {
  for (const char* table : {"lsm_static_calls_table", "security_hook_heads"}) {
    const std::uint32_t id = btf.find_struct(table, false);
    if (id == 0) continue;
    const btf_type* t = btf__type_by_id(btf.get(), id);
    const btf_member* m = btf_members(t);
    for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
      const char* n = btf__name_by_offset(btf.get(), m->name_off);
      if (n && hook == n) return true;
    }
    return false;
  }
  return true;
}

}  // namespace

bool VerifierPlatform::helper_allowed(std::int32_t id) const {
  if (prog_type_ == BPF_PROG_TYPE_STRUCT_OPS) return helpers::allowed_struct_ops(struct_ops_, struct_ops_member_, id);
  if (!helpers::allowed(prog_type_, id, attach_type_)) return false;
  // A cgroup LSM program's socket options, at the hooks that have a socket to set them on.
  if (prog_type_ == BPF_PROG_TYPE_LSM && (id == BPF_FUNC_setsockopt || id == BPF_FUNC_getsockopt)) {
    return lsm_hook_has_sockopt(lsm_hook_);
  }
  return true;
}

std::string VerifierPlatform::helper_refused_here(std::int32_t id) const {
  // bpf_ima_inode_hash_allowed: the IMA hashes at sleepable hooks only.
  if (prog_type_ == BPF_PROG_TYPE_LSM && (id == BPF_FUNC_ima_inode_hash || id == BPF_FUNC_ima_file_hash) &&
      !lsm_hook_sleepable(lsm_hook_)) {
    return fmt::format("the IMA hashes are computed where a program may sleep: at a sleepable LSM hook (lsm.s/HOOK), and "
                       "{} is not one (file_open, bprm_check_security, mmap_file... are)",
                       lsm_hook_);
  }
  return {};
}

const verifier::MapInfo* VerifierPlatform::map(std::int64_t handle) const {
  if (handle < 0 || static_cast<std::uint64_t>(handle) >= maps_.size()) return nullptr;
  return &maps_[static_cast<std::size_t>(handle)];
}

namespace {

// A type with its modifiers (const, volatile, restrict, type tags) and typedefs looked through.
std::uint32_t skip_mods(const btf* b, std::uint32_t id) {
  for (int depth = 0; depth < 64; ++depth) {
    const btf_type* t = btf__type_by_id(b, id);
    if (!t || !(btf_is_mod(t) || btf_is_typedef(t))) return id;
    id = t->type;
  }
  return id;
}

// The kernel's list of BTF tracepoints whose arguments may be NULL though their names do not say so
// (kernel/bpf/btf.c, raw_tp_null_args): bit N set for the N-th argument (1-based), as Linux 6.18
// answers (KernelOracle.BtfTracepointArgumentsThatMayBeNull asks it for every tracepoint).
std::uint32_t tracepoint_null_args(std::string_view typedef_name) {
  static const std::pair<std::string_view, std::uint32_t> kList[] = {
      {"sched_pi_setprio", 1u << 2}, {"sched_stick_numa", 1u << 3}, {"sched_swap_numa", 1u << 3},
      {"afs_make_fs_call", 1u << 2}, {"afs_make_fs_calli", 1u << 2}, {"afs_make_fs_call1", 1u << 2},
      {"afs_make_fs_call2", 1u << 2}, {"afs_protocol_error", 1u << 1}, {"afs_flock_ev", 1u << 2},
      {"cachefiles_lookup", 1u << 1}, {"cachefiles_unlink", 1u << 1}, {"cachefiles_rename", 1u << 1},
      {"cachefiles_prep_read", 1u << 1}, {"cachefiles_mark_active", 1u << 1}, {"cachefiles_mark_failed", 1u << 1},
      {"cachefiles_mark_inactive", 1u << 1}, {"cachefiles_vfs_error", 1u << 1}, {"cachefiles_io_error", 1u << 1},
      {"cachefiles_ondemand_open", 1u << 1}, {"cachefiles_ondemand_copen", 1u << 1},
      {"cachefiles_ondemand_close", 1u << 1}, {"cachefiles_ondemand_read", 1u << 1},
      {"cachefiles_ondemand_cread", 1u << 1}, {"cachefiles_ondemand_fd_write", 1u << 1},
      {"cachefiles_ondemand_fd_release", 1u << 1}, {"ext4_mballoc_discard", 1u << 2}, {"ext4_mballoc_free", 1u << 2},
      {"fib_table_lookup", 1u << 3}, {"posix_lock_inode", 1u << 2}, {"fcntl_setlk", 1u << 2},
      {"locks_remove_posix", 1u << 2}, {"flock_lock_inode", 1u << 2}, {"break_lease_noblock", 1u << 2},
      {"break_lease_block", 1u << 2}, {"break_lease_unblock", 1u << 2}, {"generic_delete_lease", 1u << 2},
      {"time_out_leases", 1u << 2}, {"host1x_cdma_push_gather", 1u << 5}, {"mm_khugepaged_scan_pmd", 1u << 2},
      {"mm_collapse_huge_page_isolate", 1u << 1}, {"mm_khugepaged_scan_file", 1u << 2},
      {"mm_khugepaged_collapse_file", 1u << 2}, {"mm_page_alloc", 1u << 1}, {"mm_page_pcpu_drain", 1u << 1},
      {"mm_page_alloc_zone_locked", 1u << 1}, {"netfs_failure", 1u << 2}, {"device_pm_callback_start", 1u << 2},
      {"qdisc_dequeue", 1u << 4}, {"rxrpc_recvdata", 1u << 1}, {"rxrpc_resend", 1u << 2},
      {"xs_stream_read_data", 1u << 1}, {"tcp_send_reset", 1u << 1 | 1u << 2}, {"tegra_dma_tx_status", 1u << 3},
      {"tmigr_update_events", 1u << 1}, {"writeback_dirty_folio", 1u << 2}, {"folio_wait_writeback", 1u << 2},
      {"kfree_skb", 1u << 4}, {"sched_process_wait", 1u << 1}, {"hugetlbfs_alloc_inode", 1u << 2},
      {"tcp_sendmsg_locked", 1u << 3}, {"xfs_inodegc_flush", 1u << 1}, {"xfs_inodegc_push", 1u << 1},
      {"xfs_inodegc_start", 1u << 1}, {"xfs_inodegc_stop", 1u << 1}, {"xfs_inodegc_queue", 1u << 1},
      {"xfs_inodegc_throttle", 1u << 1}, {"xfs_fs_sync_fs", 1u << 1}, {"xfs_blockgc_start", 1u << 1},
      {"xfs_blockgc_stop", 1u << 1}, {"xfs_blockgc_worker", 1u << 1}, {"xfs_blockgc_flush_all", 1u << 1},
      {"xfs_map_blocks_found", 1u << 5}, {"xfs_map_blocks_alloc", 1u << 5}, {"xfs_defer_create_intent", 1u << 1},
      {"xfs_defer_cancel_list", 1u << 1}, {"xfs_defer_pending_finish", 1u << 1}, {"xfs_defer_pending_abort", 1u << 1},
      {"xfs_defer_relog_intent", 1u << 1}, {"xfs_defer_isolate_paused", 1u << 1}, {"xfs_defer_item_pause", 1u << 1},
      {"xfs_defer_item_unpause", 1u << 1}, {"xfs_defer_add_item", 1u << 1}, {"xfs_defer_cancel_item", 1u << 1},
      {"xfs_defer_finish_item", 1u << 1}, {"xfs_ioc_free_eofblocks", 1u << 2}, {"xfs_blockgc_free_space", 1u << 2},
  };
  if (!typedef_name.starts_with("btf_trace_")) return 0;
  const std::string_view tp = typedef_name.substr(10);
  for (const auto& [name, mask] : kList) {
    if (name == tp) return mask;
  }
  return 0;
}

// The BTF tracepoint arguments that may hold a pointer that is none (an ERR_PTR, SEND_SIG_PRIV), which
// the kernel gives as numbers (btf_ctx_access): mr_integ_alloc's 4th, cachefiles_lookup's 3rd, the
// siginfo of signal_generate and signal_deliver. `arg` is 0-based.
bool tracepoint_error_arg(std::string_view typedef_name, std::size_t arg) {
  return (typedef_name == "btf_trace_mr_integ_alloc" && arg == 3) || (typedef_name == "btf_trace_cachefiles_lookup" && arg == 2) ||
         (typedef_name == "btf_trace_signal_generate" && arg == 1) || (typedef_name == "btf_trace_signal_deliver" && arg == 1);
}

// A parameter the kernel takes as possibly NULL: its name ends in "__nullable" (btf_param_match_suffix).
bool nullable(const btf* b, std::uint32_t name_off) {
  const char* n = btf__name_by_offset(b, name_off);
  const std::string_view name = n ? n : "";
  return name.size() > 10 && name.ends_with("__nullable");
}

bool is_composite(const btf* b, std::uint32_t id) {
  const btf_type* t = btf__type_by_id(b, id);
  return t && btf_is_composite(t);
}

// What a load of `size` bytes at `off` in an object of type `id` finds (the kernel's btf_struct_walk):
// a scalar inside one member, a whole pointer member (to a struct: another object), or a refusal.
verifier::BtfField walk(const btf* b, std::uint32_t id, std::int64_t off, std::uint32_t size, int depth) {
  using R = verifier::BtfField::Result;
  auto denied = [](std::string why) { return verifier::BtfField{R::kDenied, 0, std::move(why)}; };
  id = skip_mods(b, id);
  const btf_type* t = btf__type_by_id(b, id);
  if (!t || depth > 32) return denied("the type cannot be walked");
  const std::string name = btf__name_by_offset(b, t->name_off) ? btf__name_by_offset(b, t->name_off) : "";
  const long long tsize = btf__resolve_size(b, id);
  if (off < 0) return denied("a negative offset");
  if (btf_is_array(t)) {
    const struct btf_array* a = btf_array(t);
    const long long esize = btf__resolve_size(b, a->type);
    if (esize <= 0 || off >= esize * a->nelems) return denied("past the end of the array");
    // An array of numbers may be read across its elements, up to its end (btf_struct_walk checks an
    // int against mtrue_end, the array's end: task->comm copied 8 bytes at a time).
    const btf_type* elem = btf__type_by_id(b, skip_mods(b, a->type));
    if (elem && !btf_is_composite(elem) && !btf_is_ptr(elem) && !btf_is_array(elem)) {
      if (off + size > esize * a->nelems) {
        return denied(fmt::format("access beyond the end of a {}-byte array", esize * a->nelems));
      }
      return {R::kScalar, 0, {}};
    }
    return walk(b, a->type, off % esize, size, depth + 1);
  }
  if (btf_is_ptr(t)) {
    if (off != 0 || size != 8) return denied("a pointer member is read whole (8 bytes at its offset)");
    const std::uint32_t to = skip_mods(b, t->type);
    return is_composite(b, to) ? verifier::BtfField{R::kPointer, to, {}} : verifier::BtfField{R::kScalar, 0, {}};
  }
  if (!btf_is_composite(t)) {
    if (tsize <= 0 || off + size > tsize) return denied(fmt::format("access beyond the end of a {}-byte member", tsize));
    return {R::kScalar, 0, {}};
  }
  if (off + size > tsize) {
    return denied(fmt::format("access beyond struct {} (its size is {})", name.empty() ? "(anon)" : name, tsize));
  }
  // The members that hold [off, off + size): the first that allows the access (a union's members
  // overlap).
  const btf_member* m = btf_members(t);
  verifier::BtfField found = denied(fmt::format("struct {} has no field at offset {}", name.empty() ? "(anon)" : name, off));
  for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
    const std::uint32_t bits = btf_member_bitfield_size(t, i);
    const std::int64_t moff = btf_member_bit_offset(t, i) / 8;
    if (bits) {
      const std::int64_t mend = (btf_member_bit_offset(t, i) + bits + 7) / 8;
      if (off >= moff && off + size <= mend) return {R::kScalar, 0, {}};
      continue;
    }
    const long long msize = btf__resolve_size(b, m->type);
    if (msize < 0 || off < moff || off >= moff + msize) continue;
    verifier::BtfField r = walk(b, m->type, off - moff, size, depth + 1);
    if (r.result != R::kDenied) return r;
    found = r;
  }
  return found;
}

}  // namespace

Result<std::uint32_t> VerifierPlatform::find_btf_target(const obj::Btf& btf, std::uint32_t expected_attach_type,
                                                         std::string_view name) {
  const bool raw_tp = expected_attach_type == BPF_TRACE_RAW_TP;
  // (libbpf's prefixes: a BTF tracepoint is the typedef btf_trace_NAME, an iterator the function
  // bpf_iter_NAME)
  const std::string wanted = raw_tp                                    ? "btf_trace_" + std::string(name)
                             : expected_attach_type == BPF_TRACE_ITER ? "bpf_iter_" + std::string(name)
                                                                        : std::string(name);
  const int id = btf__find_by_name_kind(btf.get(), wanted.c_str(), raw_tp ? BTF_KIND_TYPEDEF : BTF_KIND_FUNC);
  if (id <= 0) {
    return make_error(Errc::kNotFound, "the kernel's BTF has no {} '{}' for this {} program to attach to",
                      raw_tp ? "raw tracepoint" : "function", name, raw_tp ? "tp_btf" : "fentry/fexit");
  }
  return static_cast<std::uint32_t>(id);
}

Result<void> VerifierPlatform::set_btf_target(std::shared_ptr<const obj::Btf> btf, std::uint32_t attach_btf_id) {
  const struct btf* b = btf->get();
  const btf_type* t = btf__type_by_id(b, attach_btf_id);
  if (!t) return make_error(Errc::kInvalid, "attach_btf_id {} is not a type of the kernel's BTF", attach_btf_id);
  target_name_ = btf__name_by_offset(b, t->name_off) ? btf__name_by_offset(b, t->name_off) : "";
  // tp_btf: btf_trace_NAME is a typedef of a pointer to a prototype whose first parameter is the
  // tracepoint's own `void *__data`, not an argument of the program.
  bool skip_first = false;
  if (btf_is_typedef(t)) {
    const btf_type* p = btf__type_by_id(b, t->type);
    if (!p || !btf_is_ptr(p)) return make_error(Errc::kInvalid, "'{}' is not a raw tracepoint's type", target_name_);
    t = btf__type_by_id(b, p->type);
    skip_first = true;
  } else if (btf_is_func(t)) {
    t = btf__type_by_id(b, t->type);
  } else {
    return make_error(Errc::kInvalid, "attach_btf_id {} ('{}') is neither a function nor a raw tracepoint",
                      attach_btf_id, target_name_);
  }
  if (!t || !btf_is_func_proto(t)) return make_error(Errc::kInvalid, "'{}' has no prototype", target_name_);
  // A tracepoint's arguments that may be NULL: its typedef's prototype has no names, the function that
  // calls its programs (__bpf_trace_NAME, or __probestub_NAME) names them "..__nullable", as the
  // kernel's btf_ctx_access finds them (tcp_send_reset's skb).
  const btf_type* named = t;
  if (skip_first && target_name_.starts_with("btf_trace_")) {
    const std::string tp = target_name_.substr(10);
    for (const std::string& f : {"__bpf_trace_" + tp, "__probestub_" + tp}) {
      const std::uint32_t id = btf->find_func(f);
      const btf_type* fp = id > 0 ? btf__type_by_id(b, btf__type_by_id(b, id)->type) : nullptr;
      if (fp && btf_is_func_proto(fp) && btf_vlen(fp) == btf_vlen(t)) {
        named = fp;
        break;
      }
    }
  }
  target_args_.clear();
  nullable_args_.clear();
  error_args_.clear();
  const btf_param* p = btf_params(t);
  const std::uint32_t listed = skip_first ? tracepoint_null_args(target_name_) : 0;
  for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++p) {
    if (skip_first && i == 0) continue;
    const std::size_t arg = target_args_.size();  // (0-based, without __data)
    target_args_.push_back(p->type);
    nullable_args_.push_back(nullable(b, btf_params(named)[i].name_off) || (listed >> (arg + 1) & 1));
    error_args_.push_back(skip_first && tracepoint_error_arg(target_name_, arg));
  }
  target_params_ = static_cast<std::uint32_t>(target_args_.size());
  // fexit also sees the return value, after the arguments.
  if (attach_type_ == BPF_TRACE_FEXIT && t->type != 0) target_args_.push_back(t->type);
  target_btf_ = std::move(btf);
  return {};
}

Result<void> VerifierPlatform::set_lsm_target(std::shared_ptr<const obj::Btf> btf, std::uint32_t attach_btf_id) {
  const std::string name(btf->type_name(attach_btf_id));
  const btf_type* t = btf__type_by_id(btf->get(), attach_btf_id);
  const std::string hook = name.starts_with("bpf_lsm_") ? name.substr(8) : "";
  // In the kernel's order: bpf_check_attach_target (a sleepable program's hook), then bpf_lsm_verify_prog.
  if (t && btf_is_func(t) && sleepable_ && !lsm_hook_sleepable(hook)) {
    return make_error(Errc::kInvalid, "{} is not sleepable: only the LSM hooks called where a program may sleep take a "
                                      "sleepable program (lsm.s/); load it as lsm/{}", name, hook.empty() ? name : hook);
  }
  if (!gpl_) return make_error(Errc::kInvalid, "LSM programs must have a GPL compatible license");
  if (t && btf_is_func(t) && lsm_hook_disabled(hook)) {
    return make_error(Errc::kInvalid, "attach_btf_id {} points to disabled hook {}: the kernel lets no BPF program "
                                      "implement this hook", attach_btf_id, name);
  }
  if (!t || !btf_is_func(t) || hook.empty() || !is_lsm_hook(*btf, hook)) {
    return make_error(Errc::kInvalid, "attach_btf_id {} points to wrong type name {}", attach_btf_id, name);
  }
  lsm_hook_ = hook;
  const btf_type* proto = btf__type_by_id(btf->get(), t->type);
  const bool returns = proto && btf_is_func_proto(proto) && proto->type != 0;
  BPFVM_TRY(set_btf_target(std::move(btf), attach_btf_id));
  // bpf_lsm_get_retval_range: the hooks that answer yes or no, and those that answer 0 or -errno.
  const bool boolean = name == "bpf_lsm_xfrm_state_pol_flow_match" || name == "bpf_lsm_audit_rule_known" ||
                       name == "bpf_lsm_inode_xattr_skipcap";
  lsm_ret_ = !returns ? LsmReturn::kVoid : boolean ? LsmReturn::kBool : LsmReturn::kErrno;
  // A cgroup LSM program (BPF_LSM_CGROUP) answers allow (1) or deny (0), 1 at a void hook; r0 is read.
  if (attach_type_ == BPF_LSM_CGROUP && lsm_ret_ == LsmReturn::kVoid) lsm_ret_ = LsmReturn::kCgroupVoid;
  return {};
}

Result<std::pair<std::uint32_t, std::uint32_t>> VerifierPlatform::find_struct_ops_target(const obj::Btf& btf,
                                                                                     std::string_view name) {
  const auto colon = name.find(':');
  if (colon == std::string_view::npos) {
    return make_error(Errc::kInvalid,
                      "a struct_ops program runs as a member of a struct_ops variable (SEC(\".struct_ops\")); no "
                      "member of one points to this program");
  }
  const std::string type(name.substr(0, colon));
  const std::string_view member = name.substr(colon + 1);
  const std::uint32_t id = btf.find_struct(type, false);
  if (id == 0) return make_error(Errc::kNotFound, "the kernel's BTF has no struct_ops type 'struct {}'", type);
  const btf_type* t = btf__type_by_id(btf.get(), id);
  const btf_member* m = btf_members(t);
  for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
    const char* n = btf__name_by_offset(btf.get(), m->name_off);
    if (n && member == n) return std::pair<std::uint32_t, std::uint32_t>{id, i};
  }
  return make_error(Errc::kNotFound, "the kernel's struct {} has no member '{}'", type, member);
}

Result<void> VerifierPlatform::set_struct_ops_target(std::shared_ptr<const obj::Btf> btf, std::uint32_t struct_id,
                                                     std::uint32_t member) {
  // check_struct_ops_btf_id, in its order.
  if (!gpl_) return make_error(Errc::kInvalid, "struct ops programs must have a GPL compatible license");
  const struct btf* b = btf->get();
  const btf_type* t = btf__type_by_id(b, struct_id);
  const char* tn = t && btf_is_struct(t) ? btf__name_by_offset(b, t->name_off) : nullptr;
  // The kernel's struct_ops types are those it registered, each with a bpf_struct_ops_NAME value type.
  if (!tn || !*tn || btf->find_struct(std::string("bpf_struct_ops_") + tn, false) == 0) {
    return make_error(Errc::kNotSupported, "attach_btf_id {} is not a supported struct", struct_id);
  }
  const std::string type = tn;
  if (member >= btf_vlen(t)) return make_error(Errc::kInvalid, "attach to invalid member idx {} of struct {}", member, type);
  const btf_member* m = btf_members(t) + member;
  const std::string mname = btf__name_by_offset(b, m->name_off) ? btf__name_by_offset(b, m->name_off) : "";
  const btf_type* ptr = btf__type_by_id(b, skip_mods(b, m->type));
  const btf_type* proto = ptr && btf_is_ptr(ptr) ? btf__type_by_id(b, skip_mods(b, ptr->type)) : nullptr;
  if (!proto || !btf_is_func_proto(proto)) {
    return make_error(Errc::kInvalid, "attach to invalid member {}(@idx {}) of struct {}", mname, member, type);
  }
  // A member the type's cfi stubs leave out (bpf_struct_ops_supported): tcp_congestion_ops' get_info.
  if (type == "tcp_congestion_ops" && mname == "get_info") {
    return make_error(Errc::kNotSupported, "attach to unsupported member {} of struct {}", mname, type);
  }
  target_args_.clear();
  nullable_args_.clear();
  error_args_.clear();
  const btf_param* p = btf_params(proto);
  for (std::uint16_t i = 0; i < btf_vlen(proto); ++i, ++p) target_args_.push_back(p->type);
  // Which arguments may be NULL: the member's stub function (TYPE__MEMBER, the kernel's cfi_stubs) names
  // them "..__nullable" (bpf_struct_ops_desc_init).
  const std::uint32_t stub = btf->find_func(type + "__" + mname);
  const btf_type* stub_proto = stub > 0 ? btf__type_by_id(b, btf__type_by_id(b, stub)->type) : nullptr;
  for (std::uint16_t i = 0; i < btf_vlen(proto); ++i) {
    const bool named = stub_proto && btf_is_func_proto(stub_proto) && i < btf_vlen(stub_proto);
    nullable_args_.push_back(named && nullable(b, btf_params(stub_proto)[i].name_off));
  }
  target_params_ = static_cast<std::uint32_t>(target_args_.size());
  target_name_ = mname;  // (the kernel's attach_func_name)
  struct_ops_ = type;
  struct_ops_member_ = mname;
  struct_ops_void_ = proto->type == 0;
  if (type == "tcp_congestion_ops") {
    sock_id_ = btf->find_struct("sock", false);
    tcp_sock_id_ = btf->find_struct("tcp_sock", false);
  }
  target_btf_ = std::move(btf);
  find_writable_fields();
  return {};
}

void VerifierPlatform::find_writable_fields() {
  // bpf_tcp_ca_btf_struct_access, as Linux 6.18 answers (KernelOracle.StructOpsContextsAndWrites stores
  // at every offset): a congestion control's own state in its tcp_sock, each field from its start, its
  // private area (icsk_ca_priv) anywhere.
  writable_.clear();
  if (struct_ops_ != "tcp_congestion_ops" || tcp_sock_id_ == 0) return;
  // (paths from the tcp_sock through its first members: inet_connection_sock, inet_sock, sock)
  static constexpr std::string_view kFields[] = {
      "inet_conn.icsk_inet.sk.sk_pacing_rate", "inet_conn.icsk_inet.sk.sk_pacing_status", "inet_conn.icsk_ca_priv",
      "inet_conn.icsk_ack.pending", "snd_cwnd", "snd_cwnd_cnt", "snd_ssthresh", "ecn_flags", "app_limited",
      "snd_cwnd_stamp",
  };
  for (const std::string_view path : kFields) {
    if (const auto f = target_btf_->member_place(tcp_sock_id_, path)) {
      writable_.push_back({f->offset, f->size, path.ends_with("icsk_ca_priv")});
    }
  }
}

verifier::BtfField VerifierPlatform::btf_write(std::uint32_t type_id, std::int64_t off, std::uint32_t size) const {
  using R = verifier::BtfField::Result;
  // Other types' programs (and tracing programs) write no kernel object.
  if (writable_.empty() || type_id != tcp_sock_id_) return {R::kDenied, 0, "only read is supported"};
  for (const Writable& w : writable_) {
    if (w.anywhere ? (off < w.off || off >= w.off + w.size) : off != w.off) continue;
    if (off + size > w.off + w.size) {
      return {R::kDenied, 0,
              fmt::format("write access at off {} with size {} beyond the member of tcp_sock ended at {}", off, size,
                          w.off + w.size)};
    }
    return {R::kScalar, 0, {}};
  }
  return {R::kDenied, 0, fmt::format("no write support to tcp_sock at off {}", off)};
}

verifier::BtfField VerifierPlatform::btf_access(std::uint32_t type_id, std::int64_t off, std::uint32_t size) const {
  if (!target_btf_) return {verifier::BtfField::Result::kDenied, 0, "this program has no kernel types"};
  return walk(target_btf_->get(), type_id, off, size, 0);
}

std::uint32_t VerifierPlatform::btf_struct_id(std::string_view name) const {
  return target_btf_ ? target_btf_->find_struct(name, false) : 0;
}

bool VerifierPlatform::btf_struct_at(std::uint32_t have, std::int64_t off, std::uint32_t want) const {
  if (!target_btf_) return off == 0 && have == want;
  const struct btf* b = target_btf_->get();
  // Down through the members that start at or contain `off` and are structs themselves, as the
  // kernel's btf_struct_ids_match dives into nested structs until the types are the same.
  for (int depth = 0; depth < 32; ++depth) {
    have = skip_mods(b, have);
    if (off == 0 && have == want) return true;
    const btf_type* t = btf__type_by_id(b, have);
    if (!t || !btf_is_composite(t)) return false;
    const btf_member* m = btf_members(t);
    bool found = false;
    for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
      const std::int64_t moff = btf_member_bit_offset(t, i) / 8;
      const std::uint32_t mt = skip_mods(b, m->type);
      const btf_type* mtt = btf__type_by_id(b, mt);
      if (!mtt || !btf_is_composite(mtt)) continue;
      const std::int64_t msize = btf__resolve_size(b, mt);
      if (off >= moff && off < moff + std::max<std::int64_t>(msize, 1)) {
        have = mt;
        off -= moff;
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return false;
}

void VerifierPlatform::use_kernel_types(std::shared_ptr<const obj::Btf> btf) {
  if (!target_btf_) target_btf_ = std::move(btf);
}

std::string VerifierPlatform::btf_type_name(std::uint32_t type_id) const {
  if (!target_btf_) return {};
  const btf_type* t = btf__type_by_id(target_btf_->get(), type_id);
  const char* n = t ? btf__name_by_offset(target_btf_->get(), t->name_off) : nullptr;
  return n ? n : "";
}

verifier::CtxField VerifierPlatform::ctx_access(std::int32_t off, std::uint32_t size, bool write) const {
  using R = verifier::CtxField::Result;
  if (prog_type_ == BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE) {
    // raw_tp_writable_prog_is_valid_access: args[0] is the tracepoint's writable buffer; the rest are a
    // raw tracepoint's arguments.
    if (off == 0 && size == 8 && !write) return {R::kTpBuffer, {}};
    return runtime::context_field(BPF_PROG_TYPE_RAW_TRACEPOINT, off, size, write);
  }
  if (prog_type_ == BPF_PROG_TYPE_SYSCALL) {
    // syscall_prog_is_valid_access: the caller's bytes, read or written, below U16_MAX, each access at
    // its own alignment.
    (void)write;
    if (off < 0 || off >= static_cast<std::int32_t>(kSyscallContextMax) || off % static_cast<std::int32_t>(size) != 0) {
      return {R::kDenied, "a syscall program's context is ctx_in's bytes below 64 KiB, each access aligned to its size"};
    }
    return {R::kScalar, {}};
  }
  if (prog_type_ == BPF_PROG_TYPE_TRACING || prog_type_ == BPF_PROG_TYPE_STRUCT_OPS ||
      (prog_type_ == BPF_PROG_TYPE_LSM && lsm_ret_ != LsmReturn::kNone)) {
    // The context is the target's arguments, a u64 each (bpf_tracing_btf_ctx_access, btf_ctx_access; a
    // struct_ops member's: the type's is_valid_access, the same).
    if (prog_type_ == BPF_PROG_TYPE_STRUCT_OPS && struct_ops_.empty()) {
      return {R::kDenied, "a struct_ops program's context is its member's arguments, and no member was named"};
    }
    if (!target_btf_) {
      return {R::kDenied, "a tracing program's context is its target's arguments, and no target was named (attach_btf_id)"};
    }
    if (write) return {R::kDenied, "the arguments are read-only"};
    if (off < 0 || size == 0 || off % static_cast<std::int32_t>(size) != 0) return {R::kDenied, "a misaligned argument"};
    const auto arg = static_cast<std::size_t>(off / 8);
    if (arg >= target_args_.size() || (off % 8) + size > 8) {
      return {R::kDenied, fmt::format("func '{}' doesn't have {}-th argument", target_name_, arg)};
    }
    const struct btf* b = target_btf_->get();
    const btf_type* t = btf__type_by_id(b, skip_mods(b, target_args_[arg]));
    if (arg < error_args_.size() && error_args_[arg]) return {R::kScalar, {}};
    if (t && btf_is_ptr(t)) {
      const std::uint32_t to = skip_mods(b, t->type);
      if (is_composite(b, to)) {
        if (size != 8) return {R::kDenied, "a pointer argument is read whole (8 bytes)"};
        // A TCP congestion control's socket is a tcp_sock (bpf_tcp_ca_is_valid_access).
        const bool maybe_null = arg < nullable_args_.size() && nullable_args_[arg];
        if (to == sock_id_ && tcp_sock_id_ != 0) return {R::kBtfPointer, {}, tcp_sock_id_, maybe_null};
        return {R::kBtfPointer, {}, to, maybe_null};
      }
    }
    return {R::kScalar, {}};
  }
  return context_field(prog_type_, off, size, write, attach_type_);
}

std::optional<std::pair<std::int64_t, std::int64_t>> VerifierPlatform::return_range() const {
  if (prog_type_ == BPF_PROG_TYPE_LSM && lsm_ret_ != LsmReturn::kNone) {
    // check_return_code: the hook's range (bpf_lsm_get_retval_range), or a cgroup LSM's verdict.
    using Range = std::pair<std::int64_t, std::int64_t>;
    if (attach_type_ == BPF_LSM_CGROUP) return lsm_ret_ == LsmReturn::kCgroupVoid ? Range{1, 1} : Range{0, 1};
    if (lsm_ret_ == LsmReturn::kBool) return Range{0, 1};
    if (lsm_ret_ == LsmReturn::kErrno) return Range{-4095, 0};  // -MAX_ERRNO
    return std::nullopt;
  }
  if (prog_type_ == BPF_PROG_TYPE_TRACING) {
    // check_return_code: fentry and fexit return 0; raw tracepoints and fmod_ret anything; iterators 0 or 1.
    if (attach_type_ == BPF_TRACE_FENTRY || attach_type_ == BPF_TRACE_FEXIT) return std::pair<std::int64_t, std::int64_t>{0, 0};
    if (attach_type_ == BPF_TRACE_ITER) return std::pair<std::int64_t, std::int64_t>{0, 1};
    return std::nullopt;
  }
  return runtime::return_range(prog_type_, attach_type_);
}

bool VerifierPlatform::return_value_ignored() const {
  // (struct_ops: the privileged kernel lets a member return any value it set, check_return_code)
  return prog_type_ == BPF_PROG_TYPE_KPROBE || prog_type_ == BPF_PROG_TYPE_TRACEPOINT || prog_type_ == BPF_PROG_TYPE_STRUCT_OPS ||
         prog_type_ == BPF_PROG_TYPE_RAW_TRACEPOINT || prog_type_ == BPF_PROG_TYPE_PERF_EVENT ||
         (prog_type_ == BPF_PROG_TYPE_TRACING && (attach_type_ == BPF_TRACE_RAW_TP || attach_type_ == BPF_MODIFY_RETURN));
}

std::string_view VerifierPlatform::prog_type_name() const { return obj::prog_type_name(prog_type_); }

bool VerifierPlatform::legacy_packet_loads() const { return is_skb(prog_type_); }

const verifier::GlobalFunction* VerifierPlatform::global_function(std::uint32_t insn) const {
  const auto it = globals_.find(insn);
  return it == globals_.end() ? nullptr : &it->second;
}

void VerifierPlatform::set_global_functions(const obj::Btf& btf, std::span<const obj::FuncInfo> func_info, bool entry) {
  // The struct a context pointer points to, by program type (the kernel's btf_get_prog_ctx_type).
  std::string_view ctx;
  switch (prog_type_) {
    case BPF_PROG_TYPE_SOCKET_FILTER:
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT: ctx = "__sk_buff"; break;
    case BPF_PROG_TYPE_XDP: ctx = "xdp_md"; break;
    case BPF_PROG_TYPE_KPROBE: ctx = "pt_regs"; break;
    case BPF_PROG_TYPE_RAW_TRACEPOINT: ctx = "bpf_raw_tracepoint_args"; break;
    case BPF_PROG_TYPE_PERF_EVENT: ctx = "bpf_perf_event_data"; break;
    case BPF_PROG_TYPE_CGROUP_SKB:
    case BPF_PROG_TYPE_LWT_IN:
    case BPF_PROG_TYPE_LWT_OUT:
    case BPF_PROG_TYPE_LWT_XMIT:
    case BPF_PROG_TYPE_LWT_SEG6LOCAL:
    case BPF_PROG_TYPE_SK_SKB:
    case BPF_PROG_TYPE_FLOW_DISSECTOR: ctx = "__sk_buff"; break;
    case BPF_PROG_TYPE_CGROUP_SOCK: ctx = "bpf_sock"; break;
    case BPF_PROG_TYPE_CGROUP_SOCK_ADDR: ctx = "bpf_sock_addr"; break;
    case BPF_PROG_TYPE_SOCK_OPS: ctx = "bpf_sock_ops"; break;
    case BPF_PROG_TYPE_SK_MSG: ctx = "sk_msg_md"; break;
    case BPF_PROG_TYPE_CGROUP_DEVICE: ctx = "bpf_cgroup_dev_ctx"; break;
    case BPF_PROG_TYPE_CGROUP_SYSCTL: ctx = "bpf_sysctl"; break;
    case BPF_PROG_TYPE_CGROUP_SOCKOPT: ctx = "bpf_sockopt"; break;
    case BPF_PROG_TYPE_SK_REUSEPORT: ctx = "sk_reuseport_md"; break;
    case BPF_PROG_TYPE_SK_LOOKUP: ctx = "bpf_sk_lookup"; break;
    default: break;
  }
  for (const obj::FuncInfo& fi : func_info) {
    if (fi.insn == 0 && !entry) continue;  // the entry function is verified as the program (but an extension's)
    auto sig = btf.function(fi.type_id);
    if (!sig || !sig->global) continue;
    verifier::GlobalFunction g;
    g.name = sig->name;
    if (sig->params.size() > 5) g.error = "more than 5 arguments";
    if (!sig->returns_scalar) g.error = "it does not return a number";
    for (std::size_t i = 0; i < sig->params.size() && g.error.empty(); ++i) {
      const auto& p = sig->params[i];
      verifier::GlobalFunction::Param out;
      if (p.kind == obj::FuncSignature::Param::Kind::kScalar) {
        out.kind = verifier::GlobalFunction::Arg::kScalar;
      } else if (p.kind == obj::FuncSignature::Param::Kind::kPointer && !ctx.empty() && p.pointee == ctx) {
        out.kind = verifier::GlobalFunction::Arg::kCtx;
      } else if (p.kind == obj::FuncSignature::Param::Kind::kPointer && p.size > 0) {
        out.kind = verifier::GlobalFunction::Arg::kMem;
        out.size = static_cast<std::uint32_t>(p.size);
      } else {
        g.error = fmt::format("arg#{} has a type a global function cannot take (a pointer to void or to an "
                              "unsized type, a struct by value)",
                              i);
      }
      g.params.push_back(out);
    }
    globals_[fi.insn] = std::move(g);
  }
}

bool VerifierPlatform::packet_writable() const {
  return prog_type_ == BPF_PROG_TYPE_XDP || prog_type_ == BPF_PROG_TYPE_SCHED_CLS || prog_type_ == BPF_PROG_TYPE_SCHED_ACT;
}

}  // namespace bpfvm::runtime
