#include "bpfvm/obj/native_elf.hpp"

#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>

namespace bpfvm::obj {

namespace {

struct Symbol {
  std::string name;
  std::uint64_t value = 0, size = 0;
  std::size_t section = 0;
  int type = 0, bind = 0;
};

struct Section {
  std::uint64_t addr = 0, offset = 0, size = 0;
  bool nobits = false, code = false, alloc = false;
  std::string name;
};

struct NativeElf {
  std::vector<Section> sections;
  std::vector<UsdtNote> usdt;  // from .note.stapsdt, addresses as the notes give them
  std::uint64_t stapsdt_base = 0;  // the .stapsdt.base section's address (0: none)
  std::vector<Symbol> symtab, dynsym;
  bool has_interp = false, has_dynamic = false;
};

// The SystemTap SDT notes of a section (sys/sdt.h: owner "stapsdt", type 3; the description is the
// probe's address, the link-time address of .stapsdt.base, the semaphore's address, then the provider,
// the name and the argument string, each NUL-terminated).
Result<void> read_stapsdt(const std::string& path, Elf_Scn* scn, std::vector<UsdtNote>& out) {
  Elf_Data* data = elf_getdata(scn, nullptr);
  if (!data) return {};
  std::size_t offset = 0, name_at = 0, desc_at = 0;
  GElf_Nhdr nh;
  while ((offset = gelf_getnote(data, offset, &nh, &name_at, &desc_at)) > 0) {
    const char* base = static_cast<const char*>(data->d_buf);
    if (nh.n_type != 3 || nh.n_namesz != 8 || std::memcmp(base + name_at, "stapsdt", 8) != 0) continue;
    if (nh.n_descsz < 3 * 8 + 3) return make_error(Errc::kInvalid, "'{}': a .note.stapsdt note of {} bytes", path, nh.n_descsz);
    const char* desc = base + desc_at;
    UsdtNote n;
    std::memcpy(&n.address, desc, 8);
    std::memcpy(&n.base, desc + 8, 8);
    std::memcpy(&n.semaphore, desc + 16, 8);
    // Three strings in the rest, each ended by a NUL inside the note.
    const char* p = desc + 24;
    const char* end = desc + nh.n_descsz;
    std::string* fields[] = {&n.provider, &n.name, &n.args};
    for (std::string* f : fields) {
      const void* nul = std::memchr(p, '\0', static_cast<std::size_t>(end - p));
      if (!nul) return make_error(Errc::kInvalid, "'{}': a .note.stapsdt note whose strings are not terminated", path);
      f->assign(p, static_cast<const char*>(nul));
      p = static_cast<const char*>(nul) + 1;
      if (p > end) break;
    }
    out.push_back(std::move(n));
  }
  return {};
}

Result<NativeElf> read_native(const std::string& path) {
  if (elf_version(EV_CURRENT) == EV_NONE) return make_error(Errc::kInvalid, "libelf: {}", elf_errmsg(-1));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::kNotFound : err == EACCES ? Errc::kAccess : Errc::kIo, "open '{}': {}",
                      path, std::strerror(err));
  }
  std::unique_ptr<int, void (*)(int*)> close_fd(new int(fd), [](int* f) {
    ::close(*f);
    delete f;
  });
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (!elf) return make_error(Errc::kInvalid, "'{}' is not an ELF file: {}", path, elf_errmsg(-1));
  std::unique_ptr<Elf, int (*)(Elf*)> guard(elf, elf_end);
  if (elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) != ELFCLASS64) {
    return make_error(Errc::kInvalid, "'{}' is not a 64-bit ELF file", path);
  }
  GElf_Ehdr eh;
  if (!gelf_getehdr(elf, &eh)) return make_error(Errc::kInvalid, "'{}': no ELF header: {}", path, elf_errmsg(-1));
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
    return make_error(Errc::kInvalid, "'{}' is not an executable or a shared library (ELF type {})", path, eh.e_type);
  }
  NativeElf out;
  std::size_t phnum = 0;
  if (elf_getphdrnum(elf, &phnum) == 0) {
    for (std::size_t i = 0; i < phnum; ++i) {
      GElf_Phdr ph;
      if (!gelf_getphdr(elf, static_cast<int>(i), &ph)) continue;
      if (ph.p_type == PT_INTERP) out.has_interp = true;
      if (ph.p_type == PT_DYNAMIC) out.has_dynamic = true;
    }
  }
  std::size_t shnum = 0;
  if (elf_getshdrnum(elf, &shnum) != 0) return make_error(Errc::kInvalid, "'{}': bad section count", path);
  out.sections.resize(shnum);
  std::size_t names = 0;
  const bool have_names = elf_getshdrstrndx(elf, &names) == 0;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr sh;
    if (!gelf_getshdr(scn, &sh)) continue;
    const std::size_t index = elf_ndxscn(scn);
    const char* sname = have_names ? elf_strptr(elf, names, sh.sh_name) : nullptr;
    if (index < shnum) {
      out.sections[index] = {sh.sh_addr, sh.sh_offset, sh.sh_size, sh.sh_type == SHT_NOBITS,
                             sh.sh_type == SHT_PROGBITS && (sh.sh_flags & SHF_EXECINSTR) != 0,
                             (sh.sh_flags & SHF_ALLOC) != 0, sname ? sname : ""};
    }
    if (sname && std::strcmp(sname, ".stapsdt.base") == 0) out.stapsdt_base = sh.sh_addr;
    if (sh.sh_type == SHT_NOTE && sname && std::strcmp(sname, ".note.stapsdt") == 0) {
      BPFVM_TRY(read_stapsdt(path, scn, out.usdt));
      continue;
    }
    if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM) continue;
    Elf_Data* data = elf_getdata(scn, nullptr);
    if (!data || sh.sh_entsize == 0) continue;
    auto& table = sh.sh_type == SHT_SYMTAB ? out.symtab : out.dynsym;
    const std::size_t count = sh.sh_size / sh.sh_entsize;
    for (std::size_t i = 1; i < count; ++i) {
      GElf_Sym sym;
      if (!gelf_getsym(data, static_cast<int>(i), &sym)) break;
      const char* name = elf_strptr(elf, sh.sh_link, sym.st_name);
      if (!name) continue;
      table.push_back({name, sym.st_value, sym.st_size, sym.st_shndx, GELF_ST_TYPE(sym.st_info),
                       GELF_ST_BIND(sym.st_info)});
    }
  }
  return out;
}

bool is_function(const Symbol& s) { return (s.type == STT_FUNC || s.type == STT_GNU_IFUNC) && s.section != SHN_UNDEF; }

// A symbol's name without its version (`memcpy@@GLIBC_2.14` -> `memcpy`).
std::string_view base_name(std::string_view name) { return name.substr(0, name.find('@')); }

NativeFunction describe(const NativeElf& elf, const std::vector<Symbol>& table, const Symbol& s) {
  NativeFunction f{s.name, s.value, s.size, 0, 0};
  if (s.section < elf.sections.size()) {
    const Section& sec = elf.sections[s.section];
    f.file_offset = s.value - sec.addr + sec.offset;
    std::uint64_t next = sec.addr + sec.size, prev_end = sec.addr;
    for (const Symbol& o : table) {
      if (o.section != s.section || o.type == STT_SECTION) continue;
      if (o.value > s.value && o.value < next) next = o.value;
      if (o.value < s.value) prev_end = std::max(prev_end, o.value + std::max<std::uint64_t>(o.size, 1));
    }
    f.pad_before = prev_end <= s.value ? s.value - prev_end : 0;
    const std::uint64_t end = s.value + s.size;
    f.slack = next > end ? next - end : 0;
  }
  return f;
}

}  // namespace

Result<NativeFunction> find_native_function(const std::string& path, std::string_view name) {
  const NativeElf elf = BPFVM_TRY(read_native(path));
  const bool versioned = name.find('@') != std::string_view::npos;
  for (const auto* table : {&elf.symtab, &elf.dynsym}) {
    const Symbol* best = nullptr;
    auto rank = [](int bind) { return bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2; };
    for (const Symbol& s : *table) {
      if (!is_function(s)) continue;
      if (versioned ? s.name != name : base_name(s.name) != name) continue;
      if (best && best->value == s.value) continue;  // aliases of one function
      if (best && rank(s.bind) == rank(best->bind)) {
        return make_error(Errc::kInvalid, "'{}' has more than one function '{}' (at {:#x} and {:#x})", path, name,
                          best->value, s.value);
      }
      if (!best || rank(s.bind) < rank(best->bind)) best = &s;
    }
    if (best) {
      NativeFunction f = describe(elf, *table, *best);
      if (best->section >= elf.sections.size() || elf.sections[best->section].nobits) {
        return make_error(Errc::kInvalid, "'{}': function '{}' is in no section of the file", path, name);
      }
      return f;
    }
  }
  if (elf.symtab.empty() && elf.dynsym.empty()) {
    return make_error(Errc::kNotFound, "'{}' has no symbols (stripped): name the point by offset instead", path);
  }
  return make_error(Errc::kNotFound, "'{}' has no function '{}'", path, name);
}

Result<std::optional<NativeFunction>> native_function_at(const std::string& path, std::uint64_t file_offset) {
  const NativeElf elf = BPFVM_TRY(read_native(path));
  for (const auto* table : {&elf.symtab, &elf.dynsym}) {
    for (const Symbol& s : *table) {
      if (!is_function(s) || s.section >= elf.sections.size()) continue;
      const Section& sec = elf.sections[s.section];
      const std::uint64_t start = s.value - sec.addr + sec.offset;
      if (file_offset >= start && file_offset < start + std::max<std::uint64_t>(s.size, 1)) {
        return std::optional(describe(elf, *table, s));
      }
    }
  }
  return std::optional<NativeFunction>();
}

Result<bool> is_static_executable(const std::string& path) {
  const NativeElf elf = BPFVM_TRY(read_native(path));
  return !elf.has_interp && !elf.has_dynamic;
}

Result<NativeCode> native_code(const std::string& path) {
  const NativeElf elf = BPFVM_TRY(read_native(path));
  NativeCode out;
  for (const Section& sec : elf.sections) {
    if (sec.code && sec.size > 0) out.code.push_back({sec.offset, sec.size});
  }
  for (const auto* table : {&elf.symtab, &elf.dynsym}) {
    for (const Symbol& s : *table) {
      if (!is_function(s) || s.section >= elf.sections.size()) continue;
      const Section& sec = elf.sections[s.section];
      if (sec.code && s.value >= sec.addr && s.value < sec.addr + sec.size) out.functions.push_back(s.value - sec.addr + sec.offset);
    }
  }
  std::sort(out.functions.begin(), out.functions.end());
  out.functions.erase(std::unique(out.functions.begin(), out.functions.end()), out.functions.end());
  return out;
}

Result<std::vector<UsdtNote>> usdt_notes(const std::string& path) {
  const NativeElf elf = BPFVM_TRY(read_native(path));
  // The file offset of a link-time address: through the allocated section holding it.
  auto file_offset = [&elf](std::uint64_t addr) -> std::optional<std::uint64_t> {
    for (const Section& sec : elf.sections) {
      if (sec.alloc && !sec.nobits && addr >= sec.addr && addr < sec.addr + sec.size) return addr - sec.addr + sec.offset;
    }
    return std::nullopt;
  };
  std::vector<UsdtNote> out;
  for (UsdtNote n : elf.usdt) {
    // A prelinked file moved its sections after the notes were written: .stapsdt.base says by how much.
    if (elf.stapsdt_base && n.base) n.address += elf.stapsdt_base - n.base;
    const auto at = file_offset(n.address);
    if (!at) return make_error(Errc::kInvalid, "'{}': USDT probe {}:{} at {:#x} is in no section of the file", path,
                               n.provider, n.name, n.address);
    n.file_offset = *at;
    if (n.semaphore) {
      const auto sem = file_offset(n.semaphore);
      if (!sem) return make_error(Errc::kInvalid, "'{}': USDT probe {}:{} has its semaphore at {:#x}, in no section of the file",
                                  path, n.provider, n.name, n.semaphore);
      n.semaphore_offset = *sem;
    }
    out.push_back(std::move(n));
  }
  return out;
}

}  // namespace bpfvm::obj
