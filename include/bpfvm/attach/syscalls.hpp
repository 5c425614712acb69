// The syscalls a tracer can attach to, with the kernel's tracepoint records: for each x86-64 syscall
// that has syscalls/sys_enter_<name> and sys_exit_<name> tracepoints, its number, the events' ids and
// the argument fields of the sys_enter record (from the kernel's format files, embedded as data:
// src/attach/syscall_formats.inc, made by scripts/gen_syscall_formats.py).
//
// The records (include/linux/trace_events.h, kernel/trace/trace_syscalls.c):
//   sys_enter_<name>: u16 common_type, u8 common_flags, u8 common_preempt_count, s32 common_pid,
//                     s32 __syscall_nr at 8, then each argument as 8 bytes from offset 16
//   sys_exit_<name>:  the common fields, s32 __syscall_nr at 8, long ret at 16
//   raw_syscalls/sys_enter: the common fields, long id at 8, unsigned long args[6] at 16
//   raw_syscalls/sys_exit:  the common fields, long id at 8, long ret at 16
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bpfvm::attach {

struct SyscallFormat {
  std::string_view name;  // as the tracepoints name it ("openat", "newfstatat")
  int nr;                 // x86-64
  std::uint16_t enter_id, exit_id;
  std::string_view fields;  // "int dfd;const char * filename;..."
  std::uint8_t args = 0;    // how many fields (counted once, at compile time: per event it is read)

  std::size_t arg_count() const { return args; }
  std::vector<std::string> field_list() const;  // "int dfd", "const char * filename", ...
};

inline constexpr std::uint16_t kRawSysEnterId = 443, kRawSysExitId = 442;  // raw_syscalls/sys_enter|exit
inline constexpr std::size_t kSyscallRecordArgs = 16;  // where the arguments (or ret) start

std::span<const SyscallFormat> syscall_formats();
const SyscallFormat* syscall_by_name(std::string_view name);
const SyscallFormat* syscall_by_nr(int nr);

// The tracefs format file of a syscall tracepoint bpfvm produces ("syscalls/sys_enter_openat",
// "raw_syscalls/sys_exit"...), as the kernel prints it, with `id` on its ID line; nullopt for others.
// What an application reads where tracefs is not readable (BCC's TRACEPOINT_PROBE as an ordinary user).
std::optional<std::string> syscall_tracepoint_format(std::string_view name, std::uint64_t id);

}  // namespace bpfvm::attach
