#include "early.hpp"

#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

namespace bpfvm::agent::detail {

bpfvm_early_log* take_early_log() {
  const char* audit = std::getenv("LD_AUDIT");  // (getenv reads memory: no syscall)
  if (!audit || !std::strstr(audit, "libbpfvm-early.so")) return nullptr;
  long ret;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(BPFVM_EARLY_HANDOVER_NR), "D"(BPFVM_EARLY_HANDOVER_ARG), "S"(BPFVM_EARLY_HANDOVER_ARG2)
                   : "rcx", "r11", "memory");
  // No window open: the kernel's getppid answered (a pid), or a sandbox's filter refused it (-errno).
  if (static_cast<unsigned long>(ret) < (1UL << 32) || (ret < 0 && ret > -4096)) return nullptr;
  auto* log = reinterpret_cast<bpfvm_early_log*>(ret);
  if (log->magic != BPFVM_EARLY_MAGIC || log->version != BPFVM_EARLY_VERSION || log->size != BPFVM_EARLY_LOG_SIZE ||
      log->used > log->size - sizeof *log) {
    return nullptr;
  }
  return log;
}

void release_early_log(bpfvm_early_log* log) {
  if (log) ::munmap(log, log->size);
}

namespace {

std::string_view base_name(std::string_view path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

struct Found {
  LoadedObject object;
  std::uint64_t base = 0;
  std::string_view soname;
  std::vector<std::string_view> needed;
};

int collect(dl_phdr_info* info, std::size_t, void* data) {
  auto& out = *static_cast<std::vector<Found>*>(data);
  Found f;
  f.object.name = info->dlpi_name ? info->dlpi_name : "";
  f.base = info->dlpi_addr;
  const ElfW(Dyn)* dynamic = nullptr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD) {
      const std::uint64_t from = (info->dlpi_addr + ph.p_vaddr) & ~std::uint64_t{4095};
      const std::uint64_t to = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz + 4095) & ~std::uint64_t{4095};
      f.object.ranges.emplace_back(from, to);
    } else if (ph.p_type == PT_DYNAMIC) {
      dynamic = reinterpret_cast<const ElfW(Dyn)*>(info->dlpi_addr + ph.p_vaddr);
    }
  }
  if (dynamic) {
    // ld.so relocates DT_STRTAB in place in the objects it loads; the vDSO's stays an offset.
    std::uint64_t strtab = 0;
    for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
      if (d->d_tag == DT_STRTAB) strtab = d->d_un.d_ptr;
    }
    if (strtab != 0 && strtab < info->dlpi_addr) strtab += info->dlpi_addr;
    if (strtab != 0) {
      for (const ElfW(Dyn)* d = dynamic; d->d_tag != DT_NULL; ++d) {
        const char* s = reinterpret_cast<const char*>(strtab + d->d_un.d_val);
        if (d->d_tag == DT_NEEDED) f.needed.emplace_back(s);
        else if (d->d_tag == DT_SONAME) f.soname = s;
      }
    }
  }
  out.push_back(std::move(f));
  return 0;
}

}  // namespace

std::vector<LoadedObject> loaded_objects() {
  std::vector<Found> found;
  dl_iterate_phdr(collect, &found);
  const std::uint64_t loader_base = ::getauxval(AT_BASE);
  const std::uint64_t vdso = ::getauxval(AT_SYSINFO_EHDR);
  // The process's own objects: the program, the loader, and what the program and the user's preloaded
  // libraries need, transitively; bpfvm's are the rest.
  std::vector<bool> own(found.size(), false);
  std::vector<std::size_t> work;
  const auto find = [&](std::string_view name) -> int {
    for (std::size_t i = 0; i < found.size(); ++i) {
      if (name.find('/') != std::string_view::npos ? found[i].object.name == name
                                                   : (found[i].soname == name || base_name(found[i].object.name) == name)) {
        return static_cast<int>(i);
      }
    }
    return -1;
  };
  const auto mark = [&](int i) {
    if (i >= 0 && !own[static_cast<std::size_t>(i)]) {
      own[static_cast<std::size_t>(i)] = true;
      work.push_back(static_cast<std::size_t>(i));
    }
  };
  for (std::size_t i = 0; i < found.size(); ++i) {
    const bool program = i == 0 && found[i].object.name.empty();
    found[i].object.loader = loader_base != 0 && found[i].base == loader_base;
    if (program || found[i].object.loader || (vdso != 0 && found[i].base == vdso)) mark(static_cast<int>(i));
  }
  if (const char* preload = std::getenv("LD_PRELOAD")) {
    std::string_view rest = preload;
    while (!rest.empty()) {
      const std::size_t cut = rest.find_first_of(": ");
      const std::string_view entry = rest.substr(0, cut);
      rest = cut == std::string_view::npos ? std::string_view() : rest.substr(cut + 1);
      if (!entry.empty() && base_name(entry) != "libbpfvm-agent.so") mark(find(entry));
    }
  }
  while (!work.empty()) {
    const std::size_t i = work.back();
    work.pop_back();
    for (const std::string_view n : found[i].needed) mark(find(n));
  }
  std::vector<LoadedObject> out;
  for (std::size_t i = 0; i < found.size(); ++i) {
    found[i].object.bpfvm = !own[i];
    out.push_back(std::move(found[i].object));
  }
  return out;
}

std::vector<EarlySyscall> process_syscalls(const bpfvm_early_log& log, const std::vector<LoadedObject>& objects) {
  // Whether an address is in the objects `pick` chooses.
  const auto in = [&](std::uint64_t address, auto pick) {
    for (const LoadedObject& o : objects) {
      if (!pick(o)) continue;
      for (const auto& [from, to] : o.ranges) {
        if (address >= from && address < to) return true;
      }
    }
    return false;
  };
  const auto in_bpfvm = [&](std::uint64_t a) { return in(a, [](const LoadedObject& o) { return o.bpfvm; }); };
  const auto in_loader = [&](std::uint64_t a) { return in(a, [](const LoadedObject& o) { return o.loader; }); };
  const auto names_bpfvm_object = [&](std::string_view path, bool failed) {
    bool by_base = false, program_base = false;
    for (const LoadedObject& o : objects) {
      if (o.name.empty()) continue;
      if (o.bpfvm && o.name == path) return true;
      if (base_name(o.name) == base_name(path)) (o.bpfvm ? by_base : program_base) = true;
    }
    // A path the loader tried and missed while searching for one of bpfvm's libraries.
    return failed && by_base && !program_base;
  };
  std::vector<EarlySyscall> out;
  std::set<std::uint64_t> fds;  // open descriptors of bpfvm's objects
  const auto* at = reinterpret_cast<const std::uint8_t*>(&log + 1);
  const auto* end = at + log.used;
  for (std::uint32_t k = 0; k < log.count && at + sizeof(bpfvm_early_record) <= end; ++k) {
    const auto* r = reinterpret_cast<const bpfvm_early_record*>(at);
    if (r->size < sizeof *r || r->size > static_cast<std::size_t>(end - at)) break;
    at += r->size;
    EarlySyscall s;
    s.nr = r->nr;
    s.ret = r->ret;
    s.ip = r->call_addr;
    for (int i = 0; i < 6; ++i) s.args[static_cast<std::size_t>(i)] = r->args[i];
    std::string_view path;
    const char* str = reinterpret_cast<const char*>(r + 1);
    const char* str_end = reinterpret_cast<const char*>(r) + r->size;
    for (int i = 0; i < 6; ++i) {
      if (!(r->strings & (1u << i))) continue;
      const std::size_t n = strnlen(str, static_cast<std::size_t>(str_end - str));
      if (str + n >= str_end) break;
      s.args[static_cast<std::size_t>(i)] = reinterpret_cast<std::uint64_t>(str);
      if (path.empty()) path = std::string_view(str, n);
      str += n + 1;
    }
    if (in_bpfvm(s.ip)) continue;  // made by bpfvm's code
    const std::uint64_t a0 = s.args[0];
    bool skip = false;
    switch (s.nr) {
      case SYS_open:
      case SYS_openat:
      case SYS_openat2:
        skip = !path.empty() && names_bpfvm_object(path, s.ret < 0);
        if (skip && s.ret >= 0) fds.insert(static_cast<std::uint64_t>(s.ret));
        break;
      case SYS_close: skip = fds.erase(a0) != 0; break;
      case SYS_read:
      case SYS_pread64:
      case SYS_fstat:
      case SYS_lseek:
      case SYS_fadvise64:
        skip = fds.count(a0) != 0;
        break;
      case SYS_newfstatat:
      case SYS_statx:
        skip = fds.count(a0) != 0 && path.empty();
        break;
      case SYS_mmap:
        if (!(s.args[3] & MAP_ANONYMOUS)) skip = fds.count(s.args[4]) != 0;
        else if (s.args[3] & (MAP_FIXED | MAP_FIXED_NOREPLACE)) skip = in_bpfvm(a0);
        else skip = in_loader(s.ip);  // the loader's own allocations
        break;
      case SYS_mprotect:
      case SYS_munmap:
      case SYS_madvise:
        skip = in_bpfvm(a0);
        break;
      default: break;
    }
    if (!skip) out.push_back(s);
  }
  return out;
}

}  // namespace bpfvm::agent::detail
