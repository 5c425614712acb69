// The code of a BPF ELF object: its executable sections and the functions (symbols) in them.
// What the disassembler needs; the object reader proper is read_object (object_spec.hpp).
// Pure: parses bytes, touches nothing else. Malformed input gets an error naming the section and
// reason, never a crash.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::obj {

struct CodeSymbol {
  std::string name;
  std::size_t first = 0;  // index of the first instruction slot in the section
  std::size_t count = 0;  // slots up to the next symbol or the end of the section
};

struct CodeSection {
  std::string name;
  std::vector<isa::RawInsn> insns;
  std::vector<CodeSymbol> symbols;  // ordered by position
};

// The non-empty executable sections of a little-endian ELF64 object for machine EM_BPF.
Result<std::vector<CodeSection>> read_elf_code(std::span<const std::uint8_t> file);

}  // namespace bpfvm::obj
