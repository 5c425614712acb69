#include "bpfvm/obj/elf_code.hpp"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <map>
#include <memory>

#include "bpfvm/isa/codec.hpp"

namespace bpfvm::obj {

namespace {
struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

Error elf_error(std::string_view what) {
  return make_error(Errc::kInvalid, "{}: {}", what, elf_errmsg(-1) ? elf_errmsg(-1) : "malformed ELF");
}
}  // namespace

Result<std::vector<CodeSection>> read_elf_code(std::span<const std::uint8_t> file) {
  if (elf_version(EV_CURRENT) == EV_NONE) return elf_error("initialise libelf");
  // libelf wants a mutable buffer; parse a private copy.
  std::vector<char> copy(file.begin(), file.end());
  std::unique_ptr<Elf, ElfCloser> elf(elf_memory(copy.data(), copy.size()));
  if (!elf || elf_kind(elf.get()) != ELF_K_ELF) return make_error(Errc::kInvalid, "not an ELF file");
  GElf_Ehdr ehdr;
  if (!gelf_getehdr(elf.get(), &ehdr)) return elf_error("read ELF header");
  if (ehdr.e_ident[EI_CLASS] != ELFCLASS64) return make_error(Errc::kInvalid, "not a 64-bit ELF object");
  if (ehdr.e_ident[EI_DATA] != ELFDATA2LSB) {
    return make_error(Errc::kNotSupported, "big-endian BPF objects are not supported");
  }
  if (ehdr.e_machine != EM_BPF) {
    return make_error(Errc::kInvalid, "ELF machine is {}, not BPF ({})", ehdr.e_machine, EM_BPF);
  }
  std::size_t shstrndx = 0;
  if (elf_getshdrstrndx(elf.get(), &shstrndx) != 0) return elf_error("read section name table index");

  std::map<std::size_t, CodeSection> sections;  // by section index
  Elf_Scn* symtab = nullptr;
  GElf_Shdr symtab_hdr{};
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn; scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) return elf_error("read section header");
    const char* name = elf_strptr(elf.get(), shstrndx, shdr.sh_name);
    if (!name) return elf_error("read section name");
    if (shdr.sh_type == SHT_SYMTAB) {
      symtab = scn;
      symtab_hdr = shdr;
      continue;
    }
    if (shdr.sh_type != SHT_PROGBITS || !(shdr.sh_flags & SHF_EXECINSTR) || shdr.sh_size == 0) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || !data->d_buf || data->d_size != shdr.sh_size) {
      return make_error(Errc::kInvalid, "section '{}': data is missing or truncated", name);
    }
    auto insns = isa::from_wire({static_cast<const std::uint8_t*>(data->d_buf), data->d_size});
    if (!insns) return std::move(insns).error().with_context(fmt::format("section '{}'", name));
    sections[elf_ndxscn(scn)] = CodeSection{name, std::move(*insns), {}};
  }
  if (symtab) {
    Elf_Data* data = elf_getdata(symtab, nullptr);
    const std::size_t entsize = symtab_hdr.sh_entsize ? symtab_hdr.sh_entsize : sizeof(Elf64_Sym);
    const std::size_t n = data ? data->d_size / entsize : 0;
    for (std::size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) return elf_error("read symbol");
      auto it = sections.find(sym.st_shndx);
      if (it == sections.end()) continue;
      const int type = GELF_ST_TYPE(sym.st_info);
      if (type != STT_FUNC && !(type == STT_NOTYPE && GELF_ST_BIND(sym.st_info) == STB_GLOBAL)) continue;
      const char* name = elf_strptr(elf.get(), symtab_hdr.sh_link, sym.st_name);
      if (!name) return elf_error("read symbol name");
      CodeSection& sec = it->second;
      if (sym.st_value % 8 != 0 || sym.st_value / 8 >= sec.insns.size()) {
        return make_error(Errc::kInvalid, "section '{}': symbol '{}' at offset {} is not on an instruction",
                          sec.name, name, sym.st_value);
      }
      sec.symbols.push_back(CodeSymbol{name, sym.st_value / 8, 0});
    }
  }
  std::vector<CodeSection> out;
  for (auto& [index, sec] : sections) {
    std::sort(sec.symbols.begin(), sec.symbols.end(),
              [](const CodeSymbol& a, const CodeSymbol& b) { return a.first < b.first; });
    for (std::size_t i = 0; i < sec.symbols.size(); ++i) {
      const std::size_t end = i + 1 < sec.symbols.size() ? sec.symbols[i + 1].first : sec.insns.size();
      sec.symbols[i].count = end - sec.symbols[i].first;
    }
    out.push_back(std::move(sec));
  }
  return out;
}

}  // namespace bpfvm::obj
