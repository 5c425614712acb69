#include "bpfvm/attach/syscalls.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

namespace bpfvm::attach {

namespace {

constexpr std::uint8_t count_fields(std::string_view fields) {
  if (fields.empty()) return 0;
  return static_cast<std::uint8_t>(std::count(fields.begin(), fields.end(), ';') + 1);
}

constexpr SyscallFormat kFormats[] = {
#define SYSCALL_FORMAT(name, nr, enter, exit, fields) {#name, nr, enter, exit, fields, count_fields(fields)},
#include "syscall_formats.inc"
#undef SYSCALL_FORMAT
};

// Each number's format by index (the syscall handler asks per event): -1 where there is none.
constexpr int kMaxNr = 512;
constexpr auto kByNr = [] {
  std::array<std::int16_t, kMaxNr> at{};
  at.fill(-1);
  for (std::size_t i = 0; i < std::size(kFormats); ++i) {
    if (kFormats[i].nr >= 0 && kFormats[i].nr < kMaxNr) at[static_cast<std::size_t>(kFormats[i].nr)] = static_cast<std::int16_t>(i);
  }
  return at;
}();
static_assert([] {
  for (const SyscallFormat& f : kFormats) {
    if (f.nr < 0 || f.nr >= kMaxNr) return false;
  }
  return true;
}(), "a syscall number past the index");

}  // namespace

std::vector<std::string> SyscallFormat::field_list() const {
  std::vector<std::string> out;
  std::string_view rest = fields;
  while (!rest.empty()) {
    const std::size_t semi = rest.find(';');
    out.emplace_back(rest.substr(0, semi));
    if (semi == std::string_view::npos) break;
    rest.remove_prefix(semi + 1);
  }
  return out;
}

std::span<const SyscallFormat> syscall_formats() { return kFormats; }

const SyscallFormat* syscall_by_name(std::string_view name) {
  for (const SyscallFormat& f : kFormats) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

std::optional<std::string> syscall_tracepoint_format(std::string_view name, std::uint64_t id) {
  // The common fields of every event (include/linux/trace_events.h, struct trace_entry).
  std::string out;
  const auto head = [&](std::string_view event) {
    out = fmt::format("name: {}\nID: {}\nformat:\n", event, id);
    out += "\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n"
           "\tfield:unsigned char common_flags;\toffset:2;\tsize:1;\tsigned:0;\n"
           "\tfield:unsigned char common_preempt_count;\toffset:3;\tsize:1;\tsigned:0;\n"
           "\tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;\n\n";
  };
  if (name == "raw_syscalls/sys_enter" || name == "raw_syscalls/sys_exit") {
    const bool enter = name.ends_with("enter");
    head(enter ? "sys_enter" : "sys_exit");
    out += "\tfield:long id;\toffset:8;\tsize:8;\tsigned:1;\n";
    out += enter ? "\tfield:unsigned long args[6];\toffset:16;\tsize:48;\tsigned:0;\n\n"
                   "print fmt: \"NR %ld (%lx, %lx, %lx, %lx, %lx, %lx)\", REC->id, REC->args[0], REC->args[1], "
                   "REC->args[2], REC->args[3], REC->args[4], REC->args[5]\n"
                 : "\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n\n"
                   "print fmt: \"NR %ld = %ld\", REC->id, REC->ret\n";
    return out;
  }
  if (!name.starts_with("syscalls/sys_enter_") && !name.starts_with("syscalls/sys_exit_")) return std::nullopt;
  const bool enter = name.starts_with("syscalls/sys_enter_");
  const std::string_view event = name.substr(std::string_view("syscalls/").size());
  const SyscallFormat* f = syscall_by_name(event.substr(enter ? 10 : 9));
  if (!f) return std::nullopt;
  head(event);
  out += "\tfield:int __syscall_nr;\toffset:8;\tsize:4;\tsigned:1;\n";
  if (!enter) {
    out += "\tfield:long ret;\toffset:16;\tsize:8;\tsigned:1;\n\nprint fmt: \"0x%lx\", REC->ret\n";
    return out;
  }
  // Each argument as 8 bytes from offset 16, unsigned (trace_syscalls.c: syscall_enter_define_fields).
  std::string names, values;
  std::size_t offset = kSyscallRecordArgs;
  for (const std::string& field : f->field_list()) {
    const std::string arg = field.substr(field.find_last_of(" *") + 1);
    out += fmt::format("\tfield:{};\toffset:{};\tsize:8;\tsigned:0;\n", field, offset);
    offset += 8;
    names += fmt::format("{}{}: 0x%08lx", names.empty() ? "" : ", ", arg);
    values += fmt::format(", ((unsigned long)(REC->{}))", arg);
  }
  out += fmt::format("\nprint fmt: \"{}\"{}\n", names, values);
  return out;
}

const SyscallFormat* syscall_by_nr(int nr) {
  if (nr < 0 || nr >= kMaxNr || kByNr[static_cast<std::size_t>(nr)] < 0) return nullptr;
  return &kFormats[kByNr[static_cast<std::size_t>(nr)]];
}

}  // namespace bpfvm::attach
