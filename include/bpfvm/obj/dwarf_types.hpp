// Types an object's BTF lacks, from its DWARF (clang -g). Clang puts into .BTF the types of functions,
// global variables and maps, but not those of local variables: the record a program fills through
// `struct event *e = bpf_ringbuf_reserve(...)`, or builds on its stack for bpf_perf_event_output, is
// described only in DWARF when its type appears nowhere else (the usual libbpf-tools program, whose
// user-space half reads the same header). This finds such a struct and hands it over as BTF, so that
// everything that decodes values through BTF can decode it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "bpfvm/base/result.hpp"
#include "bpfvm/obj/btf.hpp"

namespace bpfvm::obj {

struct DwarfStruct {
  Btf btf;                     // the struct and every type its members need
  std::uint32_t type_id = 0;   // the struct, in `btf`
  std::string name;
};

// The struct that a local variable or parameter of the object's functions holds, by value or through a
// pointer, whose size is within [min_size, max_size]: the only one, else the one named `event`, else one
// whose name contains "event"; nothing when there is none or the choice is ambiguous, or the file has no
// DWARF (not built with -g, or not ELF). A file that cannot be opened is an error.
Result<std::optional<DwarfStruct>> find_dwarf_record_struct(const std::string& path, std::size_t min_size,
                                                            std::size_t max_size);
// The same, on an object in memory.
Result<std::optional<DwarfStruct>> find_dwarf_record_struct(std::span<const std::uint8_t> object,
                                                            std::size_t min_size, std::size_t max_size);

}  // namespace bpfvm::obj
