#include "kernel_log.hpp"

#include <charconv>

namespace bpfvm::test {

std::optional<std::uint32_t> helper_withheld(std::string_view log) {
  constexpr std::string_view kSaid = "program of this type cannot use helper ";
  const auto at = log.find(kSaid);
  if (at == std::string_view::npos) return std::nullopt;
  const auto hash = log.find('#', at + kSaid.size());
  const auto eol = log.find('\n', at);
  if (hash == std::string_view::npos || (eol != std::string_view::npos && hash > eol)) return std::nullopt;
  std::uint32_t id = 0;
  const char* first = log.data() + hash + 1;
  const auto [end, ec] = std::from_chars(first, log.data() + log.size(), id);
  if (ec != std::errc{} || end == first) return std::nullopt;
  return id;
}

}  // namespace bpfvm::test
