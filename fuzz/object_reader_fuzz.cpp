// Fuzzes the object reader and the DWARF record-type search: any bytes must give an ObjectSpec (a
// record type) or an error, never a crash, a hang or a sanitizer report. Seed it with real objects (make fuzz uses build/tests/progs/*.bpf.o).
#include <cstddef>
#include <cstdint>

#include "bpfvm/obj/dwarf_types.hpp"
#include "bpfvm/obj/object_spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto spec = bpfvm::obj::read_object({data, size}, "fuzz.o");
  if (spec) {
    // Touch what the reader produced so that bad sizes or dangling data show up.
    std::size_t total = 0;
    for (const auto& p : spec->programs) total += p.insns.size() + p.line_info.size();
    for (const auto& m : spec->maps) total += m.initial_value.size();
    (void)total;
  }
  (void)bpfvm::obj::find_dwarf_record_struct(std::span<const std::uint8_t>(data, size), 1, 1 << 16);
  return 0;
}
