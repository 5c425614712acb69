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

std::string_view Btf::type_name(std::uint32_t id) const {
  if (id >= type_count()) return "";
  const struct btf_type* t = btf__type_by_id(btf_.get(), id);
  return t ? string_at(t->name_off) : "";
}

}  // namespace bpfvm::obj
