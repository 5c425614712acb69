// SHA-1 (FIPS 180-4), for program tags: the kernel names a program by the first 8 bytes of the SHA-1
// of its instructions (bpf_prog_calc_tag). Not for security.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace bpfvm {

std::array<std::uint8_t, 20> sha1(std::span<const std::uint8_t> data);

}  // namespace bpfvm
