#include "bpfvm/obj/btf.hpp"

#include <bpf/btf.h>

#include <functional>
#include <bpf/libbpf.h>

#include <cerrno>
#include <charconv>
#include <mutex>
#include <unordered_map>
#include <cstdarg>
#include <cstdio>
#include <string>

#include "bpfvm/base/file.hpp"

namespace bpfvm::obj {

namespace {
// libbpf reports problems on stderr; bpfvm reports them as errors instead.
int quiet(enum libbpf_print_level, const char*, va_list) { return 0; }

// btf_dump's printer: appends to a std::string. (The format comes from libbpf: printf-checked there.)
__attribute__((format(printf, 2, 0))) void append_text(void* ctx, const char* fmt_text, va_list args) {
  va_list copy;
  va_copy(copy, args);
  const int n = std::vsnprintf(nullptr, 0, fmt_text, copy);
  va_end(copy);
  if (n <= 0) return;
  std::string piece(static_cast<std::size_t>(n) + 1, '\0');
  std::vsnprintf(piece.data(), piece.size(), fmt_text, args);
  piece.pop_back();
  *static_cast<std::string*>(ctx) += piece;
}

// Debian's libbpf 1.1 prints a prototype without parameters as "f()", which in C declares a function of
// unspecified parameters; bpftool (and vmlinux.h as users have it) prints "f(void)". In declarations
// "()" is nothing but an empty parameter list, so every one becomes "(void)".
std::string void_empty_parameter_lists(std::string text) {
  for (std::size_t at = 0; (at = text.find("()", at)) != std::string::npos; at += 6) text.replace(at, 2, "(void)");
  return text;
}
}  // namespace

Result<Btf> Btf::parse(std::span<const std::uint8_t> bytes) {
  static const bool silenced = (libbpf_set_print(quiet), true);
  (void)silenced;
  if (bytes.size() < sizeof(struct btf_header)) {
    return make_error(Errc::kInvalid, "BTF is {} bytes, shorter than its header", bytes.size());
  }
  Btf out;
  out.bytes_ = std::make_shared<const std::vector<std::uint8_t>>(bytes.begin(), bytes.end());
  struct btf* parsed = btf__new(out.bytes_->data(), static_cast<std::uint32_t>(out.bytes_->size()));
  if (!parsed) return make_error(Errc::kInvalid, "malformed BTF ({})", std::strerror(errno));
  out.btf_ = std::shared_ptr<struct btf>(parsed, btf__free);
  return out;
}

std::string_view Btf::string_at(std::uint32_t offset) const {
  const char* s = btf__str_by_offset(btf_.get(), offset);
  return s ? s : "";
}

std::uint32_t Btf::type_count() const { return btf__type_cnt(btf_.get()); }

Result<std::int32_t> Btf::find_struct_member(std::uint32_t type_id, std::string_view member_type) const {
  const auto resolve = [&](std::uint32_t id) {
    const struct btf_type* t = btf__type_by_id(btf_.get(), id);
    for (int guard = 0; t && (btf_is_mod(t) || btf_is_typedef(t)) && guard < 32; ++guard) t = btf__type_by_id(btf_.get(), t->type);
    return t;
  };
  if (type_id == 0 || type_id >= type_count()) return -1;
  const struct btf_type* t = resolve(type_id);
  if (!t || !btf_is_struct(t)) return -1;
  std::int32_t found = -1;
  const struct btf_member* m = btf_members(t);
  for (unsigned i = 0; i < btf_vlen(t); ++i) {
    const struct btf_type* mt = resolve(m[i].type);
    if (!mt || !btf_is_struct(mt) || string_at(mt->name_off) != member_type) continue;
    if (found >= 0) return make_error(Errc::kInvalid, "more than one struct {} in a value", member_type);
    const std::uint32_t bits = btf_member_bit_offset(t, i);
    if (bits % 8) return make_error(Errc::kInvalid, "struct {} is not byte aligned", member_type);
    found = static_cast<std::int32_t>(bits / 8);
  }
  return found;
}

Result<std::vector<Btf::KptrField>> Btf::kptr_fields(std::uint32_t type_id) const {
  std::vector<KptrField> out;
  if (type_id == 0 || type_id >= type_count()) return out;
  const struct btf* b = btf_.get();
  const auto skip_mods = [&](std::uint32_t id) {
    const struct btf_type* t = btf__type_by_id(b, id);
    for (int guard = 0; t && (btf_is_mod(t) || btf_is_typedef(t)) && guard < 32; ++guard) {
      id = t->type;
      t = btf__type_by_id(b, id);
    }
    return std::pair{t, id};
  };
  // A member of type `id` at byte `base`: a kptr, or a struct or array holding some (depth-limited).
  std::function<Result<void>(std::uint32_t, std::uint32_t, int)> visit = [&](std::uint32_t id, std::uint32_t base,
                                                                                int depth) -> Result<void> {
    if (depth > 8) return {};
    const struct btf_type* t = btf__type_by_id(b, id);
    for (int guard = 0; t && btf_is_typedef(t) && guard < 32; ++guard) t = btf__type_by_id(b, t->type);
    if (t && btf_is_volatile(t)) t = btf__type_by_id(b, t->type);  // (the pointer itself may be volatile)
    if (!t) return {};
    if (btf_is_ptr(t)) {
      const struct btf_type* tag = btf__type_by_id(b, t->type);
      if (!tag || !btf_is_type_tag(tag) || btf_kflag(tag)) return {};
      const std::string_view name = string_at(tag->name_off);
      KptrField f;
      f.offset = base;
      if (name == "kptr_untrusted") {
        f.kind = KptrField::Kind::kUntrusted;
      } else if (name == "kptr") {
        f.kind = KptrField::Kind::kReferenced;
      } else if (name == "percpu_kptr") {
        f.kind = KptrField::Kind::kPercpu;
      } else if (name == "uptr") {
        f.kind = KptrField::Kind::kUser;
      } else {
        return make_error(Errc::kInvalid, "a pointer at offset {} of the value has type tag '{}', which the kernel "
                                          "does not know (kptr, kptr_untrusted, percpu_kptr, uptr)", base, name);
      }
      const struct btf_type* next = btf__type_by_id(b, tag->type);
      if (next && btf_is_type_tag(next)) {
        return make_error(Errc::kInvalid, "the kptr at offset {} of the value has more than one type tag", base);
      }
      const auto [pointee, pointee_id] = skip_mods(tag->type);
      if (!pointee || !btf_is_struct(pointee)) {
        return make_error(Errc::kInvalid, "the kptr at offset {} of the value does not point to a struct", base);
      }
      f.pointee = std::string(string_at(pointee->name_off));
      out.push_back(std::move(f));
      return {};
    }
    if (btf_is_array(t)) {
      const struct btf_array* a = btf_array(t);
      const std::uint32_t size = type_size(a->type);
      for (std::uint32_t i = 0; size && i < a->nelems && i < 1024; ++i) BPFVM_TRY(visit(a->type, base + i * size, depth + 1));
      return {};
    }
    if (btf_is_struct(t) && depth > 0) {
      const struct btf_member* m = btf_members(t);
      for (unsigned i = 0; i < btf_vlen(t); ++i) {
        if (btf_member_bitfield_size(t, i)) continue;
        BPFVM_TRY(visit(m[i].type, base + btf_member_bit_offset(t, i) / 8, depth + 1));
      }
    }
    return {};
  };
  const auto [t, id] = skip_mods(type_id);
  if (!t || !btf_is_struct(t)) return out;
  const struct btf_member* m = btf_members(t);
  for (unsigned i = 0; i < btf_vlen(t); ++i) {
    if (btf_member_bitfield_size(t, i)) continue;
    BPFVM_TRY(visit(m[i].type, btf_member_bit_offset(t, i) / 8, 1));
  }
  return out;
}

struct Btf::NameIndex {
  std::unordered_map<std::string_view, std::uint32_t> structs, unions, funcs;  // views into the BTF's strings
};

std::uint32_t Btf::find_struct(std::string_view name, bool unions) const {
  const NameIndex& index = names();
  if (auto it = index.structs.find(name); it != index.structs.end()) return it->second;
  if (!unions) return 0;
  auto it = index.unions.find(name);
  return it == index.unions.end() ? 0 : it->second;
}

std::uint32_t Btf::find_func(std::string_view name) const {
  const NameIndex& index = names();
  auto it = index.funcs.find(name);
  return it == index.funcs.end() ? 0 : it->second;
}

const Btf::NameIndex& Btf::names() const {
  std::shared_ptr<const NameIndex> index;
  {
    static std::mutex* mu = new std::mutex;  // (never destroyed: lookups may run while exit() does)
    const std::lock_guard lock(*mu);
    if (!names_) {
      auto made = std::make_shared<NameIndex>();
      const std::uint32_t n = type_count();
      for (std::uint32_t id = 1; id < n; ++id) {
        const btf_type* t = btf__type_by_id(btf_.get(), id);
        if (!t || !(btf_is_composite(t) || btf_is_func(t)) || t->name_off == 0) continue;
        const char* s = btf__name_by_offset(btf_.get(), t->name_off);
        if (!s || !*s) continue;
        // (the first of a name stays)
        (btf_is_func(t) ? made->funcs : btf_is_struct(t) ? made->structs : made->unions).emplace(s, id);
      }
      names_ = std::move(made);
    }
    index = names_;
  }
  return *index;  // (kept by names_ as long as this Btf)
}

std::uint32_t Btf::type_size(std::uint32_t type_id) const {
  if (type_id == 0 || type_id >= type_count()) return 0;
  const __s64 size = btf__resolve_size(btf_.get(), type_id);
  return size > 0 ? static_cast<std::uint32_t>(size) : 0;
}

namespace {

// Member `name` of composite `t` at `base` bits: directly, or inside an anonymous struct/union member.
bool find_member(const struct btf* b, const struct btf_type* t, std::string_view name, std::uint64_t base,
                 std::uint64_t& bits, std::uint32_t& type_id, std::uint32_t& bitfield, int depth = 0) {
  if (depth > 8) return false;
  const struct btf_member* m = btf_members(t);
  for (unsigned i = 0; i < btf_vlen(t); ++i) {
    const char* member_name = btf__name_by_offset(b, m[i].name_off);
    const std::uint64_t at = base + btf_member_bit_offset(t, i);
    if (member_name && *member_name) {
      if (name == member_name) {
        bits = at;
        type_id = m[i].type;
        bitfield = btf_member_bitfield_size(t, i);
        return true;
      }
      continue;
    }
    const struct btf_type* inner = btf__type_by_id(b, m[i].type);
    for (int guard = 0; inner && (btf_is_mod(inner) || btf_is_typedef(inner)) && guard < 32; ++guard) inner = btf__type_by_id(b, inner->type);
    if (inner && (btf_is_struct(inner) || btf_is_union(inner)) &&
        find_member(b, inner, name, at, bits, type_id, bitfield, depth + 1)) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::optional<Btf::MemberPlace> Btf::member_place(std::uint32_t type_id, std::string_view path) const {
  const struct btf* b = btf_.get();
  const auto resolve = [&](std::uint32_t id) {
    const struct btf_type* t = id < type_count() ? btf__type_by_id(b, id) : nullptr;
    for (int guard = 0; t && (btf_is_mod(t) || btf_is_typedef(t)) && guard < 32; ++guard) {
      id = t->type;
      t = btf__type_by_id(b, id);
    }
    return std::pair{t, id};
  };
  std::uint64_t bits = 0;
  std::uint32_t current = type_id;
  while (!path.empty()) {
    const std::size_t dot = path.find('.');
    std::string_view step = path.substr(0, dot);
    path = dot == std::string_view::npos ? std::string_view{} : path.substr(dot + 1);
    std::optional<std::uint32_t> index;
    if (const std::size_t bracket = step.find('['); bracket != std::string_view::npos) {
      std::uint32_t i = 0;
      const auto digits = step.substr(bracket + 1);
      const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
      if (ec != std::errc{} || end == digits.data() + digits.size() || *end != ']') return std::nullopt;
      index = i;
      step = step.substr(0, bracket);
    }
    const auto [t, id] = resolve(current);
    if (!t || !(btf_is_struct(t) || btf_is_union(t))) return std::nullopt;
    std::uint64_t at = 0;
    std::uint32_t member_type = 0, bitfield = 0;
    if (!find_member(b, t, step, bits, at, member_type, bitfield) || bitfield != 0 || at % 8 != 0) return std::nullopt;
    bits = at;
    current = member_type;
    if (index) {
      const auto [array, array_id] = resolve(current);
      if (!array || !btf_is_array(array)) return std::nullopt;
      const std::uint32_t element = btf_array(array)->type;
      const std::uint32_t element_size = type_size(element);
      if (element_size == 0) return std::nullopt;
      bits += std::uint64_t{*index} * element_size * 8;
      current = element;
    }
  }
  if (current == type_id) return std::nullopt;
  return MemberPlace{static_cast<std::uint32_t>(bits / 8), type_size(current), current};
}

Result<std::string> Btf::function_declaration(std::uint32_t type_id) const {
  const struct btf* b = btf_.get();
  const struct btf_type* f = type_id < type_count() ? btf__type_by_id(b, type_id) : nullptr;
  if (!f || !btf_is_func(f)) return make_error(Errc::kInvalid, "BTF type {} is not a function", type_id);
  std::string out;
  struct btf_dump* d = btf_dump__new(b, append_text, &out, nullptr);
  if (!d) return make_error(Errc::kNoMemory, "cannot print BTF type {}", type_id);
  const std::string name(string_at(f->name_off));
  LIBBPF_OPTS(btf_dump_emit_type_decl_opts, opts, .field_name = name.c_str());
  const int err = btf_dump__emit_type_decl(d, f->type, &opts);
  btf_dump__free(d);
  if (err) return make_error(Errc::kInvalid, "cannot print BTF function {}", type_id);
  return void_empty_parameter_lists(std::move(out));
}

Result<std::string> Btf::c_declarations() const {
  std::string body;
  struct btf_dump* d = btf_dump__new(btf_.get(), append_text, &body, nullptr);
  if (!d) return make_error(Errc::kInvalid, "cannot print this BTF as C");
  for (std::uint32_t id = 1; id < type_count(); ++id) {
    if (btf_dump__dump_type(d, id) < 0) {
      btf_dump__free(d);
      return make_error(Errc::kInvalid, "cannot print BTF type {} as C", id);
    }
  }
  btf_dump__free(d);
  return void_empty_parameter_lists(std::move(body));
}

Result<FuncSignature> Btf::function(std::uint32_t type_id) const {
  const struct btf* b = btf_.get();
  const struct btf_type* f = type_id < type_count() ? btf__type_by_id(b, type_id) : nullptr;
  if (!f || !btf_is_func(f)) return make_error(Errc::kInvalid, "BTF type {} is not a function", type_id);
  const struct btf_type* proto = btf__type_by_id(b, f->type);
  if (!proto || !btf_is_func_proto(proto)) return make_error(Errc::kInvalid, "BTF function {} has no prototype", type_id);
  FuncSignature sig;
  sig.name = std::string(string_at(f->name_off));
  sig.global = btf_vlen(f) == BTF_FUNC_GLOBAL;  // a FUNC keeps its linkage in vlen
  auto strip = [&](std::uint32_t id) {
    const struct btf_type* t = btf__type_by_id(b, id);
    for (int guard = 0; t && (btf_is_mod(t) || btf_is_typedef(t)) && guard < 32; ++guard) {
      id = t->type;
      t = btf__type_by_id(b, id);
    }
    return std::pair{id, t};
  };
  auto is_scalar = [](const struct btf_type* t) { return t && (btf_is_int(t) || btf_is_enum(t) || btf_is_enum64(t)); };
  const struct btf_param* params = btf_params(proto);
  for (unsigned i = 0; i < btf_vlen(proto); ++i) {
    FuncSignature::Param p;
    const auto [id, t] = strip(params[i].type);
    if (is_scalar(t)) {
      p.kind = FuncSignature::Param::Kind::kScalar;
    } else if (t && btf_is_ptr(t)) {
      p.kind = FuncSignature::Param::Kind::kPointer;
      const auto [pid, pt] = strip(t->type);
      if (pt && (btf_is_struct(pt) || btf_is_union(pt))) p.pointee = std::string(string_at(pt->name_off));
      if (pid != 0) {
        const long long size = btf__resolve_size(b, pid);
        p.size = size < 0 ? -1 : size;
      }
    }
    (void)id;
    sig.params.push_back(std::move(p));
  }
  sig.returns_scalar = is_scalar(strip(proto->type).second);
  return sig;
}

std::string_view Btf::kind_name(std::uint32_t id) const {
  static constexpr std::string_view kKinds[] = {"UNKNOWN", "INT",      "PTR",      "ARRAY",    "STRUCT",   "UNION",
                                                "ENUM",    "FWD",      "TYPEDEF",  "VOLATILE", "CONST",    "RESTRICT",
                                                "FUNC",    "FUNC_PROTO", "VAR",    "DATASEC",  "FLOAT",    "DECL_TAG",
                                                "TYPE_TAG", "ENUM64"};
  const btf_type* t = id < type_count() ? btf__type_by_id(get(), id) : nullptr;
  const unsigned k = t ? btf_kind(t) : 0;
  return k < std::size(kKinds) ? kKinds[k] : kKinds[0];
}

std::string_view Btf::type_name(std::uint32_t id) const {
  if (id >= type_count()) return "";
  const struct btf_type* t = btf__type_by_id(btf_.get(), id);
  return t ? string_at(t->name_off) : "";
}

Result<std::shared_ptr<const Btf>> running_kernel_btf() {
  // Never destroyed: an agent's watcher may read it while exit() runs the static destructors.
  static const Result<std::shared_ptr<const Btf>>& once = *new Result<std::shared_ptr<const Btf>>([]() -> Result<std::shared_ptr<const Btf>> {
    const auto bytes = BPFVM_TRY_CTX(os::read_file("/sys/kernel/btf/vmlinux"), "the running kernel's types");
    return std::make_shared<const Btf>(BPFVM_TRY_CTX(Btf::parse(bytes), "/sys/kernel/btf/vmlinux"));
  }());
  return once;
}

}  // namespace bpfvm::obj
