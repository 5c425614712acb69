// Helper calls (the kernel's check_helper_call): each argument checked against the helper's prototype
// (maps, keys and values of the map's sizes, memory with its size, the context, callbacks, spin locks,
// ring buffer records), the map's type against the helper, references acquired and released, r1-r5
// clobbered and r0 typed by the return type. Helpers that call back (bpf_loop, bpf_for_each_map_elem)
// enter the callback as a frame that returns into the call.
#include <linux/bpf.h>

#include <fmt/format.h>

#include <algorithm>

#include "bpfvm/isa/helper_names.hpp"
#include "explorer.hpp"

namespace bpfvm::verifier {

namespace {

// Linux 6.2's numbers (BPF_MAP_TYPE_CGRP_STORAGE, BPF_FUNC_cgrp_storage_get/delete), newer than the
// uapi headers bpfvm may be built with.
constexpr std::uint32_t kCgrpStorage = 32;
constexpr std::int32_t kCgrpStorageGet = 210, kCgrpStorageDelete = 211;

// Which helpers a map type may go to, and which map types a helper takes
// (check_map_func_compatibility). Empty: the call is fine.
std::string map_func_mismatch(std::uint32_t map_type, std::int32_t func, std::string_view name) {
  auto in = [](std::int32_t f, std::initializer_list<std::int32_t> fs) { return std::find(fs.begin(), fs.end(), f) != fs.end(); };
  bool ok = true;
  switch (map_type) {
    case BPF_MAP_TYPE_PROG_ARRAY: ok = func == BPF_FUNC_tail_call; break;
    case BPF_MAP_TYPE_PERF_EVENT_ARRAY:
      ok = in(func, {BPF_FUNC_perf_event_read, BPF_FUNC_perf_event_output, BPF_FUNC_perf_event_read_value,
                     BPF_FUNC_skb_output, BPF_FUNC_xdp_output});
      break;
    case BPF_MAP_TYPE_RINGBUF:
      ok = in(func, {BPF_FUNC_ringbuf_output, BPF_FUNC_ringbuf_reserve, BPF_FUNC_ringbuf_query,
                     BPF_FUNC_ringbuf_reserve_dynptr, BPF_FUNC_ringbuf_submit_dynptr, BPF_FUNC_ringbuf_discard_dynptr});
      break;
    case BPF_MAP_TYPE_QUEUE:
    case BPF_MAP_TYPE_STACK: ok = in(func, {BPF_FUNC_map_peek_elem, BPF_FUNC_map_pop_elem, BPF_FUNC_map_push_elem}); break;
    case BPF_MAP_TYPE_BLOOM_FILTER: ok = in(func, {BPF_FUNC_map_peek_elem, BPF_FUNC_map_push_elem}); break;
    case BPF_MAP_TYPE_ARRAY_OF_MAPS:
    case BPF_MAP_TYPE_HASH_OF_MAPS: ok = func == BPF_FUNC_map_lookup_elem; break;
    case BPF_MAP_TYPE_STACK_TRACE: ok = func == BPF_FUNC_get_stackid; break;
    case BPF_MAP_TYPE_USER_RINGBUF: ok = func == BPF_FUNC_user_ringbuf_drain; break;
    case BPF_MAP_TYPE_CGROUP_ARRAY: ok = in(func, {BPF_FUNC_skb_under_cgroup, BPF_FUNC_current_task_under_cgroup}); break;
    case BPF_MAP_TYPE_DEVMAP:
    case BPF_MAP_TYPE_DEVMAP_HASH:
    case BPF_MAP_TYPE_XSKMAP: ok = in(func, {BPF_FUNC_redirect_map, BPF_FUNC_map_lookup_elem}); break;
    case BPF_MAP_TYPE_CPUMAP: ok = func == BPF_FUNC_redirect_map; break;
    case BPF_MAP_TYPE_SOCKMAP:
      ok = in(func, {BPF_FUNC_sk_redirect_map, BPF_FUNC_sock_map_update, BPF_FUNC_msg_redirect_map,
                     BPF_FUNC_sk_select_reuseport, BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem,
                     BPF_FUNC_map_delete_elem});
      break;
    case BPF_MAP_TYPE_SOCKHASH:
      ok = in(func, {BPF_FUNC_sk_redirect_hash, BPF_FUNC_sock_hash_update, BPF_FUNC_msg_redirect_hash,
                     BPF_FUNC_sk_select_reuseport, BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem,
                     BPF_FUNC_map_delete_elem});
      break;
    case BPF_MAP_TYPE_REUSEPORT_SOCKARRAY:
      ok = in(func, {BPF_FUNC_sk_select_reuseport, BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem,
                     BPF_FUNC_map_delete_elem});
      break;
    case BPF_MAP_TYPE_TASK_STORAGE: ok = in(func, {BPF_FUNC_task_storage_get, BPF_FUNC_task_storage_delete}); break;
    case BPF_MAP_TYPE_SK_STORAGE: ok = in(func, {BPF_FUNC_sk_storage_get, BPF_FUNC_sk_storage_delete}); break;
    case BPF_MAP_TYPE_INODE_STORAGE: ok = in(func, {BPF_FUNC_inode_storage_get, BPF_FUNC_inode_storage_delete}); break;
    case kCgrpStorage: ok = in(func, {kCgrpStorageGet, kCgrpStorageDelete}); break;
    case BPF_MAP_TYPE_CGROUP_STORAGE:
    case BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE: ok = func == BPF_FUNC_get_local_storage; break;
    default: break;
  }
  switch (func) {
    case BPF_FUNC_tail_call: ok = ok && map_type == BPF_MAP_TYPE_PROG_ARRAY; break;
    case BPF_FUNC_perf_event_read:
    case BPF_FUNC_perf_event_read_value: ok = ok && map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY; break;
    case BPF_FUNC_get_stackid: ok = ok && map_type == BPF_MAP_TYPE_STACK_TRACE; break;
    case BPF_FUNC_skb_under_cgroup:
    case BPF_FUNC_current_task_under_cgroup: ok = ok && map_type == BPF_MAP_TYPE_CGROUP_ARRAY; break;
    case BPF_FUNC_redirect_map:
      ok = ok && (map_type == BPF_MAP_TYPE_DEVMAP || map_type == BPF_MAP_TYPE_DEVMAP_HASH ||
                  map_type == BPF_MAP_TYPE_CPUMAP || map_type == BPF_MAP_TYPE_XSKMAP);
      break;
    case BPF_FUNC_sk_redirect_map:
    case BPF_FUNC_msg_redirect_map:
    case BPF_FUNC_sock_map_update: ok = ok && map_type == BPF_MAP_TYPE_SOCKMAP; break;
    case BPF_FUNC_sk_redirect_hash:
    case BPF_FUNC_msg_redirect_hash:
    case BPF_FUNC_sock_hash_update: ok = ok && map_type == BPF_MAP_TYPE_SOCKHASH; break;
    case BPF_FUNC_sk_select_reuseport:
      ok = ok && (map_type == BPF_MAP_TYPE_REUSEPORT_SOCKARRAY || map_type == BPF_MAP_TYPE_SOCKMAP ||
                  map_type == BPF_MAP_TYPE_SOCKHASH);
      break;
    case BPF_FUNC_perf_event_output: ok = ok && map_type == BPF_MAP_TYPE_PERF_EVENT_ARRAY; break;
    case BPF_FUNC_get_local_storage:
      ok = ok && (map_type == BPF_MAP_TYPE_CGROUP_STORAGE || map_type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
      break;
    case BPF_FUNC_task_storage_get:
    case BPF_FUNC_task_storage_delete: ok = ok && map_type == BPF_MAP_TYPE_TASK_STORAGE; break;
    case BPF_FUNC_sk_storage_get:
    case BPF_FUNC_sk_storage_delete: ok = ok && map_type == BPF_MAP_TYPE_SK_STORAGE; break;
    case BPF_FUNC_inode_storage_get:
    case BPF_FUNC_inode_storage_delete: ok = ok && map_type == BPF_MAP_TYPE_INODE_STORAGE; break;
    case kCgrpStorageGet:
    case kCgrpStorageDelete: ok = ok && map_type == kCgrpStorage; break;
    case BPF_FUNC_ringbuf_output:
    case BPF_FUNC_ringbuf_reserve:
    case BPF_FUNC_ringbuf_reserve_dynptr:
    case BPF_FUNC_ringbuf_query: ok = ok && map_type == BPF_MAP_TYPE_RINGBUF; break;
    case BPF_FUNC_user_ringbuf_drain: ok = ok && map_type == BPF_MAP_TYPE_USER_RINGBUF; break;
    case BPF_FUNC_map_pop_elem: ok = ok && (map_type == BPF_MAP_TYPE_QUEUE || map_type == BPF_MAP_TYPE_STACK); break;
    case BPF_FUNC_map_peek_elem:
    case BPF_FUNC_map_push_elem:
      ok = ok && (map_type == BPF_MAP_TYPE_QUEUE || map_type == BPF_MAP_TYPE_STACK || map_type == BPF_MAP_TYPE_BLOOM_FILTER);
      break;
    case BPF_FUNC_for_each_map_elem:
      ok = ok && (map_type == BPF_MAP_TYPE_HASH || map_type == BPF_MAP_TYPE_LRU_HASH || map_type == BPF_MAP_TYPE_ARRAY ||
                  map_type == BPF_MAP_TYPE_PERCPU_HASH || map_type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
                  map_type == BPF_MAP_TYPE_PERCPU_ARRAY);
      break;
    default: break;
  }
  if (ok) return {};
  return fmt::format("cannot pass map_type {} into func bpf_{}#{}", map_type, name, func);
}

}  // namespace

Result<void> Explorer::release_reference(State& s, std::uint32_t pc, std::uint32_t ref_id) {
  const auto it = std::find_if(s.refs.begin(), s.refs.end(), [&](const Reference& r) { return r.id == ref_id; });
  if (it == s.refs.end()) return error(pc, fmt::format("reference id={} has already been released", ref_id));
  s.refs.erase(it);
  // Every copy of the released pointer is only a number now (release_reference, privileged).
  for_each_reg(s, [&](RegState& r) {
    if (r.is_pointer() && r.ref_id == ref_id) r = RegState::unknown_scalar();
  });
  return {};
}

Result<void> Explorer::helper_call(Path& path, std::uint32_t pc, const isa::Call& c) {
  State& s = path.state;
  const HelperSignature* sig = platform_.helper(c.imm);
  if (!sig) {
    switch (isa::poison_of_call(c.imm)) {  // libbpf's (and bpfvm's) marks: refused only where reached
      case isa::Poison::kCoreRelocation:
        return invalid_call(pc, fmt::format("invalid func unknown#{}: a CO-RE relocation of this instruction failed: the "
                                      "target kernel's types lack the field or type it needs",
                                      c.imm),
                      "guard the access with bpf_core_field_exists() or a ___flavour type, or give the BTF of a "
                      "kernel that has it (--btf FILE)");
      case isa::Poison::kMissingMap:
        return invalid_call(pc, fmt::format("invalid func unknown#{}: this instruction used map #{} of the object, which the "
                                      "loader did not create (libbpf's autocreate off)",
                                      c.imm, c.imm - isa::kPoisonMapBase),
                      "create the map, or make the code that uses it unreachable for this kernel");
      case isa::Poison::kMissingKfunc:
        return invalid_call(pc, fmt::format("invalid func unknown#{}: a call of a kfunc the kernel does not have (a __weak "
                                      "extern libbpf could not resolve)",
                                      c.imm),
                      "guard the call with bpf_ksym_exists()");
      case isa::Poison::kNone: break;
    }
    if (const auto name = isa::helper_name(c.imm)) {
      // A helper of the kernel's whose arguments (sockets, BTF objects, dynptrs, timers...) bpfvm's
      // verifier cannot check yet: refused, and said so, rather than judged wrongly.
      return invalid_call(pc,
                    fmt::format("invalid func unknown#{}: no prototype of {} is known here: bpfvm's verifier does not "
                                "model its arguments yet",
                                c.imm, *name),
                    "the kernel may accept this call; bpfvm cannot judge it");
    }
    return invalid_call(pc, fmt::format("invalid func unknown#{}: no helper has this number", c.imm),
                  "call a helper by its number in the kernel's enum bpf_func_id (bpf_helper_defs.h)");
  }
  if (!platform_.helper_allowed(c.imm)) {
    return invalid_call(pc,
                  fmt::format("unknown func bpf_{}#{}: {} programs may not call it", sig->name, c.imm,
                              platform_.prog_type_name()),
                  "use a helper this program type has, or a program type (SEC name) that has this helper");
  }
  if (sig->gpl_only && !platform_.gpl_compatible()) {
    return reject(pc, fmt::format("cannot call GPL-restricted function bpf_{}#{} from non-GPL compatible program",
                                  sig->name, c.imm),
                  "declare a GPL-compatible license: char LICENSE[] SEC(\"license\") = \"GPL\";");
  }
  if (const std::string why = platform_.helper_refused_here(c.imm); !why.empty()) {
    return reject(pc, fmt::format("helper call is not allowed in probe: bpf_{}#{}", sig->name, c.imm), why);
  }
  if (s.active_lock && c.imm != BPF_FUNC_spin_unlock) {
    return error(pc, fmt::format("function calls are not allowed while holding a lock: release the lock taken at insn "
                                 "{} before calling bpf_{}",
                                 s.lock_insn, sig->name));
  }
  const MapInfo* map = nullptr;
  std::uint32_t map_handle = 0;
  std::uint8_t mem_reg = 0;  // the memory argument a size argument sizes
  bool mem_write = false, mem_null = false;
  std::uint32_t release = 0;
  std::uint32_t cast_ref = 0;  // the reference of a socket argument, which a cast passes on to r0
  std::uint64_t alloc_size = 0;
  std::uint32_t callback = 0;
  bool has_callback = false;
  RegState callback_ctx;
  // Dynptrs: the one a helper makes (where, what kind), the one a release gives back, and the one a
  // slice is taken from.
  struct DynptrPlace {
    bool on = false;
    DynptrKind kind = DynptrKind::kNone;
    std::int64_t off = 0;
    std::uint32_t frame = 0;
  } dynptr_made, dynptr_released;
  std::uint32_t dynptr_parent_id = 0, dynptr_parent_ref = 0;
  // A timer argument: the map whose value holds it (a timer helper's map argument must be that map).
  std::int64_t timer_map = -1;
  // bpf_kptr_xchg's field (process_kptr_func), which types its pointer argument and r0.
  const MapInfo::Kptr* kptr = nullptr;
  // A dynptr argument's place on the stack: a constant, 8-aligned offset with room for 16 bytes.
  auto dynptr_place = [&](std::uint8_t r, const RegState& v) -> Result<std::int64_t> {
    if (!v.value.is_const()) {
      return reject(pc, fmt::format("R{} dynptr has to be at a constant offset", r),
                    "pass the address of a struct bpf_dynptr variable (&d)");
    }
    const std::int64_t off = v.off + static_cast<std::int64_t>(v.value.const_value());
    if (off % 8 != 0 || off < -kStackSize || off > -16) {
      return reject(pc, fmt::format("cannot pass in dynptr at an offset={}", off),
                    "a struct bpf_dynptr is 16 bytes, 8-aligned, on the stack");
    }
    return off;
  };
  {
    // A number in an argument register decides the call's safety (a size, a NULL where a pointer may
    // be): its value matters back along this path, as the kernel marks size arguments precise
    // (check_mem_size_reg). A pointer argument is compared whole by pruning, and the numbers added to
    // it were marked where they were added.
    std::uint16_t numbers = 0;
    for (std::size_t i = 0; i < sig->args.size() && sig->args[i] != ArgType::kNone; ++i) {
      const RegState& v = s.cur().regs[i + 1];
      if (sig->args[i] != ArgType::kAnything && v.type == RegType::kScalar) numbers |= static_cast<std::uint16_t>(1u << (i + 1));
    }
    if (numbers) precise_here(&path, pc, numbers);
  }
  for (std::size_t i = 0; i < sig->args.size(); ++i) {
    const ArgType t = sig->args[i];
    if (t == ArgType::kNone) break;
    const auto r = static_cast<std::uint8_t>(i + 1);
    const RegState v = *BPFVM_TRY(read(s.cur(), pc, r));
    const std::string_view vtype = reg_type_name(v.type, v.maybe_null);
    auto expected = [&](std::string_view what) {
      return reject(pc,
                    fmt::format("R{} type={} expected={}: argument {} of bpf_{} must be {}", r, vtype, what, i + 1,
                                sig->name, what),
                    fmt::format("pass bpf_{} what its prototype takes in r{} (see bpf_helper_defs.h)", sig->name, r),
                    v.maybe_null ? v.id : 0);
    };
    // check_func_arg: a packet pointer goes only to helpers that read the packet in place
    // (may_access_direct_pkt_data; a sockopt program's buffer is always allowed).
    if (t != ArgType::kNone && t != ArgType::kAnything && (v.type == RegType::kPacket || v.type == RegType::kPacketMeta) &&
        !sig->pkt_access && platform_.prog_type_name() != "cgroup_sockopt") {
      return reject(pc, "helper access to the packet is not allowed",
                    fmt::format("copy the bytes to the stack (bpf_{} reads memory the packet may move under)", sig->name));
    }
    switch (t) {
      case ArgType::kNone:
      case ArgType::kAnything: break;
      case ArgType::kConstMapPtr:
        if (v.type != RegType::kMapPtr) return expected("map_ptr");
        map = platform_.map(v.map_index);
        map_handle = v.map_index;
        if (timer_map >= 0 && static_cast<std::int64_t>(v.map_index) != timer_map) {
          return reject(pc, fmt::format("timer pointer in R1 map_uid={} doesn't match map pointer in R{} map_uid={}",
                                        timer_map, r, v.map_index),
                        "initialise a timer with the map its value belongs to");
        }
        if (options_.call_maps && pc < options_.call_maps->size()) {
          std::int64_t& seen = (*options_.call_maps)[pc];
          seen = seen == kNoMap || seen == static_cast<std::int64_t>(map_handle) ? map_handle : kVariousMaps;
        }
        if (auto why = map_func_mismatch(map->type, c.imm, sig->name); !why.empty()) return error(pc, why);
        break;
      case ArgType::kMapValueOrNull:
        if (is_null_const(v)) break;
        [[fallthrough]];
      case ArgType::kMapKey:
      case ArgType::kMapValue:
      case ArgType::kUninitMapValue: {
        if (!map) return error(pc, fmt::format("invalid map_ptr to access map->{}", t == ArgType::kMapKey ? "key" : "value"));
        if (!v.is_pointer() || v.maybe_null) return expected("fp, pkt, pkt_meta, map_key, map_value");
        const std::uint32_t size = t == ArgType::kMapKey ? map->key_size : map->value_size;
        BPFVM_TRY(helper_memory(s, pc, r, v, Scalar::constant(size), t == ArgType::kUninitMapValue, false));
        break;
      }
      case ArgType::kUninitLong: {
        // A result the helper writes (bpf_strtol's): 8 bytes, 8-aligned (MEM_ALIGNED's strict check).
        if (!v.is_pointer() || v.maybe_null) return expected("fp, pkt, pkt_meta, map_key, map_value, mem");
        if (v.value.is_const() && (v.off + static_cast<std::int64_t>(v.value.const_value())) % 8 != 0) {
          return error(pc, fmt::format("misaligned access off {} size 8: argument {} of bpf_{} must be 8-aligned",
                                       v.off + static_cast<std::int64_t>(v.value.const_value()), i + 1, sig->name));
        }
        BPFVM_TRY(helper_memory(s, pc, r, v, Scalar::constant(8), true, false));
        break;
      }
      case ArgType::kMem:
      case ArgType::kMemOrNull:
      case ArgType::kUninitMem:
        mem_reg = r;
        mem_write = t == ArgType::kUninitMem;
        mem_null = t == ArgType::kMemOrNull && is_null_const(v);
        if (!mem_null && (!v.is_pointer() || v.maybe_null)) return expected("fp, pkt, pkt_meta, map_key, map_value, mem");
        break;
      case ArgType::kConstSize:
      case ArgType::kConstSizeOrZero: {
        if (v.type != RegType::kScalar) return expected("scalar");
        const bool zero_ok = t == ArgType::kConstSizeOrZero;
        if (v.value.smin < 0) {
          return error(pc, fmt::format("R{} min value is negative, either use unsigned or 'var &= const'", r));
        }
        if (v.value.umax >= static_cast<std::uint64_t>(kMaxVarOff)) {
          return error(pc, fmt::format("R{} unbounded memory access, use 'var &= const' or 'if (var < const)': the size "
                                       "must have a known maximum",
                                       r));
        }
        if (v.value.umin == 0 && !zero_ok) {
          return error(pc, fmt::format("R{} invalid zero-sized read: u64=[{},{}]", r, v.value.umin, v.value.umax));
        }
        if (mem_null) {
          if (v.value.umax != 0) {
            return error(pc, fmt::format("R{} type=scalar expected=fp, pkt, pkt_meta, map_key, map_value, mem: a NULL "
                                         "buffer needs a size of 0",
                                         mem_reg));
          }
          break;
        }
        BPFVM_TRY(helper_memory(s, pc, mem_reg, s.cur().regs[mem_reg], v.value, mem_write, zero_ok));
        break;
      }
      case ArgType::kConstAllocSizeOrZero:
        if (v.type != RegType::kScalar || !v.value.is_const()) {
          return error(pc, fmt::format("R{} is not a known constant: the size of a ring buffer record must be fixed", r));
        }
        alloc_size = v.value.const_value();
        break;
      case ArgType::kCtxOrNull:
        // ARG_PTR_TO_CTX_OR_NULL: the context, or the constant 0 (bpf_get_netns_cookie(NULL)).
        if (v.type == RegType::kScalar && v.value.is_const() && v.value.const_value() == 0) break;
        [[fallthrough]];
      case ArgType::kCtx:
        if (v.type != RegType::kCtx) return expected(t == ArgType::kCtx ? "ctx" : "ctx or NULL");
        if (v.off != 0 || !v.value.is_const() || v.value.const_value() != 0) {
          return error(pc, fmt::format("dereference of modified ctx ptr R{} off={} disallowed: pass the context "
                                       "pointer the program received",
                                       r, v.off));
        }
        break;
      case ArgType::kFunc:
        if (v.type != RegType::kFunc) return expected("func");
        callback = v.subprog;
        has_callback = true;
        break;
      case ArgType::kStackOrNull:
        if (!is_null_const(v) && v.type != RegType::kStack) return expected("fp");
        callback_ctx = v;
        break;
      case ArgType::kConstStr: {
        if (v.type != RegType::kMapValue || v.maybe_null) return expected("map_value");
        const MapInfo& m = map_of(v);
        if (!m.read_only) return error(pc, fmt::format("R{} does not point to a readonly map: the format must be a constant string", r));
        if (!v.value.is_const()) return error(pc, fmt::format("R{} is not a constant address'", r));
        BPFVM_TRY(map_value_check(pc, r, v, 0, 1, false));
        break;
      }
      case ArgType::kSpinLock: {
        if (v.type != RegType::kMapValue || v.maybe_null) return expected("map_value");
        const MapInfo& m = map_of(v);
        if (m.spin_lock_off < 0) {
          return error(pc, "map has no valid bpf_spin_lock: its value type needs a struct bpf_spin_lock (with BTF)");
        }
        if (!v.value.is_const()) return error(pc, fmt::format("R{} doesn't have constant offset. bpf_spin_lock has to be at the constant offset", r));
        const std::int64_t off = v.off + static_cast<std::int64_t>(v.value.const_value());
        if (off != m.spin_lock_off) {
          return error(pc, fmt::format("off {} doesn't point to 'struct bpf_spin_lock' that is at {}", off, m.spin_lock_off));
        }
        const std::uint64_t lock = ((static_cast<std::uint64_t>(v.map_index) << 32) | v.id) + 1;
        if (c.imm == BPF_FUNC_spin_lock) {
          if (s.active_lock) return error(pc, "Locked two spin locks are not allowed");
          s.active_lock = lock;
          s.lock_insn = pc;
        } else {
          if (!s.active_lock) return error(pc, "bpf_spin_unlock without taking a lock");
          if (s.active_lock != lock) return error(pc, "bpf_spin_unlock of different lock");
          s.active_lock = 0;
        }
        break;
      }
      case ArgType::kRingbufRecord:
        if (v.type != RegType::kMem || v.maybe_null || v.ref_id == 0) return expected("ringbuf_mem");
        if (v.off != 0 || !v.value.is_const() || v.value.const_value() != 0) {
          return error(pc, fmt::format("R{} must have zero offset when passed to release func: pass the record "
                                       "bpf_ringbuf_reserve returned",
                                       r));
        }
        release = v.ref_id;
        break;
      case ArgType::kSockCommon:
      case ArgType::kBtfIdSockCommon:
      case ArgType::kSockRelease:
        // compatible_reg_types: sock_common_types and btf_id_sock_common_types (the BTF socket types
        // come only from kfuncs and iterators, which bpfvm's programs do not have).
        if (t == ArgType::kBtfIdSockCommon && v.type == RegType::kBtfId && !v.maybe_null) {
          // A kernel socket by its BTF type (a tracing program's struct sock *): any struct that begins
          // with a sock_common (btf_id_sock_common_types, checked against struct sock_common).
          const std::uint32_t common = platform_.btf_struct_id("sock_common");
          if (!v.value.is_const() || v.value.const_value() != 0 || v.off < 0 || common == 0 ||
              !platform_.btf_struct_at(v.btf_id, v.off, common)) {
            return reject(pc,
                          fmt::format("R{} is of type {} but sock_common is expected", r, platform_.btf_type_name(v.btf_id)),
                          fmt::format("argument {} of bpf_{} is a socket (struct sock, sock_common or a protocol's "
                                      "sock)",
                                      i + 1, sig->name));
          }
          break;
        }
        if (!is_socket_type(v.type) || v.maybe_null) {
          return reject(pc,
                        fmt::format("R{} type={} expected=sock_common, sock, tcp_sock: argument {} of bpf_{} must be a "
                                    "socket checked for NULL",
                                    r, vtype, i + 1, sig->name),
                        "pass the socket a lookup (bpf_sk_lookup_tcp...) or the context gave, after `if (!sk)`",
                        v.maybe_null ? v.id : 0);
        }
        if (t == ArgType::kSockRelease) {
          if (v.ref_id == 0) {
            return error(pc, fmt::format("R{} must be referenced when passed to release function: only a socket a "
                                         "lookup acquired is released (bpf_sk_release)",
                                         r));
          }
          release = v.ref_id;
        }
        cast_ref = v.ref_id;
        break;
      case ArgType::kSocketOrNull:
        if (is_null_const(v)) break;
        if (v.type != RegType::kSocket) return expected("sock");
        break;
      case ArgType::kBtfIdOrNull:
        if (is_null_const(v)) break;
        [[fallthrough]];
      case ArgType::kBtfId: {
        // check_reg_type for ARG_PTR_TO_BTF_ID: a kernel object whose type is the prototype's struct, or
        // begins with one at the pointer's offset (btf_struct_ids_match), at a fixed offset.
        const std::uint32_t want = platform_.btf_struct_id(sig->arg_struct);
        if (want == 0) {
          return reject(pc, fmt::format("bpf_{}: the kernel's BTF has no struct {}", sig->name, sig->arg_struct),
                        "this helper needs the kernel's types (/sys/kernel/btf/vmlinux, or --btf FILE)");
        }
        if (v.type != RegType::kBtfId || v.maybe_null) {
          return reject(pc,
                        fmt::format("R{} type={} expected=ptr_, trusted_ptr_, rcu_ptr_: argument {} of bpf_{} must be "
                                    "a struct {}{}",
                                    r, vtype, i + 1, sig->name, sig->arg_struct,
                                    v.maybe_null ? " checked for NULL" : ""),
                        sig->arg_struct == "task_struct"
                            ? "pass bpf_get_current_task_btf() (bpf_get_current_task's number is not a trusted pointer)"
                            : fmt::format("pass a struct {} the program was given (an argument, a context field) or "
                                          "a helper returned",
                                          sig->arg_struct),
                        v.maybe_null ? v.id : 0);
        }
        if (v.untrusted) {
          return reject(pc,
                        fmt::format("R{} type=untrusted_ptr_ expected=ptr_, trusted_ptr_, rcu_ptr_: argument {} of bpf_{} "
                                    "must be a trusted struct {}, and one read from a __kptr_untrusted field is not",
                                    r, i + 1, sig->name, sig->arg_struct),
                        "pass a pointer the program was given or a helper returned");
        }
        if (!v.value.is_const() || v.value.const_value() != 0) {
          return error(pc, fmt::format("R{} is {} with a variable offset: pass the object itself", r, vtype));
        }
        if (v.off < 0) return error(pc, fmt::format("negative offset {} ptr R{} off={} disallowed", vtype, r, v.off));
        if (!platform_.btf_struct_at(v.btf_id, v.off, want)) {
          return reject(pc,
                        fmt::format("R{} is of type {} but {} is expected", r, platform_.btf_type_name(v.btf_id),
                                    sig->arg_struct),
                        fmt::format("argument {} of bpf_{} is a struct {}", i + 1, sig->name, sig->arg_struct));
        }
        break;
      }
      case ArgType::kDynptrUninitLocal:
      case ArgType::kDynptrUninitRingbuf: {
        // MEM_UNINIT: the helper makes a dynptr here. A dynptr already there is destroyed first, unless
        // it holds a reference (is_dynptr_reg_valid_uninit).
        if (v.type != RegType::kStack) return expected("fp");
        const std::int64_t off = BPFVM_TRY(dynptr_place(r, v));
        BPFVM_TRY(overwrite_dynptrs(s, pc, v, static_cast<std::int32_t>(off), static_cast<std::int32_t>(off + 16)));
        if (c.imm == BPF_FUNC_dynptr_from_mem && s.cur().regs[1].type != RegType::kMapValue) {
          // bpf_dynptr_from_mem takes a map value's memory only (check_helper_call).
          return reject(pc,
                        fmt::format("Unsupported reg type {} for bpf_dynptr_from_mem data",
                                    reg_type_name(s.cur().regs[1].type, s.cur().regs[1].maybe_null)),
                        "make the dynptr over a map value (a lookup's result, or global data)");
        }
        dynptr_made = {true, t == ArgType::kDynptrUninitLocal ? DynptrKind::kLocal : DynptrKind::kRingbuf, off, v.frame};
        break;
      }
      case ArgType::kDynptr:
      case ArgType::kDynptrRingbufRelease: {
        // An initialised dynptr: at its first slot on the stack, or the one a callback was handed.
        if (v.type == RegType::kConstDynptr) {
          if (t == ArgType::kDynptr) break;
          return reject(pc, "cannot release unowned const bpf_dynptr",
                        "a sample a callback is handed belongs to the helper that calls it; only read it");
        }
        if (v.type != RegType::kStack) return expected("fp or dynptr_ptr");
        const std::int64_t off = BPFVM_TRY(dynptr_place(r, v));
        const StackSlot* d = dynptr_at(s.frames[v.frame], off);
        if (!d) {
          return reject(pc, fmt::format("Expected an initialized dynptr as arg #{}", i),
                        fmt::format("pass bpf_{} a struct bpf_dynptr that bpf_dynptr_from_mem or "
                                    "bpf_ringbuf_reserve_dynptr made, and not since overwritten or released",
                                    sig->name));
        }
        if (t == ArgType::kDynptrRingbufRelease) {
          if (d->dynptr != DynptrKind::kRingbuf || d->dynptr_ref == 0) {
            return reject(pc, fmt::format("arg {} is an unacquired reference", r),
                          "only a dynptr bpf_ringbuf_reserve_dynptr made holds a record to submit or discard");
          }
          dynptr_released = {true, d->dynptr, off, v.frame};
          release = d->dynptr_ref;
        }
        dynptr_parent_id = d->dynptr_id;
        dynptr_parent_ref = d->dynptr_ref;
        break;
      }
      case ArgType::kKptrXchgDest: {
        // process_kptr_func: a map value's referenced kptr field, at the constant offset BTF says.
        if (v.type != RegType::kMapValue || v.maybe_null) return expected("map_value");
        if (!v.value.is_const()) {
          return reject(pc, fmt::format("R{} doesn't have constant offset. kptr has to be at the constant offset", r),
                        "pass &value->field, the kptr field itself");
        }
        const std::int64_t off = v.off + static_cast<std::int64_t>(v.value.const_value());
        kptr = map_of(v).kptr_at(off);
        if (!kptr) {
          return reject(pc, fmt::format("off={} doesn't point to kptr", off),
                        "pass the address of a field declared `struct NAME __kptr *` in the map's value");
        }
        if (kptr->kind != MapInfo::Kptr::Kind::kReferenced && kptr->kind != MapInfo::Kptr::Kind::kPercpu) {
          return reject(pc, fmt::format("off={} kptr isn't referenced kptr", off),
                        "bpf_kptr_xchg moves referenced kptrs (__kptr); a __kptr_untrusted field is stored to directly");
        }
        break;
      }
      case ArgType::kKptrRelease: {
        // NULL, or a referenced pointer of the field's struct at offset 0 (the reference goes into the map).
        if (is_null_const(v) || !kptr) break;
        const std::uint32_t want = platform_.btf_struct_id(kptr->pointee);
        if (v.type != RegType::kBtfId || v.maybe_null) return expected("ptr_" + kptr->pointee);
        if (v.ref_id == 0) {
          return reject(pc, fmt::format("R{} must be referenced when passed to release function", r),
                        "only a pointer the program holds a reference to (one bpf_kptr_xchg or an acquiring kfunc "
                        "returned) may go into a referenced kptr");
        }
        if (v.btf_id != want || v.off != 0 || !v.value.is_const() || v.value.const_value() != 0) {
          return reject(pc, fmt::format("R{} is of type {} but {} is expected", r, platform_.btf_type_name(v.btf_id), kptr->pointee),
                        fmt::format("pass a struct {} itself, as the field declares", kptr->pointee));
        }
        release = v.ref_id;
        break;
      }
      case ArgType::kTimer: {
        // process_timer_func: a map value's struct bpf_timer, at the constant offset BTF says.
        if (v.type != RegType::kMapValue || v.maybe_null) return expected("map_value");
        if (!v.value.is_const()) {
          return reject(pc, fmt::format("R{} doesn't have constant offset. bpf_timer has to be at the constant offset", r),
                        "pass &value->timer, the field itself");
        }
        const MapInfo& m = map_of(v);
        if (m.timer_off < 0) {
          return reject(pc, fmt::format("map '{}' has no valid bpf_timer", m.name),
                        "declare the value's struct bpf_timer with BTF (a __type(value, ...) with the field)");
        }
        const std::int64_t off = v.off + static_cast<std::int64_t>(v.value.const_value());
        if (off != m.timer_off) {
          return reject(pc, fmt::format("off {} doesn't point to 'struct bpf_timer' that is at {}", off, m.timer_off),
                        "pass &value->timer, the field itself");
        }
        timer_map = v.map_index;
        break;
      }
      case ArgType::kPercpuBtfId:
        // Only a typed per-CPU __ksym is one (check_pseudo_btf_id); bpfvm resolves no kernel symbols.
        return reject(pc,
                      fmt::format("R{} type={} expected=percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_: bpf_{} takes a per-CPU kernel variable (a typed "
                                  "__ksym), which has no address in user space",
                                  r, vtype, sig->name),
                      "read per-CPU data from a per-CPU map (BPF_MAP_TYPE_PERCPU_ARRAY) instead");
      case ArgType::kFixedMem:
      case ArgType::kFixedMemWrite: {
        // ARG_PTR_TO_FIXED_SIZE_MEM: arg_size bytes (MEM_ALIGNED: at their natural alignment).
        const std::uint32_t size = sig->arg_size[i];
        if (!v.is_pointer() || v.maybe_null) return expected("fp, pkt, pkt_meta, map_key, map_value, mem");
        if (t == ArgType::kFixedMemWrite && v.value.is_const() &&
            (v.off + static_cast<std::int64_t>(v.value.const_value())) % size != 0) {
          return error(pc, fmt::format("misaligned access off {} size {}: argument {} of bpf_{} must be {}-aligned",
                                       v.off + static_cast<std::int64_t>(v.value.const_value()), size, i + 1, sig->name,
                                       size));
        }
        BPFVM_TRY(helper_memory(s, pc, r, v, Scalar::constant(size), t == ArgType::kFixedMemWrite, false));
        break;
      }
    }
  }
  if (c.imm == BPF_FUNC_tail_call && !s.refs.empty()) {
    return error(pc, fmt::format("tail_call would lead to reference leak: release every {} first (acquired at insn {})",
                                 s.refs.front().socket ? "socket (bpf_sk_release)" : "ring buffer record",
                                 s.refs.front().insn));
  }
  if (dynptr_released.on) {
    // The released dynptr's slots are unwritten from now on (its slices go with the reference).
    Frame& f = s.frames[dynptr_released.frame];
    const auto k = static_cast<std::size_t>((-dynptr_released.off - 1) / 8);
    f.slot(k) = StackSlot{};
    f.slot(k - 1) = StackSlot{};
  }
  if (release) BPFVM_TRY(release_reference(s, pc, release));
  if (dynptr_made.on) {
    // mark_stack_slots_dynptr: both slots are the dynptr's; a ring buffer's holds a new reference, which
    // bpf_ringbuf_submit_dynptr or _discard_dynptr gives back (even when the reservation failed).
    Frame& f = s.frames[dynptr_made.frame];
    const auto k = static_cast<std::size_t>((-dynptr_made.off - 1) / 8);
    StackSlot made;
    made.bytes.fill(ByteType::kDynptr);
    made.dynptr = dynptr_made.kind;
    made.dynptr_id = new_id();
    if (dynptr_made.kind == DynptrKind::kRingbuf) {
      made.dynptr_ref = new_id();
      s.refs.push_back({made.dynptr_ref, pc, false, true});
    }
    f.slot(k) = made;
    f.slot(k).dynptr_first = true;
    f.slot(k - 1) = made;
    note_depth(f, static_cast<std::int32_t>(dynptr_made.off));
  }
  if (sig->might_sleep && !platform_.sleepable()) {
    return reject(pc, "helper call might sleep in a non-sleepable prog",
                  fmt::format("load the program sleepable (a \".s\" section: uprobe.s/, fentry.s/...) to call bpf_{}", sig->name));
  }
  // get_local_storage() cannot fail, so it has no flags to get wrong (check_helper_call).
  if (c.imm == BPF_FUNC_get_local_storage && !is_null_const(s.cur().regs[2])) {
    return error(pc, "get_local_storage() doesn't support non-zero flags");
  }

  std::uint32_t returned_btf_id = 0;
  if (sig->ret == RetType::kKptrOrNull && kptr) returned_btf_id = platform_.btf_struct_id(kptr->pointee);
  if (sig->ret == RetType::kBtfIdTrusted || sig->ret == RetType::kBtfIdOrNull) {
    returned_btf_id = platform_.btf_struct_id(sig->ret_struct);
    if (returned_btf_id == 0) {
      return reject(pc, fmt::format("bpf_{}: the kernel's BTF has no struct {}", sig->name, sig->ret_struct),
                    sig->ret_struct == "task_struct"
                        ? "bpf_get_current_task_btf needs the kernel's types (/sys/kernel/btf/vmlinux); "
                          "bpf_get_current_task with BPF_CORE_READ works without"
                        : "this helper needs the kernel's types (/sys/kernel/btf/vmlinux, or --btf FILE)");
    }
  }
  // After the call: r1-r5 hold nothing, r0 the result; a helper that moved the packet leaves every
  // packet pointer stale, a number from now on (clear_all_pkt_pointers).
  auto returned = [&](State& st) {
    if (sig->changes_packet) {
      for_each_reg(st, [](RegState& r) {
        if (r.type == RegType::kPacket || r.type == RegType::kPacketMeta || r.type == RegType::kPacketEnd) {
          r = RegState::unknown_scalar();
        }
      });
    }
    Frame& f = st.cur();
    for (int r = 1; r <= 5; ++r) f.regs[static_cast<std::size_t>(r)] = RegState{};
    RegState r0;
    switch (sig->ret) {
      case RetType::kInteger: r0 = RegState::unknown_scalar(); break;
      case RetType::kVoid: break;
      case RetType::kMapValueOrNull:
        r0 = RegState::pointer(RegType::kMapValue);
        r0.maybe_null = true;
        r0.id = new_id();
        r0.map_index = map_handle;
        id_origin_[r0.id] = pc;
        break;
      case RetType::kMapValue:
        r0 = RegState::pointer(RegType::kMapValue);
        r0.map_index = map_handle;
        break;
      case RetType::kRingbufRecordOrNull:
        r0 = RegState::pointer(RegType::kMem);
        r0.mem_size = static_cast<std::uint32_t>(std::min<std::uint64_t>(alloc_size, UINT32_MAX));
        break;
      case RetType::kSockCommonOrNull: r0 = RegState::pointer(RegType::kSockCommon); break;
      case RetType::kSocketOrNull: r0 = RegState::pointer(RegType::kSocket); break;
      case RetType::kTcpSockOrNull: r0 = RegState::pointer(RegType::kTcpSock); break;
      case RetType::kBtfIdTrusted:
        // A trusted pointer that is never NULL (the current task, its registers), of a kernel struct.
        r0 = RegState::pointer(RegType::kBtfId);
        r0.btf_id = returned_btf_id;
        break;
      case RetType::kBtfIdOrNull:
      case RetType::kKptrOrNull:
        r0 = RegState::pointer(RegType::kBtfId);
        r0.btf_id = returned_btf_id;
        r0.maybe_null = true;
        break;
      case RetType::kPercpuMemOrNull:
      case RetType::kPercpuMem: break;  // (never reached: no argument is a per-CPU variable)
      case RetType::kDynptrMemOrNull:
        // A slice of the dynptr's data: stale when the dynptr is destroyed, and with a ring buffer's,
        // when its record is submitted or discarded (it carries the reference).
        r0 = RegState::pointer(RegType::kMem);
        r0.mem_size = static_cast<std::uint32_t>(std::min<std::uint64_t>(alloc_size, UINT32_MAX));
        r0.dynptr_id = dynptr_parent_id;
        r0.ref_id = dynptr_parent_ref;
        break;
    }
    if (r0.is_pointer() && r0.type != RegType::kMapValue && (r0.type != RegType::kBtfId || r0.maybe_null)) {
      // check_helper_call: a pointer that may be NULL gets an id for its null check; an acquired one
      // takes the new reference's id as both (so the NULL side of its check holds nothing to release);
      // a cast keeps its argument's reference.
      r0.maybe_null = true;
      r0.id = new_id();
      if (sig->ref == RefEffect::kAcquires) {
        r0.ref_id = r0.id = new_id();
        st.refs.push_back({r0.ref_id, pc, is_socket_type(r0.type), false, r0.type == RegType::kBtfId});
      } else if (sig->ref == RefEffect::kCasts) {
        r0.ref_id = cast_ref;
      }
      id_origin_[r0.id] = pc;
    }
    f.regs[0] = r0;
  };
  if (!has_callback) {
    returned(s);
    path.pc = pc + 1;
    return {};
  }
  if (c.imm == BPF_FUNC_timer_set_callback) {
    // An async callback (push_async_cb): the kernel runs it later on its own, so it is verified as a
    // program of its own, one frame with nothing of the caller's (no stack, no references, no lock),
    // with the timer's map, key and value; the caller goes on at once.
    returned(s);
    path.pc = pc + 1;
    State async;
    Frame cb;
    cb.callsite = pc;
    cb.subprog = callback;
    cb.callback = true;
    cb.regs[1] = RegState::pointer(RegType::kMapPtr);
    cb.regs[1].map_index = static_cast<std::uint32_t>(timer_map);
    cb.regs[2] = RegState::pointer(RegType::kMapKey);
    cb.regs[2].map_index = static_cast<std::uint32_t>(timer_map);
    cb.regs[3] = RegState::pointer(RegType::kMapValue);
    cb.regs[3].map_index = static_cast<std::uint32_t>(timer_map);
    cb.regs[10] = RegState::pointer(RegType::kStack);
    async.frames.push_back(std::move(cb));
    push(Path{std::move(async), cfg_.subprogs[callback].start, -1});
    return {};
  }
  // A helper that calls back: the path where it returns (no more calls) goes on after the call, and
  // this one enters the callback, which comes back to the call instruction when it returns.
  if (s.frames.size() >= static_cast<std::size_t>(isa::kMaxCallFrames)) {
    return error(pc, fmt::format("the call stack of {} frames is too deep", s.frames.size() + 1));
  }
  Path after{s, pc + 1, path.checkpoint, path.decision, path.trail};
  returned(after.state);
  push(std::move(after));
  ++s.callback_unroll_depth;
  Frame cb;
  cb.callsite = pc;
  cb.subprog = callback;
  cb.callback = true;
  if (c.imm == BPF_FUNC_loop) {
    cb.regs[1] = RegState::unknown_scalar();  // the iteration's index
    cb.regs[2] = callback_ctx;
  } else if (c.imm == BPF_FUNC_user_ringbuf_drain) {  // a sample as a dynptr, the context
    cb.regs[1] = RegState::pointer(RegType::kConstDynptr);
    cb.regs[2] = callback_ctx;
  } else if (c.imm == BPF_FUNC_find_vma) {  // the task, the vm_area_struct found, the context
    cb.regs[1] = RegState::pointer(RegType::kBtfId);
    cb.regs[1].btf_id = platform_.btf_struct_id("task_struct");
    cb.regs[2] = RegState::pointer(RegType::kBtfId);
    cb.regs[2].btf_id = platform_.btf_struct_id("vm_area_struct");
    cb.regs[3] = callback_ctx;
  } else {  // bpf_for_each_map_elem: the map, a key, its value, the context
    cb.regs[1] = RegState::pointer(RegType::kMapPtr);
    cb.regs[1].map_index = map_handle;
    cb.regs[2] = RegState::pointer(RegType::kMapKey);
    cb.regs[2].map_index = map_handle;
    cb.regs[3] = RegState::pointer(RegType::kMapValue);
    cb.regs[3].map_index = map_handle;
    cb.regs[4] = callback_ctx;
  }
  cb.regs[10] = RegState::pointer(RegType::kStack);
  cb.regs[10].frame = static_cast<std::uint32_t>(s.frames.size());
  s.frames.push_back(std::move(cb));
  path.pc = cfg_.subprogs[callback].start;
  return {};
}

}  // namespace bpfvm::verifier
