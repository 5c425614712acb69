// Loads and stores, checked against the region the base register points into: the stack (with
// spilled registers remembered per slot), map values, map keys, ring buffer records, the context (by
// program type, through the Platform) and packet data (only the range a data_end comparison proved).
// The kernel's check_mem_access and its per-region checks.
#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <tuple>

#include "explorer.hpp"

namespace bpfvm::verifier {

namespace {

// What a load of `size` bytes from memory holding any value gives.
RegState loaded_unknown(int size, bool sign_extend_load) {
  if (size >= 8 || sign_extend_load) return RegState::unknown_scalar();
  return RegState::scalar(Scalar::range(0, (1ull << (8 * size)) - 1));
}

StackSlot& slot_of(Frame& f, std::int32_t byte) { return f.slot(static_cast<std::size_t>((-byte - 1) / 8)); }
std::size_t index_in_slot(std::int32_t byte) { return static_cast<std::size_t>(((byte % 8) + 8) % 8); }

// How many bytes from the slot's start hold a spilled register (8 for a whole spill, 0 for none).
int spill_size(const StackSlot& s) {
  int n = 0;
  while (n < 8 && s.bytes[static_cast<std::size_t>(n)] == ByteType::kSpill) ++n;
  return n;
}

// Part of a spilled register overwritten leaves plain bytes (scrub_spilled_slot).
void scrub_spill(StackSlot& slot) {
  if (spill_size(slot) == 0) return;
  for (ByteType& t : slot.bytes) {
    if (t != ByteType::kInvalid) t = ByteType::kMisc;
  }
  slot.spilled = RegState{};
}

Frame& frame_of(State& s, const RegState& stack_pointer) { return s.frames[stack_pointer.frame]; }

// Whether a load of `size` bytes at `off` of a socket is allowed, by the UAPI struct the pointer shows
// (include/uapi/linux/bpf.h): the kernel's bpf_sock_is_valid_access, bpf_sock_common_is_valid_access
// and bpf_tcp_sock_is_valid_access (net/core/filter.c). A 4-byte field may be read narrower where the
// kernel lists it (bpf_ctx_narrow_access_ok: a power of two up to 4); dst_port is a 2-byte field that a
// 4-byte load may also read.
bool sock_load_allowed(RegType type, std::int32_t off, int size) {
  if (type == RegType::kTcpSock) {
    // struct bpf_tcp_sock: u32 fields up to icsk_retransmits (ends at 112), bytes_received (80) and
    // bytes_acked (88) are u64.
    if (off < 0 || off >= 112 || off % size != 0) return false;
    if (off == 80 || off == 88) return size == 8;
    return size == 4;
  }
  // struct bpf_sock: bound_dev_if 0, family 4, type 8, protocol 12, mark 16, priority 20, src_ip4 24,
  // src_ip6 28..43, src_port 44, dst_port 48 (__be16, 2 bytes padding), dst_ip4 52, dst_ip6 56..71,
  // state 72, rx_queue_mapping 76; 80 bytes.
  if (off < 0 || off >= 80 || off % size != 0) return false;
  // A sock_common has no type, protocol, mark or priority (the fields 8..23).
  if (type == RegType::kSockCommon && off >= 8 && off < 24) return false;
  const bool narrow_ok = size <= 4 && (size & (size - 1)) == 0;
  switch (off) {
    case 4: case 8: case 12: case 44: case 72: case 76: return narrow_ok;  // fields listed at their start
    default: break;
  }
  if ((off >= 24 && off < 44) || (off >= 52 && off < 72)) return narrow_ok;  // the addresses, any byte
  if (off == 48 || off == 49) return size == 4 ? off == 48 : size <= 2 && narrow_ok;
  if (off == 50 || off == 51) return false;
  return size == 4;
}

}  // namespace

const MapInfo& Explorer::map_of(const RegState& r) const {
  static const MapInfo none;
  const MapInfo* m = platform_.map(r.map_index);
  return m ? *m : none;
}

Result<RegState> Explorer::kptr_access(std::uint32_t pc, const MapInfo::Kptr& k, bool write, const RegState* value,
                                       MemInsn insn) {
  using Kind = MapInfo::Kptr::Kind;
  if (insn == MemInsn::kAtomic) return error(pc, "kptr in map can only be accessed using BPF_MEM instruction mode");
  if (write && (k.kind == Kind::kReferenced || k.kind == Kind::kPercpu)) {
    return reject(pc, "store to referenced kptr disallowed", "move a referenced kptr with bpf_kptr_xchg");
  }
  if (write && k.kind == Kind::kUser) return error(pc, "store to uptr disallowed");
  if (k.kind == Kind::kUser) {
    return reject(pc, fmt::format("the __uptr at off={} is user memory a task storage maps, which bpfvm does not map", k.off),
                  "keep the data in the map value itself");
  }
  const std::uint32_t want = platform_.btf_struct_id(k.pointee);
  if (want == 0) {
    return reject(pc, fmt::format("the kptr at off={} points to struct {}, which the kernel's BTF does not have", k.off, k.pointee),
                  "a kptr points to a kernel struct (/sys/kernel/btf/vmlinux, or --btf FILE)");
  }
  if (!write) {
    // A per-CPU kptr is no object to read; a referenced one is an RCU pointer (a non-sleepable program
    // runs in an RCU read section), an unreferenced one untrusted (btf_ld_kptr_type). Either may be NULL.
    if (k.kind == Kind::kPercpu) return RegState::unknown_scalar();
    RegState r = RegState::pointer(RegType::kBtfId);
    r.btf_id = want;
    r.untrusted = k.kind == Kind::kUntrusted || platform_.sleepable();
    r.maybe_null = true;
    r.id = new_id();
    id_origin_[r.id] = pc;
    return r;
  }
  if (insn == MemInsn::kStoreImm) {
    if (!value->value.is_const() || value->value.const_value() != 0) {
      return error(pc, fmt::format("BPF_ST imm must be 0 when storing to kptr at off={}", k.off));
    }
    return RegState{};
  }
  // NULL, or a pointer to that struct (or to an object that starts with one) at a fixed offset
  // (map_kptr_match_type).
  if (is_null_const(*value)) return RegState{};
  const std::string expected = fmt::format("expected=ptr_{} or untrusted_ptr_{}", k.pointee, k.pointee);
  if (value->type != RegType::kBtfId) {
    return reject(pc, fmt::format("invalid kptr access, type={} {}", reg_type_name(value->type, value->maybe_null), expected),
                  fmt::format("store a pointer to a struct {} there, or 0", k.pointee));
  }
  if (!value->value.is_const() || value->value.const_value() != 0 || !platform_.btf_struct_at(value->btf_id, value->off, want)) {
    return reject(pc, fmt::format("invalid kptr access, type=ptr_{} {}", platform_.btf_type_name(value->btf_id), expected),
                  fmt::format("store a pointer to a struct {} there, or 0", k.pointee));
  }
  return RegState{};
}

Result<RegState> Explorer::access(State& s, std::uint32_t pc, std::uint8_t reg, std::int16_t off, int size, bool write,
                                  const RegState* value, bool sign_extend_load, MemInsn insn) {
  const RegState base = s.cur().regs[reg];
  const std::string_view type = reg_type_name(base.type, base.maybe_null);
  const bool stores_pointer = write && value && value->is_pointer();
  if (base.maybe_null && base.is_pointer()) {
    return reject(pc, fmt::format("R{} invalid mem access '{}': r{} may be NULL here", reg, type, reg),
                  fmt::format("check it before use: `if (!ptr) return 0;` (compare r{} with 0)", reg), base.id);
  }
  switch (base.type) {
    case RegType::kStack:
      if (write) {
        BPFVM_TRY(stack_write(s, pc, base, reg, off, size, *value));
        return RegState{};
      }
      return stack_read(frame_of(s, base), pc, base, reg, off, size, sign_extend_load);
    case RegType::kMapValue:
      BPFVM_TRY(map_value_check(pc, reg, base, off, size, write));
      if (base.value.is_const()) {
        if (const MapInfo::Kptr* k = map_of(base).kptr_at(base.off + off + static_cast<std::int64_t>(base.value.const_value()))) {
          return kptr_access(pc, *k, write, value, insn);
        }
      }
      // A pointer kept in a map outlives the program run that knew what it pointed to; the
      // privileged kernel allows it, bpfvm does not (a map is shared with other processes).
      if (stores_pointer) {
        return reject(pc, "leaks addr into map: a pointer may not be stored in a map value", "store numbers there; a pointer stays in registers and on the stack");
      }
      if (const MapInfo& m = map_of(base); !write && !m.frozen_value.empty() && base.value.is_const()) {
        // bpf_map_direct_read: a load of 1, 2, 4 or 8 bytes at a known offset of a frozen read-only value.
        const std::int64_t at = base.off + off + static_cast<std::int64_t>(base.value.const_value());
        if (at >= 0 && at + size <= static_cast<std::int64_t>(m.frozen_value.size()) &&
            (size == 1 || size == 2 || size == 4 || size == 8)) {
          std::uint64_t v = 0;
          std::memcpy(&v, m.frozen_value.data() + at, static_cast<std::size_t>(size));  // little-endian
          if (sign_extend_load && size < 8) {
            const int shift = 64 - 8 * size;
            v = static_cast<std::uint64_t>(static_cast<std::int64_t>(v << shift) >> shift);
          }
          return RegState::scalar(Scalar::constant(v));
        }
      }
      return loaded_unknown(size, sign_extend_load);
    case RegType::kMapKey:
      if (write) return error(pc, fmt::format("R{} cannot write into map_key: a callback's key is read-only", reg));
      BPFVM_TRY(region_check(pc, reg, base, off, size, map_of(base).key_size, "map key"));
      return loaded_unknown(size, sign_extend_load);
    case RegType::kMem:
      BPFVM_TRY(region_check(pc, reg, base, off, size, base.mem_size, "memory"));
      if (stores_pointer) return reject(pc, fmt::format("R{} leaks addr into mem", reg), "store numbers there; a pointer stays in registers and on the stack");
      return loaded_unknown(size, sign_extend_load);
    case RegType::kCtx: {
      if (base.off != 0) {
        return error(pc, fmt::format("dereference of modified ctx ptr R{} off={} disallowed: use the context pointer "
                                     "itself with the field's offset in the instruction",
                                     reg, base.off));
      }
      if (!base.value.is_const() || base.value.const_value() != 0) {
        return error(pc, fmt::format("variable ctx access var_off={} disallowed", base.value.to_string()));
      }
      if (stores_pointer) return reject(pc, fmt::format("R{} leaks addr into ctx", reg), "store numbers there; a pointer stays in registers and on the stack");
      const CtxField a = platform_.ctx_access(off, static_cast<std::uint32_t>(size), write);
      switch (a.result) {
        case CtxField::Result::kDenied:
          return reject(pc, fmt::format("invalid bpf_context access off={} size={}: {}", off, size, a.why),
                        fmt::format("access the fields of the {} program's context by their own offset and size "
                                    "(struct __sk_buff, xdp_md, pt_regs...), reading only what the type allows",
                                    platform_.prog_type_name()));
        case CtxField::Result::kScalar: return loaded_unknown(size, sign_extend_load);
        case CtxField::Result::kPacket: return RegState::pointer(RegType::kPacket);
        case CtxField::Result::kPacketEnd: return RegState::pointer(RegType::kPacketEnd);
        case CtxField::Result::kPacketMeta: return RegState::pointer(RegType::kPacketMeta);
        case CtxField::Result::kBtfPointer: {
          RegState r = RegState::pointer(RegType::kBtfId);
          r.btf_id = a.btf_id;
          if (a.maybe_null) {  // (checked for NULL before use, as the sockets below)
            r.maybe_null = true;
            r.id = new_id();
            id_origin_[r.id] = pc;
          }
          return r;
        }
        case CtxField::Result::kSocket: return RegState::pointer(RegType::kSocket);
        case CtxField::Result::kTpBuffer: return RegState::pointer(RegType::kTpBuffer);
        case CtxField::Result::kSockCommonOrNull:
        case CtxField::Result::kSocketOrNull: {
          // A pointer that may be NULL gets its own id, for its null check (check_mem_access).
          RegState r = RegState::pointer(a.result == CtxField::Result::kSocketOrNull ? RegType::kSocket : RegType::kSockCommon);
          r.maybe_null = true;
          r.id = new_id();
          id_origin_[r.id] = pc;
          return r;
        }
      }
      return RegState::unknown_scalar();
    }
    case RegType::kSockCommon:
    case RegType::kSocket:
    case RegType::kTcpSock: {
      // check_mem_access for type_is_sk_pointer, then check_sock_access.
      if (write) {
        return reject(pc, fmt::format("R{} cannot write into {}", reg, type),
                      "a socket is read-only to programs; keep what you compute in a register, the stack or a map");
      }
      const std::int64_t at = static_cast<std::int64_t>(base.off) + off;
      if (!sock_load_allowed(base.type, static_cast<std::int32_t>(at), size)) {
        return reject(pc, fmt::format("R{} invalid {} access off={} size={}", reg, type, at, size),
                      fmt::format("read the fields of struct bpf_{} at their own offsets (a 4-byte field may be read "
                                  "narrower from its start where the kernel allows it)",
                                  base.type == RegType::kTcpSock ? "tcp_sock" : "sock"));
      }
      return loaded_unknown(size, sign_extend_load);
    }
    case RegType::kPacket:
    case RegType::kPacketMeta:
      if (write && !platform_.packet_writable()) {
        return error(pc, fmt::format("cannot write into packet: {} programs may only read it", platform_.prog_type_name()));
      }
      BPFVM_TRY(packet_check(pc, reg, base, off, size));
      if (stores_pointer) return reject(pc, fmt::format("R{} leaks addr into packet", reg), "store numbers there; a pointer stays in registers and on the stack");
      return loaded_unknown(size, sign_extend_load);
    case RegType::kTpBuffer: {
      // check_tp_buffer_access: at a fixed, non-negative offset; how far the program reaches is checked
      // against the tracepoint's writable size when it attaches (max_tp_access).
      if (!base.value.is_const()) {
        return reject(pc, fmt::format("R{} invalid variable buffer offset: off={}, var_off={}", reg, base.off + off,
                                      base.value.to_string()),
                      "access the tracepoint's buffer at constant offsets");
      }
      const std::int64_t at = static_cast<std::int64_t>(base.off) + off + static_cast<std::int64_t>(base.value.const_value());
      if (at < 0) {
        return reject(pc, fmt::format("R{} invalid tracepoint buffer access: off={}, size={}", reg, at, size),
                      "the buffer starts at the pointer the context gives (ctx->args[0])");
      }
      return write ? RegState{} : loaded_unknown(size, sign_extend_load);
    }
    case RegType::kBtfId: {
      // The kernel's check_ptr_to_btf_access: reads only, at a fixed offset, of what the type has there.
      // (Loads through these pointers are PROBE_MEM in the kernel: a fault reads 0. So in bpfvm's
      // engines, which are told where they are.)
      if (!write && options_.probe_loads && pc < options_.probe_loads->size()) (*options_.probe_loads)[pc] = true;
      const std::string name = "ptr_" + platform_.btf_type_name(base.btf_id);
      if (!base.value.is_const()) {
        return error(pc, fmt::format("R{} is {} invalid variable offset: off={}, var_off={}", reg, name, base.off + off,
                                     base.value.to_string()));
      }
      const std::int64_t at = static_cast<std::int64_t>(base.off) + off + static_cast<std::int64_t>(base.value.const_value());
      if (write) {
        // Only the fields the program type's btf_struct_access lets it write (a TCP congestion
        // control's own state in its socket), numbers only.
        const BtfField w = platform_.btf_write(base.btf_id, at, static_cast<std::uint32_t>(size));
        if (w.result == BtfField::Result::kDenied) {
          return reject(pc, fmt::format("R{} is {}, a kernel object: {}", reg, name, w.why),
                        "kernel objects are read-only to this program but for the fields its type owns; copy what "
                        "you need to the stack or a map");
        }
        if (stores_pointer) return reject(pc, fmt::format("R{} leaks addr into {}", reg, name), "store numbers there");
        return RegState{};
      }
      const BtfField f = platform_.btf_access(base.btf_id, at, static_cast<std::uint32_t>(size));
      switch (f.result) {
        case BtfField::Result::kDenied:
          return reject(pc, fmt::format("R{} {} access at off={} size={}: {}", reg, name, at, size, f.why),
                        "read the object's fields at their own offsets and sizes (BPF_CORE_READ keeps them right)");
        case BtfField::Result::kScalar: return loaded_unknown(size, sign_extend_load);
        case BtfField::Result::kPointer: {
          RegState r = RegState::pointer(RegType::kBtfId);
          r.btf_id = f.btf_id;
          r.untrusted = base.untrusted;  // (what an untrusted pointer leads to is untrusted too)
          return r;
        }
      }
      return RegState::unknown_scalar();
    }
    case RegType::kScalar:
      return reject(pc, fmt::format("R{} invalid mem access 'scalar': r{} holds a number, not a pointer", reg, reg),
                    fmt::format("r{} must hold a pointer here (the context, r10 plus an offset, a map value, a "
                                "packet pointer); a pointer stored as a number or overwritten is no longer one",
                                reg));
    default:
      return error(pc, fmt::format("R{} invalid mem access '{}'", reg, type));
  }
}

Result<void> Explorer::region_check(std::uint32_t pc, std::uint8_t reg, const RegState& base, std::int64_t off,
                                    std::int64_t size, std::int64_t limit, std::string_view what) const {
  const std::int64_t fixed = base.off + off;
  const std::int64_t smin = base.value.smin;
  const std::string size_name = what == "map value" ? "value_size" : what == "map key" ? "key_size" : "mem_size";
  if (smin < 0 && (smin == std::numeric_limits<std::int64_t>::min() || smin + fixed < 0)) {
    return reject(pc, fmt::format("R{} min value is negative, either use unsigned index or do a if (index >=0) check.", reg),
                  "make the index unsigned (__u32), or check `if (i < 0) return 0;`");
  }
  if (smin + fixed < 0 || smin + fixed + size > limit) {
    return reject(pc, fmt::format("invalid access to {}, {}={} off={} size={}: R{} min value is outside of the allowed "
                                 "memory range",
                                 what, size_name, limit, smin + fixed, size, reg),
                  fmt::format("the access reaches {} bytes into a {}-byte {}: check the offset against the size first",
                              smin + fixed + size, limit, what));
  }
  if (base.value.umax >= static_cast<std::uint64_t>(kMaxVarOff)) {
    return reject(pc, fmt::format("R{} unbounded memory access, make sure to bounds check any such access", reg),
                  fmt::format("the offset added to r{} has no upper bound: check it (`if (i >= N) return 0;`) or "
                              "mask it (`i &= N - 1`)",
                              reg));
  }
  const std::int64_t hi = static_cast<std::int64_t>(base.value.umax) + fixed;
  if (hi + size > limit) {
    return reject(pc, fmt::format("invalid access to {}, {}={} off={} size={}: R{} max value is outside of the allowed "
                                 "memory range",
                                 what, size_name, limit, hi, size, reg),
                  fmt::format("bound the offset: it may reach {}, and {} + {} must stay within {} bytes", hi, hi, size,
                              limit));
  }
  return {};
}

Result<void> Explorer::map_value_check(std::uint32_t pc, std::uint8_t reg, const RegState& base, std::int64_t off,
                                       std::int64_t size, bool write, bool direct) const {
  const MapInfo& m = map_of(base);
  if (write && m.read_only) {
    return error(pc, fmt::format("write into map forbidden, value_size={} off={} size={}: the map is read-only for "
                                 "programs",
                                 m.value_size, base.off + off, size));
  }
  BPFVM_TRY(region_check(pc, reg, base, off, size, m.value_size, "map value"));
  // The value's special fields (check_map_access): no load or store may touch them, at any offset the
  // access may have.
  const std::int64_t lo = base.off + off + base.value.smin;
  const std::int64_t hi = base.off + off + static_cast<std::int64_t>(base.value.umax) + size;
  if (m.spin_lock_off >= 0 && lo < m.spin_lock_off + 4 && hi > m.spin_lock_off) {
    return error(pc, "bpf_spin_lock cannot be accessed directly by load/store: use bpf_spin_lock/bpf_spin_unlock");
  }
  if (m.timer_off >= 0 && lo < m.timer_off + 16 && hi > m.timer_off) {
    return error(pc, "bpf_timer cannot be accessed directly by load/store: use the bpf_timer_* helpers");
  }
  // A kptr field only by a load or store of all its 8 bytes, at its offset (check_map_access).
  for (const MapInfo::Kptr& k : m.kptrs) {
    if (!(lo < k.off + 8 && hi > k.off)) continue;
    const std::string_view what = k.kind == MapInfo::Kptr::Kind::kUser ? "uptr" : "kptr";
    if (!direct) return error(pc, fmt::format("{} cannot be accessed indirectly by helper", what));
    if (!base.value.is_const()) return error(pc, fmt::format("{} access cannot have variable offset", what));
    const std::int64_t at = base.off + off + static_cast<std::int64_t>(base.value.const_value());
    if (at != k.off) return error(pc, fmt::format("{} access misaligned expected={} off={}", what, k.off, at));
    if (size != 8) return error(pc, fmt::format("{} access size must be BPF_DW", what));
  }
  return {};
}

Result<void> Explorer::packet_check(std::uint32_t pc, std::uint8_t reg, const RegState& base, std::int64_t off,
                                    std::int64_t size) const {
  if (base.value.smin < 0) {
    return error(pc, fmt::format("R{} min value is negative, either use unsigned index or do a if (index >=0) check.", reg));
  }
  const std::int64_t fixed = base.off + off;
  if (fixed < 0 || fixed + size > static_cast<std::int64_t>(base.range)) {
    return reject(pc,
                  fmt::format("invalid access to packet, off={} size={}, R{}(id={},off={},r={}): only {} bytes from "
                              "r{} are proven to lie before data_end",
                              fixed, size, reg, base.id, base.off, base.range, base.range, reg),
                  fmt::format("compare first: `if ((void *)p + {} > data_end) return ...;` where p is r{}",
                              fixed + size, reg));
  }
  return {};
}

Result<std::int32_t> Explorer::stack_offset(std::uint32_t pc, const RegState& base, std::uint8_t reg,
                                            std::int64_t insn_off, int size, bool write, bool aligned) const {
  if (!base.value.is_const()) {
    return error(pc, fmt::format("R{} variable stack access var_off={} size={}: the offset must be known", reg,
                                 base.value.to_string(), size));
  }
  const auto var = static_cast<std::int64_t>(base.value.const_value());
  const std::int64_t off = base.off + insn_off + var;
  // Stack accesses are always aligned to their size: spill tracking relies on it (the kernel's
  // check_ptr_alignment is strict for the stack whatever the architecture).
  if (aligned && off % size != 0) {
    return reject(pc, fmt::format("misaligned stack access off {}+{}+{} size {}", var, base.off, insn_off, size),
                  fmt::format("access {}-byte values on the stack at offsets that are multiples of {}", size, size));
  }
  if (off < -kStackSize || off + size > 0) {
    return reject(pc,
                  fmt::format("invalid {} stack R{} off={} size={}: the stack is the {} bytes below r10",
                              write ? "write to" : "read from", reg, off, size, kStackSize),
                  "keep stack accesses within fp-512..fp-1 (large buffers belong in a per-CPU array map)");
  }
  return static_cast<std::int32_t>(off);
}

void Explorer::note_depth(const Frame& f, std::int32_t off) {
  auto& depth = stack_depth_[f.subprog];
  depth = std::max(depth, static_cast<std::uint32_t>(-off));
}

// A stack access at a variable offset (an array on the stack indexed by a bounded number), as the
// kernel allows a privileged loader: every byte it may touch lies in the stack, and the offset keeps the
// access aligned. Returns the lowest and one past the highest byte it may touch.
Result<std::pair<std::int32_t, std::int32_t>> Explorer::var_stack_range(std::uint32_t pc, const RegState& base,
                                                                         std::uint8_t reg, std::int64_t insn_off,
                                                                         int size, bool write, bool aligned) const {
  const Scalar& v = base.value;
  const std::int64_t fixed = base.off + insn_off;
  if (v.smin <= -kStackSize || v.smax >= kStackSize) {
    return reject(pc, fmt::format("invalid unbounded variable-offset {} stack R{}", write ? "write to" : "read from", reg),
                  "bound the index before using it on a stack array (`i &= N - 1` or `if (i >= N) return 0;`)");
  }
  const std::int64_t lo = fixed + v.smin, hi = fixed + v.smax + size;
  if (lo < -kStackSize || hi > 0) {
    return reject(pc,
                  fmt::format("invalid variable-offset {} stack R{} var_off={} off={} size={}: bytes {}..{} are "
                              "outside the stack",
                              write ? "write to" : "read from", reg, v.to_string(), fixed, size, lo, hi - 1),
                  "bound the index so that every element it selects is inside the array");
  }
  const Tnum at = tnum_add(v.bits, Tnum::constant(static_cast<std::uint64_t>(fixed)));
  if (aligned && ((at.value | at.mask) & static_cast<std::uint64_t>(size - 1)) != 0) {
    return reject(pc, fmt::format("misaligned variable stack access var_off={} off={} size={}", v.to_string(), fixed, size),
                  "index the array in whole elements");
  }
  return std::pair{static_cast<std::int32_t>(lo), static_cast<std::int32_t>(hi)};
}

bool Explorer::touches_dynptr(const Frame& f, std::int32_t lo, std::int32_t hi) {
  for (std::int32_t b = lo; b < hi; ++b) {
    const auto k = static_cast<std::size_t>((-b - 1) / 8);
    if (k < f.stack.size() && f.stack[k].bytes[index_in_slot(b)] == ByteType::kDynptr) return true;
  }
  return false;
}

const StackSlot* Explorer::dynptr_at(const Frame& f, std::int64_t off) {
  if (off % 8 != 0 || off < -kStackSize || off > -16) return nullptr;
  const auto k = static_cast<std::size_t>((-off - 1) / 8);
  if (k >= f.stack.size()) return nullptr;
  const StackSlot& first = f.stack[k];
  return first.bytes[0] == ByteType::kDynptr && first.dynptr_first ? &first : nullptr;
}

Result<void> Explorer::overwrite_dynptrs(State& s, std::uint32_t pc, const RegState& base, std::int32_t lo,
                                         std::int32_t hi) {
  Frame& f = frame_of(s, base);
  for (std::int32_t b = lo; b < hi; ++b) {
    const auto k = static_cast<std::size_t>((-b - 1) / 8);
    if (k >= f.stack.size() || f.stack[k].bytes[0] != ByteType::kDynptr) continue;
    const StackSlot& hit = f.stack[k];
    if (hit.dynptr_ref) {
      return reject(pc, "cannot overwrite referenced dynptr",
                    "submit or discard the ring buffer record the dynptr holds (bpf_ringbuf_submit_dynptr, "
                    "bpf_ringbuf_discard_dynptr) before reusing its stack");
    }
    // Both slots become unwritten; slices taken from the dynptr are numbers from now on.
    const std::size_t first = hit.dynptr_first ? k : k + 1;
    const std::uint32_t id = hit.dynptr_id;
    f.stack[first] = StackSlot{};
    f.stack[first - 1] = StackSlot{};
    for_each_reg(s, [&](RegState& r) {
      if (r.type == RegType::kMem && r.dynptr_id == id) r = RegState::unknown_scalar();
    });
  }
  return {};
}

Result<void> Explorer::stack_write(State& s, std::uint32_t pc, const RegState& base, std::uint8_t reg,
                                   std::int16_t insn_off, int size, const RegState& value) {
  Frame& f = frame_of(s, base);
  if (!base.value.is_const()) {
    if (value.is_pointer()) {
      return error(pc, fmt::format("R{} variable-offset stack write of a pointer is not allowed", reg));
    }
    const auto [lo, hi] = BPFVM_TRY(var_stack_range(pc, base, reg, insn_off, size, true, true));
    BPFVM_TRY(overwrite_dynptrs(s, pc, base, lo, hi));
    note_depth(f, lo);
    // Which byte is written is unknown: every byte it may be loses its spilled register and is some
    // number from now on (check_stack_write_var_off).
    const bool zero = value.value.is_const() && value.value.const_value() == 0;
    for (std::int32_t b = lo; b < hi; ++b) {
      StackSlot& slot = slot_of(f, b);
      scrub_spill(slot);
      ByteType& t = slot.bytes[index_in_slot(b)];
      t = zero && t == ByteType::kZero ? ByteType::kZero : ByteType::kMisc;
    }
    return {};
  }
  const std::int32_t off = BPFVM_TRY(stack_offset(pc, base, reg, insn_off, size, true));
  BPFVM_TRY(overwrite_dynptrs(s, pc, base, off, off + size));
  note_depth(f, off);
  StackSlot& first = slot_of(f, off);
  if (off % 8 == 0 && (size == 8 || value.type == RegType::kScalar)) {
    // A spill: the register is kept, its `size` low bytes at the slot's start (save_register_state).
    // The slot's other bytes stay zero or unwritten, or become plain bytes.
    if (size < 8 && value.is_pointer()) {
      return error(pc, fmt::format("invalid size of register spill: {} bytes of a pointer", size));
    }
    for (std::size_t i = static_cast<std::size_t>(size); i < 8; ++i) {
      if (first.bytes[i] == ByteType::kSpill) first.bytes[i] = ByteType::kMisc;
    }
    for (std::size_t i = 0; i < static_cast<std::size_t>(size); ++i) first.bytes[i] = ByteType::kSpill;
    first.spilled = value;
    return {};
  }
  if (value.is_pointer()) return error(pc, fmt::format("invalid size of register spill: {} bytes of a pointer", size));
  scrub_spill(first);
  const bool zero = value.value.is_const() && value.value.const_value() == 0;
  for (std::int32_t b = off; b < off + size; ++b) first.bytes[index_in_slot(b)] = zero ? ByteType::kZero : ByteType::kMisc;
  return {};
}

Result<RegState> Explorer::stack_read(Frame& f, std::uint32_t pc, const RegState& base, std::uint8_t reg,
                                      std::int16_t insn_off, int size, bool sign_extend_load) {
  if (!base.value.is_const()) {
    const auto [lo, hi] = BPFVM_TRY(var_stack_range(pc, base, reg, insn_off, size, false, true));
    note_depth(f, lo);
    if (touches_dynptr(f, lo, hi)) {
      return reject(pc, fmt::format("invalid read from stack var_off {} size {}: it may read a struct bpf_dynptr",
                                    base.value.to_string(), size),
                    "a dynptr's bytes are only for the dynptr helpers; read its data with bpf_dynptr_read");
    }
    for (std::int32_t b = lo; b < hi; ++b) {
      const StackSlot& slot = slot_of(f, b);
      if (slot.bytes[index_in_slot(b)] == ByteType::kSpill && slot.spilled.is_pointer()) {
        return error(pc, fmt::format("R{} variable-offset stack read may read part of a spilled pointer at fp{}", reg, b));
      }
    }
    return loaded_unknown(size, sign_extend_load);
  }
  const std::int32_t off = BPFVM_TRY(stack_offset(pc, base, reg, insn_off, size, false));
  note_depth(f, off);
  if (touches_dynptr(f, off, off + size)) {
    return reject(pc, fmt::format("invalid read from stack off {}+0 size {}: the bytes are a struct bpf_dynptr's", off, size),
                  "a dynptr's bytes are only for the dynptr helpers; read its data with bpf_dynptr_read");
  }
  StackSlot& slot = slot_of(f, off);
  const int spilled = spill_size(slot);
  if (spilled > 0) {
    if (size == 8 && spilled == 8) return slot.spilled;
    if (slot.spilled.is_pointer()) {
      return error(pc, fmt::format("invalid size of register fill: {} bytes of a spilled pointer", size));
    }
    // A read of the spill's low bytes keeps what is known of the register, truncated (the kernel's
    // narrowing fill, little-endian).
    if (index_in_slot(off) == 0 && size <= spilled && !sign_extend_load) {
      return RegState::scalar(scalar_alu(AluOp::kAnd, slot.spilled.value, Scalar::constant((1ull << (8 * size)) - 1), false));
    }
  }
  // Otherwise byte by byte: known only when every byte is zero (or of a spilled 0). Bytes never
  // written read as unknown, as the kernel lets a privileged loader read them (allow_uninit_stack):
  // struct padding copied or passed to helpers is everyday C.
  int spill_bytes = 0, zero_bytes = 0;
  for (std::int32_t b = off; b < off + size; ++b) {
    const ByteType t = slot.bytes[index_in_slot(b)];
    spill_bytes += t == ByteType::kSpill;
    zero_bytes += t == ByteType::kZero;
  }
  const bool spilled_zero =
      slot.spilled.type == RegType::kScalar && slot.spilled.value.is_const() && slot.spilled.value.const_value() == 0;
  if (zero_bytes == size || (spill_bytes == size && spilled_zero)) return RegState::scalar(Scalar::constant(0));
  return loaded_unknown(size, sign_extend_load);
}

Result<void> Explorer::helper_memory(State& s, std::uint32_t pc, std::uint8_t reg, const RegState& ptr,
                                     const Scalar& size, bool write, bool zero_ok) {
  if (size.umax == 0) {
    if (zero_ok) return {};
    return error(pc, fmt::format("invalid zero-sized read: R{} must be at least 1", reg + 1));
  }
  const auto n = static_cast<std::int64_t>(size.umax);
  switch (ptr.type) {
    case RegType::kStack: {
      std::int32_t off = 0, end = 0;
      if (ptr.value.is_const()) {
        off = BPFVM_TRY(stack_offset(pc, ptr, reg, 0, static_cast<int>(n), write, false));
        end = static_cast<std::int32_t>(off + n);
      } else {
        std::tie(off, end) = BPFVM_TRY(var_stack_range(pc, ptr, reg, 0, static_cast<int>(n), write, false));
      }
      Frame& f = frame_of(s, ptr);
      note_depth(f, off);
      if (touches_dynptr(f, off, end)) {
        // check_stack_range_initialized: a helper neither reads a dynptr's bytes as memory nor writes them.
        if (write) {
          for (std::int32_t b = off; b < end; ++b) {
            if (touches_dynptr(f, b, b + 1)) {
              return reject(pc, fmt::format("potential write to dynptr at off={} disallowed", b),
                            "give the helper a buffer apart from the dynptr");
            }
          }
        }
        return reject(pc, fmt::format("invalid indirect read from stack R{} off {}+0 size {}: the bytes are a struct "
                                      "bpf_dynptr's",
                                      reg, off, end - off),
                      "pass the dynptr to the dynptr helpers (bpf_dynptr_read...), not as memory");
      }
      for (std::int32_t b = off; b < end; ++b) {
        StackSlot& slot = slot_of(f, b);
        const std::size_t i = index_in_slot(b);
        // Reads of bytes never written are allowed, as above.
        if (write) {
          scrub_spill(slot);
          slot.bytes[i] = ByteType::kMisc;
        }
      }
      return {};
    }
    case RegType::kMapValue: return map_value_check(pc, reg, ptr, 0, n, write, false);
    case RegType::kMapKey:
      if (write) return error(pc, fmt::format("R{} cannot write into map_key", reg));
      return region_check(pc, reg, ptr, 0, n, map_of(ptr).key_size, "map key");
    case RegType::kMem: return region_check(pc, reg, ptr, 0, n, ptr.mem_size, "memory");
    case RegType::kPacket:
    case RegType::kPacketMeta:
      if (write && !platform_.packet_writable()) return error(pc, "cannot write into packet");
      return packet_check(pc, reg, ptr, 0, n);
    default:
      return error(pc, fmt::format("R{} type={} expected=fp, pkt, pkt_meta, map_key, map_value, mem", reg,
                                   reg_type_name(ptr.type, ptr.maybe_null)));
  }
}

Result<void> Explorer::atomic(State& s, std::uint32_t pc, const isa::Atomic& a) {
  Frame& f = s.cur();
  const RegState base = *BPFVM_TRY(read(f, pc, a.base));
  const RegState src = *BPFVM_TRY(read(f, pc, a.src));
  if (src.is_pointer()) return error(pc, fmt::format("R{} leaks addr into mem", a.src));
  if (a.op == isa::AtomicOp::kCmpxchg) {
    const RegState r0 = *BPFVM_TRY(read(f, pc, 0));
    if (r0.is_pointer()) return error(pc, "R0 leaks addr into mem");
  }
  if (base.type != RegType::kStack && base.type != RegType::kMapValue && base.type != RegType::kMem) {
    return error(pc, fmt::format("BPF_ATOMIC stores into R{} {} is not allowed", a.base,
                                 reg_type_name(base.type, base.maybe_null)));
  }
  const int size = isa::bytes_of(a.size);
  const RegState old = BPFVM_TRY(access(s, pc, a.base, a.off, size, false, nullptr, false, MemInsn::kAtomic));
  const RegState unknown = RegState::unknown_scalar();
  BPFVM_TRY(access(s, pc, a.base, a.off, size, true, &unknown, false, MemInsn::kAtomic));
  if (a.fetch) {
    const std::uint8_t dst = a.op == isa::AtomicOp::kCmpxchg ? 0 : a.src;
    BPFVM_TRY(write_check(pc, dst));
    s.cur().regs[dst] = old.type == RegType::kScalar ? loaded_unknown(size, false) : old;
  }
  return {};
}

Result<void> Explorer::packet_load(State& s, std::uint32_t pc, const isa::PacketLoad& p) {
  Frame& f = s.cur();
  if (!platform_.legacy_packet_loads()) {
    return error(pc, fmt::format("BPF_LD_[ABS|IND] instructions not allowed for this program type ({})",
                                 platform_.prog_type_name()));
  }
  if (s.frames.size() > 1) return error(pc, "BPF_LD_[ABS|IND] instructions are not allowed in subprograms");
  if (!s.refs.empty()) return error(pc, "BPF_LD_[ABS|IND] cannot be mixed with socket references");
  if (s.active_lock) return error(pc, "BPF_LD_[ABS|IND] cannot be used inside bpf_spin_lock-ed region");
  const RegState r6 = *BPFVM_TRY(read(f, pc, 6));
  if (r6.type != RegType::kCtx) {
    return error(pc, "at the time of BPF_LD_ABS|IND R6 != pointer to skb: these loads read the packet of the "
                     "context in r6");
  }
  if (p.indirect) {
    const RegState idx = *BPFVM_TRY(read(f, pc, p.src));
    if (idx.type != RegType::kScalar) return error(pc, fmt::format("R{} leaks addr: the offset must be a number", p.src));
  }
  for (int r = 1; r <= 5; ++r) f.regs[static_cast<std::size_t>(r)] = RegState{};
  f.regs[0] = loaded_unknown(isa::bytes_of(p.size), false);
  return {};
}

}  // namespace bpfvm::verifier
