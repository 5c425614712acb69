// x86-64 machine code as text, for `bpfvm prog dump jited`: AT&T syntax with the mnemonic padded as
// objdump (and so bpftool) prints it, "mov    %rsp,%rbp"; jump targets are offsets from the code's start.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::vm {

struct NativeInsn {
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
  std::string text;
};

// Decodes all of `code`; bytes that do not decode become "(bad)" one byte at a time, as objdump does.
std::vector<NativeInsn> disassemble_native(std::span<const std::uint8_t> code);

}  // namespace bpfvm::vm
