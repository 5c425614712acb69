#include "bpfvm/base/hex.hpp"

#include <cctype>

namespace bpfvm {

namespace {
int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}
}  // namespace

Result<std::vector<std::uint8_t>> parse_hex_bytes(std::string_view text) {
  std::vector<std::uint8_t> out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (std::isspace(static_cast<unsigned char>(text[i]))) {
      ++i;
      continue;
    }
    std::size_t start = i;
    if (text.substr(i, 2) == "0x" || text.substr(i, 2) == "0X") i += 2;
    std::size_t digits_start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) {
      if (hex_digit(text[i]) < 0) {
        return make_error(Errc::kInvalid, "parse hex: '{}' at offset {} is not a hex digit", text[i], i);
      }
      ++i;
    }
    std::size_t n = i - digits_start;
    if (n == 0 || n % 2 != 0) {
      return make_error(Errc::kInvalid, "parse hex: token '{}' at offset {} has an odd number of digits",
                        text.substr(start, i - start), start);
    }
    for (std::size_t k = digits_start; k < i; k += 2) {
      out.push_back(static_cast<std::uint8_t>(hex_digit(text[k]) << 4 | hex_digit(text[k + 1])));
    }
  }
  return out;
}

std::string format_hex_bytes(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size() * 3);
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    if (i) out += ' ';
    out += fmt::format("{:02x}", bytes[i]);
  }
  return out;
}

}  // namespace bpfvm
