#include "bpfvm/runtime/context.hpp"

#include <linux/bpf_perf_event.h>

#include <cstddef>

#include "bpfvm/isa/opcode.hpp"
#include "bpfvm/verifier/ctx_access.hpp"

namespace bpfvm::runtime {

namespace {

enum Access : std::uint8_t { kRead = 1, kWrite = 2 };

struct Field {
  std::uint32_t off;
  std::uint32_t size;         // of the user-visible field (for arrays: of one element)
  std::uint32_t count = 1;    // array elements (cb[5])
  std::uint8_t access = kRead;
  std::int32_t pointer_at = -1;  // >= 0: a pointer field, loaded as 64 bits from this offset
};

#define SKB(field) offsetof(struct __sk_buff, field), sizeof(((struct __sk_buff*)nullptr)->field)
#define SKB_PTR(field, target) \
  Field { offsetof(struct __sk_buff, field), 4, 1, kRead, static_cast<std::int32_t>(offsetof(SkbContext, target)) }

// The __sk_buff fields both socket filters and tc programs read (the kernel's bpf_skb_is_valid_access
// minus what sk_filter_is_valid_access refuses).
const std::vector<Field>& socket_filter_fields() {
  static const std::vector<Field> f = {
      {SKB(len)}, {SKB(pkt_type)}, {SKB(mark)}, {SKB(queue_mapping)}, {SKB(protocol)}, {SKB(vlan_present)},
      {SKB(vlan_tci)}, {SKB(vlan_proto)}, {SKB(priority)}, {SKB(ingress_ifindex)}, {SKB(ifindex)},
      {SKB(tc_index)}, {offsetof(struct __sk_buff, cb), 4, 5, kRead | kWrite}, {SKB(hash)}, {SKB(napi_id)},
      {SKB(gso_segs)}, {SKB(gso_size)},
  };
  return f;
}

// tc_cls_act_is_valid_access: more readable fields, direct packet access and more writable fields.
const std::vector<Field>& sched_cls_fields() {
  static const std::vector<Field> f = {
      {SKB(len)}, {SKB(pkt_type)}, {SKB(mark), 1, kRead | kWrite}, {SKB(queue_mapping), 1, kRead | kWrite},
      {SKB(protocol)}, {SKB(vlan_present)}, {SKB(vlan_tci)}, {SKB(vlan_proto)},
      {SKB(priority), 1, kRead | kWrite}, {SKB(ingress_ifindex)}, {SKB(ifindex)}, {SKB(tc_index), 1, kRead | kWrite},
      {offsetof(struct __sk_buff, cb), 4, 5, kRead | kWrite}, {SKB(hash)}, {SKB(tc_classid), 1, kRead | kWrite},
      SKB_PTR(data, data), SKB_PTR(data_end, data_end), {SKB(napi_id)}, SKB_PTR(data_meta, data_meta),
      {SKB(tstamp), 1, kRead | kWrite}, {SKB(wire_len)}, {SKB(gso_segs)}, {SKB(gso_size)}, {SKB(hwtstamp)},
  };
  return f;
}

#define XDP_PTR(field, target) \
  Field { offsetof(struct xdp_md, field), 4, 1, kRead, static_cast<std::int32_t>(offsetof(XdpContext, target)) }
const std::vector<Field>& xdp_fields() {
  static const std::vector<Field> f = {
      XDP_PTR(data, data), XDP_PTR(data_end, data_end), XDP_PTR(data_meta, data_meta),
      {offsetof(struct xdp_md, ingress_ifindex), 4}, {offsetof(struct xdp_md, rx_queue_index), 4},
      {offsetof(struct xdp_md, egress_ifindex), 4},
  };
  return f;
}

Error invalid_access(const verifier::CtxAccess& a, std::string_view why) {
  return make_error(Errc::kAccess, "invalid bpf_context access off={} size={}: {}", a.offset, a.size, why).at_insn(a.insn);
}

// Struct contexts: the access must lie in one field (one element of an array field). Loads may be
// narrower than the field at a naturally aligned offset (bpf_ctx_narrow_access_ok); stores and pointer
// loads must be exactly the field's size.
Result<void> check_struct_access(const std::vector<Field>& fields, const verifier::CtxAccess& a,
                                 std::vector<isa::RawInsn>& insns) {
  const bool store = a.kind == verifier::CtxAccess::Kind::kStore;
  for (const Field& f : fields) {
    const std::int64_t rel = a.offset - static_cast<std::int64_t>(f.off);
    if (rel < 0 || rel >= static_cast<std::int64_t>(f.size * f.count)) continue;
    const std::int64_t in_elem = rel % f.size;
    if (in_elem + a.size > f.size) return invalid_access(a, "the access straddles fields");
    if (store && !(f.access & kWrite)) return invalid_access(a, "the field is read-only");
    if (store || f.pointer_at >= 0) {
      if (a.size != f.size) return invalid_access(a, "the access must be the field's full size");
    } else if (in_elem % a.size != 0) {
      return invalid_access(a, "the narrow load is misaligned");
    }
    if (f.pointer_at >= 0) {
      isa::RawInsn& insn = insns[a.insn];
      insn.opcode = static_cast<std::uint8_t>((insn.opcode & ~isa::kSizeMask) | isa::kSizeDW);
      insn.off = static_cast<std::int16_t>(insn.off + (f.pointer_at - static_cast<std::int32_t>(f.off)));
    }
    return {};
  }
  return invalid_access(a, "no field of the context is there");
}

// Raw contexts: read-only, in bounds, naturally aligned.
Result<void> check_raw_access(std::size_t size, std::size_t first_readable, const verifier::CtxAccess& a) {
  if (a.kind == verifier::CtxAccess::Kind::kStore) return invalid_access(a, "the context is read-only");
  if (a.offset < static_cast<std::int64_t>(first_readable) || a.offset + a.size > static_cast<std::int64_t>(size)) {
    return invalid_access(a, "outside the context");
  }
  if (a.offset % a.size != 0) return invalid_access(a, "misaligned");
  return {};
}

}  // namespace

std::size_t context_size(std::uint32_t prog_type) {
  switch (prog_type) {
    case BPF_PROG_TYPE_SOCKET_FILTER:
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT: return sizeof(SkbContext);
    case BPF_PROG_TYPE_XDP: return sizeof(XdpContext);
    default: return user_context_size(prog_type);
  }
}

std::size_t user_context_size(std::uint32_t prog_type) {
  switch (prog_type) {
    case BPF_PROG_TYPE_SOCKET_FILTER:
    case BPF_PROG_TYPE_SCHED_CLS:
    case BPF_PROG_TYPE_SCHED_ACT: return sizeof(struct __sk_buff);
    case BPF_PROG_TYPE_XDP: return sizeof(struct xdp_md);
    case BPF_PROG_TYPE_TRACEPOINT: return kTracepointRecordMax;
    case BPF_PROG_TYPE_RAW_TRACEPOINT: return kRawTracepointArgsMax;
    case BPF_PROG_TYPE_KPROBE: return sizeof(struct pt_regs);
    case BPF_PROG_TYPE_PERF_EVENT: return sizeof(struct bpf_perf_event_data);
    default: return 0;
  }
}

Result<void> rewrite_context_accesses(std::uint32_t prog_type, std::vector<isa::RawInsn>& insns) {
  const auto accesses = BPFVM_TRY(verifier::find_ctx_accesses(insns));
  for (const verifier::CtxAccess& a : accesses) {
    switch (prog_type) {
      case BPF_PROG_TYPE_SOCKET_FILTER: BPFVM_TRY(check_struct_access(socket_filter_fields(), a, insns)); break;
      case BPF_PROG_TYPE_SCHED_CLS:
      case BPF_PROG_TYPE_SCHED_ACT: BPFVM_TRY(check_struct_access(sched_cls_fields(), a, insns)); break;
      case BPF_PROG_TYPE_XDP: BPFVM_TRY(check_struct_access(xdp_fields(), a, insns)); break;
      // tp_prog_is_valid_access: the first 8 bytes (the common fields) are not readable.
      case BPF_PROG_TYPE_TRACEPOINT: BPFVM_TRY(check_raw_access(kTracepointRecordMax, 8, a)); break;
      case BPF_PROG_TYPE_RAW_TRACEPOINT: BPFVM_TRY(check_raw_access(kRawTracepointArgsMax, 0, a)); break;
      case BPF_PROG_TYPE_KPROBE: BPFVM_TRY(check_raw_access(sizeof(struct pt_regs), 0, a)); break;
      case BPF_PROG_TYPE_PERF_EVENT: BPFVM_TRY(check_raw_access(sizeof(struct bpf_perf_event_data), 0, a)); break;
      default: return make_error(Errc::kInvalid, "program type {} has no context bpfvm knows", prog_type);
    }
  }
  return {};
}

}  // namespace bpfvm::runtime
