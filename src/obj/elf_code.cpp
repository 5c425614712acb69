#include "bpfvm/obj/elf_code.hpp"

#include <gelf.h>

#include <algorithm>

#include "bpfvm/isa/codec.hpp"
#include "elf_file.hpp"

namespace bpfvm::obj {

Result<std::vector<CodeSection>> read_elf_code(std::span<const std::uint8_t> file) {
  const detail::ElfFile elf = BPFVM_TRY(detail::ElfFile::parse(file));
  std::vector<CodeSection> out;
  std::vector<std::size_t> index_of(elf.sections().size(), SIZE_MAX);
  for (const detail::ElfSection& s : elf.sections()) {
    if (!s.is_code()) continue;
    auto insns = isa::from_wire(s.bytes);
    if (!insns) return std::move(insns).error().with_context(fmt::format("section '{}'", s.name));
    index_of[s.index] = out.size();
    out.push_back(CodeSection{s.name, std::move(*insns), {}});
  }
  for (const detail::ElfSymbol& sym : elf.symbols()) {
    if (sym.section >= index_of.size() || index_of[sym.section] == SIZE_MAX) continue;
    if (sym.type != STT_FUNC && !(sym.type == STT_NOTYPE && sym.bind == STB_GLOBAL)) continue;
    CodeSection& sec = out[index_of[sym.section]];
    if (sym.value % 8 != 0 || sym.value / 8 >= sec.insns.size()) {
      return make_error(Errc::kInvalid, "section '{}': symbol '{}' at offset {} is not on an instruction", sec.name,
                        sym.name, sym.value);
    }
    sec.symbols.push_back(CodeSymbol{sym.name, sym.value / 8, 0});
  }
  for (CodeSection& sec : out) {
    std::sort(sec.symbols.begin(), sec.symbols.end(),
              [](const CodeSymbol& a, const CodeSymbol& b) { return a.first < b.first; });
    for (std::size_t i = 0; i < sec.symbols.size(); ++i) {
      const std::size_t end = i + 1 < sec.symbols.size() ? sec.symbols[i + 1].first : sec.insns.size();
      sec.symbols[i].count = end - sec.symbols[i].first;
    }
  }
  return out;
}

}  // namespace bpfvm::obj
