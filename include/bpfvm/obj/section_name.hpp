// What a program's ELF section name (its SEC() string) says about it, following libbpf's table (every
// name libbpf 1.x knows: "socket", "xdp", "tc", "tracepoint/CAT/NAME", "kprobe/FUNC", "cgroup/connect4",
// ...) and, failing that, the prefixes older loaders matched ("socket1", "xdp_prog", "cgroup/sock1":
// libbpf before 1.0, samples/bpf). An exact name ("socket") matches only itself; a name that takes a
// target ("kprobe") matches alone or followed by '/' and the target.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bpfvm::obj {

struct ProgramKind {
  std::uint32_t prog_type = 0;             // enum bpf_prog_type (BPF_PROG_TYPE_UNSPEC when unknown)
  std::uint32_t expected_attach_type = 0;  // enum bpf_attach_type
  std::string attach_target;               // what follows the '/' ("syscalls/sys_enter_openat")
  bool supported = false;                  // bpfvm's runtime can load and run this type
  bool retprobe = false;                   // kretprobe/, uretprobe/
  bool sleepable = false;                  // ".s" sections: loaded with BPF_F_SLEEPABLE
  bool legacy_name = false;                // matched by an old loader's prefix rule, not libbpf 1.x's
};

// nullopt when the name is not one libbpf knows.
std::optional<ProgramKind> classify_section(std::string_view section);

// The kernel's name of a program type ("socket_filter", "xdp", "sched_cls", ...), as bpftool prints it;
// "" for an unknown value.
std::string_view prog_type_name(std::uint32_t prog_type);
// The inverse, also accepting bpftool's `prog load ... type` words ("socket", "classifier", ...).
std::optional<std::uint32_t> prog_type_from_name(std::string_view name);

}  // namespace bpfvm::obj
