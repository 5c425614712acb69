#include "btf_raw.hpp"

#include <bpf/btf.h>
#include <fmt/format.h>

#include <cstdarg>

namespace bpfvm::cli {

namespace {

std::string name_of(const struct btf* b, std::uint32_t off) {
  const char* n = btf__name_by_offset(b, off);
  return n && *n ? n : "(anon)";
}

const char* linkage(unsigned l) {
  switch (l) {
    case 0: return "static";
    case 1: return "global";
    case 2: return "extern";
    default: return "(unknown)";
  }
}

std::string int_encoding(std::uint32_t enc) {
  if (enc & BTF_INT_SIGNED) return "SIGNED";
  if (enc & BTF_INT_CHAR) return "CHAR";
  if (enc & BTF_INT_BOOL) return "BOOL";
  return "(none)";
}

}  // namespace

std::string btf_raw(const obj::Btf& btf) {
  const struct btf* b = btf.get();
  std::string out;
  for (std::uint32_t id = 1; id < btf.type_count(); ++id) {
    const btf_type* t = btf__type_by_id(b, id);
    if (!t) break;
    out += fmt::format("[{}] {} '{}'", id, btf.kind_name(id), name_of(b, t->name_off));
    switch (btf_kind(t)) {
      case BTF_KIND_INT:
        out += fmt::format(" size={} bits_offset={} nr_bits={} encoding={}", t->size, btf_int_offset(t), btf_int_bits(t),
                           int_encoding(btf_int_encoding(t)));
        break;
      case BTF_KIND_PTR:
      case BTF_KIND_TYPEDEF:
      case BTF_KIND_VOLATILE:
      case BTF_KIND_CONST:
      case BTF_KIND_RESTRICT:
      case BTF_KIND_TYPE_TAG: out += fmt::format(" type_id={}", t->type); break;
      case BTF_KIND_ARRAY: {
        const struct btf_array* a = btf_array(t);
        out += fmt::format(" type_id={} index_type_id={} nr_elems={}", a->type, a->index_type, a->nelems);
        break;
      }
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: {
        out += fmt::format(" size={} vlen={}", t->size, btf_vlen(t));
        const btf_member* m = btf_members(t);
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
          out += fmt::format("\n\t'{}' type_id={} bits_offset={}", name_of(b, m->name_off), m->type,
                             btf_member_bit_offset(t, i));
          if (const std::uint32_t bits = btf_member_bitfield_size(t, i)) out += fmt::format(" bitfield_size={}", bits);
        }
        break;
      }
      case BTF_KIND_ENUM:
      case BTF_KIND_ENUM64: {
        const bool is_signed = btf_kflag(t);
        out += fmt::format(" encoding={} size={} vlen={}", is_signed ? "SIGNED" : "UNSIGNED", t->size, btf_vlen(t));
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i) {
          if (btf_kind(t) == BTF_KIND_ENUM) {
            const struct btf_enum* e = btf_enum(t) + i;
            out += is_signed ? fmt::format("\n\t'{}' val={}", name_of(b, e->name_off), e->val)
                             : fmt::format("\n\t'{}' val={}", name_of(b, e->name_off), static_cast<std::uint32_t>(e->val));
          } else {
            const struct btf_enum64* e = btf_enum64(t) + i;
            const std::uint64_t v = btf_enum64_value(e);
            out += is_signed ? fmt::format("\n\t'{}' val={}LL", name_of(b, e->name_off), static_cast<std::int64_t>(v))
                             : fmt::format("\n\t'{}' val={}ULL", name_of(b, e->name_off), v);
          }
        }
        break;
      }
      case BTF_KIND_FWD: out += fmt::format(" fwd_kind={}", btf_kflag(t) ? "union" : "struct"); break;
      case BTF_KIND_FUNC: out += fmt::format(" type_id={} linkage={}", t->type, linkage(btf_vlen(t))); break;
      case BTF_KIND_FUNC_PROTO: {
        out += fmt::format(" ret_type_id={} vlen={}", t->type, btf_vlen(t));
        const btf_param* p = btf_params(t);
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++p) {
          out += fmt::format("\n\t'{}' type_id={}", name_of(b, p->name_off), p->type);
        }
        break;
      }
      case BTF_KIND_VAR: out += fmt::format(" type_id={}, linkage={}", t->type, linkage(btf_var(t)->linkage)); break;
      case BTF_KIND_DATASEC: {
        out += fmt::format(" size={} vlen={}", t->size, btf_vlen(t));
        const btf_var_secinfo* v = btf_var_secinfos(t);
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++v) {
          const btf_type* var = btf__type_by_id(b, v->type);
          out += fmt::format("\n\ttype_id={} offset={} size={} ({} '{}')", v->type, v->offset, v->size,
                             btf.kind_name(v->type), var ? name_of(b, var->name_off) : "(anon)");
        }
        break;
      }
      case BTF_KIND_FLOAT: out += fmt::format(" size={}", t->size); break;
      case BTF_KIND_DECL_TAG:
        out += fmt::format(" type_id={} component_idx={}", t->type, btf_decl_tag(t)->component_idx);
        break;
      default: break;
    }
    out += '\n';
  }
  return out;
}

ojson btf_raw_json(const obj::Btf& btf) {
  const struct btf* b = btf.get();
  ojson types = ojson::array();
  for (std::uint32_t id = 1; id < btf.type_count(); ++id) {
    const btf_type* t = btf__type_by_id(b, id);
    if (!t) break;
    ojson j;
    j["id"] = id;
    j["kind"] = btf.kind_name(id);
    j["name"] = name_of(b, t->name_off);
    switch (btf_kind(t)) {
      case BTF_KIND_INT:
        j["size"] = t->size;
        j["bits_offset"] = btf_int_offset(t);
        j["nr_bits"] = btf_int_bits(t);
        j["encoding"] = int_encoding(btf_int_encoding(t));
        break;
      case BTF_KIND_STRUCT:
      case BTF_KIND_UNION: {
        j["size"] = t->size;
        j["vlen"] = btf_vlen(t);
        ojson members = ojson::array();
        const btf_member* m = btf_members(t);
        for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
          ojson mj = {{"name", name_of(b, m->name_off)}, {"type_id", m->type}, {"bits_offset", btf_member_bit_offset(t, i)}};
          if (const std::uint32_t bits = btf_member_bitfield_size(t, i)) mj["bitfield_size"] = bits;
          members.push_back(mj);
        }
        j["members"] = members;
        break;
      }
      case BTF_KIND_ARRAY:
        j["type_id"] = btf_array(t)->type;
        j["index_type_id"] = btf_array(t)->index_type;
        j["nr_elems"] = btf_array(t)->nelems;
        break;
      default:
        if (btf_kind(t) != BTF_KIND_FWD && btf_kind(t) != BTF_KIND_ENUM && btf_kind(t) != BTF_KIND_ENUM64 &&
            btf_kind(t) != BTF_KIND_DATASEC && btf_kind(t) != BTF_KIND_FLOAT) {
          j["type_id"] = t->type;
        } else if (btf_kind(t) != BTF_KIND_FWD) {
          j["size"] = t->size;
        }
        break;
    }
    types.push_back(j);
  }
  return {{"types", types}};
}

Result<std::string> btf_c(const obj::Btf& btf) {
  // bpftool wraps the declarations in the vmlinux.h guard and the CO-RE attribute.
  const std::string body = BPFVM_TRY(btf.c_declarations());
  return "#ifndef __VMLINUX_H__\n#define __VMLINUX_H__\n\n"
         "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n"
         "#pragma clang attribute push (__attribute__((preserve_access_index)), apply_to = record)\n#endif\n\n" +
         body +
         "#ifndef BPF_NO_PRESERVE_ACCESS_INDEX\n#pragma clang attribute pop\n#endif\n\n#endif /* __VMLINUX_H__ */\n";
}

}  // namespace bpfvm::cli
