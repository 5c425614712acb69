#include "bpfvm/obj/btf.hpp"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>

namespace bpfvm::obj {

namespace {
// libbpf reports problems on stderr; bpfvm reports them as errors instead.
int quiet(enum libbpf_print_level, const char*, va_list) { return 0; }
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

std::string_view Btf::type_name(std::uint32_t id) const {
  if (id >= type_count()) return "";
  const struct btf_type* t = btf__type_by_id(btf_.get(), id);
  return t ? string_at(t->name_off) : "";
}

}  // namespace bpfvm::obj
