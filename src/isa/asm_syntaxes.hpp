// Private to src/isa: one assembler per syntax.
#pragma once

#include <string_view>
#include <vector>

#include "bpfvm/base/result.hpp"
#include "bpfvm/isa/insn.hpp"

namespace bpfvm::isa::detail {
Result<std::vector<RawInsn>> assemble_kernel(std::string_view text, std::string_view file);
Result<std::vector<RawInsn>> assemble_conformance(std::string_view text, std::string_view file);
}  // namespace bpfvm::isa::detail
