#include "bpfvm/verifier/state.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

namespace bpfvm::verifier {

std::string_view reg_type_name(RegType type, bool maybe_null) {
  switch (type) {
    case RegType::kNotInit: return "?";
    case RegType::kScalar: return "scalar";
    case RegType::kCtx: return "ctx";
    case RegType::kStack: return "fp";
    case RegType::kMapPtr: return "map_ptr";
    case RegType::kMapValue: return maybe_null ? "map_value_or_null" : "map_value";
    case RegType::kMapKey: return "map_key";
    case RegType::kPacket: return "pkt";
    case RegType::kPacketMeta: return "pkt_meta";
    case RegType::kPacketEnd: return "pkt_end";
    case RegType::kMem: return maybe_null ? "mem_or_null" : "mem";
    case RegType::kFunc: return "func";
    case RegType::kBtfId: return maybe_null ? "ptr_or_null_" : "ptr_";
    case RegType::kSockCommon: return maybe_null ? "sock_common_or_null" : "sock_common";
    case RegType::kSocket: return maybe_null ? "sock_or_null" : "sock";
    case RegType::kTcpSock: return maybe_null ? "tcp_sock_or_null" : "tcp_sock";
    case RegType::kConstDynptr: return "dynptr_ptr";
    case RegType::kTpBuffer: return "tp_buffer";
  }
  return "?";
}

RegState RegState::scalar(const Scalar& s) {
  RegState r;
  r.type = RegType::kScalar;
  r.value = s;
  return r;
}

RegState RegState::pointer(RegType type, std::int32_t off) {
  RegState r;
  r.type = type;
  r.off = off;
  r.value = Scalar::constant(0);
  return r;
}

std::string RegState::to_string() const {
  if (type == RegType::kScalar) {
    return value.is_const() ? value.to_string() : fmt::format("scalar({})", value.to_string());
  }
  if (type == RegType::kStack && value.is_const() && value.const_value() == 0) {
    return off == 0 ? std::string("fp0") : fmt::format("fp{}", off);
  }
  std::string out = fmt::format("{}(", reg_type_name(type, maybe_null));
  bool first = true;
  auto add = [&](const std::string& part) {
    if (!first) out.push_back(',');
    out.append(part);
    first = false;
  };
  if (id) add(fmt::format("id={}", id));
  if (ref_id) add(fmt::format("ref_obj_id={}", ref_id));
  if (type == RegType::kMapPtr || type == RegType::kMapValue || type == RegType::kMapKey) add(fmt::format("map={}", map_index));
  if (off) add(fmt::format("off={}", off));
  if (type == RegType::kPacket || type == RegType::kPacketMeta) add(fmt::format("r={}", range));
  if (type == RegType::kMem) add(fmt::format("sz={}", mem_size));
  if (type == RegType::kBtfId) add(fmt::format("btf_id={}", btf_id));
  if (untrusted) add("untrusted");
  if (!(value.is_const() && value.const_value() == 0)) add(value.to_string());
  return out + ")";
}

bool IdMap::check(std::uint32_t old_id, std::uint32_t cur_id) {
  if (old_id == 0 && cur_id == 0) return true;
  if (old_id == 0 || cur_id == 0) return false;
  for (std::size_t i = 0; i < count; ++i) {
    const auto& [o, c] = first[i];
    if (o == old_id || c == cur_id) return o == old_id && c == cur_id;
  }
  for (const auto& [o, c] : more) {
    if (o == old_id || c == cur_id) return o == old_id && c == cur_id;
  }
  if (count < kInline) {
    first[count++] = {old_id, cur_id};
  } else {
    more.emplace_back(old_id, cur_id);
  }
  return true;
}

bool reg_includes(const RegState& old, const RegState& cur, IdMap& ids) {
  // A register the explored state left unset was never read on any path from there.
  if (old.type == RegType::kNotInit) return true;
  if (cur.type != old.type || cur.maybe_null != old.maybe_null) return false;
  if (old.type == RegType::kScalar) {
    // Copies of one scalar learn bounds together: when the explored state relied on copies, the new
    // one must have the same copies.
    return old.value.includes(cur.value) && (old.id == 0 || ids.check(old.id, cur.id));
  }
  if (old.off != cur.off || old.map_index != cur.map_index || old.frame != cur.frame || old.subprog != cur.subprog ||
      old.mem_size != cur.mem_size || old.btf_id != cur.btf_id || old.untrusted != cur.untrusted) {
    return false;
  }
  if (!ids.check(old.dynptr_id, cur.dynptr_id)) return false;
  // A packet pointer needs at least the range the explored one had proven.
  if (cur.range < old.range) return false;
  if (!old.value.includes(cur.value)) return false;
  return ids.check(old.id, cur.id) && ids.check(old.ref_id, cur.ref_id);
}

namespace {

bool slot_includes(const StackSlot& old, const StackSlot& cur, IdMap& ids) {
  // A dynptr covers only the same kind of dynptr, the same slot of it, with the same ids (its slices,
  // its reference); nothing else covers a dynptr (stacksafe's STACK_DYNPTR case).
  const bool old_dynptr = old.bytes[0] == ByteType::kDynptr, cur_dynptr = cur.bytes[0] == ByteType::kDynptr;
  if (old_dynptr || cur_dynptr) {
    return old_dynptr == cur_dynptr && old.dynptr == cur.dynptr && old.dynptr_first == cur.dynptr_first &&
           ids.check(old.dynptr_id, cur.dynptr_id) && ids.check(old.dynptr_ref, cur.dynptr_ref);
  }
  for (std::size_t i = 0; i < 8; ++i) {
    switch (old.bytes[i]) {
      case ByteType::kInvalid:
      case ByteType::kMisc:
        // Any number (unwritten bytes read as unknown, as for a privileged loader in the kernel's
        // stacksafe); but not a pointer, which bpfvm keeps out of return values and maps.
        if (cur.bytes[i] == ByteType::kSpill && cur.spilled.is_pointer()) return false;
        break;
      case ByteType::kZero:
        if (cur.bytes[i] == ByteType::kZero) break;
        // A spilled constant 0 is zero bytes too.
        if (cur.bytes[i] == ByteType::kSpill && cur.spilled.type == RegType::kScalar && cur.spilled.value.is_const() &&
            cur.spilled.value.const_value() == 0) {
          break;
        }
        return false;
      case ByteType::kDynptr: return false;  // (above)
      case ByteType::kSpill:
        if (cur.bytes[i] != ByteType::kSpill) {
          // A spilled scalar the program may read back as anything is covered by any initialised bytes
          // only when it was unknown.
          if (old.spilled.type == RegType::kScalar && old.spilled.value == Scalar::unknown() &&
              cur.bytes[i] != ByteType::kInvalid) {
            break;
          }
          return false;
        }
        break;
    }
  }
  if (old.bytes[0] == ByteType::kSpill && cur.bytes[0] == ByteType::kSpill) return reg_includes(old.spilled, cur.spilled, ids);
  return true;
}

// Only numbers (or nothing) in the slot: no spilled pointer.
bool holds_number(const StackSlot& s) {
  return !(s.bytes[0] == ByteType::kSpill && s.spilled.is_pointer()) && s.bytes[0] != ByteType::kDynptr;
}

}  // namespace

State State::entry() {
  State s;
  s.frames.emplace_back();
  Frame& f = s.frames.back();
  f.regs[1] = RegState::pointer(RegType::kCtx);
  f.regs[10] = RegState::pointer(RegType::kStack);
  return s;
}

bool State::includes(const State& other) const { return compare(other, nullptr, 0); }

bool State::includes(const State& other, const Liveness& liveness, std::uint32_t pc) const {
  return compare(other, &liveness, pc);
}

bool State::includes(const State& other, const Liveness& liveness, std::uint32_t pc, std::uint16_t more_regs,
                     std::uint64_t more_slots) const {
  return compare(other, &liveness, pc, more_regs, more_slots);
}

bool State::compare(const State& other, const Liveness* liveness, std::uint32_t pc, std::uint16_t more_regs,
                    std::uint64_t more_slots) const {
  if (frames.size() != other.frames.size() || refs.size() != other.refs.size()) return false;
  if ((active_lock == 0) != (other.active_lock == 0)) return false;
  IdMap ids;
  for (std::size_t i = 0; i < refs.size(); ++i) {
    if (!ids.check(refs[i].id, other.refs[i].id)) return false;
  }
  if (active_lock != other.active_lock) return false;
  for (std::size_t f = 0; f < frames.size(); ++f) {
    const Frame& a = frames[f];
    const Frame& b = other.frames[f];
    if (a.callsite != b.callsite || a.subprog != b.subprog || a.callback != b.callback) return false;
    // Where this frame goes on: `pc` for the current one; a caller after its call (a helper that
    // calls back, at the call itself).
    std::uint16_t live = 0xffff, demanded = 0xffff;
    std::uint64_t live_slots = ~0ull, demanded_slots = ~0ull;
    if (liveness) {
      std::uint32_t at = pc;
      if (f + 1 < frames.size()) at = frames[f + 1].callsite + (frames[f + 1].callback ? 0 : 1);
      live = liveness->live_regs[at];
      demanded = liveness->demanded_regs[at];
      live_slots = liveness->live_slots[at];
      demanded_slots = liveness->demanded_slots[at];
      if (f + 1 == frames.size()) {
        demanded = static_cast<std::uint16_t>(demanded | (more_regs & live));
        demanded_slots |= more_slots & live_slots;
      }
    }
    // First the cheap and most often decisive difference: a demanded constant (a loop counter) that
    // differs. Most states a path meets are other iterations of its loop.
    for (std::size_t r = 0; r < a.regs.size(); ++r) {
      const RegState& o = a.regs[r];
      if (!(demanded & live & (1u << r)) || o.type != RegType::kScalar || !o.value.is_const()) continue;
      const RegState& c = b.regs[r];
      if (c.type != RegType::kScalar || !c.value.is_const() || c.value.const_value() != o.value.const_value()) return false;
    }
    static const StackSlot kUnwritten{};
    // Only the live slots either frame has: their bits, one by one. The demanded ones first, with the
    // demanded constants above: where states differ, it is most often in numbers that decide.
    const std::size_t slots = std::max(a.stack.size(), b.stack.size());
    const std::uint64_t todo = slots >= 64 ? live_slots : live_slots & ((1ull << slots) - 1);
    const auto slot_at = [&](const Frame& fr, std::size_t s) -> const StackSlot& {
      return s < fr.stack.size() ? fr.stack[s] : kUnwritten;
    };
    for (std::uint64_t m = todo & demanded_slots; m; m &= m - 1) {
      const auto s = static_cast<std::size_t>(std::countr_zero(m));
      if (!slot_includes(slot_at(a, s), slot_at(b, s), ids)) return false;
    }
    for (std::size_t r = 0; r < a.regs.size(); ++r) {
      if (!(live & (1u << r))) continue;
      const RegState& o = a.regs[r];
      const RegState& c = b.regs[r];
      if (!(demanded & (1u << r)) && o.type == RegType::kScalar && c.type == RegType::kScalar) continue;
      if (!reg_includes(o, c, ids)) return false;
    }
    // The other live slots: any number covers any number there; pointers are compared whole.
    for (std::uint64_t m = todo & ~demanded_slots; m; m &= m - 1) {
      const auto s = static_cast<std::size_t>(std::countr_zero(m));
      const StackSlot& os = slot_at(a, s);
      const StackSlot& cs = slot_at(b, s);
      if (holds_number(os) && holds_number(cs)) continue;
      if (!slot_includes(os, cs, ids)) return false;
    }
  }
  return true;
}

}  // namespace bpfvm::verifier
