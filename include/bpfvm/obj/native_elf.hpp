// Native executables and shared libraries (x86-64 ELF): where a function is, for uprobes. A uprobe names
// its point as libbpf does, by file and function (`uprobe/PATH:FUNC+OFFSET`), and the kernel places it
// by file offset; the offset is the function's address translated through the segment that maps it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"

namespace bpfvm::obj {

struct NativeFunction {
  std::string name;
  std::uint64_t address = 0;      // st_value (a link-time address; for PIE and libraries, from 0)
  std::uint64_t size = 0;         // st_size (0 when the symbol does not say)
  std::uint64_t file_offset = 0;  // where its first byte is in the file
  // Bytes after the function up to the next symbol or the end of its section: alignment padding a
  // patch may use when the function is shorter than a jump.
  std::uint64_t slack = 0;
  // Bytes before it back to the end of the previous symbol: padding no function executes.
  std::uint64_t pad_before = 0;
};

// The function `name` (STT_FUNC or STT_GNU_IFUNC, also `name@VERSION`) in the ELF file at `path`, from
// .symtab, else .dynsym; global before weak before local, as libbpf's elf_find_func_offset chooses. The
// error names the file and why (not ELF, no such function, ambiguous).
Result<NativeFunction> find_native_function(const std::string& path, std::string_view name);

// The function whose bytes hold `file_offset`, if the file's symbols say.
Result<std::optional<NativeFunction>> native_function_at(const std::string& path, std::uint64_t file_offset);

// Where a file's instructions are: its sections of code (file offset and size: .init, .plt, .text,
// .fini...), and where its symbols say functions start (file offsets, sorted), for a patcher that must
// know which bytes are code and where control may enter.
struct NativeCode {
  struct Range {
    std::uint64_t file_offset = 0, size = 0;
  };
  std::vector<Range> code;
  std::vector<std::uint64_t> functions;
};
Result<NativeCode> native_code(const std::string& path);

// A USDT probe (a SystemTap SDT note in .note.stapsdt, as sys/sdt.h's DTRACE_PROBE/STAP_PROBE write
// it): where it is (a 1-byte nop), its semaphore (a 2-byte counter the program tests before it computes
// the arguments: 0 when it has none) and its arguments in GNU as syntax ("-4@%eax 8@-8(%rbp) 4@$5").
struct UsdtNote {
  std::string provider, name, args;
  std::uint64_t address = 0, base = 0, semaphore = 0;  // as the note says (link-time addresses)
  std::uint64_t file_offset = 0;       // of the probe's nop (the kernel's uprobe offset)
  std::uint64_t semaphore_offset = 0;  // of the semaphore in the file (the kernel's ref_ctr_offset; 0: none)
};
// The USDT probes of the ELF file at `path`, in the order of its notes.
Result<std::vector<UsdtNote>> usdt_notes(const std::string& path);

// Whether the ELF file at `path` is linked statically (no PT_INTERP and no PT_DYNAMIC: the agent cannot
// be preloaded into it).
Result<bool> is_static_executable(const std::string& path);

}  // namespace bpfvm::obj
