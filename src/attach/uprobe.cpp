#include "bpfvm/attach/uprobe.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "bpfvm/obj/native_elf.hpp"

namespace bpfvm::attach {

namespace {

constexpr std::string_view kPrefixes[] = {"uprobe.s", "uretprobe.s", "uprobe", "uretprobe"};

// The probe type before the first '/' (or the whole name).
std::string_view probe_type(std::string_view section) { return section.substr(0, section.find('/')); }

std::vector<std::string> split(const char* list) {
  std::vector<std::string> out;
  if (!list) return out;
  std::string_view rest = list;
  while (!rest.empty()) {
    const auto colon = rest.find(':');
    if (colon != 0) out.emplace_back(rest.substr(0, colon));
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return out;
}

}  // namespace

bool is_uprobe_section(std::string_view section) {
  const std::string_view type = probe_type(section);
  for (const auto p : kPrefixes) {
    if (type == p) return true;
  }
  return false;
}

Result<UprobeSpec> parse_uprobe_section(std::string_view section) {
  if (!is_uprobe_section(section)) return make_error(Errc::kInvalid, "'{}' is not a uprobe section", section);
  UprobeSpec spec;
  const std::string_view type = probe_type(section);
  spec.retprobe = type.starts_with("uretprobe");
  if (type.size() == section.size()) return spec;  // SEC("uprobe"): attached by the loader
  const std::string_view rest = section.substr(type.size() + 1);
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
    return make_error(Errc::kInvalid, "section '{}' needs PATH:FUNCTION[+OFFSET] after '{}/'", section, type);
  }
  spec.path = rest.substr(0, colon);
  std::string func(rest.substr(colon + 1));
  if (const auto plus = func.rfind('+'); plus != std::string::npos) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long off = std::strtoull(func.c_str() + plus + 1, &end, 0);
    if (*end == '\0' && errno == 0 && end != func.c_str() + plus + 1) {
      spec.offset = off;
      func.resize(plus);
    }
  }
  // A number in place of a name is an address in the file (libbpf: a raw offset).
  char* end = nullptr;
  const unsigned long long addr = std::strtoull(func.c_str(), &end, 0);
  if (!func.empty() && *end == '\0' && std::isdigit(static_cast<unsigned char>(func[0]))) {
    spec.offset += addr;
    func.clear();
  }
  spec.function = std::move(func);
  if (spec.retprobe && spec.offset != 0 && !spec.function.empty()) {
    return make_error(Errc::kInvalid, "section '{}': a uretprobe takes no offset (it fires when the function returns)",
                      section);
  }
  return spec;
}

Result<std::string> resolve_binary_path(std::string_view name) {
  if (name.find('/') != std::string_view::npos) return std::string(name);
  std::vector<std::string> dirs;
  if (name.find(".so") != std::string_view::npos) {
    dirs = split(std::getenv("LD_LIBRARY_PATH"));
    for (const char* d : {"/lib64", "/usr/lib64", "/lib", "/usr/lib", "/lib/x86_64-linux-gnu",
                          "/usr/lib/x86_64-linux-gnu"}) {
      dirs.emplace_back(d);
    }
  } else {
    dirs = split(std::getenv("PATH"));
  }
  for (const auto& d : dirs) {
    const std::string candidate = d + "/" + std::string(name);
    if (::access(candidate.c_str(), R_OK) == 0) return candidate;
  }
  return make_error(Errc::kNotFound, "'{}' is no library or executable in {}", name,
                    name.find(".so") != std::string_view::npos ? "the library path" : "$PATH");
}

namespace {

// The point lies `offset` bytes into function `name` (its bounds, for the patcher).
void in_function(UprobePoint& p, const std::string& name, std::uint64_t offset, const obj::NativeFunction& f) {
  p.function = name;
  p.func_offset = offset;
  p.func_size = f.size;
  p.func_slack = f.slack;
  p.func_pad_before = f.pad_before;
}

Result<UprobePoint> point_for(const std::string& given, std::uint64_t file_offset, bool retprobe) {
  char real[PATH_MAX];
  if (!::realpath(given.c_str(), real)) {
    const int err = errno;
    return make_error(err == ENOENT ? Errc::kNotFound : Errc::kAccess, "uprobe target '{}': {}", given, std::strerror(err));
  }
  struct stat st {};
  if (::stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
    return make_error(Errc::kInvalid, "uprobe target '{}' is not a regular file", given);
  }
  UprobePoint p;
  p.path = real;
  p.dev = st.st_dev;
  p.inode = st.st_ino;
  p.file_offset = file_offset;
  p.retprobe = retprobe;
  return p;
}

}  // namespace

Result<UprobePoint> resolve_uprobe(const UprobeSpec& spec, const std::string& self_exe) {
  if (spec.path.empty()) return make_error(Errc::kInvalid, "the uprobe names no file: the loader attaches it");
  std::string path = spec.path;
  if (path == "/proc/self/exe" && !self_exe.empty()) path = self_exe;
  else path = BPFVM_TRY(resolve_binary_path(path));
  if (spec.function.empty()) return uprobe_at_offset(path, spec.offset, spec.retprobe);
  const obj::NativeFunction f = BPFVM_TRY(obj::find_native_function(path, spec.function));
  if (f.size && spec.offset >= f.size) {
    return make_error(Errc::kInvalid, "uprobe '{}+{:#x}': the offset is past the function's {} bytes", spec.function,
                      spec.offset, f.size);
  }
  UprobePoint p = BPFVM_TRY(point_for(path, f.file_offset + spec.offset, spec.retprobe));
  in_function(p, spec.function, spec.offset, f);
  return p;
}

Result<UprobePoint> uprobe_at_offset(const std::string& path, std::uint64_t file_offset, bool retprobe) {
  UprobePoint p = BPFVM_TRY(point_for(path, file_offset, retprobe));
  if (auto f = obj::native_function_at(p.path, file_offset); f && *f) {
    in_function(p, (*f)->name, file_offset - (*f)->file_offset, **f);
  }
  return p;
}

runtime::LinkTarget uprobe_link_target(const UprobePoint& point) {
  runtime::LinkTarget where;
  where.kind = point.retprobe ? "uretprobe" : "uprobe";
  where.name = point.function.empty() ? fmt::format("{}+{:#x}", point.path, point.file_offset)
               : point.func_offset   ? fmt::format("{}:{}+{:#x}", point.path, point.function, point.func_offset)
                                     : fmt::format("{}:{}", point.path, point.function);
  where.path = point.path;
  where.dev = point.dev;
  where.inode = point.inode;
  where.offset = point.file_offset;
  where.function = point.function;
  where.func_offset = point.func_offset;
  where.func_size = point.func_size;
  where.func_slack = point.func_slack;
  where.func_pad_before = point.func_pad_before;
  return where;
}

}  // namespace bpfvm::attach
