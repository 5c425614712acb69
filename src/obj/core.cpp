// CO-RE relocations against a target BTF (see the header). Field relocations walk the local access
// string ("0:1:2": an index into the root as an array, then member or element indexes) to a list of
// named members and array indexes, then walk the same names and indexes in each target type of the
// root's name and kind, looking through anonymous struct/union members as C does; every candidate that
// gets there must give the same answer.
#include "bpfvm/obj/core.hpp"

#include <bpf/btf.h>
#include <linux/bpf.h>

#include <sys/utsname.h>
#include <zlib.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "bpfvm/base/file.hpp"
#include "bpfvm/isa/helper_names.hpp"
#include "bpfvm/isa/opcode.hpp"

namespace bpfvm::obj {

namespace {

using Type = struct btf_type;

const Type* resolved(const struct btf* b, std::uint32_t id, std::uint32_t* out = nullptr) {
  const Type* t = btf__type_by_id(b, id);
  for (int guard = 0; t && (btf_is_mod(t) || btf_is_typedef(t)) && guard < 64; ++guard) {
    id = t->type;
    t = btf__type_by_id(b, id);
  }
  if (out) *out = id;
  return t;
}

std::string_view name_of(const struct btf* b, std::uint32_t name_off) {
  const char* n = btf__name_by_offset(b, name_off);
  return n ? n : "";
}

// libbpf's "flavours": task_struct___old is task_struct.
std::string_view essential(std::string_view name) {
  const auto at = name.rfind("___");
  return at == std::string_view::npos ? name : name.substr(0, at);
}

bool is_composite(const Type* t) { return btf_is_struct(t) || btf_is_union(t); }
bool is_enum_kind(const Type* t) { return btf_is_enum(t) || btf_kind(t) == BTF_KIND_ENUM64; }
bool same_kind(const Type* a, const Type* b) {
  return btf_kind(a) == btf_kind(b) || (is_enum_kind(a) && is_enum_kind(b));
}

bool is_field_kind(CoreKind k) { return k <= CoreKind::kFieldRshiftU64; }
bool is_enum_relo(CoreKind k) { return k == CoreKind::kEnumvalExists || k == CoreKind::kEnumvalValue; }

struct Accessor {
  bool array = false;
  std::uint32_t index = 0;
  std::string name;  // a member's
};

// Where a walk ended: the field's type, bit offset from the root and bitfield width (0 when none).
struct Field {
  std::uint32_t type_id = 0;
  std::uint64_t bit_off = 0;
  std::uint32_t bitfield = 0;
};

struct LocalSpec {
  std::uint32_t root = 0;
  std::vector<std::uint32_t> raw;
  std::vector<Accessor> path;  // after the root index
  Field field;
  std::string text;  // "struct task_struct.pid" for reports
};

Result<std::vector<std::uint32_t>> parse_access(std::string_view s) {
  std::vector<std::uint32_t> out;
  while (!s.empty()) {
    const auto colon = s.find(':');
    const std::string_view part = s.substr(0, colon);
    std::uint32_t v = 0;
    const auto r = std::from_chars(part.data(), part.data() + part.size(), v);
    if (r.ec != std::errc{} || r.ptr != part.data() + part.size()) {
      return make_error(Errc::kInvalid, "access string '{}' is not a list of numbers", s);
    }
    out.push_back(v);
    if (colon == std::string_view::npos) break;
    s = s.substr(colon + 1);
  }
  if (out.empty()) return make_error(Errc::kInvalid, "empty access string");
  return out;
}

std::int64_t size_of(const struct btf* b, std::uint32_t id) { return btf__resolve_size(b, id); }

Result<LocalSpec> parse_local(const struct btf* b, std::uint32_t type_id, std::string_view access, CoreKind kind) {
  LocalSpec spec;
  spec.root = type_id;
  spec.raw = BPFVM_TRY(parse_access(access));
  std::uint32_t id = 0;
  const Type* root = resolved(b, type_id, &id);
  if (!root) return make_error(Errc::kInvalid, "type {} does not exist", type_id);
  spec.text = std::string(btf_is_struct(root) ? "struct " : btf_is_union(root) ? "union " : is_enum_kind(root) ? "enum " : "") +
              std::string(name_of(b, root->name_off));
  if (is_enum_relo(kind)) {
    if (!is_enum_kind(root) || spec.raw[0] >= btf_vlen(root)) {
      return make_error(Errc::kInvalid, "enum relocation on {} with index {}", spec.text, spec.raw[0]);
    }
    return spec;
  }
  if (!is_field_kind(kind)) return spec;
  const std::int64_t root_size = size_of(b, id);
  if (root_size < 0) return make_error(Errc::kInvalid, "{} has no size", spec.text);
  spec.field = {id, static_cast<std::uint64_t>(spec.raw[0]) * static_cast<std::uint64_t>(root_size) * 8, 0};
  for (std::size_t i = 1; i < spec.raw.size(); ++i) {
    const std::uint32_t idx = spec.raw[i];
    const Type* t = resolved(b, spec.field.type_id, &id);
    if (t && is_composite(t)) {
      if (idx >= btf_vlen(t)) return make_error(Errc::kInvalid, "{}: member {} does not exist", spec.text, idx);
      const struct btf_member& m = btf_members(t)[idx];
      spec.field.bit_off += btf_member_bit_offset(t, idx);
      spec.field.bitfield = btf_member_bitfield_size(t, idx);
      spec.field.type_id = m.type;
      const std::string_view n = name_of(b, m.name_off);
      if (!n.empty()) {
        spec.path.push_back({false, idx, std::string(n)});
        spec.text += "." + std::string(n);
      }
    } else if (t && btf_is_array(t)) {
      const std::int64_t elem = size_of(b, btf_array(t)->type);
      if (elem < 0) return make_error(Errc::kInvalid, "{}: array element without a size", spec.text);
      spec.field.bit_off += static_cast<std::uint64_t>(idx) * static_cast<std::uint64_t>(elem) * 8;
      spec.field.bitfield = 0;
      spec.field.type_id = btf_array(t)->type;
      spec.path.push_back({true, idx, {}});
      spec.text += fmt::format("[{}]", idx);
    } else {
      return make_error(Errc::kInvalid, "{}: the access string goes into a type with no members", spec.text);
    }
  }
  return spec;
}

// A named member of `t`, found directly or inside anonymous struct/union members.
bool find_member(const struct btf* b, const Type* t, std::string_view name, Field& at) {
  const struct btf_member* m = btf_members(t);
  for (std::uint32_t i = 0; i < btf_vlen(t); ++i) {
    const std::string_view n = name_of(b, m[i].name_off);
    if (n == name) {
      at.bit_off += btf_member_bit_offset(t, i);
      at.bitfield = btf_member_bitfield_size(t, i);
      at.type_id = m[i].type;
      return true;
    }
    if (n.empty()) {
      const Type* inner = resolved(b, m[i].type);
      if (inner && is_composite(inner)) {
        Field deeper = at;
        deeper.bit_off += btf_member_bit_offset(t, i);
        if (find_member(b, inner, name, deeper)) {
          at = deeper;
          return true;
        }
      }
    }
  }
  return false;
}

// Whether the field types of both sides are the same sort of thing (libbpf's fields_are_compat).
bool fields_compatible(const struct btf* lb, std::uint32_t lid, const struct btf* tb, std::uint32_t tid, int depth = 0) {
  const Type* l = resolved(lb, lid);
  const Type* t = resolved(tb, tid);
  if (!l || !t || depth > 16) return false;
  if (is_composite(l) || btf_kind(l) == BTF_KIND_FWD) return is_composite(t) || btf_kind(t) == BTF_KIND_FWD;
  const bool l_num = btf_is_int(l) || is_enum_kind(l), t_num = btf_is_int(t) || is_enum_kind(t);
  if (l_num || t_num) return l_num && t_num;
  if (btf_is_ptr(l)) return btf_is_ptr(t);
  if (btf_kind(l) == BTF_KIND_FLOAT) return btf_kind(t) == BTF_KIND_FLOAT;
  if (btf_is_array(l)) return btf_is_array(t) && fields_compatible(lb, btf_array(l)->type, tb, btf_array(t)->type, depth + 1);
  return false;
}

std::optional<Field> match_field(const struct btf* lb, const LocalSpec& local, const struct btf* tb, std::uint32_t cand) {
  std::uint32_t id = 0;
  resolved(tb, cand, &id);
  const std::int64_t root_size = size_of(tb, id);
  if (root_size < 0) return std::nullopt;
  Field at{id, static_cast<std::uint64_t>(local.raw[0]) * static_cast<std::uint64_t>(root_size) * 8, 0};
  for (const Accessor& a : local.path) {
    const Type* t = resolved(tb, at.type_id, &id);
    if (!t) return std::nullopt;
    if (a.array) {
      if (!btf_is_array(t)) return std::nullopt;
      const struct btf_array* arr = btf_array(t);
      if (arr->nelems != 0 && a.index >= arr->nelems) return std::nullopt;
      const std::int64_t elem = size_of(tb, arr->type);
      if (elem < 0) return std::nullopt;
      at.bit_off += static_cast<std::uint64_t>(a.index) * static_cast<std::uint64_t>(elem) * 8;
      at.bitfield = 0;
      at.type_id = arr->type;
    } else {
      if (!is_composite(t) || !find_member(tb, t, a.name, at)) return std::nullopt;
    }
  }
  if (!local.path.empty() && !fields_compatible(lb, local.field.type_id, tb, at.type_id)) return std::nullopt;
  return at;
}

// A field relocation's value on one side (libbpf's calc_field_relo): byte offset, size, signedness
// and the shifts that extract a bitfield from the containing load.
Result<std::uint64_t> field_value(const struct btf* b, const Field& f, CoreKind kind) {
  std::uint32_t id = 0;
  const Type* t = resolved(b, f.type_id, &id);
  if (!t) return make_error(Errc::kInvalid, "field type {} does not exist", f.type_id);
  std::uint64_t byte_sz = 0, byte_off = 0;
  if (f.bitfield == 0) {
    const std::int64_t sz = size_of(b, id);
    if (sz < 0) return make_error(Errc::kInvalid, "the field has no size");
    byte_sz = static_cast<std::uint64_t>(sz);
    byte_off = f.bit_off / 8;
  } else {
    // The smallest naturally aligned load of the member's type size (doubling) that holds the bits.
    const std::int64_t sz = size_of(b, id);
    if (sz <= 0) return make_error(Errc::kInvalid, "the bitfield's type has no size");
    byte_sz = static_cast<std::uint64_t>(sz);
    byte_off = f.bit_off / 8 / byte_sz * byte_sz;
    while (f.bit_off + f.bitfield - byte_off * 8 > byte_sz * 8) {
      if (byte_sz >= 8) return make_error(Errc::kInvalid, "the bitfield does not fit a 64-bit load");
      byte_sz *= 2;
      byte_off = f.bit_off / 8 / byte_sz * byte_sz;
    }
  }
  switch (kind) {
    case CoreKind::kFieldByteOffset: return byte_off;
    case CoreKind::kFieldByteSize: return byte_sz;
    case CoreKind::kFieldExists: return 1;
    case CoreKind::kFieldSigned:
      return (is_enum_kind(t) && btf_kflag(t)) || (btf_is_int(t) && (btf_int_encoding(t) & BTF_INT_SIGNED)) ? 1 : 0;
    case CoreKind::kFieldLshiftU64:
      return f.bitfield ? 64 - (f.bit_off + f.bitfield - byte_off * 8) : 64 - byte_sz * 8;
    case CoreKind::kFieldRshiftU64: return f.bitfield ? 64 - f.bitfield : 64 - byte_sz * 8;
    default: return make_error(Errc::kInvalid, "not a field relocation");
  }
}

std::optional<std::int64_t> enumerator(const struct btf* b, const Type* t, std::string_view name) {
  for (std::uint32_t i = 0; i < btf_vlen(t); ++i) {
    if (btf_is_enum(t)) {
      if (name_of(b, btf_enum(t)[i].name_off) == name) return btf_enum(t)[i].val;
    } else {
      const struct btf_enum64* e = btf_enum64(t) + i;
      if (name_of(b, e->name_off) == name) return static_cast<std::int64_t>(btf_enum64_value(e));
    }
  }
  return std::nullopt;
}

std::string_view enumerator_name(const struct btf* b, const Type* t, std::uint32_t i) {
  return name_of(b, btf_is_enum(t) ? btf_enum(t)[i].name_off : (btf_enum64(t) + i)->name_off);
}

class Target {
 public:
  explicit Target(const Btf& btf) : btf_(btf.get()) {
    const std::uint32_t n = btf__type_cnt(btf_);
    for (std::uint32_t id = 1; id < n; ++id) {
      const Type* t = btf__type_by_id(btf_, id);
      const std::string_view name = name_of(btf_, t->name_off);
      if (!name.empty()) by_name_[essential(name)].push_back(id);
    }
  }
  const struct btf* get() const { return btf_; }
  // Types named like `local` (its essential name) and of its kind.
  std::vector<std::uint32_t> candidates(const Type* local, std::string_view local_name) const {
    std::vector<std::uint32_t> out;
    const auto it = by_name_.find(essential(local_name));
    if (it == by_name_.end()) return out;
    for (std::uint32_t id : it->second) {
      if (same_kind(local, btf__type_by_id(btf_, id))) out.push_back(id);
    }
    return out;
  }

 private:
  const struct btf* btf_;
  std::unordered_map<std::string_view, std::vector<std::uint32_t>> by_name_;
};

struct Resolution {
  std::optional<std::uint64_t> value;  // nullopt: not found (poison, unless the kind is an existence test)
  std::uint64_t local_size = 0, target_size = 0;  // field byte sizes, for loads whose width follows
  std::string why;
};

Result<Resolution> resolve(const struct btf* lb, const Target& target, const CoreRelo& r, std::string_view access) {
  const auto kind = static_cast<CoreKind>(r.kind);
  if (r.kind > static_cast<std::uint32_t>(CoreKind::kTypeMatches)) {
    return make_error(Errc::kNotSupported, "CO-RE relocation kind {} is unknown", r.kind);
  }
  const LocalSpec local = BPFVM_TRY(parse_local(lb, r.type_id, access, kind));
  Resolution out;
  if (kind == CoreKind::kTypeIdLocal) {
    out.value = r.type_id;
    return out;
  }
  std::uint32_t root_id = 0;
  const Type* root = resolved(lb, r.type_id, &root_id);
  // Type relocations name the type as written (a typedef counts); field and enum ones its resolved root.
  const bool type_based = !is_field_kind(kind) && !is_enum_relo(kind);
  const Type* named = type_based ? btf__type_by_id(lb, r.type_id) : root;
  const std::string_view root_name = name_of(lb, named->name_off);
  const auto cands = root_name.empty() ? std::vector<std::uint32_t>{} : target.candidates(named, root_name);
  const bool exists_kind = kind == CoreKind::kFieldExists || kind == CoreKind::kTypeExists ||
                           kind == CoreKind::kEnumvalExists || kind == CoreKind::kTypeMatches;
  std::optional<std::uint64_t> agreed;
  for (std::uint32_t cand : cands) {
    std::optional<std::uint64_t> v;
    if (is_field_kind(kind)) {
      const auto f = match_field(lb, local, target.get(), cand);
      if (!f) continue;
      v = BPFVM_TRY(field_value(target.get(), *f, kind));
      if (kind == CoreKind::kFieldByteOffset) {
        out.local_size = BPFVM_TRY(field_value(lb, local.field, CoreKind::kFieldByteSize));
        out.target_size = BPFVM_TRY(field_value(target.get(), *f, CoreKind::kFieldByteSize));
      }
    } else if (is_enum_relo(kind)) {
      const Type* t = resolved(target.get(), cand);
      const auto e = enumerator(target.get(), t, enumerator_name(lb, root, local.raw[0]));
      if (!e) continue;
      v = kind == CoreKind::kEnumvalExists ? 1 : static_cast<std::uint64_t>(*e);
    } else if (kind == CoreKind::kTypeIdTarget) {
      v = cand;
    } else if (kind == CoreKind::kTypeSize) {
      const std::int64_t sz = size_of(target.get(), cand);
      if (sz < 0) continue;
      v = static_cast<std::uint64_t>(sz);
    } else {
      v = 1;  // exists, matches
    }
    if (agreed && *agreed != *v) {
      out.why = fmt::format("{}: the target's types of that name disagree ({} and {})", local.text, *agreed, *v);
      out.value.reset();
      return out;
    }
    agreed = v;
  }
  if (agreed) {
    out.value = agreed;
    out.why = fmt::format("{}: {}", local.text, *agreed);
  } else if (exists_kind) {
    out.value = 0;
    out.why = fmt::format("{}: not in the target", local.text);
  } else {
    out.why = fmt::format("{}: not in the target", local.text);
  }
  return out;
}

isa::RawInsn poison() {
  isa::RawInsn p;
  p.opcode = isa::kClassJmp | 0x80;  // call
  p.imm = isa::kPoisonCoreRelocation;
  return p;
}

Result<void> patch(std::vector<isa::RawInsn>& insns, std::size_t i, const Resolution& res, CoreKind kind) {
  isa::RawInsn& in = insns[i];
  if (!res.value) {
    const bool wide = in.is_lddw();
    in = poison();
    if (wide && i + 1 < insns.size()) insns[i + 1] = poison();
    return {};
  }
  const std::uint64_t v = *res.value;
  const std::uint8_t cls = in.cls();
  if (cls == isa::kClassAlu || cls == isa::kClassAlu64) {
    if (in.opcode & isa::kSrcX) return make_error(Errc::kInvalid, "a CO-RE relocation on an ALU instruction with a register source");
    if (v > static_cast<std::uint64_t>(INT32_MAX)) return make_error(Errc::kInvalid, "value {} does not fit an immediate", v);
    in.imm = static_cast<std::int32_t>(v);
    return {};
  }
  if (cls == isa::kClassLdx || cls == isa::kClassSt || cls == isa::kClassStx) {
    if (v > static_cast<std::uint64_t>(INT16_MAX)) return make_error(Errc::kInvalid, "offset {} does not fit an instruction", v);
    in.off = static_cast<std::int16_t>(v);
    // A load or store of the whole field follows the target's field size (libbpf does the same).
    if (kind == CoreKind::kFieldByteOffset && res.local_size != res.target_size) {
      static constexpr std::uint8_t kSizes[] = {isa::kSizeB, isa::kSizeH, isa::kSizeW, isa::kSizeDW};
      const std::uint64_t widths[] = {1, 2, 4, 8};
      const std::uint8_t current = in.opcode & isa::kSizeMask;
      std::uint64_t width = 0;
      for (int k = 0; k < 4; ++k) width = kSizes[k] == current ? widths[k] : width;
      if (width == res.local_size) {
        int found = -1;
        for (int k = 0; k < 4; ++k) found = widths[k] == res.target_size ? k : found;
        if (found < 0) return make_error(Errc::kInvalid, "the target's field is {} bytes, which no load reads", res.target_size);
        in.opcode = static_cast<std::uint8_t>((in.opcode & ~isa::kSizeMask) | kSizes[found]);
      }
    }
    return {};
  }
  if (in.is_lddw() && i + 1 < insns.size()) {
    in.imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
    insns[i + 1].imm = static_cast<std::int32_t>(static_cast<std::uint32_t>(v >> 32));
    return {};
  }
  return make_error(Errc::kInvalid, "a CO-RE relocation on an instruction that takes no offset or immediate");
}

}  // namespace

Result<Btf> load_target_btf(const std::optional<std::string>& path) {
  const std::string file = path.value_or("/sys/kernel/btf/vmlinux");
  auto bytes = os::read_file(file);
  if (!bytes) {
    return std::move(bytes).error().with_context(
        path ? fmt::format("target BTF {}", file)
             : fmt::format("the running kernel's BTF ({}; give another with --btf FILE)", file));
  }
  if (bytes->size() >= 4 && std::memcmp(bytes->data(), "\x7f" "ELF", 4) == 0) {
    // An ELF file with a .BTF section (a vmlinux image, another object), as libbpf's btf_custom_path.
    struct btf* elf_btf = btf__parse_elf(file.c_str(), nullptr);
    if (!elf_btf) return make_error(Errc::kInvalid, "target BTF {}: an ELF file without a readable .BTF section", file);
    std::uint32_t size = 0;
    const auto* raw = static_cast<const std::uint8_t*>(btf__raw_data(elf_btf, &size));
    std::vector<std::uint8_t> copy(raw, raw + size);
    btf__free(elf_btf);
    *bytes = std::move(copy);
  }
  auto btf = Btf::parse(*bytes);
  if (!btf) return std::move(btf).error().with_context(fmt::format("target BTF {}", file));
  return btf;
}

Result<std::vector<CoreOutcome>> apply_core_relocations(ObjectSpec& spec, const Btf& target_btf) {
  std::vector<CoreOutcome> out;
  if (!spec.has_core_relocations) return out;
  if (!spec.btf) return make_error(Errc::kInvalid, "CO-RE relocations without the object's BTF");
  const Target target(target_btf);
  const struct btf* lb = spec.btf->get();
  for (ProgramSpec& p : spec.programs) {
    for (const CoreRelo& r : p.core_relos) {
      const std::string_view access = spec.btf->string_at(r.access_str_off);
      auto res = resolve(lb, target, r, access);
      if (!res) {
        return std::move(res).error().with_context(fmt::format("program '{}': CO-RE relocation at instruction {}", p.name, r.insn));
      }
      if (r.insn >= p.insns.size()) {
        return make_error(Errc::kInvalid, "program '{}': CO-RE relocation at instruction {} of {}", p.name, r.insn,
                          p.insns.size());
      }
      BPFVM_TRY_CTX(patch(p.insns, r.insn, *res, static_cast<CoreKind>(r.kind)), "program '{}': instruction {}", p.name, r.insn);
      out.push_back({p.name, r.insn, res->value ? res->why : res->why + " (poisoned)", !res->value});
    }
    p.core_relos.clear();
  }
  spec.has_core_relocations = false;
  return out;
}

std::map<std::string, std::string> read_kernel_config(const std::optional<std::string>& path) {
  std::map<std::string, std::string> out;
  struct utsname u {};
  ::uname(&u);
  unsigned major = 0, minor = 0, patch = 0;
  if (std::sscanf(u.release, "%u.%u.%u", &major, &minor, &patch) >= 2) {
    out["LINUX_KERNEL_VERSION"] = std::to_string((major << 16) + (minor << 8) + std::min(patch, 255u));
  }
  out["LINUX_HAS_BPF_COOKIE"] = "y";  // booleans, as libbpf sets them ("y" reads 1 as an integer too)
  out["LINUX_HAS_SYSCALL_WRAPPER"] = "y";
  std::vector<std::string> files;
  if (path) {
    files.push_back(*path);
  } else {
    files = {"/proc/config.gz", std::string("/boot/config-") + u.release};
  }
  for (const std::string& f : files) {
    gzFile gz = gzopen(f.c_str(), "rb");  // reads plain files too
    if (!gz) continue;
    char line[4096];
    while (gzgets(gz, line, sizeof line)) {
      std::string_view l(line);
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.remove_suffix(1);
      if (!l.starts_with("CONFIG_")) continue;
      const auto eq = l.find('=');
      if (eq == std::string_view::npos) continue;
      out[std::string(l.substr(0, eq))] = std::string(l.substr(eq + 1));
    }
    gzclose(gz);
    break;
  }
  return out;
}

Result<void> fill_kconfig(ObjectSpec& spec, const std::map<std::string, std::string>& config) {
  if (spec.kconfig.empty() || spec.kconfig_filled) return {};
  std::vector<std::uint8_t>& bytes = spec.maps.at(spec.kconfig_map).initial_value;
  for (const KconfigExtern& e : spec.kconfig) {
    std::uint8_t* at = bytes.data() + e.offset;
    const auto it = config.find(e.name);
    if (it == config.end() || it->second == "n") {
      if (it == config.end() && !e.weak) {
        return make_error(Errc::kNotFound,
                          "{}: extern '{}' is not in the target kernel's configuration (/proc/config.gz); declare it "
                          "__weak to read 0",
                          spec.name, e.name);
      }
      continue;  // zero
    }
    const std::string& v = it->second;
    switch (e.kind) {
      case KconfigExtern::Kind::kBool: *at = (v == "y" || v == "m") ? 1 : 0; break;
      case KconfigExtern::Kind::kTristate: {
        const std::uint32_t tri = v == "y" ? 1 : v == "m" ? 2 : 0;
        std::memcpy(at, &tri, std::min<std::size_t>(4, e.size));
        break;
      }
      case KconfigExtern::Kind::kChars: {
        std::string text = v;
        if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
        if (e.size == 1) {
          *at = static_cast<std::uint8_t>(text.empty() ? 0 : text[0]);
        } else {
          std::memcpy(at, text.data(), std::min<std::size_t>(text.size(), e.size - 1));  // NUL-terminated
        }
        break;
      }
      case KconfigExtern::Kind::kInt: {
        std::uint64_t value = 0;
        if (v == "y") {
          value = 1;
        } else if (v == "m") {
          value = 2;
        } else {
          char* end = nullptr;
          value = e.is_signed ? static_cast<std::uint64_t>(std::strtoll(v.c_str(), &end, 0)) : std::strtoull(v.c_str(), &end, 0);
          if (!end || *end != 0) {
            return make_error(Errc::kInvalid, "{}: extern '{}': '{}' is not a number", spec.name, e.name, v);
          }
        }
        std::memcpy(at, &value, std::min<std::size_t>(8, e.size));  // little-endian: the low bytes
        break;
      }
      case KconfigExtern::Kind::kOther: break;
    }
  }
  spec.kconfig_filled = true;
  return {};
}

}  // namespace bpfvm::obj
