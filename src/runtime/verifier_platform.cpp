#include "bpfvm/runtime/verifier_platform.hpp"

#include <linux/bpf.h>

#include <fmt/format.h>

#include <array>

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
  }
  return V::kNone;
}

verifier::RetType ret_type(helpers::Ret r) {
  switch (r) {
    case helpers::Ret::kInteger: return verifier::RetType::kInteger;
    case helpers::Ret::kVoid: return verifier::RetType::kVoid;
    case helpers::Ret::kMapValueOrNull: return verifier::RetType::kMapValueOrNull;
    case helpers::Ret::kRingbufRecordOrNull: return verifier::RetType::kRingbufRecordOrNull;
  }
  return verifier::RetType::kInteger;
}

// The helper table in the verifier's terms, indexed like helpers::prototypes().
const std::vector<verifier::HelperSignature>& signatures() {
  static const std::vector<verifier::HelperSignature> table = [] {
    std::vector<verifier::HelperSignature> t;
    for (const helpers::Prototype& p : helpers::prototypes()) {
      verifier::HelperSignature s;
      s.name = p.name;
      s.ret = ret_type(p.ret);
      s.gpl_only = p.gpl_only;
      s.changes_packet = p.changes_packet;
      for (std::size_t i = 0; i < p.args.size(); ++i) s.args[i] = arg_type(p.args[i]);
      t.push_back(s);
    }
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
  // map_direct_value_addr: arrays of one entry (global data sections).
  m.direct_value = def.type == BPF_MAP_TYPE_ARRAY && def.max_entries == 1;
  return m;
}

VerifierPlatform::VerifierPlatform(std::uint32_t prog_type, std::vector<verifier::MapInfo> maps, bool gpl_compatible)
    : prog_type_(prog_type), maps_(std::move(maps)), gpl_(gpl_compatible) {}

const verifier::HelperSignature* VerifierPlatform::helper(std::int32_t id) const {
  const auto protos = helpers::prototypes();
  for (std::size_t i = 0; i < protos.size(); ++i) {
    if (protos[i].id == id) return &signatures()[i];
  }
  return nullptr;
}

bool VerifierPlatform::helper_allowed(std::int32_t id) const { return helpers::allowed(prog_type_, id); }

const verifier::MapInfo* VerifierPlatform::map(std::int64_t handle) const {
  if (handle < 0 || static_cast<std::uint64_t>(handle) >= maps_.size()) return nullptr;
  return &maps_[static_cast<std::size_t>(handle)];
}

verifier::CtxField VerifierPlatform::ctx_access(std::int32_t off, std::uint32_t size, bool write) const {
  return context_field(prog_type_, off, size, write, attach_type_);
}

std::optional<std::pair<std::int64_t, std::int64_t>> VerifierPlatform::return_range() const {
  return runtime::return_range(prog_type_, attach_type_);
}

bool VerifierPlatform::return_value_ignored() const {
  return prog_type_ == BPF_PROG_TYPE_KPROBE || prog_type_ == BPF_PROG_TYPE_TRACEPOINT ||
         prog_type_ == BPF_PROG_TYPE_RAW_TRACEPOINT || prog_type_ == BPF_PROG_TYPE_PERF_EVENT;
}

std::string_view VerifierPlatform::prog_type_name() const { return obj::prog_type_name(prog_type_); }

bool VerifierPlatform::legacy_packet_loads() const { return is_skb(prog_type_); }

const verifier::GlobalFunction* VerifierPlatform::global_function(std::uint32_t insn) const {
  const auto it = globals_.find(insn);
  return it == globals_.end() ? nullptr : &it->second;
}

void VerifierPlatform::set_global_functions(const obj::Btf& btf, std::span<const obj::FuncInfo> func_info) {
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
    if (fi.insn == 0) continue;  // the entry function is verified as the program
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
