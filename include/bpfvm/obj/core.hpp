// CO-RE ("compile once, run everywhere"): a program compiled against one set of kernel types records, for
// each instruction that depends on a type's layout, which field or type it means (.BTF.ext CO-RE
// relocations); before loading, the loader finds the same field or type in the target's BTF (the
// running kernel's /sys/kernel/btf/vmlinux, or a file the user names, as libbpf's btf_custom_path) and
// rewrites the instruction with the target's offset, size, existence or value. The rules are libbpf's
// (its bpf_core_relo_kind list and matching by name through anonymous members, "___suffix" flavours
// ignored); a relocation that finds nothing leaves a marked instruction the verifier refuses if it is
// reached (libbpf's poisoning), and an *_EXISTS relocation gives 0.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/obj/btf.hpp"
#include "bpfvm/obj/object_spec.hpp"

namespace bpfvm::obj {

// enum bpf_core_relo_kind.
enum class CoreKind : std::uint32_t {
  kFieldByteOffset = 0,
  kFieldByteSize = 1,
  kFieldExists = 2,
  kFieldSigned = 3,
  kFieldLshiftU64 = 4,
  kFieldRshiftU64 = 5,
  kTypeIdLocal = 6,
  kTypeIdTarget = 7,
  kTypeExists = 8,
  kTypeSize = 9,
  kEnumvalExists = 10,
  kEnumvalValue = 11,
  kTypeMatches = 12,
};

// What happened to one relocation, for explanations ("bpfvm veristat -v").
struct CoreOutcome {
  std::string program;
  std::size_t insn = 0;
  std::string what;  // "struct task_struct.pid: offset 2384", "field not found: ... (poisoned)"
  bool poisoned = false;
};

// The target BTF: `path` when given, else the running kernel's. An error says which file and why.
Result<Btf> load_target_btf(const std::optional<std::string>& path = std::nullopt);

// Applies every program's CO-RE relocations against `target`, rewriting instructions in place and
// clearing the relocation lists. An error only for malformed relocations (an access string that does
// not walk the local type); a field the target lacks poisons the instruction and is reported.
Result<std::vector<CoreOutcome>> apply_core_relocations(ObjectSpec& spec, const Btf& target);

// The target's kernel configuration for __kconfig externs: every CONFIG_* line of `path`, else of
// /proc/config.gz or /boot/config-RELEASE ("y", "m", "100", "\"text\""), plus libbpf's own
// LINUX_KERNEL_VERSION (from uname), LINUX_HAS_BPF_COOKIE and LINUX_HAS_SYSCALL_WRAPPER (both 1: bpfvm
// has cookies and serves syscall wrappers). No configuration file is no error: CONFIG_* are then unknown.
std::map<std::string, std::string> read_kernel_config(const std::optional<std::string>& path = std::nullopt);

// Writes the value of every __kconfig extern into the object's .kconfig map, as libbpf does (bool: y/m
// -> 1; tristate: y 1, m 2, n 0; integers in the extern's size and signedness; char arrays as text); an
// extern the configuration lacks is 0 when __weak, else an error that names it.
Result<void> fill_kconfig(ObjectSpec& spec, const std::map<std::string, std::string>& config);

}  // namespace bpfvm::obj
