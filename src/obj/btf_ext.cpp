#include "bpfvm/obj/btf_ext.hpp"

#include <cstring>

namespace bpfvm::obj {

namespace {

constexpr std::uint16_t kBtfMagic = 0xeB9F;

std::uint32_t u32_at(std::span<const std::uint8_t> b, std::size_t off) {
  std::uint32_t v;
  std::memcpy(&v, b.data() + off, 4);
  return v;
}

// One info block list: u32 record size, then {u32 section name offset, u32 count, records...}*.
// `fn(section, record bytes)` is called for each record.
template <typename Fn>
Result<void> walk_info(std::span<const std::uint8_t> info, std::size_t min_record, std::string_view what,
                       const Btf& btf, Fn fn) {
  if (info.empty()) return {};
  if (info.size() < 4) return make_error(Errc::kInvalid, ".BTF.ext {}: truncated", what);
  const std::uint32_t rec = u32_at(info, 0);
  if (rec < min_record || rec % 4 != 0 || rec > 256) {
    return make_error(Errc::kInvalid, ".BTF.ext {}: record size {} is invalid", what, rec);
  }
  std::size_t off = 4;
  while (off < info.size()) {
    if (info.size() - off < 8) return make_error(Errc::kInvalid, ".BTF.ext {}: truncated block header", what);
    const std::uint32_t name_off = u32_at(info, off);
    const std::uint32_t count = u32_at(info, off + 4);
    off += 8;
    const std::string_view section = btf.string_at(name_off);
    if (section.empty()) {
      return make_error(Errc::kInvalid, ".BTF.ext {}: block names string offset {}, which is not in the BTF", what,
                        name_off);
    }
    if (count == 0 || (info.size() - off) / rec < count) {
      return make_error(Errc::kInvalid, ".BTF.ext {}: block for '{}' claims {} records", what, section, count);
    }
    for (std::uint32_t i = 0; i < count; ++i, off += rec) {
      BPFVM_TRY(fn(std::string(section), info.subspan(off, rec)));
    }
  }
  return {};
}

}  // namespace

Result<BtfExt> BtfExt::parse(std::span<const std::uint8_t> bytes, const Btf& btf) {
  // struct btf_ext_header: magic, version, flags, hdr_len, then (off, len) pairs relative to the
  // header's end for func_info, line_info and (optionally) CO-RE relocations.
  if (bytes.size() < 24) return make_error(Errc::kInvalid, ".BTF.ext is shorter than its header");
  std::uint16_t magic;
  std::memcpy(&magic, bytes.data(), 2);
  if (magic != kBtfMagic) return make_error(Errc::kInvalid, ".BTF.ext has magic 0x{:x}, not 0xeb9f", magic);
  if (bytes[2] != 1) return make_error(Errc::kNotSupported, ".BTF.ext version {}", bytes[2]);
  const std::uint32_t hdr_len = u32_at(bytes, 4);
  if (hdr_len < 24 || hdr_len > bytes.size()) return make_error(Errc::kInvalid, ".BTF.ext header length {}", hdr_len);
  const auto part = [&](std::size_t field, std::string_view what) -> Result<std::span<const std::uint8_t>> {
    if (field + 8 > hdr_len) return std::span<const std::uint8_t>{};
    const std::uint64_t off = u32_at(bytes, field), len = u32_at(bytes, field + 4);
    const std::uint64_t start = hdr_len + off;
    if (start > bytes.size() || len > bytes.size() - start) {
      return make_error(Errc::kInvalid, ".BTF.ext {} lies outside the section", what);
    }
    return bytes.subspan(static_cast<std::size_t>(start), static_cast<std::size_t>(len));
  };
  const auto funcs = BPFVM_TRY(part(8, "func_info"));
  const auto lines = BPFVM_TRY(part(16, "line_info"));
  const auto core = BPFVM_TRY(part(24, "CO-RE relocations"));

  BtfExt out;
  out.has_core_relocations = core.size() > 4;
  const auto check_insn = [](std::uint32_t byte_off, std::string_view what) -> Result<std::uint32_t> {
    if (byte_off % 8 != 0) return make_error(Errc::kInvalid, ".BTF.ext {}: offset {} is not on an instruction", what, byte_off);
    return byte_off / 8;
  };
  BPFVM_TRY(walk_info(funcs, 8, "func_info", btf, [&](std::string sec, std::span<const std::uint8_t> r) -> Result<void> {
    const std::uint32_t type_id = u32_at(r, 4);
    if (type_id == 0 || type_id >= btf.type_count()) {
      return make_error(Errc::kInvalid, ".BTF.ext func_info for '{}' names type {}, which does not exist", sec, type_id);
    }
    out.func_info[sec].push_back({BPFVM_TRY(check_insn(u32_at(r, 0), "func_info")), type_id});
    return {};
  }));
  BPFVM_TRY(walk_info(lines, 16, "line_info", btf, [&](std::string sec, std::span<const std::uint8_t> r) -> Result<void> {
    out.line_info[sec].push_back(
        {BPFVM_TRY(check_insn(u32_at(r, 0), "line_info")), u32_at(r, 4), u32_at(r, 8), u32_at(r, 12)});
    return {};
  }));
  BPFVM_TRY(walk_info(core, 16, "CO-RE relocations", btf, [&](std::string sec, std::span<const std::uint8_t> r) -> Result<void> {
    const CoreRelo relo{BPFVM_TRY(check_insn(u32_at(r, 0), "CO-RE relocation")), u32_at(r, 4), u32_at(r, 8), u32_at(r, 12)};
    if (relo.type_id >= btf.type_count()) {
      return make_error(Errc::kInvalid, ".BTF.ext CO-RE relocation for '{}' names type {}, which does not exist", sec,
                        relo.type_id);
    }
    out.core_relos[sec].push_back(relo);
    return {};
  }));
  return out;
}

}  // namespace bpfvm::obj
