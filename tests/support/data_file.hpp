// The conformance suite's test-file format (shared/conformance/README.md), used by the suite and by
// bpfvm's own tests/data cases: sections "-- asm", "-- raw", "-- mem", "-- result", "-- error".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::test {

struct DataCase {
  std::string name;
  std::string asm_text;
  std::optional<std::vector<isa::RawInsn>> raw;
  std::vector<std::uint8_t> mem;
  std::optional<std::uint64_t> result;
  std::optional<std::string> error;  // expected failure text
};

Result<DataCase> parse_data_file(const std::string& text, const std::string& name);

// The program of a case: its raw section if present, else its assembly.
Result<std::vector<isa::RawInsn>> program_of(const DataCase& c);

}  // namespace bpfvm::test
