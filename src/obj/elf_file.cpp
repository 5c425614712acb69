#include "elf_file.hpp"

#include <gelf.h>
#include <libelf.h>

#include <algorithm>
#include <memory>

namespace bpfvm::obj::detail {

namespace {
struct ElfCloser {
  void operator()(Elf* e) const { elf_end(e); }
};

Error elf_error(std::string_view what) {
  const char* msg = elf_errmsg(-1);
  return make_error(Errc::kInvalid, "{}: {}", what, msg ? msg : "malformed ELF");
}
}  // namespace

bool ElfSection::is_code() const {
  return type == SHT_PROGBITS && (flags & SHF_EXECINSTR) && size > 0;
}

const ElfSection* ElfFile::find_section(std::string_view name) const {
  for (const ElfSection& s : sections_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

const std::vector<ElfRelocation>& ElfFile::relocations_for(std::size_t index) const {
  static const std::vector<ElfRelocation> kNone;
  return index < relocations_.size() ? relocations_[index] : kNone;
}

Result<ElfFile> ElfFile::parse(std::span<const std::uint8_t> file) {
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
  if (ehdr.e_machine != EM_BPF && ehdr.e_machine != EM_NONE) {  // LLVM before 2017 wrote EM_NONE (0)
    return make_error(Errc::kInvalid, "ELF machine is {}, not BPF ({})", ehdr.e_machine, EM_BPF);
  }
  if (ehdr.e_type != ET_REL) return make_error(Errc::kInvalid, "ELF type is {}, not a relocatable object", ehdr.e_type);
  // libelf reads section headers lazily and may report a truncated table as no sections at all.
  if (ehdr.e_shoff > file.size() ||
      static_cast<std::uint64_t>(ehdr.e_shnum) * ehdr.e_shentsize > file.size() - ehdr.e_shoff) {
    return make_error(Errc::kInvalid, "section headers lie past the end of the file ({} bytes)", file.size());
  }
  if (ehdr.e_shnum == 0) return make_error(Errc::kInvalid, "the object has no sections");
  std::size_t shstrndx = 0, nsections = 0;
  if (elf_getshdrstrndx(elf.get(), &shstrndx) != 0) return elf_error("read section name table index");
  if (elf_getshdrnum(elf.get(), &nsections) != 0) return elf_error("read section count");

  ElfFile out;
  out.sections_.resize(nsections);
  for (std::size_t i = 0; i < nsections; ++i) out.sections_[i].index = i;
  Elf_Scn* symtab = nullptr;
  GElf_Shdr symtab_hdr{};
  std::vector<std::pair<Elf_Scn*, GElf_Shdr>> rel_sections;
  for (Elf_Scn* scn = elf_nextscn(elf.get(), nullptr); scn; scn = elf_nextscn(elf.get(), scn)) {
    GElf_Shdr shdr;
    if (!gelf_getshdr(scn, &shdr)) return elf_error("read section header");
    const std::size_t index = elf_ndxscn(scn);
    if (index >= nsections) return make_error(Errc::kInvalid, "section index {} out of range", index);
    const char* name = elf_strptr(elf.get(), shstrndx, shdr.sh_name);
    if (!name) return elf_error(fmt::format("read the name of section {}", index));
    ElfSection& s = out.sections_[index];
    s.name = name;
    s.type = shdr.sh_type;
    s.flags = shdr.sh_flags;
    s.size = shdr.sh_size;
    s.link = shdr.sh_link;
    s.info = shdr.sh_info;
    if (shdr.sh_type == SHT_SYMTAB) {
      symtab = scn;
      symtab_hdr = shdr;
    } else if (shdr.sh_type == SHT_REL) {
      rel_sections.emplace_back(scn, shdr);
    } else if (shdr.sh_type == SHT_RELA) {
      return make_error(Errc::kNotSupported, "section '{}': RELA relocations are not used by BPF objects", name);
    }
    if (shdr.sh_type == SHT_NOBITS || shdr.sh_size == 0) continue;
    if (shdr.sh_offset > file.size() || shdr.sh_size > file.size() - shdr.sh_offset) {
      return make_error(Errc::kInvalid, "section '{}' extends past the end of the file", name);
    }
    Elf_Data* data = elf_rawdata(scn, nullptr);
    if (!data || !data->d_buf || data->d_size != shdr.sh_size) {
      return make_error(Errc::kInvalid, "section '{}': data is missing or truncated", name);
    }
    const auto* p = static_cast<const std::uint8_t*>(data->d_buf);
    s.bytes.assign(p, p + data->d_size);
  }

  if (symtab) {
    const std::size_t entsize = symtab_hdr.sh_entsize ? symtab_hdr.sh_entsize : sizeof(Elf64_Sym);
    if (entsize != sizeof(Elf64_Sym)) return make_error(Errc::kInvalid, "symbol table entry size {}", entsize);
    Elf_Data* data = elf_getdata(symtab, nullptr);
    const std::size_t n = data ? data->d_size / entsize : 0;
    out.symbols_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) return elf_error("read symbol");
      const char* name = elf_strptr(elf.get(), symtab_hdr.sh_link, sym.st_name);
      if (!name) return elf_error(fmt::format("read the name of symbol {}", i));
      ElfSymbol s{i, name, sym.st_value, sym.st_size, sym.st_shndx, static_cast<std::uint8_t>(GELF_ST_TYPE(sym.st_info)),
                  static_cast<std::uint8_t>(GELF_ST_BIND(sym.st_info)),
                  static_cast<std::uint8_t>(GELF_ST_VISIBILITY(sym.st_other))};
      if (s.type == STT_SECTION && s.name.empty() && s.section < nsections) {
        s.name = out.sections_[s.section].name;
      }
      out.symbols_.push_back(std::move(s));
    }
  }

  out.relocations_.resize(nsections);
  for (auto& [scn, shdr] : rel_sections) {
    const std::string& rel_name = out.sections_[elf_ndxscn(scn)].name;
    if (shdr.sh_info >= nsections) {
      return make_error(Errc::kInvalid, "section '{}' relocates section {}, which does not exist", rel_name,
                        shdr.sh_info);
    }
    if (!symtab || shdr.sh_link != elf_ndxscn(symtab)) {
      return make_error(Errc::kInvalid, "section '{}' does not use the symbol table", rel_name);
    }
    Elf_Data* data = elf_getdata(scn, nullptr);
    const std::size_t entsize = shdr.sh_entsize ? shdr.sh_entsize : sizeof(Elf64_Rel);
    if (entsize != sizeof(Elf64_Rel)) {
      return make_error(Errc::kInvalid, "section '{}': relocation entry size {}", rel_name, entsize);
    }
    const std::size_t n = data ? data->d_size / entsize : 0;
    auto& list = out.relocations_[shdr.sh_info];
    for (std::size_t i = 0; i < n; ++i) {
      GElf_Rel rel;
      if (!gelf_getrel(data, static_cast<int>(i), &rel)) return elf_error("read relocation");
      const auto sym = static_cast<std::uint32_t>(GELF_R_SYM(rel.r_info));
      if (sym >= out.symbols_.size()) {
        return make_error(Errc::kInvalid, "section '{}': relocation {} names symbol {}, which does not exist",
                          rel_name, i, sym);
      }
      list.push_back({rel.r_offset, sym, static_cast<std::uint32_t>(GELF_R_TYPE(rel.r_info))});
    }
    std::sort(list.begin(), list.end(), [](const auto& a, const auto& b) { return a.offset < b.offset; });
  }
  return out;
}

}  // namespace bpfvm::obj::detail
