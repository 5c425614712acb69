#include "bpfvm/attach/syscalls.hpp"

#include <algorithm>
#include <array>

namespace bpfvm::attach {

namespace {

constexpr SyscallFormat kFormats[] = {
#define SYSCALL_FORMAT(name, nr, enter, exit, fields) {#name, nr, enter, exit, fields},
#include "syscall_formats.inc"
#undef SYSCALL_FORMAT
};

}  // namespace

std::size_t SyscallFormat::arg_count() const {
  if (fields.empty()) return 0;
  return static_cast<std::size_t>(std::count(fields.begin(), fields.end(), ';')) + 1;
}

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
  // The table is sorted by number.
  const auto* it = std::lower_bound(std::begin(kFormats), std::end(kFormats), nr,
                                    [](const SyscallFormat& f, int n) { return f.nr < n; });
  return it != std::end(kFormats) && it->nr == nr ? it : nullptr;
}

}  // namespace bpfvm::attach
