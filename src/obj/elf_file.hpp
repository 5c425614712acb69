// The parts of an ELF64 BPF object the object reader needs: sections (with private copies of their
// bytes), the symbol table and relocations. Everything is checked on the way in (indexes in range,
// sizes consistent), so later stages can index without further checks. Private to src/obj.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::obj::detail {

struct ElfSection {
  std::size_t index = 0;
  std::string name;
  std::uint32_t type = 0;   // SHT_*
  std::uint64_t flags = 0;  // SHF_*
  std::uint64_t size = 0;   // sh_size (for SHT_NOBITS, bytes is empty)
  std::uint32_t link = 0, info = 0;
  std::vector<std::uint8_t> bytes;

  bool is_code() const;
};

struct ElfSymbol {
  std::size_t index = 0;
  std::string name;
  std::uint64_t value = 0, size = 0;
  std::uint16_t section = 0;  // st_shndx
  std::uint8_t type = 0, bind = 0;
  std::uint8_t visibility = 0;  // STV_*
};

struct ElfRelocation {
  std::uint64_t offset = 0;  // in the target section
  std::uint32_t symbol = 0;  // index into symbols()
  std::uint32_t type = 0;
};

class ElfFile {
 public:
  static Result<ElfFile> parse(std::span<const std::uint8_t> file);

  const std::vector<ElfSection>& sections() const { return sections_; }
  const std::vector<ElfSymbol>& symbols() const { return symbols_; }
  const ElfSection* find_section(std::string_view name) const;
  const ElfSection* section(std::size_t index) const {
    return index < sections_.size() && sections_[index].index == index ? &sections_[index] : nullptr;
  }
  // Relocations that apply to the section with this index (from its SHT_REL section), by offset.
  const std::vector<ElfRelocation>& relocations_for(std::size_t index) const;

 private:
  std::vector<ElfSection> sections_;  // sections_[i].index == i (index 0 is the null section)
  std::vector<ElfSymbol> symbols_;
  std::vector<std::vector<ElfRelocation>> relocations_;  // by target section index
};

}  // namespace bpfvm::obj::detail
