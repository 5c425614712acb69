// Hexadecimal text <-> bytes, for memory images on the command line and in test files.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm {

// Parses hex bytes. Accepts pairs of hex digits separated by any white space, or one unbroken run of
// digits ("0a 0b", "0a0b"); an optional "0x" prefix per token. An odd digit count in a token is an error.
Result<std::vector<std::uint8_t>> parse_hex_bytes(std::string_view text);

// "0a 0b 0c": lowercase pairs separated by one space.
std::string format_hex_bytes(std::span<const std::uint8_t> bytes);

}  // namespace bpfvm
