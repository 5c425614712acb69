// Fuzzes the object reader: any bytes must give an ObjectSpec or an error, never a crash, a hang or a
// sanitizer report. Seed it with real objects (make fuzz uses build/tests/progs/*.bpf.o).
#include <cstddef>
#include <cstdint>

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
  return 0;
}
