// Uprobe attach points, as libbpf names them and the kernel places them.
//
//   SEC("uprobe/PATH:FUNC[+OFFSET]")    at FUNC's entry (or OFFSET bytes into it) in the file PATH
//   SEC("uretprobe/PATH:FUNC")          when FUNC returns
//   SEC("uprobe") / SEC("uretprobe")    attached by the loader (bpf_program__attach_uprobe)
//   also uprobe.s/, uretprobe.s/ (sleepable); PATH may be /proc/self/exe (the traced command's own
//   executable) or a bare name, searched as libbpf's resolve_full_path does (a library in
//   $LD_LIBRARY_PATH and the system's library directories, else an executable in $PATH).
//
// A point is a file and an offset in it: the kernel's uprobe (perf_event_open with the uprobe PMU takes
// the same pair), so a point fires in every process that maps that file, at whatever address.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "bpfvm/base/result.hpp"
#include "bpfvm/runtime/objects.hpp"

namespace bpfvm::attach {

struct UprobeSpec {
  bool retprobe = false;
  std::string path;      // as written ("" for a SEC that the loader attaches by hand)
  std::string function;  // "" when the point is an address (FUNC is a number)
  std::uint64_t offset = 0;
};

// Whether `section` is a uprobe or uretprobe section; the spec it names, or why it is malformed.
bool is_uprobe_section(std::string_view section);
Result<UprobeSpec> parse_uprobe_section(std::string_view section);

// A resolved point: the file (its canonical path, device and inode) and the offset of the probed byte.
struct UprobePoint {
  std::string path;
  std::uint64_t dev = 0, inode = 0;
  std::uint64_t file_offset = 0;
  bool retprobe = false;
  std::string function;       // for display ("" when unknown)
  std::uint64_t func_offset = 0;  // offset into `function`
  std::uint64_t func_size = 0, func_slack = 0, func_pad_before = 0;  // from the symbols (0: unknown)
};

// Resolves `spec` (`self_exe`: what /proc/self/exe means, the traced command's executable).
Result<UprobePoint> resolve_uprobe(const UprobeSpec& spec, const std::string& self_exe = "");
// The point at `file_offset` in `path` (libbpf's func_offset with no name; perf_event_open's
// uprobe_path + probe_offset).
Result<UprobePoint> uprobe_at_offset(const std::string& path, std::uint64_t file_offset, bool retprobe);

// The link target of a uprobe or uretprobe at `point` (kind, bpftool's name, the file, offset and
// function bounds an agent patches); pid, scope, cookie and the rest are the loader's to fill.
runtime::LinkTarget uprobe_link_target(const UprobePoint& point);

// libbpf's resolve_full_path: a name without '/' as a library or an executable.
Result<std::string> resolve_binary_path(std::string_view name);

}  // namespace bpfvm::attach
