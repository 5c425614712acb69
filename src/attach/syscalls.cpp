#include "bpfvm/attach/syscalls.hpp"

#include <algorithm>
#include <array>

namespace bpfvm::attach {

namespace {

constexpr std::uint8_t count_fields(std::string_view fields) {
  if (fields.empty()) return 0;
  return static_cast<std::uint8_t>(std::count(fields.begin(), fields.end(), ';') + 1);
}

constexpr SyscallFormat kFormats[] = {
#define SYSCALL_FORMAT(name, nr, enter, exit, fields) {#name, nr, enter, exit, fields, count_fields(fields)},
#include "syscall_formats.inc"
#undef SYSCALL_FORMAT
};

// Each number's format by index (the syscall handler asks per event): -1 where there is none.
constexpr int kMaxNr = 512;
constexpr auto kByNr = [] {
  std::array<std::int16_t, kMaxNr> at{};
  at.fill(-1);
  for (std::size_t i = 0; i < std::size(kFormats); ++i) {
    if (kFormats[i].nr >= 0 && kFormats[i].nr < kMaxNr) at[static_cast<std::size_t>(kFormats[i].nr)] = static_cast<std::int16_t>(i);
  }
  return at;
}();
static_assert([] {
  for (const SyscallFormat& f : kFormats) {
    if (f.nr < 0 || f.nr >= kMaxNr) return false;
  }
  return true;
}(), "a syscall number past the index");

}  // namespace

std::vector<std::string> SyscallFormat::field_list() const {
  std::vector<std::string> out;
  std::string_view rest = fields;
  while (!rest.empty()) {
    const std::size_t semi = rest.find(';');
    out.emplace_back(rest.substr(0, semi));
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return out;
}

std::span<const SyscallFormat> syscall_formats() { return kFormats; }

const SyscallFormat* syscall_by_name(std::string_view name) {
  for (const SyscallFormat& f : kFormats) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const SyscallFormat* syscall_by_nr(int nr) {
  if (nr < 0 || nr >= kMaxNr || kByNr[static_cast<std::size_t>(nr)] < 0) return nullptr;
  return &kFormats[kByNr[static_cast<std::size_t>(nr)]];
}

}  // namespace bpfvm::attach
