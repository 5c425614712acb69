#include "bpfvm/obj/btf_value.hpp"

#include <bpf/btf.h>
#include <fmt/format.h>

#include <cstring>

namespace bpfvm::obj {

namespace {

using ojson = nlohmann::ordered_json;

std::uint64_t load_bits(std::span<const std::uint8_t> data, std::uint32_t bit_offset, std::uint32_t bits) {
  std::uint64_t v = 0;
  for (std::uint32_t i = 0; i < bits; ++i) {
    const std::uint32_t b = bit_offset + i;
    if (b / 8 >= data.size()) break;
    v |= static_cast<std::uint64_t>((data[b / 8] >> (b % 8)) & 1) << i;
  }
  return v;
}

std::uint64_t load_le(std::span<const std::uint8_t> data, std::size_t size) {
  std::uint64_t v = 0;
  std::memcpy(&v, data.data(), std::min({size, data.size(), sizeof v}));
  return v;
}

ojson integer(std::uint64_t raw, std::uint32_t bits, bool is_signed) {
  if (is_signed && bits < 64 && bits > 0 && (raw >> (bits - 1) & 1)) raw |= ~0ull << bits;  // sign-extend
  if (is_signed) return static_cast<std::int64_t>(raw);
  return raw;
}

bool is_char(const struct btf* b, std::uint32_t id) {
  const btf_type* t = btf__type_by_id(b, btf__resolve_type(b, id) > 0 ? static_cast<std::uint32_t>(btf__resolve_type(b, id)) : id);
  return t && btf_is_int(t) && t->size == 1 && (btf_int_encoding(t) & BTF_INT_CHAR || btf_int_bits(t) == 8);
}

ojson value_of(const struct btf* b, std::uint32_t id, std::span<const std::uint8_t> data, int depth);

ojson bits_value(const struct btf* b, std::uint32_t id, std::span<const std::uint8_t> data, std::uint32_t bit_off,
                 std::uint32_t bits) {
  const btf_type* t = btf__type_by_id(b, id);
  const bool is_signed = t && btf_is_int(t) && (btf_int_encoding(t) & BTF_INT_SIGNED);
  return integer(load_bits(data, bit_off, bits), bits, is_signed);
}

ojson value_of(const struct btf* b, std::uint32_t id, std::span<const std::uint8_t> data, int depth) {
  if (depth > 32) return "...";
  const int resolved = btf__resolve_type(b, id);
  if (resolved < 0) return nullptr;
  id = static_cast<std::uint32_t>(resolved);
  const btf_type* t = btf__type_by_id(b, id);
  if (!t || id == 0) return nullptr;
  switch (btf_kind(t)) {
    case BTF_KIND_INT: {
      const std::uint32_t bits = btf_int_bits(t);
      const std::uint32_t enc = btf_int_encoding(t);
      if (bits > 64) {
        std::string hex = "0x";
        for (std::size_t i = std::min<std::size_t>(t->size, data.size()); i-- > 0;) hex += fmt::format("{:02x}", data[i]);
        return hex;
      }
      if (enc & BTF_INT_BOOL) return load_bits(data, btf_int_offset(t), bits) != 0;
      return integer(load_bits(data, btf_int_offset(t), bits), bits, enc & BTF_INT_SIGNED);
    }
    case BTF_KIND_PTR: return fmt::format("{:#x}", load_le(data, 8));
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64: {
      const bool is_signed = btf_kflag(t);
      const std::uint64_t raw = load_le(data, t->size);
      const std::uint64_t v = t->size < 8 ? raw & ((1ull << (8 * t->size)) - 1) : raw;
      for (std::uint16_t i = 0; i < btf_vlen(t); ++i) {
        std::uint64_t ev;
        const char* name;
        if (btf_kind(t) == BTF_KIND_ENUM) {
          const struct btf_enum* e = btf_enum(t) + i;
          ev = static_cast<std::uint32_t>(e->val);
          name = btf__name_by_offset(b, e->name_off);
          if (t->size < 8) ev &= (1ull << (8 * t->size)) - 1;
        } else {
          const struct btf_enum64* e = btf_enum64(t) + i;
          ev = btf_enum64_value(e);
          name = btf__name_by_offset(b, e->name_off);
        }
        if (ev == v) return name;
      }
      return integer(v, 8 * t->size, is_signed);
    }
    case BTF_KIND_ARRAY: {
      const struct btf_array* a = btf_array(t);
      const std::int64_t elem = btf__resolve_size(b, a->type);
      if (elem <= 0) return ojson::array();
      if (is_char(b, a->type)) {
        const std::size_t n = std::min<std::size_t>(a->nelems, data.size());
        return std::string(reinterpret_cast<const char*>(data.data()), strnlen(reinterpret_cast<const char*>(data.data()), n));
      }
      ojson out = ojson::array();
      for (std::uint32_t i = 0; i < a->nelems; ++i) {
        const std::size_t off = static_cast<std::size_t>(elem) * i;
        if (off >= data.size()) break;
        out.push_back(value_of(b, a->type, data.subspan(off), depth + 1));
      }
      return out;
    }
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION: {
      ojson out = ojson::object();
      const btf_member* m = btf_members(t);
      for (std::uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
        const std::uint32_t bit_off = btf_member_bit_offset(t, i);
        const std::uint32_t bits = btf_member_bitfield_size(t, i);
        std::string name = btf__name_by_offset(b, m->name_off);
        ojson v;
        if (bits) {
          v = bits_value(b, static_cast<std::uint32_t>(btf__resolve_type(b, m->type)), data, bit_off, bits);
        } else if (bit_off / 8 <= data.size()) {
          v = value_of(b, m->type, data.subspan(bit_off / 8), depth + 1);
        }
        if (name.empty() && v.is_object()) {  // an anonymous struct or union: its members inline
          for (auto& [k, x] : v.items()) out[k] = x;
        } else {
          out[name] = v;
        }
      }
      return out;
    }
    default: return nullptr;  // void, functions: nothing to print
  }
}

}  // namespace

std::uint32_t btf_skip_qualifiers(const Btf& btf, std::uint32_t type_id) {
  const int r = btf__resolve_type(btf.get(), type_id);
  return r < 0 ? 0 : static_cast<std::uint32_t>(r);
}

std::int64_t btf_size(const Btf& btf, std::uint32_t type_id) {
  const long long s = btf__resolve_size(btf.get(), type_id);
  return s < 0 ? -1 : s;
}

ojson btf_value(const Btf& btf, std::uint32_t type_id, std::span<const std::uint8_t> data) {
  return value_of(btf.get(), type_id, data, 0);
}

std::string btf_cell(const Btf& btf, std::uint32_t type_id, std::span<const std::uint8_t> data) {
  const ojson v = btf_value(btf, type_id, data);
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

BtfCellFormat::BtfCellFormat(const Btf& btf, std::uint32_t type_id) : btf_(&btf), type_id_(type_id) {
  const struct btf* b = btf.get();
  const int resolved = btf__resolve_type(b, type_id);
  const btf_type* t = resolved > 0 ? btf__type_by_id(b, static_cast<std::uint32_t>(resolved)) : nullptr;
  if (!t) return;
  switch (btf_kind(t)) {
    case BTF_KIND_INT:
      bits_ = btf_int_bits(t);
      bit_offset_ = btf_int_offset(t);
      if (bits_ == 0 || bits_ > 64) return;
      kind_ = (btf_int_encoding(t) & BTF_INT_BOOL)     ? Kind::kBool
              : (btf_int_encoding(t) & BTF_INT_SIGNED) ? Kind::kSigned
                                                       : Kind::kUnsigned;
      return;
    case BTF_KIND_PTR: kind_ = Kind::kPointer; return;
    case BTF_KIND_ARRAY: {
      const struct btf_array* a = btf_array(t);
      if (btf__resolve_size(b, a->type) > 0 && is_char(b, a->type)) {
        kind_ = Kind::kChars;
        size_ = a->nelems;
      }
      return;
    }
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64: {
      kind_ = Kind::kEnum;
      size_ = t->size;
      enum_signed_ = btf_kflag(t);
      const std::uint64_t mask = t->size < 8 ? (1ull << (8 * t->size)) - 1 : ~0ull;
      for (std::uint16_t i = 0; i < btf_vlen(t); ++i) {
        if (btf_kind(t) == BTF_KIND_ENUM) {
          const struct btf_enum* e = btf_enum(t) + i;
          enumerators_.emplace_back(static_cast<std::uint32_t>(e->val) & mask, btf__name_by_offset(b, e->name_off));
        } else {
          const struct btf_enum64* e = btf_enum64(t) + i;
          enumerators_.emplace_back(btf_enum64_value(e), btf__name_by_offset(b, e->name_off));
        }
      }
      return;
    }
    default: return;
  }
}

void BtfCellFormat::append(std::span<const std::uint8_t> data, std::string& out) const {
  auto to = std::back_inserter(out);
  switch (kind_) {
    case Kind::kSigned: {
      std::uint64_t raw = load_bits(data, bit_offset_, bits_);
      if (bits_ < 64 && (raw >> (bits_ - 1) & 1)) raw |= ~0ull << bits_;  // (as integer(): sign-extended)
      fmt::format_to(to, "{}", static_cast<std::int64_t>(raw));
      return;
    }
    case Kind::kUnsigned: fmt::format_to(to, "{}", load_bits(data, bit_offset_, bits_)); return;
    case Kind::kBool: out += load_bits(data, bit_offset_, bits_) != 0 ? "true" : "false"; return;
    case Kind::kPointer: fmt::format_to(to, "{:#x}", load_le(data, 8)); return;
    case Kind::kChars: {
      const auto* p = reinterpret_cast<const char*>(data.data());
      out.append(p, strnlen(p, std::min<std::size_t>(size_, data.size())));
      return;
    }
    case Kind::kEnum: {
      const std::uint64_t raw = load_le(data, size_);
      const std::uint64_t v = size_ < 8 ? raw & ((1ull << (8 * size_)) - 1) : raw;
      for (const auto& [value, name] : enumerators_) {
        if (value == v) {
          out += name;
          return;
        }
      }
      std::uint64_t n = v;
      const std::uint32_t bits = 8 * size_;
      if (enum_signed_ && bits < 64 && bits > 0 && (n >> (bits - 1) & 1)) n |= ~0ull << bits;
      if (enum_signed_) fmt::format_to(to, "{}", static_cast<std::int64_t>(n));
      else fmt::format_to(to, "{}", n);
      return;
    }
    case Kind::kOther: out += btf_cell(*btf_, type_id_, data); return;
  }
}

std::uint32_t btf_find_struct(const Btf& btf, std::string_view name, std::int64_t size) {
  std::uint32_t found = 0;
  const std::uint32_t n = btf.type_count();
  for (std::uint32_t id = 1; id < n; ++id) {
    const btf_type* t = btf__type_by_id(btf.get(), id);
    if (!t || !btf_is_struct(t)) continue;
    if (!name.empty()) {
      if (btf.type_name(id) == name && (size < 0 || t->size == size)) return id;
      continue;
    }
    if (size >= 0 && t->size == size) {
      if (found) return 0;  // several: ambiguous
      found = id;
    }
  }
  return found;
}

}  // namespace bpfvm::obj
