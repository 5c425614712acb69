#include "bpfvm/runtime/context.hpp"

#include <linux/bpf_perf_event.h>

#include <fmt/format.h>

#include <array>
#include <cstddef>
#include <initializer_list>
#include <span>
#include <string_view>

#include "bpfvm/isa/opcode.hpp"
#include "bpfvm/verifier/ctx_access.hpp"

namespace bpfvm::runtime {

namespace {

// kScratch: the program's own scratch (cb[]): any access of 1, 2, 4 or 8 bytes aligned to its size and
// inside the array, as bpf_skb_is_valid_access allows.
enum Access : std::uint8_t { kRead = 1, kWrite = 2, kScratch = 4 };

struct Field {
  std::uint32_t off;
  std::uint32_t size;         // of the user-visible field (for arrays: of one element)
  std::uint32_t count = 1;    // array elements (cb[5])
  std::uint8_t access = kRead;
  std::int32_t pointer_at = -1;  // >= 0: a pointer field, loaded as 64 bits from this offset
  verifier::CtxField::Result loads = verifier::CtxField::Result::kScalar;  // what a load gives
};

#define SKB(field) offsetof(struct __sk_buff, field), sizeof(((struct __sk_buff*)nullptr)->field)
#define SKB_PTR(field, target, kind)                                                                    \
  Field {                                                                                               \
    offsetof(struct __sk_buff, field), 4, 1, kRead, static_cast<std::int32_t>(offsetof(SkbContext, target)), \
        verifier::CtxField::Result::kind                                                               \
  }

// The __sk_buff fields both socket filters and tc programs read (the kernel's bpf_skb_is_valid_access
// minus what sk_filter_is_valid_access refuses).
const std::vector<Field>& socket_filter_fields() {
  static const std::vector<Field>& f = *new std::vector<Field>{  // (never destroyed: see verifier_platform.cpp)
      {SKB(len)}, {SKB(pkt_type)}, {SKB(mark)}, {SKB(queue_mapping)}, {SKB(protocol)}, {SKB(vlan_present)},
      {SKB(vlan_tci)}, {SKB(vlan_proto)}, {SKB(priority)}, {SKB(ingress_ifindex)}, {SKB(ifindex)},
      {SKB(tc_index)}, {offsetof(struct __sk_buff, cb), 4, 5, kRead | kWrite | kScratch}, {SKB(hash)}, {SKB(napi_id)},
      {SKB(gso_segs)}, {SKB(gso_size)},
  };
  return f;
}

// tc_cls_act_is_valid_access: more readable fields, direct packet access and more writable fields.
const std::vector<Field>& sched_cls_fields() {
  static const std::vector<Field>& f = *new std::vector<Field>{  // (never destroyed: see verifier_platform.cpp)
      {SKB(len)}, {SKB(pkt_type)}, {SKB(mark), 1, kRead | kWrite}, {SKB(queue_mapping), 1, kRead | kWrite},
      {SKB(protocol)}, {SKB(vlan_present)}, {SKB(vlan_tci)}, {SKB(vlan_proto)},
      {SKB(priority), 1, kRead | kWrite}, {SKB(ingress_ifindex)}, {SKB(ifindex)}, {SKB(tc_index), 1, kRead | kWrite},
      {offsetof(struct __sk_buff, cb), 4, 5, kRead | kWrite | kScratch}, {SKB(hash)}, {SKB(tc_classid), 1, kRead | kWrite},
      SKB_PTR(data, data, kPacket), SKB_PTR(data_end, data_end, kPacketEnd), {SKB(napi_id)}, SKB_PTR(data_meta, data_meta, kPacketMeta),
      {SKB(tstamp), 1, kRead | kWrite}, {SKB(wire_len)}, {SKB(gso_segs)}, {SKB(gso_size)}, {SKB(hwtstamp)},
      // skb->sk: the socket that owns the packet, or NULL (bpf_skb_is_valid_access), read whole.
      Field{offsetof(struct __sk_buff, sk), 8, 1, kRead, static_cast<std::int32_t>(offsetof(SkbContext, sk)),
            verifier::CtxField::Result::kSockCommonOrNull},
  };
  return f;
}

#define XDP_PTR(field, target, kind)                                                                 \
  Field {                                                                                            \
    offsetof(struct xdp_md, field), 4, 1, kRead, static_cast<std::int32_t>(offsetof(XdpContext, target)), \
        verifier::CtxField::Result::kind                                                            \
  }
const std::vector<Field>& xdp_fields() {
  static const std::vector<Field>& f = *new std::vector<Field>{  // (never destroyed: see verifier_platform.cpp)
      XDP_PTR(data, data, kPacket), XDP_PTR(data_end, data_end, kPacketEnd), XDP_PTR(data_meta, data_meta, kPacketMeta),
      {offsetof(struct xdp_md, ingress_ifindex), 4}, {offsetof(struct xdp_md, rx_queue_index), 4},
      {offsetof(struct xdp_md, egress_ifindex), 4},
  };
  return f;
}

// The contexts of the types bpfvm verifies but does not run, and every type's return range, as the
// running kernel's verifier answered scripts/probe_contexts.
// What a load gives, by the verifier's name of it ("": loads refused). A name not listed here does not
// compile: add it (and, when bpfvm's verifier models it, its meaning in classify_probed).
constexpr std::string_view kProbedLoads[] = {"", "scalar", "pkt", "pkt_end", "pkt_meta", "sock", "sock_or_null",
                                             "sock_common_or_null", "flow_keys", "trusted_ptr_nf_hook_state",
                                             "trusted_ptr_sk_buff"};
struct ProbedAccess {
  std::uint16_t off = 0;
  std::uint8_t size = 0;
  std::uint8_t load = 0;  // index in kProbedLoads
  bool store = false;
  constexpr ProbedAccess() = default;
  constexpr ProbedAccess(std::uint16_t o, std::uint8_t sz, std::string_view loads, bool st) : off(o), size(sz), store(st) {
    while (kProbedLoads[load] != loads) ++load;  // past the table's end: not a constant expression
  }
  std::string_view loads() const { return kProbedLoads[load]; }
};
// Built at compile time (the accesses copied into a fixed table), so that nothing is made at run time:
// the first program a process verifies used to pay about 0.1 ms for building these lists.
struct ProbedRules {
  static constexpr std::size_t kMaxAccesses = 192;
  std::uint32_t prog_type, attach;
  std::string_view name;
  bool has_range;
  std::int64_t lo, hi;
  std::array<ProbedAccess, kMaxAccesses> table{};
  std::size_t count = 0;
  constexpr ProbedRules(std::uint32_t type, std::uint32_t attach_type, std::string_view type_name, bool range,
                        std::int64_t low, std::int64_t high, std::initializer_list<ProbedAccess> list)
      : prog_type(type), attach(attach_type), name(type_name), has_range(range), lo(low), hi(high) {
    for (const ProbedAccess& a : list) table[count++] = a;  // past kMaxAccesses: not a constant expression
  }
  std::span<const ProbedAccess> accesses() const { return {table.data(), count}; }
};
constexpr ProbedRules kProbedRules[] = {
#include "context_rules.inc"
};
std::span<const ProbedRules> probed_rules() { return kProbedRules; }

// The rules of (type, attach type); a type's first variant when the attach type is not one probed.
const ProbedRules* probed(std::uint32_t prog_type, std::uint32_t attach) {
  const ProbedRules* first = nullptr;
  for (const ProbedRules& r : probed_rules()) {
    if (r.prog_type != prog_type) continue;
    if (r.attach == attach) return &r;
    if (!first) first = &r;
  }
  return first;
}

// What an access of `size` bytes at `off` gives, and the field it lies in (nullptr when denied or for
// raw contexts).
struct Classified {
  verifier::CtxField what;
  const Field* field = nullptr;
};

Classified denied(std::string why) { return {{verifier::CtxField::Result::kDenied, std::move(why)}, nullptr}; }

// Struct contexts: the access must lie in one field (one element of an array field). Loads may be
// narrower than the field at a naturally aligned offset (bpf_ctx_narrow_access_ok); stores and pointer
// loads must be exactly the field's size.
Classified classify_struct(const std::vector<Field>& fields, std::int64_t off, std::int64_t size, bool store) {
  for (const Field& f : fields) {
    const std::int64_t rel = off - static_cast<std::int64_t>(f.off);
    if (rel < 0 || rel >= static_cast<std::int64_t>(f.size * f.count)) continue;
    if (f.access & kScratch) {
      if (rel + size > static_cast<std::int64_t>(f.size * f.count)) return denied("the access runs past cb[]");
      if (off % size != 0) return denied("the access is misaligned");
      return {{verifier::CtxField::Result::kScalar, {}}, &f};
    }
    const std::int64_t in_elem = rel % f.size;
    if (in_elem + size > f.size) return denied("the access straddles fields");
    if (store && !(f.access & kWrite)) return denied("the field is read-only");
    if (store || f.pointer_at >= 0) {
      if (size != f.size) return denied("the access must be the field's full size");
    } else if (in_elem % size != 0) {
      return denied("the narrow load is misaligned");
    }
    return {{store ? verifier::CtxField::Result::kScalar : f.loads, {}}, &f};
  }
  return denied("no field of the context is there");
}

// Raw contexts: read-only, in bounds, naturally aligned.
Classified classify_raw(std::size_t ctx_size, std::size_t first_readable, std::int64_t off, std::int64_t size, bool store) {
  if (store) return denied("the context is read-only");
  if (off < static_cast<std::int64_t>(first_readable) || off + size > static_cast<std::int64_t>(ctx_size)) {
    return denied("outside the context");
  }
  if (off % size != 0) return denied("misaligned");
  return {{verifier::CtxField::Result::kScalar, {}}, nullptr};
}

Classified classify_probed(const ProbedRules& rules, std::int64_t off, std::int64_t size, bool store) {
  using R = verifier::CtxField::Result;
  for (const ProbedAccess& a : rules.accesses()) {
    if (a.off != off || a.size != size) continue;
    if (store) return a.store ? Classified{{R::kScalar, {}}} : denied("the field is read-only");
    const std::string_view loads = a.loads();
    if (loads.empty()) return denied("the field cannot be loaded");
    if (loads == "scalar") return {{R::kScalar, {}}};
    if (loads == "pkt") return {{R::kPacket, {}}};
    if (loads == "pkt_end") return {{R::kPacketEnd, {}}};
    if (loads == "pkt_meta") return {{R::kPacketMeta, {}}};
    if (loads == "sock") return {{R::kSocket, {}}};
    if (loads == "sock_or_null") return {{R::kSocketOrNull, {}}};
    if (loads == "sock_common_or_null") return {{R::kSockCommonOrNull, {}}};
    return denied(fmt::format("the field is a kernel pointer ({}) that bpfvm's verifier does not model yet", loads));
  }
  return denied(fmt::format("no field of {}'s context can be {} with {} bytes there", rules.name,
                            store ? "stored" : "loaded", size));
}

Classified classify(std::uint32_t prog_type, std::uint32_t attach, std::int64_t off, std::int64_t size, bool store) {
  switch (prog_type) {
    case BPF_PROG_TYPE_SOCKET_FILTER: return classify_struct(socket_filter_fields(), off, size, store);
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT: return classify_struct(sched_cls_fields(), off, size, store);
    case BPF_PROG_TYPE_XDP: return classify_struct(xdp_fields(), off, size, store);
    case BPF_PROG_TYPE_CGROUP_SKB: {
      // The kernel's rules (cg_skb_is_valid_access, probed), on the layout tc programs share: the
      // pointers (data, data_end, sk) come from where SkbContext keeps them.
      const ProbedRules* r = probed(prog_type, attach);
      if (!r || r->accesses().empty()) return denied("the running kernel's cgroup_skb context rules are unknown");
      Classified c = classify_probed(*r, off, size, store);
      if (c.what.result == verifier::CtxField::Result::kDenied) return c;
      c.field = classify_struct(sched_cls_fields(), off, size, store).field;
      if (c.what.result != verifier::CtxField::Result::kScalar && (!c.field || c.field->pointer_at < 0)) {
        return denied("bpfvm's skb context has no place for this pointer");
      }
      return c;
    }
    // tp_prog_is_valid_access: the first 8 bytes (the common fields) are not readable.
    case BPF_PROG_TYPE_TRACEPOINT: return classify_raw(kTracepointRecordMax, 8, off, size, store);
    case BPF_PROG_TYPE_RAW_TRACEPOINT: return classify_raw(kRawTracepointArgsMax, 0, off, size, store);
    case BPF_PROG_TYPE_KPROBE: return classify_raw(sizeof(struct pt_regs), 0, off, size, store);
    case BPF_PROG_TYPE_PERF_EVENT: return classify_raw(sizeof(struct bpf_perf_event_data), 0, off, size, store);
    default:
      if (const ProbedRules* r = probed(prog_type, attach); r && r->accesses().size() > 0) {
        return classify_probed(*r, off, size, store);
      }
      return denied("this program type has no context bpfvm knows");
  }
}

}  // namespace

std::size_t context_size(std::uint32_t prog_type) {
  switch (prog_type) {
    case BPF_PROG_TYPE_SOCKET_FILTER:
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT:
    case BPF_PROG_TYPE_CGROUP_SKB: return sizeof(SkbContext);
    case BPF_PROG_TYPE_XDP: return sizeof(XdpContext);
    default: return user_context_size(prog_type);
  }
}

bool runs_in_user_space(std::uint32_t prog_type, std::uint32_t expected_attach_type) {
  if (prog_type == BPF_PROG_TYPE_TRACING) {
    return expected_attach_type == BPF_TRACE_FENTRY || expected_attach_type == BPF_TRACE_FEXIT ||
           expected_attach_type == BPF_TRACE_RAW_TP;
  }
  return context_size(prog_type) != 0;
}

std::size_t user_context_size(std::uint32_t prog_type) {
  switch (prog_type) {
    case BPF_PROG_TYPE_SOCKET_FILTER:
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT:
    case BPF_PROG_TYPE_CGROUP_SKB: return sizeof(struct __sk_buff);
    case BPF_PROG_TYPE_XDP: return sizeof(struct xdp_md);
    case BPF_PROG_TYPE_TRACEPOINT: return kTracepointRecordMax;
    case BPF_PROG_TYPE_RAW_TRACEPOINT: return kRawTracepointArgsMax;
    case BPF_PROG_TYPE_KPROBE: return sizeof(struct pt_regs);
    case BPF_PROG_TYPE_PERF_EVENT: return sizeof(struct bpf_perf_event_data);
    case BPF_PROG_TYPE_SYSCALL: return kSyscallContextMax;
    default: return 0;
  }
}

verifier::CtxField context_field(std::uint32_t prog_type, std::int32_t off, std::uint32_t size, bool write,
                                 std::uint32_t expected_attach_type) {
  return classify(prog_type, expected_attach_type, off, size, write).what;
}

bool verified_only_type(std::uint32_t prog_type) {
  // Writable raw tracepoints attach to kernel tracepoints with a buffer (nbd's, bpf_test_finish).
  if (prog_type == BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE) return true;
  if (context_size(prog_type) != 0) return false;
  const ProbedRules* r = probed(prog_type, 0);
  return r && r->accesses().size() > 0;
}

std::optional<std::pair<std::int64_t, std::int64_t>> return_range(std::uint32_t prog_type,
                                                                  std::uint32_t expected_attach_type) {
  const ProbedRules* r = probed(prog_type, expected_attach_type);
  if (!r || !r->has_range) return std::nullopt;
  return std::pair{r->lo, r->hi};
}

Result<void> rewrite_context_accesses(std::uint32_t prog_type, std::vector<isa::RawInsn>& insns) {
  if (prog_type == BPF_PROG_TYPE_SYSCALL) return {};  // its context is the caller's bytes as they are
  const auto accesses = BPFVM_TRY(verifier::find_ctx_accesses(insns));
  for (const verifier::CtxAccess& a : accesses) {
    if (user_context_size(prog_type) == 0) {
      return make_error(Errc::kInvalid, "program type {} has no context bpfvm knows", prog_type);
    }
    const bool store = a.kind == verifier::CtxAccess::Kind::kStore;
    const Classified c = classify(prog_type, 0, a.offset, a.size, store);
    if (c.what.result == verifier::CtxField::Result::kDenied) {
      return make_error(Errc::kAccess, "invalid bpf_context access off={} size={}: {}", a.offset, a.size, c.what.why)
          .at_insn(a.insn);
    }
    if (c.field && c.field->pointer_at >= 0) {
      isa::RawInsn& insn = insns[a.insn];
      insn.opcode = static_cast<std::uint8_t>((insn.opcode & ~isa::kSizeMask) | isa::kSizeDW);
      insn.off = static_cast<std::int16_t>(insn.off + (c.field->pointer_at - static_cast<std::int32_t>(c.field->off)));
    }
  }
  return {};
}

}  // namespace bpfvm::runtime
