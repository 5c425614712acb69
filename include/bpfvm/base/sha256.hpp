// SHA-256 (FIPS 180-4), for program tags: the kernel names a program by the first 8 bytes of a digest
// of its instructions (bpf_prog_calc_tag), SHA-256 since Linux 6.18 (SHA-1 before). Not for security.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace bpfvm {

std::array<std::uint8_t, 32> sha256(std::span<const std::uint8_t> data);

}  // namespace bpfvm
